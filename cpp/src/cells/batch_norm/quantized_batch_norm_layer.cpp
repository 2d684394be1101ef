#include "cells/batch_norm/quantized_batch_norm_layer.h"

#include <cmath>
#include <stdexcept>

namespace fastgru::cells {

QuantizedBatchNormLayer::FoldedInputs QuantizedBatchNormLayer::fold(
    Index input, const NetworkConfig& config, const WeightsView<float>& w, const std::string& name) {
  const Index G = 2 * config.hidden, I = input;
  // As the float layer folds it (batch_norm_layer.cpp): the scale in double, ε as a float.
  const double eps = static_cast<float>(config.bn_eps);
  FoldedInputs folded;
  folded.weight.resize(static_cast<std::size_t>(G * I));
  folded.shift.resize(static_cast<std::size_t>(G));
  for (Index c = 0; c < G; ++c) {
    const double scale = w.bn_weight[c] / std::sqrt(double(w.bn_running_var[c]) + eps);
    for (Index k = 0; k < I; ++k) {
      const float value = static_cast<float>(scale * w.weight_ih[c * I + k]);
      // A weight that is not finite itself is the packer's to judge (int8 refuses it by name).
      if (!std::isfinite(value) && std::isfinite(w.weight_ih[c * I + k]))
        throw std::invalid_argument("fastgru: " + name + ".bn_weight: a bf16 or int8 layer folds batch "
                                    "normalisation into its input weights, and row " + std::to_string(c) +
                                    " does not fold to finite values (bn_weight " +
                                    std::to_string(w.bn_weight[c]) + ", bn_running_var " +
                                    std::to_string(w.bn_running_var[c]) + ")");
      folded.weight[c * I + k] = value;
    }
    folded.shift[c] = static_cast<float>(w.bn_bias[c] - scale * w.bn_running_mean[c]);
  }
  return folded;
}

QuantizedBatchNormLayer::QuantizedBatchNormLayer(const kernels::KernelTable<float>& kernels,
                                                 Index input, const NetworkConfig& config,
                                                 const WeightsView<float>& w,
                                                 QuantizedBatchNormGatesFn gates,
                                                 const std::string& name)
    : QuantizedBatchNormLayer(kernels, input, config, w, gates, name,
                              fold(input, config, w, name)) {}

QuantizedBatchNormLayer::QuantizedBatchNormLayer(const kernels::KernelTable<float>& kernels,
                                                 Index input, const NetworkConfig& config,
                                                 const WeightsView<float>& w,
                                                 QuantizedBatchNormGatesFn gates,
                                                 const std::string& name,
                                                 const FoldedInputs& folded)
    : QuantizedCellLayer(kernels, input, config.hidden, 2, 2, config.precision,
                         folded.weight.data(), folded.shift.data(), name),
      gates_(gates),
      negative_slope_(static_cast<float>(config.negative_slope)) {
  step_ = pack_gates(w.weight_hh, nullptr, {{0, 0}, {1, 1}}, name + ".weight_hh");
}

int QuantizedBatchNormLayer::forward_phases() const {
  return 1;
}

bool QuantizedBatchNormLayer::needs_step_record() const {
  return false;
}

void QuantizedBatchNormLayer::forward_phase(int, const ForwardStep<float>& s, Range units) const {
  float* gh = products_buffer(s.rows, step_);
  recurrent_product(step_, 2, s.rows, s.h_product, hidden_, units, gh);
  gates_(s.rows, hidden_, units.begin, units.end, gh, step_.columns, s.projection, s.ld_projection,
         negative_slope_, s.h_prev, s.h_next, s.ld_h_next);
}

}  // namespace fastgru::cells
