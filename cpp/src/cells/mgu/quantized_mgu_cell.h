// The MGU in bf16 or int8 (EQUATIONS.md §4, §9), for inference: QuantizedCellLayer's products,
// then the float32 gate arithmetic of mgu_quantized_gates.h, in two phases as the float MGU
// (the candidate's product reads f ⊙ h of every unit).
#pragma once

#include <string>

#include "cells/mgu/mgu_kernels.h"
#include "cells/quantized_cell_layer.h"

namespace fastgru::cells {

class QuantizedMguLayer final : public QuantizedCellLayer {
 public:
  // weights (2H, ·) with row blocks f, n; biases both set or both null.
  QuantizedMguLayer(const kernels::KernelTable<float>& kernels, Index input, Index hidden,
                    Precision precision, const WeightsView<float>& weights,
                    const std::string& name);

  int forward_phases() const override;
  bool needs_step_record() const override;
  void forward_phase(int phase, const ForwardStep<float>& step, Range units) const override;

 private:
  const MguQuantizedGates* gates_;
  QuantizedWeights gate_;       // W_hf
  QuantizedWeights candidate_;  // W_hn
};

}  // namespace fastgru::cells
