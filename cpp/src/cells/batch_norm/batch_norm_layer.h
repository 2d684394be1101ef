// The layer of the cells with batch-normalised input projections, two row blocks (an update
// gate z and a candidate) and no bias (EQUATIONS.md §5, §8), each running it with its own step
// kernels: packing (with inference's batch normalisation folded into the input weights), step
// phases and the batch normalisation of the input projections forward and backward.
#pragma once

#include <string>

#include "cells/batch_norm/batch_norm_kernels.h"
#include "cells/cell_layer.h"
#include "cells/cell_table.h"

namespace fastgru::cells {

template <typename Real>
class BatchNormCellLayer final : public CellLayer<Real> {
 public:
  // weights (2H, ·) with row blocks z and the candidate's, and the bn_* arrays (2H) each,
  // checked by the caller (check_batch_norm_weights); step and backward: the cell's kernels
  // for the ISA of `kernels`, with the signatures of batch_norm_kernels.h.
  BatchNormCellLayer(const kernels::KernelTable<Real>& kernels, Index input,
                     const NetworkConfig& config, const WeightsView<Real>& weights,
                     BatchNormStepFn<Real> step, BatchNormBackwardFn<Real> backward);

  void project_inputs(const InputRows<Real>& x, Real* projection, Real* record,
                      Real* batch_statistics, bool training) const override;
  bool projects_whole_sequence(bool training) const override;
  Index batch_statistics_size() const override;

  int forward_phases() const override;
  UnitGrain forward_grain(int phase) const override;
  bool needs_step_record() const override;
  void forward_phase(int phase, const ForwardStep<Real>& step, Range units) const override;

  int backward_phases() const override;
  void backward_phase(int phase, const BackwardStep<Real>& step, Range panels, Index unit_begin,
                      Index unit_end) const override;
  void recurrent_gradients(const GradientInputs<Real>& in,
                           const GradientsView<Real>& grads) const override;
  void project_inputs_backward(const GradientInputs<Real>& in,
                               const GradientsView<Real>& grads) const override;

 private:
  using CellLayer<Real>::kernels_;
  using CellLayer<Real>::hidden_;

  BatchNormStepFn<Real> step_;
  BatchNormBackwardFn<Real> backward_;
  Real negative_slope_;
  Real bn_eps_;
  // Batch normalisation's γ, β and running statistics (2H each).
  std::vector<Real> bn_weight_, bn_bias_, bn_running_mean_, bn_running_var_;
  Panels<Real> step_panels_;  // W_hh^T gate panels: z and the candidate's
  // Inference: W_ih^T with γ / √(σ² + ε) folded into its columns (natural panels) and the shift
  // β − γ μ / √(σ² + ε) (2H); both empty where the folding is not finite (batch_norm_folded_
  // false), and inference then projects with the unfolded panels and normalises explicitly.
  Panels<Real> folded_input_panels_, inference_shift_;
  bool batch_norm_folded_ = true;
};

// What a cell of this layer's structure requires of config (no bias, a valid bn_eps): throws
// std::invalid_argument naming the field, and `class_name`.
void check_batch_norm_config(const NetworkConfig& config, const std::string& class_name);

// The settings of a cell of this layer's structure: bn_momentum (the Python layer's) and bn_eps.
std::vector<CellOption> batch_norm_options();

// Throws std::invalid_argument naming `name` + the member where a bn_* array is missing or a
// running variance negative.
template <typename Real>
void check_batch_norm_weights(const WeightsView<Real>& weights, Index hidden,
                              const std::string& name);

}  // namespace fastgru::cells
