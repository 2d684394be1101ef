// Fused GRU step kernels (EQUATIONS.md §1, §2) and their derivatives, written once over a SIMD
// traits class S. Each forward kernel runs the recurrent product for a range of hidden-unit
// blocks and applies the gate update to the accumulators before they leave the registers.
// Packed layouts are described in kernels.h; a step record row holds r, z, n and the fourth term.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>

#include "kernels/kernels.h"
#include "kernels/simd/panel_product.h"

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

template <class S>
void step_reset_after(Index rows, Index hidden, Index block_begin, Index block_end,
                      const typename S::Real* panels, const typename S::Real* h_prev,
                      const typename S::Real* h_product, const typename S::Real* gi, Index ld_gi,
                      const typename S::Real* bias_hh, typename S::Real* h_next, Index ld_h_next,
                      typename S::Real* record, bool stream_record) {
  using V = typename S::V;
  constexpr int W = S::kWidth;
  const Index H = hidden;
  const bool stream = stream_record && can_stream_rows<S>(record, H);
  for (Index block = block_begin; block < block_end; ++block) {
    const Index u = block * W;
    const int count = static_cast<int>(std::min<Index>(W, H - u));
    const V b_r = load_bias<S>(bias_hh, u, count);
    const V b_z = load_bias<S>(bias_hh, H + u, count);
    const V b_n = load_bias<S>(bias_hh, 2 * H + u, count);
    const typename S::Real* panel = panels + block * H * 3 * W;
    for_each_row_tile<S>(rows, [&](auto tile_rows, Index r0) {
      constexpr int MR = decltype(tile_rows)::value;
      V acc[MR][3];
      for (int i = 0; i < MR; ++i) acc[i][0] = acc[i][1] = acc[i][2] = S::zero();
      panel_product<S, MR, 3>(H, h_product + r0 * H, H, 1, panel, acc);
      for (int i = 0; i < MR; ++i) {
        const Index row = r0 + i;
        const typename S::Real* g = gi + row * ld_gi;
        const V r = S::sigmoid(S::add(S::add(S::load_n(g + u, count), acc[i][0]), b_r));
        const V z = S::sigmoid(S::add(S::add(S::load_n(g + H + u, count), acc[i][1]), b_z));
        const V hn = S::add(acc[i][2], b_n);
        const V n = S::tanh(S::fma(r, hn, S::load_n(g + 2 * H + u, count)));
        const V h = S::load_n(h_prev + row * H + u, count);
        S::store_n(h_next + row * ld_h_next + u, gate_update<S>(z, h, n), count);
        if (record) {
          typename S::Real* rec = record + row * 4 * H + u;
          store_streamed<S>(rec, r, count, stream);
          store_streamed<S>(rec + H, z, count, stream);
          store_streamed<S>(rec + 2 * H, n, count, stream);
          store_streamed<S>(rec + 3 * H, hn, count, stream);
        }
      }
    });
  }
  end_streaming<S>(stream);
}

template <class S>
void step_reset_before_rz(Index rows, Index hidden, Index block_begin, Index block_end,
                          const typename S::Real* panels, const typename S::Real* h_product,
                          const typename S::Real* gi, Index ld_gi,
                          const typename S::Real* bias_hh, typename S::Real* record) {
  using V = typename S::V;
  constexpr int W = S::kWidth;
  const Index H = hidden;
  for (Index block = block_begin; block < block_end; ++block) {
    const Index u = block * W;
    const int count = static_cast<int>(std::min<Index>(W, H - u));
    const V b_r = load_bias<S>(bias_hh, u, count);
    const V b_z = load_bias<S>(bias_hh, H + u, count);
    const typename S::Real* panel = panels + block * H * 2 * W;
    for_each_row_tile<S>(rows, [&](auto tile_rows, Index r0) {
      constexpr int MR = decltype(tile_rows)::value;
      V acc[MR][2];
      for (int i = 0; i < MR; ++i) acc[i][0] = acc[i][1] = S::zero();
      panel_product<S, MR, 2>(H, h_product + r0 * H, H, 1, panel, acc);
      for (int i = 0; i < MR; ++i) {
        const Index row = r0 + i;
        const typename S::Real* g = gi + row * ld_gi;
        const V r = S::sigmoid(S::add(S::add(S::load_n(g + u, count), acc[i][0]), b_r));
        const V z = S::sigmoid(S::add(S::add(S::load_n(g + H + u, count), acc[i][1]), b_z));
        typename S::Real* rec = record + row * 4 * H + u;
        S::store_n(rec, r, count);
        S::store_n(rec + H, z, count);
        S::store_n(rec + 3 * H, S::mul(r, S::load_n(h_product + row * H + u, count)), count);
      }
    });
  }
}

