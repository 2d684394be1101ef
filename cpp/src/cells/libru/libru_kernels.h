// The LiBRU's fused step kernels (EQUATIONS.md §8), one table per ISA, with the signatures,
// packing and record layout of cells/batch_norm/batch_norm_kernels.h; negative_slope is unused.
//
// A record row (4H) holds the pre-activations a_z, a_c, then the normalised input projections
// x̂_z, x̂_c that batch normalisation's backward reads: backward recomputes z = σ(a_z), c and the
// kept state's share w = σ(a_z + ĥ − c) from them and ĥ.
#pragma once

#include "cells/batch_norm/batch_norm_kernels.h"

namespace fastgru::cells {

// step: for unit blocks [block_begin, block_end): [g_z, g_c] = ĥ_product · [W_hz; W_hc]^T from
// gate panels, a_z = a[z] + g_z, a_c = a[c] + g_c, ĥ_next = logaddexp(ĥ − softplus(−a_z),
// softplus(a_c) − softplus(a_z)); record (rows, 4H) receives a_z, a_c, or is nullptr.
// backward: with g = dy + dh_carry, da (rows, 2H) = g ⊙ (w − z), g ⊙ (1 − w) ⊙ σ(a_c); dh_prev =
// g ⊙ w (the caller adds the recurrent product).
template <typename Real>
struct LibruKernels {
  BatchNormStepFn<Real> step;
  BatchNormBackwardFn<Real> backward;
};

// The update of a bf16 or int8 LiBRU after its product.
struct LibruQuantizedGates {
  QuantizedBatchNormGatesFn step;
};

// One table per ISA, each defined in that ISA's source file (f32-libru-<isa>.cpp,
// libru-scalar.cpp).
const LibruKernels<float>& f32_libru_kernels__scalar();
const LibruKernels<double>& f64_libru_kernels__scalar();
const LibruKernels<float>& f32_libru_kernels__avx2();
const LibruKernels<float>& f32_libru_kernels__avx512();
const LibruQuantizedGates& libru_quantized_gates__scalar();
const LibruQuantizedGates& libru_quantized_gates__avx2();
const LibruQuantizedGates& libru_quantized_gates__avx512();

}  // namespace fastgru::cells
