// The GRU (EQUATIONS.md §1, §2), with either reset convention and any form of its gates (§7):
// its description, packing, step phases and gradient products.
#pragma once

#include <string>

#include "cells/cell_layer.h"
#include "cells/cell_table.h"
#include "cells/gru/gru_kernels.h"

namespace fastgru::cells {

template <typename Real>
class GruCellLayer final : public CellLayer<Real> {
 public:
  // weights with the row blocks of `gates` (fastgru::GateTerms): (3H, ·) r, z, n for the full
  // GRU; biases both set or both null (checked by the caller). clip: NetworkConfig::clip.
  GruCellLayer(const kernels::KernelTable<Real>& kernels, Index input, Index hidden,
               ResetMode mode, GateTerms gates, double clip, const WeightsView<Real>& weights);

  ResetMode reset_mode() const { return mode_; }

  int forward_phases() const override;
  UnitGrain forward_grain(int phase) const override;
  bool needs_step_record() const override;
  void forward_phase(int phase, const ForwardStep<Real>& step, Range units) const override;

  int backward_phases() const override;
  Index backward_workspace_width() const override;
  bool separate_recurrent_gate_gradients() const override;
  Index recurrent_gate_width() const override;
  void backward_phase(int phase, const BackwardStep<Real>& step, Range panels, Index unit_begin,
                      Index unit_end) const override;
  void recurrent_gradients(const GradientInputs<Real>& in,
                           const GradientsView<Real>& grads) const override;

 private:
  using CellLayer<Real>::kernels_;
  using CellLayer<Real>::hidden_;
  using CellLayer<Real>::recurrent_backward_panels_;

  bool full() const { return gates_form_ == GateTerms::full; }
  // Whether r and z see h: every form but type 3.
  bool hidden_gates() const { return gates_form_ != GateTerms::bias; }
  // The recurrent biases as the step kernels read them: bias_hh (full GRU; nullptr without
  // biases), or b_hr, b_hz, b_hn with zeros for the blocks the form lacks.
  const Real* step_bias() const;
  // The recurrent bias gradient from the column sums of d_recurrent_gates (3H).
  void add_recurrent_bias_gradient(const Real* sums, Real* grad_bias_hh) const;

  ResetMode mode_;
  GateTerms gates_form_;
  Real clip_;  // the pre-activations' bound (§1.1), ∞ for none
  const GruKernels<Real>* cell_kernels_;
  // W_hh^T gate panels: r, z, n (reset-after) or r, z (reset-before), n alone for type 3's
  // reset-after, none for its reset-before.
  Panels<Real> step_panels_;
  // Reset-before: W_hn^T (K = H, N = H) in natural panels; else empty.
  Panels<Real> candidate_panels_;
  std::vector<Real> form_bias_;  // the forms' step_bias(), (3H) or empty
};

const CellDescription& gru_description();

}  // namespace fastgru::cells
