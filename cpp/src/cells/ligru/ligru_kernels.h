// The LiGRU's fused step kernels (EQUATIONS.md §5), one table per ISA, with a step and a
// backward kernel for each candidate activation.
//
// Packed weight layout (built by ligru_cell.cpp): gate panels, W_hh^T (K = H) in one panel per
// block of W hidden units holding that block's z and n columns side by side (2W wide). A record
// row (4H) holds z, n, then the two normalised input projections x̂_z, x̂_n that batch
// normalisation's backward reads.
#pragma once

#include "kernels/kernels.h"

namespace fastgru::cells {

using kernels::Index;

// The candidate activations, in fastgru::Activation's order.
enum LigruActivation : int { kRelu = 0, kTanh = 1, kLeakyRelu = 2, kSoftplus = 3, kLigruActivations = 4 };

// LiGRU step for unit blocks [block_begin, block_end): [g_z, g_n] = h_product · [W_hz; W_hn]^T
// from gate panels, then z = σ(a_z + g_z), n = act(a_n + g_n), h_next = z ⊙ h_prev + (1 − z) ⊙ n.
// a (rows, 2H, ld_a) holds the normalised input projections a_z, a_n; negative_slope is leaky
// ReLU's (ignored by the others); record (rows, 4H) receives z, n in its first two blocks, or is
// nullptr (inference).
template <typename Real>
using StepLigruFn = void (*)(Index rows, Index hidden, Index block_begin, Index block_end,
                             const Real* gate_panels, const Real* h_prev, const Real* h_product,
                             const Real* a, Index ld_a, Real negative_slope, Real* h_next,
                             Index ld_h_next, Real* record);

// Backward of a LiGRU step for units [unit_begin, unit_end): with dh = dy + dh_carry,
// da (rows, 2H) = dL/d(a_z + g_z), dL/d(a_n + g_n), which is also dL/d(g) for the recurrent
// product; dh_prev = dh ⊙ z (the caller adds the recurrent product). The activation's
// derivative is read from n (negative_slope >= 0 keeps sign(n) = sign(a); softplus's σ(a) is
// 1 − e^−n).
template <typename Real>
using BackwardLigruFn = void (*)(Index rows, Index hidden, Index unit_begin, Index unit_end,
                                 const Real* record, const Real* h_prev, const Real* dy,
                                 const Real* dh_carry, Real negative_slope, Real* da,
                                 Real* dh_prev);

template <typename Real>
struct LigruKernels {
  StepLigruFn<Real> step[kLigruActivations];
  BackwardLigruFn<Real> backward[kLigruActivations];
};

// One table per ISA, each defined in that ISA's source file (f32-ligru-<isa>.cpp,
// ligru-scalar.cpp).
const LigruKernels<float>& f32_ligru_kernels__scalar();
const LigruKernels<double>& f64_ligru_kernels__scalar();
const LigruKernels<float>& f32_ligru_kernels__avx2();
const LigruKernels<float>& f32_ligru_kernels__avx512();

}  // namespace fastgru::cells
