// Kernel signatures: plain-pointer functions that know nothing of layers, time loops or Python.
// Shape letters as in fastgru/gru.h. Every matrix argument is row-major with an explicit
// leading dimension (the distance in elements between two rows).
#pragma once

#include <cstdint>

namespace fastgru::kernels {

using Index = std::int64_t;

// C (M, N) = op(A) (M, K) · op(B) (K, N), or C += ... when `accumulate`.
// op(A) = A (M, K) when !transpose_a, A^T with A stored (K, M) when transpose_a; same for B.
template <typename Real>
using GemmFn = void (*)(Index m, Index n, Index k, const Real* a, Index lda, bool transpose_a,
                        const Real* b, Index ldb, bool transpose_b, Real* c, Index ldc,
                        bool accumulate);

// One step of the reset-after GRU for B rows (gru-math.md §1).
//   gi (B, 3H, ld_gi)   W_i x + b_i          gh (B, 3H)   W_h h (no bias)
//   bias_hh (3H) or nullptr                  h_prev (B, H)
//   h_next (B, H, ld_h_next)  out            record (B, 4H) out or nullptr: r, z, n, W_hn h + b_hn
template <typename Real>
using GatesResetAfterFn = void (*)(Index batch, Index hidden, const Real* gi, Index ld_gi,
                                   const Real* gh, const Real* bias_hh, const Real* h_prev,
                                   Real* h_next, Index ld_h_next, Real* record);

// Reset-before (§2), first half: r and z, and the reset state r ⊙ h for the candidate product.
//   gh_rz (B, 2H)  W_hr h, W_hz h;  record (B, 4H) out: r, z, (n untouched), r ⊙ h_prev
template <typename Real>
using GatesResetBeforeRzFn = void (*)(Index batch, Index hidden, const Real* gi, Index ld_gi,
                                      const Real* gh_rz, const Real* bias_hh, const Real* h_prev,
                                      Real* record);

// Reset-before, second half: n from gh_n = W_hn (r ⊙ h) (B, H), then the new state.
//   bias_hh (3H) or nullptr; record in: r, z; out: n
template <typename Real>
using GatesResetBeforeNFn = void (*)(Index batch, Index hidden, const Real* gi, Index ld_gi,
                                     const Real* gh_n, const Real* bias_hh, const Real* h_prev,
                                     Real* h_next, Index ld_h_next, Real* record);

// Backward of one reset-after step. dh = dy + dh_carry is dL/dh_t.
//   dgi (B, 3H) out: dL/d(W_i x + b_i);   dgh (B, 3H) out: dL/d(W_h h + b_h)
//   dh_prev (B, H) out: the direct part dh ⊙ z (the recurrent product is added by the caller)
template <typename Real>
using GatesResetAfterBackwardFn = void (*)(Index batch, Index hidden, const Real* record,
                                           const Real* h_prev, const Real* dy,
                                           const Real* dh_carry, Real* dgi, Real* dgh,
                                           Real* dh_prev);

// Backward of one reset-before step, first half: the z and n blocks of dgi, and dh_prev = dh ⊙ z.
template <typename Real>
using GatesResetBeforeBackwardZnFn = void (*)(Index batch, Index hidden, const Real* record,
                                              const Real* h_prev, const Real* dy,
                                              const Real* dh_carry, Real* dgi, Real* dh_prev);

// Backward of one reset-before step, second half, once d_rh = dL/d(r ⊙ h) (B, H) is known:
// the r block of dgi, and dh_prev += d_rh ⊙ r.
template <typename Real>
using GatesResetBeforeBackwardRFn = void (*)(Index batch, Index hidden, const Real* record,
                                             const Real* h_prev, const Real* d_rh, Real* dgi,
                                             Real* dh_prev);

// sums (N) += the sum over rows of a (M, N, lda).
template <typename Real>
using ColumnSumFn = void (*)(Index m, Index n, const Real* a, Index lda, Real* sums);

template <typename Real>
struct KernelTable {
  const char* isa;
  GemmFn<Real> gemm;
  GatesResetAfterFn<Real> gates_reset_after;
  GatesResetBeforeRzFn<Real> gates_reset_before_rz;
  GatesResetBeforeNFn<Real> gates_reset_before_n;
  GatesResetAfterBackwardFn<Real> gates_reset_after_backward;
  GatesResetBeforeBackwardZnFn<Real> gates_reset_before_backward_zn;
  GatesResetBeforeBackwardRFn<Real> gates_reset_before_backward_r;
  ColumnSumFn<Real> column_sum;
};

// The portable scalar kernels: the fallback on any CPU and the oracle for the SIMD ones.
template <typename Real>
const KernelTable<Real>& reference_kernels();

}  // namespace fastgru::kernels
