// What every cell's fused step kernels share, over a SIMD traits class S: optional biases, the
// gate update, stores written around the caches, and the row walk of the backward kernels.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>

#include "kernels/kernels.h"

namespace fastgru::kernels {

template <class S>
inline typename S::V load_bias(const typename S::Real* bias, Index offset, int count) {
  return bias ? S::load_n(bias + offset, count) : S::zero();
}

// The gate update h' = z ⊙ h + (1 − z) ⊙ n, exact where z = 1 (h' = h) and z = 0 (h' = n):
// the shorter n + z ⊙ (h − n) rounds h − n to the precision of the larger of the two, so a
// saturated gate would lose the state it keeps (h = −0.7, n = 10⁸ gives 0 in float32).
template <class S>
inline typename S::V gate_update(typename S::V z, typename S::V h, typename S::V n) {
  return S::fma(z, h, S::mul(S::sub(S::set1(1), z), n));
}

// Rows that are read back only after the time loop (records, dL/d(W_i x)) may be written
// around the caches: whole aligned lines, where the vector is one, cost no read for ownership
// and leave the recurrent weights in L2. Those rows hold blocks of H units (rows of 3H or 4H),
// so every vector starts on a line when `rows` does and H units fill whole lines.
template <class S>
inline bool can_stream_rows(const typename S::Real* rows, Index hidden) {
  constexpr Index kLine = 64;
  return S::kStoresLines && rows && reinterpret_cast<std::uintptr_t>(rows) % kLine == 0 &&
         (hidden * Index(sizeof(typename S::Real))) % kLine == 0;
}

template <class S>
inline void store_streamed(typename S::Real* p, typename S::V v, int count, bool stream) {
  if constexpr (S::kStoresLines) {
    if (stream && count == S::kWidth) {
      S::stream(p, v);
      return;
    }
  }
  S::store_n(p, v, count);
}

// Orders a kernel's streamed stores before the caller's later ones.
template <class S>
inline void end_streaming(bool stream) {
  if constexpr (S::kStoresLines) {
    if (stream) S::stream_fence();
  }
}

// A block of H units of one row of a step's arrays read from memory (records, dy, states).
template <class S>
struct RowSource {
  const typename S::Real* data;
  Index row_stride;
};

// Calls body(row, j, count) for every vector of units [unit_begin, unit_end) of every row.
// The rows of the backward kernels' inputs come from memory, each a few lines and often a page
// apart, where hardware prefetchers stop: each row's lines of `sources` are asked for
// kRowsAhead rows early (T = 100, B = 32, H = 256 training: 7% faster at 1 thread, 11% at 2).
template <class S, std::size_t kSources, class Body>
inline void for_each_unit_vector(Index rows, Index unit_begin, Index unit_end,
                                 const RowSource<S> (&sources)[kSources], Body&& body) {
  constexpr int W = S::kWidth;
  constexpr Index kRowsAhead = 2;
  if (unit_begin >= unit_end) return;
  for (Index row = 0; row < rows; ++row) {
    if (row + kRowsAhead < rows) {
      for (const RowSource<S>& source : sources)
        prefetch_range(source.data + (row + kRowsAhead) * source.row_stride + unit_begin,
                       unit_end - unit_begin);
    }
    for (Index j = unit_begin; j < unit_end; j += W)
      body(row, j, static_cast<int>(std::min<Index>(W, unit_end - j)));
  }
}

}  // namespace fastgru::kernels
