// Kernel signatures: plain-pointer functions that know nothing of layers, time loops, threads
// or Python. Shape letters as in fastgru/gru.h; W is the kernel table's vector width.
//
// Packed weight layouts (built by driver/packed_weights.cpp, read here):
//   natural panels   a K × N matrix in panels of 3W columns, k-major, zero past N:
//                    element (k, c) of panel p at p·K·3W + k·3W + (c − 3W·p).
//   gate panels      W_hh^T (K = H) in one panel per block of W hidden units holding that
//                    block's r, z, n columns side by side (3W wide), so the gate update runs on
//                    the product's accumulators (reset-after); reset-before uses r, z only (2W).
// Matrices are row-major with an explicit leading dimension; a "record" row is (4H): r, z, n
// and the fourth term of the training cache (see fastgru/gru.h).
#pragma once

#include <cstdint>

namespace fastgru::kernels {

using Index = std::int64_t;

// Asks for every cache line of p[0, count) ahead of its use (reads).
template <typename Real>
inline void prefetch_range(const Real* p, Index count) {
  if (count <= 0) return;
  constexpr Index kLineElements = 64 / sizeof(Real);
  for (Index i = 0; i < count; i += kLineElements) __builtin_prefetch(p + i);
  __builtin_prefetch(p + count - 1);  // the last line, when p is not line-aligned
}

// c (rows, the columns of panels [panel_begin, panel_end) of an n-column matrix)
//   = column_bias + a · packed, or c += a · packed when `accumulate` (column_bias (n) may be
//   nullptr for zeros). a(i, k) is at a[i · a_row_stride + k · a_depth_stride].
template <typename Real>
using MultiplyPanelsFn = void (*)(Index rows, Index n, Index depth, const Real* a,
                                  Index a_row_stride, Index a_depth_stride, const Real* panels,
                                  Index panel_stride, Index panel_begin, Index panel_end, Real* c,
                                  Index ldc, bool accumulate, const Real* column_bias);

// Reset-after step (§1) for unit blocks [block_begin, block_end): gh = h_product · W_hh^T from
// gate panels, then h_next = (1 − z) ⊙ n + z ⊙ h_prev. h_product (rows, H) is h_prev itself, or
// h_prev with recurrent dropout applied. gi (rows, 3H, ld_gi) holds W_i x + b_i; bias_hh may be
// nullptr; record (rows, 4H) may be nullptr (inference). stream_record: the record is not
// read again soon, so it may be written around the caches.
template <typename Real>
using StepResetAfterFn = void (*)(Index rows, Index hidden, Index block_begin, Index block_end,
                                  const Real* gate_panels, const Real* h_prev,
                                  const Real* h_product, const Real* gi, Index ld_gi,
                                  const Real* bias_hh, Real* h_next, Index ld_h_next,
                                  Real* record, bool stream_record);

// Reset-before step (§2), first half, for unit blocks: r and z from h_product, and
// r ⊙ h_product (the candidate product's input), into the record.
template <typename Real>
using StepResetBeforeRzFn = void (*)(Index rows, Index hidden, Index block_begin,
                                     Index block_end, const Real* rz_gate_panels,
                                     const Real* h_product, const Real* gi, Index ld_gi,
                                     const Real* bias_hh, Real* record);

// Reset-before step, second half, for natural panels of W_hn^T (3W units each): n from
// W_hn (r ⊙ h) read from the record, then h_next.
template <typename Real>
using StepResetBeforeNFn = void (*)(Index rows, Index hidden, Index panel_begin,
                                    Index panel_end, const Real* n_panels, const Real* h_prev,
                                    const Real* gi, Index ld_gi, const Real* bias_hh,
                                    Real* h_next, Index ld_h_next, Real* record);

// Backward of a reset-after step for units [unit_begin, unit_end): with dh = dy + dh_carry,
// dgi (rows, 3H) = dL/d(W_i x + b_i), dgh (rows, 3H) = dL/d(W_h h + b_h), dh_prev = dh ⊙ z
// (the caller adds the recurrent product). stream_dgi: dgi is not read again soon, so it may
// be written around the caches.
template <typename Real>
using BackwardResetAfterFn = void (*)(Index rows, Index hidden, Index unit_begin,
                                      Index unit_end, const Real* record, const Real* h_prev,
                                      const Real* dy, const Real* dh_carry, Real* dgi, Real* dgh,
                                      Real* dh_prev, bool stream_dgi);

// Backward of a reset-before step, first half: the z and n blocks of dgi, dh_prev = dh ⊙ z.
template <typename Real>
using BackwardResetBeforeZnFn = void (*)(Index rows, Index hidden, Index unit_begin,
                                         Index unit_end, const Real* record, const Real* h_prev,
                                         const Real* dy, const Real* dh_carry, Real* dgi,
                                         Real* dh_prev);

// Backward of a reset-before step, second half, given d_rh = dL/d(r ⊙ h) (rows, H):
// the r block of dgi, and dh_prev += d_rh ⊙ r.
template <typename Real>
using BackwardResetBeforeRFn = void (*)(Index rows, Index hidden, Index unit_begin,
                                        Index unit_end, const Real* record, const Real* h_prev,
                                        const Real* d_rh, Real* dgi, Real* dh_prev);

// The LiGRU candidate activations, in fastgru::Activation's order; a table holds one step and
// one backward kernel for each.
enum LigruActivation : int { kRelu = 0, kTanh = 1, kLeakyRelu = 2, kLigruActivations = 3 };

// LiGRU step (EQUATIONS.md §5) for unit blocks [block_begin, block_end): [g_z, g_n] =
// h_product · [W_hz; W_hn]^T from gate panels holding z, n (2W wide), then z = σ(a_z + g_z),
// n = act(a_n + g_n), h_next = z ⊙ h_prev + (1 − z) ⊙ n. a (rows, 2H, ld_a) holds the normalised
// input projections a_z, a_n; negative_slope is leaky ReLU's (ignored by the others); record
// (rows, 4H) receives z, n in its first two blocks, or is nullptr (inference).
template <typename Real>
using StepLigruFn = void (*)(Index rows, Index hidden, Index block_begin, Index block_end,
                             const Real* gate_panels, const Real* h_prev, const Real* h_product,
                             const Real* a, Index ld_a, Real negative_slope, Real* h_next,
                             Index ld_h_next, Real* record);

// Backward of a LiGRU step for units [unit_begin, unit_end): with dh = dy + dh_carry,
// da (rows, 2H) = dL/d(a_z + g_z), dL/d(a_n + g_n), which is also dL/d(g) for the recurrent
// product; dh_prev = dh ⊙ z (the caller adds the recurrent product). The activation's
// derivative is read from n (negative_slope >= 0 keeps sign(n) = sign(a)).
template <typename Real>
using BackwardLigruFn = void (*)(Index rows, Index hidden, Index unit_begin, Index unit_end,
                                 const Real* record, const Real* h_prev, const Real* dy,
                                 const Real* dh_carry, Real negative_slope, Real* da,
                                 Real* dh_prev);

// sums (cols) += the sum over rows of a (rows, cols, lda).
template <typename Real>
using ColumnSumFn = void (*)(Index rows, Index cols, const Real* a, Index lda, Real* sums);

template <typename Real>
struct KernelTable {
  const char* isa;
  Index vector_width;  // W
  int tile_rows;       // rows per microkernel tile
  MultiplyPanelsFn<Real> multiply_panels;
  StepResetAfterFn<Real> step_reset_after;
  StepResetBeforeRzFn<Real> step_reset_before_rz;
  StepResetBeforeNFn<Real> step_reset_before_n;
  BackwardResetAfterFn<Real> backward_reset_after;
  BackwardResetBeforeZnFn<Real> backward_reset_before_zn;
  BackwardResetBeforeRFn<Real> backward_reset_before_r;
  ColumnSumFn<Real> column_sum;
  StepLigruFn<Real> step_ligru[kLigruActivations];
  BackwardLigruFn<Real> backward_ligru[kLigruActivations];
};

// One table per ISA; each is defined in that ISA's source files, compiled with its flags alone.
const KernelTable<float>& f32_kernels__scalar();
const KernelTable<double>& f64_kernels__scalar();
const KernelTable<float>& f32_kernels__avx2();
const KernelTable<float>& f32_kernels__avx512();

}  // namespace fastgru::kernels