template <class S>
void step_reset_before_n(Index rows, Index hidden, Index panel_begin, Index panel_end,
                         const typename S::Real* panels, const typename S::Real* h_prev,
                         const typename S::Real* gi, Index ld_gi,
                         const typename S::Real* bias_hh, typename S::Real* h_next,
                         Index ld_h_next, typename S::Real* record) {
  using V = typename S::V;
  constexpr int W = S::kWidth;
  const Index H = hidden;
  for (Index p = panel_begin; p < panel_end; ++p) {
    Index u[3];
    int count[3];
    V b_n[3];
    for (int v = 0; v < 3; ++v) {
      u[v] = (3 * p + v) * W;
      count[v] = static_cast<int>(std::clamp<Index>(H - u[v], 0, W));
      b_n[v] = count[v] ? load_bias<S>(bias_hh, 2 * H + u[v], count[v]) : S::zero();
    }
    const typename S::Real* panel = panels + p * H * 3 * W;
    for_each_row_tile<S>(rows, [&](auto tile_rows, Index r0) {
      constexpr int MR = decltype(tile_rows)::value;
      V acc[MR][3];
      for (int i = 0; i < MR; ++i) acc[i][0] = acc[i][1] = acc[i][2] = S::zero();
      // The candidate's recurrent input is r ⊙ h, kept in the record's fourth block.
      panel_product<S, MR, 3>(H, record + r0 * 4 * H + 3 * H, 4 * H, 1, panel, acc);
      for (int i = 0; i < MR; ++i) {
        const Index row = r0 + i;
        typename S::Real* rec = record + row * 4 * H;
        for (int v = 0; v < 3; ++v) {
          if (!count[v]) continue;
          const V a_n = S::add(S::load_n(gi + row * ld_gi + 2 * H + u[v], count[v]), b_n[v]);
          const V n = S::tanh(S::add(a_n, acc[i][v]));
          const V z = S::load_n(rec + H + u[v], count[v]);
          const V h = S::load_n(h_prev + row * H + u[v], count[v]);
          S::store_n(rec + 2 * H + u[v], n, count[v]);
          S::store_n(h_next + row * ld_h_next + u[v], gate_update<S>(z, h, n), count[v]);
        }
      }
    });
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

template <class S>
void backward_reset_after(Index rows, Index hidden, Index unit_begin, Index unit_end,
                          const typename S::Real* record, const typename S::Real* h_prev,
                          const typename S::Real* dy, const typename S::Real* dh_carry,
                          typename S::Real* dgi, typename S::Real* dgh,
                          typename S::Real* dh_prev, bool stream_dgi) {
  using V = typename S::V;
  const Index H = hidden;
  const V one = S::set1(1);
  const bool stream = stream_dgi && unit_begin % S::kWidth == 0 && can_stream_rows<S>(dgi, H);
  const RowSource<S> sources[] = {{record, 4 * H},     {record + H, 4 * H}, {record + 2 * H, 4 * H},
                                  {record + 3 * H, 4 * H}, {dy, H},             {h_prev, H}};
  for_each_unit_vector<S>(rows, unit_begin, unit_end, sources, [&](Index b, Index j, int count) {
    const typename S::Real* rec = record + b * 4 * H + j;
    const V r = S::load_n(rec, count), z = S::load_n(rec + H, count);
    const V n = S::load_n(rec + 2 * H, count), hn = S::load_n(rec + 3 * H, count);
    const V dh = S::add(S::load_n(dy + b * H + j, count), S::load_n(dh_carry + b * H + j, count));
    const V h = S::load_n(h_prev + b * H + j, count);
    const V dn_pre = S::mul(S::mul(dh, S::sub(one, z)), S::sub(one, S::mul(n, n)));
    const V dz_pre = S::mul(S::mul(dh, S::sub(h, n)), S::mul(z, S::sub(one, z)));
    const V dr_pre = S::mul(S::mul(dn_pre, hn), S::mul(r, S::sub(one, r)));
    typename S::Real* gi_row = dgi + b * 3 * H + j;
    typename S::Real* gh_row = dgh + b * 3 * H + j;
    store_streamed<S>(gi_row, dr_pre, count, stream);
    S::store_n(gh_row, dr_pre, count);
    store_streamed<S>(gi_row + H, dz_pre, count, stream);
    S::store_n(gh_row + H, dz_pre, count);
    store_streamed<S>(gi_row + 2 * H, dn_pre, count, stream);
    S::store_n(gh_row + 2 * H, S::mul(dn_pre, r), count);
    S::store_n(dh_prev + b * H + j, S::mul(dh, z), count);
  });
  end_streaming<S>(stream);
}

template <class S>
void backward_reset_before_zn(Index rows, Index hidden, Index unit_begin, Index unit_end,
                              const typename S::Real* record, const typename S::Real* h_prev,
                              const typename S::Real* dy, const typename S::Real* dh_carry,
                              typename S::Real* dgi, typename S::Real* dh_prev) {
  using V = typename S::V;
  const Index H = hidden;
  const V one = S::set1(1);
  const RowSource<S> sources[] = {{record + H, 4 * H}, {record + 2 * H, 4 * H}, {dy, H}, {h_prev, H}};
  for_each_unit_vector<S>(rows, unit_begin, unit_end, sources, [&](Index b, Index j, int count) {
    const typename S::Real* rec = record + b * 4 * H + j;
    const V z = S::load_n(rec + H, count), n = S::load_n(rec + 2 * H, count);
    const V dh = S::add(S::load_n(dy + b * H + j, count), S::load_n(dh_carry + b * H + j, count));
    const V h = S::load_n(h_prev + b * H + j, count);
    typename S::Real* gi_row = dgi + b * 3 * H + j;
    S::store_n(gi_row + H, S::mul(S::mul(dh, S::sub(h, n)), S::mul(z, S::sub(one, z))), count);
    S::store_n(gi_row + 2 * H, S::mul(S::mul(dh, S::sub(one, z)), S::sub(one, S::mul(n, n))),
               count);
    S::store_n(dh_prev + b * H + j, S::mul(dh, z), count);
  });
}

template <class S>
void backward_reset_before_r(Index rows, Index hidden, Index unit_begin, Index unit_end,
                             const typename S::Real* record, const typename S::Real* h_prev,
                             const typename S::Real* d_rh, typename S::Real* dgi,
                             typename S::Real* dh_prev) {
  using V = typename S::V;
  const Index H = hidden;
  const V one = S::set1(1);
  const RowSource<S> sources[] = {{record, 4 * H}, {h_prev, H}};
  for_each_unit_vector<S>(rows, unit_begin, unit_end, sources, [&](Index b, Index j, int count) {
    const V r = S::load_n(record + b * 4 * H + j, count);
    const V d = S::load_n(d_rh + b * H + j, count);
    const V h = S::load_n(h_prev + b * H + j, count);
    S::store_n(dgi + b * 3 * H + j, S::mul(S::mul(d, h), S::mul(r, S::sub(one, r))), count);
    typename S::Real* out = dh_prev + b * H + j;
    S::store_n(out, S::fma(d, r, S::load_n(out, count)), count);
  });
}

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
