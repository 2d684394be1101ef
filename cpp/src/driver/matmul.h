// Large matrix products on the kernel table's microkernel, on fastgru's threads:
// c (m, n) (+)= a (m, depth) · b (depth, n), where a(i, k) = a[i·a_row_stride + k·a_depth_stride]
// and b(k, j) = b[k·b_row_stride + j·b_col_stride] (so either may be used transposed).
#pragma once

#include "kernels/kernels.h"

namespace fastgru::driver {

using kernels::Index;

// Packs b in blocks of depth as it goes. With a_row_sums (m) given, also adds each row's sum
// over the depth of a to it: a transposed a (a weight gradient's dL/dg) is copied anyway, so
// its sums (the bias gradient) come at no extra pass.
template <typename Real>
void matmul(const kernels::KernelTable<Real>& kernels, Index m, Index n, Index depth,
            const Real* a, Index a_row_stride, Index a_depth_stride, const Real* b,
            Index b_row_stride, Index b_col_stride, Real* c, Index ldc, bool accumulate,
            Real* a_row_sums = nullptr);

// b already packed in natural panels over its whole depth (weights); c = column_bias + a · b,
// column_bias (n) or nullptr for zeros.
template <typename Real>
void matmul_packed(const kernels::KernelTable<Real>& kernels, Index m, Index n, Index depth,
                   const Real* a, Index a_row_stride, Index a_depth_stride, const Real* panels,
                   Real* c, Index ldc, const Real* column_bias);

// matmul_packed with a's rows gathered: row i of a is a + rows[i] · a_row_stride (depth
// contiguous values). Each thread copies a chunk of rows into a cache-sized buffer and runs
// every panel over it, so a variable-length batch's inputs are read once, in place, instead of
// being packed into a full copy first. Every row's result is the same as matmul_packed's.
template <typename Real>
void matmul_packed_rows(const kernels::KernelTable<Real>& kernels, Index m, Index n, Index depth,
                        const Real* a, Index a_row_stride, const Index* rows,
                        const Real* panels, Real* c, Index ldc, const Real* column_bias);

}  // namespace fastgru::driver
