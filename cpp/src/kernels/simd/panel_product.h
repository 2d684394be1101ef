// The matrix-product microkernel over packed panels, written once over a SIMD traits class S.
//
// A packed panel holds NV·W columns (W = S::kWidth) of a K × N matrix, k-major: element (k, c)
// of panel p sits at panels[p * panel_stride + k * NV * W + c], zero where c is past N.
// A row tile of MR rows keeps MR × NV accumulators in registers and reads A(i, k) at
// a[i * a_row_stride + k * a_depth_stride], so A may be used as it is or transposed. A product
// may use only the first NV of a wider panel's RowVectors vectors (the last panel of a matrix
// whose width is not a multiple of the panel's).
#pragma once

#include <algorithm>
#include <type_traits>

#include "kernels/kernels.h"

namespace fastgru::kernels {

// Row tile height: enough accumulators to hide FMA latency within the register file.
template <class S>
constexpr int max_tile_rows() {
  return S::kWidth >= 16 ? 8 : 4;
}

template <class S>
constexpr int kCacheLineElements = 64 / sizeof(typename S::Real);
constexpr int kPrefetchDistance = 16;  // panel rows ahead

template <class S, int MR, int NV, int RowVectors = NV>
inline void panel_product(Index depth, const typename S::Real* a, Index a_row_stride,
                          Index a_depth_stride, const typename S::Real* panel,
                          typename S::V (&acc)[MR][NV]) {
  using V = typename S::V;
  constexpr int W = S::kWidth, RowW = RowVectors * W;
  // Few accumulators cannot cover the FMA latency: then interleaved steps of k sum into
  // separate chains, added at the end. Whether to split follows the panel's width, not NV, so
  // that a row's sums run in the same order in a panel's tail as in a full panel at every MR
  // (streaming one step then equals the whole-sequence call bit for bit).
  constexpr int kChains = MR * RowVectors >= 6 ? 1 : (MR * NV >= 3 ? 2 : 4);
  V chain[kChains][MR][NV];
  for (int c = 1; c < kChains; ++c)
    for (int i = 0; i < MR; ++i)
      for (int v = 0; v < NV; ++v) chain[c][i][v] = S::zero();
  Index k = 0;
  if constexpr (kChains > 1) {
    for (int i = 0; i < MR; ++i)
      for (int v = 0; v < NV; ++v) chain[0][i][v] = acc[i][v];
    for (; k + kChains <= depth; k += kChains) {
      const typename S::Real* row = panel + k * RowW;
      // Few rows read each weight once: the product streams weights, so ask for them early.
      for (int c = 0; c < kChains; ++c)
        for (int v = 0; v < NV * W; v += kCacheLineElements<S>)
          __builtin_prefetch(row + (kPrefetchDistance + c) * RowW + v);
      for (int c = 0; c < kChains; ++c) {
        V b[NV];
        for (int v = 0; v < NV; ++v) b[v] = S::load(row + c * RowW + v * W);
        for (int i = 0; i < MR; ++i) {
          const V ai = S::set1(a[i * a_row_stride + (k + c) * a_depth_stride]);
          for (int v = 0; v < NV; ++v) chain[c][i][v] = S::fma(ai, b[v], chain[c][i][v]);
        }
      }
    }
    for (int i = 0; i < MR; ++i)
      for (int v = 0; v < NV; ++v) acc[i][v] = chain[0][i][v];
  }
  for (; k < depth; ++k) {
    const typename S::Real* row = panel + k * RowW;
    V b[NV];
    for (int v = 0; v < NV; ++v) b[v] = S::load(row + v * W);
    for (int i = 0; i < MR; ++i) {
      const V ai = S::set1(a[i * a_row_stride + k * a_depth_stride]);
      for (int v = 0; v < NV; ++v) acc[i][v] = S::fma(ai, b[v], acc[i][v]);
    }
  }
  for (int c = 1; c < kChains; ++c)
    for (int i = 0; i < MR; ++i)
      for (int v = 0; v < NV; ++v) acc[i][v] = S::add(acc[i][v], chain[c][i][v]);
}

template <int N>
using TileRows = std::integral_constant<int, N>;

// Calls tile(TileRows<MR>{}, row_begin) for row tiles of the largest height, then the rest.
template <class S, class Tile>
inline void for_each_row_tile(Index rows, Tile&& tile) {
  constexpr int kRows = max_tile_rows<S>();
  Index r = 0;
  for (; r + kRows <= rows; r += kRows) tile(TileRows<kRows>{}, r);
  switch (rows - r) {
    case 7: if constexpr (kRows > 7) tile(TileRows<7>{}, r); break;
    case 6: if constexpr (kRows > 6) tile(TileRows<6>{}, r); break;
    case 5: if constexpr (kRows > 5) tile(TileRows<5>{}, r); break;
    case 4: if constexpr (kRows > 4) tile(TileRows<4>{}, r); break;
    case 3: tile(TileRows<3>{}, r); break;
    case 2: tile(TileRows<2>{}, r); break;
    case 1: tile(TileRows<1>{}, r); break;
    default: break;
  }
}

// One panel of C: its first NV vectors (count[v] columns each, the rest past n).
template <class S, int NV>
inline void multiply_panel(Index rows, Index depth, const typename S::Real* a, Index a_row_stride,
                           Index a_depth_stride, const typename S::Real* panel,
                           typename S::Real* c, Index ldc, bool accumulate,
                           const typename S::Real* column_bias, const int (&count)[3]) {
  using V = typename S::V;
  constexpr int W = S::kWidth;
  V start[NV];
  for (int v = 0; v < NV; ++v)
    start[v] = column_bias ? S::load_n(column_bias + v * W, count[v]) : S::zero();
  for_each_row_tile<S>(rows, [&](auto tile_rows, Index r0) {
    constexpr int MR = decltype(tile_rows)::value;
    // A large C leaves the cache between depth blocks: the next tile's rows are requested now,
    // to be read or written after this tile's product.
    for (Index i = r0 + MR; i < std::min(rows, r0 + 2 * MR); ++i)
      for (int v = 0; v < NV; ++v) {
        __builtin_prefetch(c + i * ldc + v * W, 1);
        __builtin_prefetch(c + i * ldc + v * W + W - 1, 1);
      }
    V acc[MR][NV];
    for (int i = 0; i < MR; ++i)
      for (int v = 0; v < NV; ++v)
        acc[i][v] = accumulate ? S::load_n(c + (r0 + i) * ldc + v * W, count[v]) : start[v];
    panel_product<S, MR, NV, 3>(depth, a + r0 * a_row_stride, a_row_stride, a_depth_stride,
                                panel, acc);
    for (int i = 0; i < MR; ++i)
      for (int v = 0; v < NV; ++v) S::store_n(c + (r0 + i) * ldc + v * W, acc[i][v], count[v]);
  });
}

// C (rows, panels [panel_begin, panel_end) of a 3W-column-panel matrix with n columns)
//   = column_bias + A (rows, depth) · packed (depth, n), or C += A · packed when accumulating.
// A last panel that is partly past n computes only the vectors that hold columns.
template <class S>
void multiply_panels(Index rows, Index n, Index depth, const typename S::Real* a,
                     Index a_row_stride, Index a_depth_stride, const typename S::Real* panels,
                     Index panel_stride, Index panel_begin, Index panel_end, typename S::Real* c,
                     Index ldc, bool accumulate, const typename S::Real* column_bias) {
  constexpr int W = S::kWidth, NV = 3;
  for (Index p = panel_begin; p < panel_end; ++p) {
    const Index col0 = p * NV * W;
    int count[NV], vectors = 0;
    for (int v = 0; v < NV; ++v) {
      count[v] = static_cast<int>(std::clamp<Index>(n - col0 - v * W, 0, W));
      vectors += count[v] > 0;
    }
    const typename S::Real* panel = panels + p * panel_stride;
    const typename S::Real* bias = column_bias ? column_bias + col0 : nullptr;
    switch (vectors) {
      case 3:
        multiply_panel<S, 3>(rows, depth, a, a_row_stride, a_depth_stride, panel, c + col0, ldc,
                             accumulate, bias, count);
        break;
      case 2:
        multiply_panel<S, 2>(rows, depth, a, a_row_stride, a_depth_stride, panel, c + col0, ldc,
                             accumulate, bias, count);
        break;
      case 1:
        multiply_panel<S, 1>(rows, depth, a, a_row_stride, a_depth_stride, panel, c + col0, ldc,
                             accumulate, bias, count);
        break;
      default:
        break;
    }
  }
}

}  // namespace fastgru::kernels
