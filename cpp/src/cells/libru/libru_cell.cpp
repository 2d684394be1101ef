// The LiBRU: the light GRU's structure (row blocks z, c, batch-normalised input projections, no
// bias), its state log-probabilities and its update computed in log space by its own kernels.
#include "cells/libru/libru_cell.h"

#include <type_traits>

#include "cells/batch_norm/batch_norm_layer.h"
#include "cells/batch_norm/quantized_batch_norm_layer.h"
#include "cells/isa_tables.h"
#include "cells/libru/libru_kernels.h"

namespace fastgru::cells {
namespace {

const LibruKernels<float>& libru_kernels(const kernels::KernelTable<float>& shared) {
  return table_for_isa<LibruKernels<float>>(shared.level, f32_libru_kernels__scalar,
                                            FASTGRU_X86_TABLE(f32_libru_kernels__avx2),
                                            FASTGRU_X86_TABLE(f32_libru_kernels__avx512));
}

const LibruKernels<double>& libru_kernels(const kernels::KernelTable<double>&) {
  return f64_libru_kernels__scalar();
}

void check_libru_config(const NetworkConfig& config) { check_batch_norm_config(config, "LiBRU"); }

template <typename Real>
std::unique_ptr<const CellLayer<Real>> make_libru_layer(const kernels::KernelTable<Real>& kernels,
                                                        Index input, const NetworkConfig& config,
                                                        const WeightsView<Real>& w,
                                                        const std::string& name) {
  check_batch_norm_weights(w, config.hidden, name);
  if constexpr (std::is_same_v<Real, float>) {
    if (config.precision != Precision::full) {
      const LibruQuantizedGates& gates =
          table_for_isa(kernels.level, &libru_quantized_gates__scalar,
                        FASTGRU_X86_TABLE(libru_quantized_gates__avx2),
                        FASTGRU_X86_TABLE(libru_quantized_gates__avx512));
      return std::make_unique<QuantizedBatchNormLayer>(kernels, input, config, w, gates.step,
                                                       name);
    }
  }
  const LibruKernels<Real>& cell_kernels = libru_kernels(kernels);
  return std::make_unique<BatchNormCellLayer<Real>>(kernels, input, config, w, cell_kernels.step,
                                                    cell_kernels.backward);
}

}  // namespace

const CellDescription& libru_description() {
  static const CellDescription description{Cell::libru,
                                           "libru",
                                           "LiBRU",
                                           {"z", "c"},
                                           {"weight_ih", "weight_hh", "bn_weight", "bn_bias"},
                                           {"bn_running_mean", "bn_running_var"},
                                           false,
                                           false,
                                           true,
                                           batch_norm_options(),
                                           check_libru_config,
                                           make_libru_layer<float>,
                                           make_libru_layer<double>};
  return description;
}

}  // namespace fastgru::cells
