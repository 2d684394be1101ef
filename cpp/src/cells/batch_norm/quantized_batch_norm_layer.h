// The cells with batch-normalised input projections (EQUATIONS.md §5, §8) in bf16
// or int8, for inference: batch normalisation with the running statistics folded into the input
// weights and shift before they are quantized, then QuantizedCellLayer's products and the
// cell's float32 update (QuantizedBatchNormGatesFn, one per cell and ISA).
#pragma once

#include <string>
#include <vector>

#include "cells/batch_norm/batch_norm_kernels.h"
#include "cells/quantized_cell_layer.h"

namespace fastgru::cells {

class QuantizedBatchNormLayer final : public QuantizedCellLayer {
 public:
  // weights (2H, ·) with row blocks z and the candidate's and the bn_* arrays (2H), checked by
  // the caller; gates: the cell's update for the ISA of `kernels`. Throws std::invalid_argument
  // naming `name` where the folding is not finite (it would need the explicit normalisation
  // that the float layer falls back to).
  QuantizedBatchNormLayer(const kernels::KernelTable<float>& kernels, Index input,
                          const NetworkConfig& config, const WeightsView<float>& weights,
                          QuantizedBatchNormGatesFn gates, const std::string& name);

  int forward_phases() const override;
  bool needs_step_record() const override;
  void forward_phase(int phase, const ForwardStep<float>& step, Range units) const override;

 private:
  // W_ih with γ / √(σ² + ε) folded into its rows, and the shift β − γ μ / √(σ² + ε).
  struct FoldedInputs {
    std::vector<float> weight, shift;
  };
  static FoldedInputs fold(Index input, const NetworkConfig& config, const WeightsView<float>& w,
                           const std::string& name);
  QuantizedBatchNormLayer(const kernels::KernelTable<float>& kernels, Index input,
                          const NetworkConfig& config, const WeightsView<float>& weights,
                          QuantizedBatchNormGatesFn gates, const std::string& name,
                          const FoldedInputs& folded);

  QuantizedBatchNormGatesFn gates_;
  float negative_slope_;
  QuantizedWeights step_;  // W_hz, and the candidate's
};

}  // namespace fastgru::cells
