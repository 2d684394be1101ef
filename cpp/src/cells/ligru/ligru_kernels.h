// The LiGRU's fused step kernels (EQUATIONS.md §5), one table per ISA, with a step and a
// backward kernel for each candidate activation.
//
// Packed weights and records as cells/batch_norm/batch_norm_kernels.h lays them out: gate panels
// of z and n, a record row z, n, x̂_z, x̂_n.
#pragma once

#include "cells/batch_norm/batch_norm_kernels.h"

namespace fastgru::cells {

// The candidate activations, in fastgru::Activation's order.
enum LigruActivation : int { kRelu = 0, kTanh = 1, kLeakyRelu = 2, kSoftplus = 3, kLigruActivations = 4 };

// The kernels (cells/batch_norm/batch_norm_kernels.h): z = σ(a_z + g_z), n = act(a_n + g_n),
// h_next = z ⊙ h_prev + (1 − z) ⊙ n, the record's blocks z, n. Backward: dh_prev = dh ⊙ z; the
// activation's derivative is read from n (negative_slope >= 0 keeps sign(n) = sign(a);
// softplus's σ(a) is 1 − e^−n).
template <typename Real>
struct LigruKernels {
  BatchNormStepFn<Real> step[kLigruActivations];
  BatchNormBackwardFn<Real> backward[kLigruActivations];
};

// The update of a bf16 or int8 LiGRU after its product, per activation.
struct LigruQuantizedGates {
  QuantizedBatchNormGatesFn step[kLigruActivations];
};

// One table per ISA, each defined in that ISA's source file (f32-ligru-<isa>.cpp,
// ligru-scalar.cpp).
const LigruKernels<float>& f32_ligru_kernels__scalar();
const LigruKernels<double>& f64_ligru_kernels__scalar();
const LigruKernels<float>& f32_ligru_kernels__avx2();
const LigruKernels<float>& f32_ligru_kernels__avx512();
const LigruQuantizedGates& ligru_quantized_gates__scalar();
const LigruQuantizedGates& ligru_quantized_gates__avx2();
const LigruQuantizedGates& ligru_quantized_gates__avx512();

}  // namespace fastgru::cells
