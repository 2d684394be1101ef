// The light GRU: its configuration, its kernels for the ISA in use and its description.
#include "cells/ligru/ligru_cell.h"

#include <cmath>
#include <type_traits>

#include "api/checks.h"
#include "cells/batch_norm/batch_norm_layer.h"
#include "cells/batch_norm/quantized_batch_norm_layer.h"
#include "cells/isa_tables.h"
#include "cells/ligru/ligru_kernels.h"

namespace fastgru::cells {
namespace {

static_assert(static_cast<int>(Activation::relu) == kRelu &&
                  static_cast<int>(Activation::tanh) == kTanh &&
                  static_cast<int>(Activation::leaky_relu) == kLeakyRelu &&
                  static_cast<int>(Activation::softplus) == kSoftplus,
              "the kernel tables index their kernels by Activation");

const LigruKernels<float>& ligru_kernels(const kernels::KernelTable<float>& shared) {
  return table_for_isa<LigruKernels<float>>(shared.level, f32_ligru_kernels__scalar,
                                            FASTGRU_X86_TABLE(f32_ligru_kernels__avx2),
                                            FASTGRU_X86_TABLE(f32_ligru_kernels__avx512));
}

const LigruKernels<double>& ligru_kernels(const kernels::KernelTable<double>&) {
  return f64_ligru_kernels__scalar();
}

void check_ligru_config(const NetworkConfig& config) {
  check_batch_norm_config(config, "LiGRU");
  const int activation = static_cast<int>(config.activation);
  api::require(activation >= 0 && activation < kLigruActivations,
               "config.activation: expected relu, tanh, leaky_relu or softplus, got " + std::to_string(activation));
  api::require(std::isfinite(config.negative_slope) && config.negative_slope >= 0,
               "config.negative_slope: expected a finite number >= 0, got " +
                   std::to_string(config.negative_slope));
}

template <typename Real>
std::unique_ptr<const CellLayer<Real>> make_ligru_layer(const kernels::KernelTable<Real>& kernels,
                                                        Index input, const NetworkConfig& config,
                                                        const WeightsView<Real>& w,
                                                        const std::string& name) {
  check_batch_norm_weights(w, config.hidden, name);
  const int activation = static_cast<int>(config.activation);
  if constexpr (std::is_same_v<Real, float>) {
    if (config.precision != Precision::full) {
      const LigruQuantizedGates& gates =
          table_for_isa(kernels.level, &ligru_quantized_gates__scalar,
                        FASTGRU_X86_TABLE(ligru_quantized_gates__avx2),
                        FASTGRU_X86_TABLE(ligru_quantized_gates__avx512));
      return std::make_unique<QuantizedBatchNormLayer>(kernels, input, config, w,
                                                       gates.step[activation], name);
    }
  }
  const LigruKernels<Real>& cell_kernels = ligru_kernels(kernels);
  return std::make_unique<BatchNormCellLayer<Real>>(kernels, input, config, w,
                                                    cell_kernels.step[activation],
                                                    cell_kernels.backward[activation]);
}

// The model file's and the Python layer's LiGRU settings; bn_momentum (the running statistics'
// update) is the Python layer's alone.
std::vector<CellOption> ligru_options() {
  std::vector<CellOption> options{
      {"activation", CellOption::Kind::choice, "'relu', 'tanh', 'leaky_relu' or 'softplus'",
       {"relu", "tanh", "leaky_relu", "softplus"}, nullptr,
       [](NetworkConfig& config, double index) { config.activation = static_cast<Activation>(int(index)); }},
      {"negative_slope", CellOption::Kind::number, "a number >= 0", {},
       [](double value) { return value >= 0; },
       [](NetworkConfig& config, double value) { config.negative_slope = value; }}};
  for (CellOption& option : batch_norm_options()) options.push_back(std::move(option));
  return options;
}

}  // namespace

const CellDescription& ligru_description() {
  static const CellDescription description{Cell::ligru,
                                           "ligru",
                                           "LiGRU",
                                           {"z", "n"},
                                           {"weight_ih", "weight_hh", "bn_weight", "bn_bias"},
                                           {"bn_running_mean", "bn_running_var"},
                                           false,
                                           false,
                                           true,
                                           ligru_options(),
                                           check_ligru_config,
                                           make_ligru_layer<float>,
                                           make_ligru_layer<double>};
  return description;
}

}  // namespace fastgru::cells
