// The GRU in bf16 or int8 (EQUATIONS.md §9), for inference: QuantizedCellLayer's products,
// then the float32 gate arithmetic of gru_quantized_gates.h. Every form of the gates
// (EQUATIONS.md §7), either reset convention.
#pragma once

#include <string>
#include <vector>

#include "cells/gru/gru_kernels.h"
#include "cells/quantized_cell_layer.h"

namespace fastgru::cells {

class QuantizedGruLayer final : public QuantizedCellLayer {
 public:
  // weights with the row blocks of `form` (fastgru::GateTerms), as GruCellLayer takes them;
  // `name` (the network's "weights[k]") names a weight that cannot be quantized.
  QuantizedGruLayer(const kernels::KernelTable<float>& kernels, Index input, Index hidden,
                    ResetMode mode, GateTerms form, double clip, Precision precision,
                    const WeightsView<float>& weights, const std::string& name);

  int forward_phases() const override;
  bool needs_step_record() const override;
  void forward_phase(int phase, const ForwardStep<float>& step, Range units) const override;

 private:
  ResetMode mode_;
  bool hidden_gates_;  // r and z see h: every form but type 3's constants
  float clip_;         // the pre-activations' bound (§1.1), ∞ for none
  const GruQuantizedGates* gates_;
  QuantizedWeights step_;       // reset-after: r, z, n of W_hh (n alone: type 3); reset-before: r, z
  QuantizedWeights candidate_;  // reset-before: W_hn
  std::vector<float> step_bias_;  // b_hr, b_hz, b_hn (3H), zeros where absent
};

}  // namespace fastgru::cells
