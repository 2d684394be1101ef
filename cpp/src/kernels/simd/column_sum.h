// Column sums (bias gradients), over a SIMD traits class S.
#pragma once

#include <algorithm>

#include "kernels/kernels.h"

namespace fastgru::kernels {

// Each column sums its rows in order, whatever the blocking; a block of vectors takes every
// row in one sweep so that the rows stream through memory whole.
template <class S, int NV>
inline void column_sum_block(Index rows, Index col0, Index cols, const typename S::Real* a,
                             Index lda, typename S::Real* sums) {
  constexpr int W = S::kWidth;
  typename S::V total[NV];
  int count[NV];
  for (int v = 0; v < NV; ++v) {
    count[v] = static_cast<int>(std::clamp<Index>(cols - col0 - v * W, 0, W));
    total[v] = S::load_n(sums + col0 + v * W, count[v]);
  }
  for (Index i = 0; i < rows; ++i)
    for (int v = 0; v < NV; ++v)
      total[v] = S::add(total[v], S::load_n(a + i * lda + col0 + v * W, count[v]));
  for (int v = 0; v < NV; ++v) S::store_n(sums + col0 + v * W, total[v], count[v]);
}

template <class S>
void column_sum(Index rows, Index cols, const typename S::Real* a, Index lda,
                typename S::Real* sums) {
  constexpr int W = S::kWidth, NV = 8;
  Index j = 0;
  for (; j + NV * W <= cols; j += NV * W) column_sum_block<S, NV>(rows, j, cols, a, lda, sums);
  for (; j < cols; j += W) column_sum_block<S, 1>(rows, j, cols, a, lda, sums);
}

}  // namespace fastgru::kernels
