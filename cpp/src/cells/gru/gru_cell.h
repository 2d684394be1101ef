// The GRU (EQUATIONS.md §1, §2), with either reset convention: its description, packing, step
// phases and gradient products.
#pragma once

#include <string>

#include "cells/cell_layer.h"
#include "cells/cell_table.h"
#include "cells/gru/gru_kernels.h"

namespace fastgru::cells {

template <typename Real>
class GruCellLayer final : public CellLayer<Real> {
 public:
  // weights (3H, ·) with row blocks r, z, n; biases both set or both null (checked by the caller).
  GruCellLayer(const kernels::KernelTable<Real>& kernels, Index input, Index hidden,
               ResetMode mode, const GruWeightsView<Real>& weights);

  ResetMode reset_mode() const { return mode_; }

  int forward_phases() const override;
  UnitGrain forward_grain(int phase) const override;
  bool needs_step_record() const override;
  void forward_phase(int phase, const ForwardStep<Real>& step, Range units) const override;

  int backward_phases() const override;
  Index backward_workspace_width() const override;
  bool separate_recurrent_gate_gradients() const override;
  void backward_phase(int phase, const BackwardStep<Real>& step, Range panels, Index unit_begin,
                      Index unit_end) const override;
  void recurrent_gradients(const GradientInputs<Real>& in,
                           const GruGradientsView<Real>& grads) const override;

 private:
  using CellLayer<Real>::kernels_;
  using CellLayer<Real>::hidden_;
  using CellLayer<Real>::recurrent_backward_panels_;

  ResetMode mode_;
  const GruKernels<Real>* cell_kernels_;
  // W_hh^T gate panels: r, z, n (reset-after) or r, z (reset-before).
  Panels<Real> step_panels_;
  // Reset-before: W_hn^T (K = H, N = H) in natural panels; else empty.
  Panels<Real> candidate_panels_;
};

const CellDescription& gru_description();

}  // namespace fastgru::cells
