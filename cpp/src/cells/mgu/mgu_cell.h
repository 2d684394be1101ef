// The minimal gated unit (EQUATIONS.md §4): its description, packing, step phases and gradient
// products. Its input product has 2H columns (f, n).
#pragma once

#include "cells/cell_layer.h"
#include "cells/cell_table.h"
#include "cells/mgu/mgu_kernels.h"

namespace fastgru::cells {

template <typename Real>
class MguCellLayer final : public CellLayer<Real> {
 public:
  // weights (2H, ·) with row blocks f, n; biases both set or both null (checked by the caller).
  MguCellLayer(const kernels::KernelTable<Real>& kernels, Index input, Index hidden,
               const WeightsView<Real>& weights);

  int forward_phases() const override;
  UnitGrain forward_grain(int phase) const override;
  bool needs_step_record() const override;
  void forward_phase(int phase, const ForwardStep<Real>& step, Range units) const override;

  int backward_phases() const override;
  Index backward_workspace_width() const override;
  void backward_phase(int phase, const BackwardStep<Real>& step, Range panels, Index unit_begin,
                      Index unit_end) const override;
  void recurrent_gradients(const GradientInputs<Real>& in,
                           const GradientsView<Real>& grads) const override;

 private:
  using CellLayer<Real>::kernels_;
  using CellLayer<Real>::hidden_;

  const MguKernels<Real>* cell_kernels_;
  Panels<Real> gate_panels_;       // W_hf^T (K = H, N = H), natural panels
  Panels<Real> candidate_panels_;  // W_hn^T (K = H, N = H), natural panels
};

const CellDescription& mgu_description();

}  // namespace fastgru::cells
