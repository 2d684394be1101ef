// The cell-independent kernels: plain-pointer functions that know nothing of layers, time loops,
// threads or Python. Shape letters as in fastgru/network.h; W is the kernel table's vector width.
// Each cell's step kernels live with the cell (cpp/src/cells/<cell>/) and are chosen for the
// same instruction set as this table (KernelTable::level).
//
// Packed weight layout read here (built by cells/packing.h):
//   natural panels   a K × N matrix in panels of 3W columns, k-major, zero past N:
//                    element (k, c) of panel p at p·K·3W + k·3W + (c − 3W·p).
// Matrices are row-major with an explicit leading dimension.
#pragma once

#include <cstdint>

namespace fastgru::kernels {

using Index = std::int64_t;

// The instruction sets kernels are compiled for, lowest first.
enum class Isa : int { scalar = 0, avx2 = 1, avx512 = 2 };

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

// sums (cols) += the sum over rows of a (rows, cols, lda).
template <typename Real>
using ColumnSumFn = void (*)(Index rows, Index cols, const Real* a, Index lda, Real* sums);

template <typename Real>
struct KernelTable {
  const char* isa;
  Isa level;
  Index vector_width;  // W
  int tile_rows;       // rows per microkernel tile
  MultiplyPanelsFn<Real> multiply_panels;
  ColumnSumFn<Real> column_sum;
};

// One table per ISA; each is defined in that ISA's source files, compiled with its flags alone.
const KernelTable<float>& f32_kernels__scalar();
const KernelTable<double>& f64_kernels__scalar();
const KernelTable<float>& f32_kernels__avx2();
const KernelTable<float>& f32_kernels__avx512();

}  // namespace fastgru::kernels
