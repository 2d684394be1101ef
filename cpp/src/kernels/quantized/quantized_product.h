// The reduced-precision products (EQUATIONS.md §9), written once over a quantized traits class
// Q: a float32 SIMD traits class S (vec_*.h) extended with the loads and integer operations of
// the quantized panels (vec_*_quantized.h). multiply_panels_* run them over panels of 3W columns
// (the quantized cells' recurrent products and driver/quantized_matmul.cpp's whole matrices); the
// cells' float gate arithmetic is a pass of its own after them (cells/quantized_cell_layer.h).
//
// Quantized panels (quantized_panels.h) are natural panels grouped along the depth: a panel of
// PW = RowVectors·W columns stores depth pairs (k, k+1) next to each other per column, element
// (k, c) at (k / 2)·2PW + 2c + k % 2, so one vector load holds W columns at k and at k+1:
//   bf16  two bf16 per 32-bit lane: the lane shifted left by 16 is the value at k, the lane's
//         top half the value at k+1 (no shuffle; the layout vdpbf16ps reads, too);
//   int8  2W bytes, sign-extended to W int16 pairs that vpmaddwd multiplies by a broadcast pair
//         of the input row and adds pairwise, exactly, into W int32 sums.
// The depth is padded to even with zero weights; the input rows (made by round_rows_to_bf16 /
// quantize_rows_int8 below) are padded with zeros to match, so a product reads whole pairs.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <type_traits>

#include "kernels/kernels.h"
#include "kernels/quantized/conversions.h"
#include "kernels/simd/panel_product.h"

namespace fastgru::kernels {

// Panel bytes fetched ahead of the product (as the float kernel's 16 rows of 3·8 floats).
constexpr int kQuantizedPrefetchBytes = 1536;

template <class Element>
inline void prefetch_pair_row(const Element* row, int row_elements) {
  const char* ahead = reinterpret_cast<const char*>(row) + kQuantizedPrefetchBytes;
  for (int byte = 0; byte < row_elements * int(sizeof(Element)); byte += 64)
    __builtin_prefetch(ahead + byte);
}

// A tile of MR rows runs over the panel in passes of at most Q::kMaxPassRows rows (balanced: 4
// rows as 2 + 2): AVX2's 16 registers hold 3 rows' 3 × 3 accumulators, a panel row's 3 vectors
// and a broadcast, but not 4 rows' (the compiler then keeps accumulators on the stack, a store
// and a load per step of k). The scalar path takes AVX2's passes, so the two sum in one order.
template <class Q, int MR>
constexpr int first_pass_rows() {
  constexpr int passes = (MR + Q::kMaxPassRows - 1) / Q::kMaxPassRows;
  return (MR + passes - 1) / passes;
}

// Rows [First, First + Rows) of a bf16 tile.
template <class Q, int First, int Rows, int MR, int NV, int RowVectors>
inline void bf16_pass(Index pairs, const float* a, Index lda, const Bf16* panel,
                      typename Q::V (&acc)[MR][NV]) {
  using V = typename Q::V;
  constexpr int W = Q::kWidth, RowElements = 2 * RowVectors * W;
  // Few accumulators cannot cover the FMA latency: then the odd k sum into a second chain. As in
  // panel_product, the choice follows the panel's width, not NV, so a panel's tail sums its
  // rows in the same order as a full panel.
  constexpr bool kTwoChains = Rows * RowVectors < 6;
  V odd_chain[Rows][NV];
  for (int i = 0; i < Rows; ++i)
    for (int v = 0; v < NV; ++v) odd_chain[i][v] = Q::zero();
  for (Index p = 0; p < pairs; ++p) {
    const Bf16* row = panel + p * RowElements;
    prefetch_pair_row(row, NV * 2 * W);
    // The values at k for every row, then those at k + 1: one panel row's vectors live at a time.
    V b[NV];
    for (int v = 0; v < NV; ++v) b[v] = Q::load_bf16_even(row + v * 2 * W);
    for (int i = 0; i < Rows; ++i) {
      const V a_even = Q::set1(a[(First + i) * lda + 2 * p]);
      for (int v = 0; v < NV; ++v) acc[First + i][v] = Q::fma(a_even, b[v], acc[First + i][v]);
    }
    for (int v = 0; v < NV; ++v) b[v] = Q::load_bf16_odd(row + v * 2 * W);
    for (int i = 0; i < Rows; ++i) {
      const V a_odd = Q::set1(a[(First + i) * lda + 2 * p + 1]);
      for (int v = 0; v < NV; ++v) {
        if constexpr (kTwoChains) {
          odd_chain[i][v] = Q::fma(a_odd, b[v], odd_chain[i][v]);
        } else {
          acc[First + i][v] = Q::fma(a_odd, b[v], acc[First + i][v]);
        }
      }
    }
  }
  if constexpr (kTwoChains)
    for (int i = 0; i < Rows; ++i)
      for (int v = 0; v < NV; ++v) acc[First + i][v] = Q::add(acc[First + i][v], odd_chain[i][v]);
  if constexpr (First + Rows < MR)
    bf16_pass<Q, First + Rows, first_pass_rows<Q, MR - First - Rows>(), MR, NV, RowVectors>(
        pairs, a, lda, panel, acc);
}

// Where the ISA multiplies bf16 pairs (vdpbf16ps; 32 registers, so no passes): each panel row's
// lanes are (k, k+1) pairs as they are, and each input row holds its pairs packed
// (round_rows_to_bf16), so a pair is one broadcast load. Few accumulators cannot cover the
// product's latency (one row: 3): then consecutive pairs sum into 4 chains, added at the end.
template <class Q, int MR, int NV, int RowVectors>
inline void bf16_dot_product(Index pairs, const float* a, Index lda, const Bf16* panel,
                             typename Q::V (&acc)[MR][NV]) {
  const auto* packed = reinterpret_cast<const std::uint32_t*>(a);
  using V = typename Q::V;
  constexpr int W = Q::kWidth, RowElements = 2 * RowVectors * W;
  constexpr int kChains = MR * RowVectors < 6 ? 4 : 1;
  V chain[kChains][MR][NV];
  for (int c = 0; c < kChains; ++c)
    for (int i = 0; i < MR; ++i)
      for (int v = 0; v < NV; ++v) chain[c][i][v] = c == 0 ? acc[i][v] : Q::zero();
  auto step = [&](Index p, auto (&sums)[MR][NV]) {
    const Bf16* row = panel + p * RowElements;
    prefetch_pair_row(row, NV * 2 * W);
    typename Q::Bf16Pairs b[NV];
    for (int v = 0; v < NV; ++v) b[v] = Q::load_bf16_pairs(row + v * 2 * W);
    for (int i = 0; i < MR; ++i) {
      const typename Q::Bf16Pairs a_pair = Q::set1_bf16_pair(packed + i * lda + p);
      for (int v = 0; v < NV; ++v) sums[i][v] = Q::dot_pairs(sums[i][v], a_pair, b[v]);
    }
  };
  Index p = 0;
  for (; p + kChains <= pairs; p += kChains)
    for (int c = 0; c < kChains; ++c) step(p + c, chain[c]);
  for (; p < pairs; ++p) step(p, chain[0]);
  for (int i = 0; i < MR; ++i)
    for (int v = 0; v < NV; ++v) {
      V sum = chain[0][i][v];
      for (int c = 1; c < kChains; ++c) sum = Q::add(sum, chain[c][i][v]);
      acc[i][v] = sum;
    }
}

// acc[i][v] += Σ_k a(i, k) · panel(k, v·W + lane), bf16 values widened to float32 and summed in
// float32 (or multiplied as pairs, where Q::kBf16DotPairs). a(i, k) = a[i·lda + k]: float32 rows
// holding bf16 values (round_rows_to_bf16), so a broadcast costs no conversion. A bf16 product
// is exact in float32: only the sums round.
template <class Q, int MR, int NV, int RowVectors = NV>
inline void panel_product_bf16(Index depth, const float* a, Index lda, const Bf16* panel,
                               typename Q::V (&acc)[MR][NV]) {
  if constexpr (Q::kBf16DotPairs) {
    bf16_dot_product<Q, MR, NV, RowVectors>(padded_depth(depth) / 2, a, lda, panel, acc);
  } else {
    bf16_pass<Q, 0, first_pass_rows<Q, MR>(), MR, NV, RowVectors>(padded_depth(depth) / 2, a, lda,
                                                                panel, acc);
  }
}

// Rows [First, First + Rows) of an int8 tile.
template <class Q, int First, int Rows, int MR, int NV, int RowVectors>
inline void int8_pass(Index pairs, const std::int16_t* a, Index lda, const std::int8_t* panel,
                      typename Q::I (&acc)[MR][NV]) {
  constexpr int W = Q::kWidth, RowElements = 2 * RowVectors * W;
  typename Q::I sums[Rows][NV];  // this pass's rows, apart from the rest (all in registers)
  for (int i = 0; i < Rows; ++i)
    for (int v = 0; v < NV; ++v) sums[i][v] = acc[First + i][v];
  for (Index p = 0; p < pairs; ++p) {
    const std::int8_t* row = panel + p * RowElements;
    prefetch_pair_row(row, NV * 2 * W);
    typename Q::Pairs b[NV];
    for (int v = 0; v < NV; ++v) b[v] = Q::load_int8_pairs(row + v * 2 * W);
    for (int i = 0; i < Rows; ++i) {
      const typename Q::Pairs a_pair = Q::set1_pair(a + (First + i) * lda + 2 * p);
      for (int v = 0; v < NV; ++v) sums[i][v] = Q::madd_add(a_pair, b[v], sums[i][v]);
    }
  }
  for (int i = 0; i < Rows; ++i)
    for (int v = 0; v < NV; ++v) acc[First + i][v] = sums[i][v];
  if constexpr (First + Rows < MR)
    int8_pass<Q, First + Rows, first_pass_rows<Q, MR - First - Rows>(), MR, NV, RowVectors>(
        pairs, a, lda, panel, acc);
}

// acc[i][v] += Σ_k a(i, k) · panel(k, v·W + lane) in int32, exactly (depth ≤ kMaxInt8Depth).
// a(i, k) = a[i·lda + k]: int8 values held in int16 (quantize_rows_int8), so that a pair (k, k+1)
// is one 32-bit broadcast.
template <class Q, int MR, int NV, int RowVectors = NV>
inline void panel_product_int8(Index depth, const std::int16_t* a, Index lda,
                               const std::int8_t* panel, typename Q::I (&acc)[MR][NV]) {
  int8_pass<Q, 0, first_pass_rows<Q, MR>(), MR, NV, RowVectors>(padded_depth(depth) / 2, a, lda,
                                                              panel, acc);
}

// The same over depth quads (Q multiplies int8 quads, vpdpbusd): a(i, k) = a[i·lda + k] unsigned
// bytes q + 128, so a quad (k..k+3) is one 32-bit broadcast; the panel's quads are (k / 4)·4PW +
// 4c + k % 4. The sums include 128 Σ q_w, which the caller's starting values take back out, and
// wrap modulo 2^32 as the true sums do not (depth ≤ kMaxInt8Depth).
template <class Q, int MR, int NV, int RowVectors = NV>
inline void panel_product_unsigned(Index depth, const std::uint8_t* a, Index lda,
                                   const std::int8_t* panel, typename Q::I (&acc)[MR][NV]) {
  constexpr int W = Q::kWidth, RowElements = 4 * RowVectors * W;
  const Index quads = padded_depth(depth, kInt8QuadGroup) / kInt8QuadGroup;
  for (Index p = 0; p < quads; ++p) {
    const std::int8_t* row = panel + p * RowElements;
    prefetch_pair_row(row, NV * 4 * W);
    typename Q::I b[NV];
    for (int v = 0; v < NV; ++v) b[v] = Q::load_int8_quads(row + v * 4 * W);
    for (int i = 0; i < MR; ++i) {
      const typename Q::I a_quad = Q::set1_quad(a + i * lda + 4 * p);
      for (int v = 0; v < NV; ++v) acc[i][v] = Q::dot_quads(acc[i][v], a_quad, b[v]);
    }
  }
}

// An int8 product's sums dequantised and added to `addend` (a bias, the input projection):
// acc · (s_x · s_w) + addend, rounded once (a fused multiply-add on every path, so that no
// compiler's contraction of a separate multiply and add changes the bits). s_x is the input
// row's scale, column_scales the weight rows' scales of the accumulator's columns.
template <class Q>
inline typename Q::V dequantize(typename Q::I acc, float row_scale, typename Q::V column_scales,
                                typename Q::V addend) {
  return Q::fused_multiply_add(Q::to_float(acc), Q::mul(Q::set1(row_scale), column_scales), addend);
}

// out (rows, ld_out) = in (rows, depth, ld_in) rounded to bf16 as the products read it: float32
// values, zero from depth to padded_depth(depth); or, where Q multiplies pairs, the pairs packed
// in the row's first padded_depth(depth) / 2 slots (QuantizedKernels::bf16_rows_as_pairs).
template <class Q>
void round_rows_to_bf16(Index rows, Index depth, const float* in, Index ld_in, float* out,
                        Index ld_out) {
  for (Index r = 0; r < rows; ++r) {
    float* target = out + r * ld_out;
    if constexpr (Q::kBf16DotPairs) {
      Q::round_row_to_bf16_pairs(depth, in + r * ld_in, reinterpret_cast<std::uint32_t*>(target));
    } else {
      Q::round_row_to_bf16(depth, in + r * ld_in, target);
      std::fill(target + depth, target + padded_depth(depth), 0.0f);
    }
  }
}

// out (rows, ld_out) = in (rows, depth, ld_in) quantized to int8 row by row, with the rows'
// scales; zero from depth to padded_depth(depth). A row that is not finite gets scale 0 and
// zeros; the first such row is returned (kAllRowsFinite if none), for the caller to refuse.
template <class Q>
Index quantize_rows_int8(Index rows, Index depth, const float* in, Index ld_in, std::int16_t* out,
                         Index ld_out, float* scales) {
  Index refused = kAllRowsFinite;
  for (Index r = 0; r < rows; ++r) {
    const float* row = in + r * ld_in;
    std::int16_t* target = out + r * ld_out;
    const std::uint32_t largest = Q::largest_magnitude_bits(depth, row);
    if (largest >= kInfBits) {
      if (refused == kAllRowsFinite) refused = r;
      scales[r] = 0.0f;
      std::fill(target, target + padded_depth(depth), std::int16_t(0));
      continue;
    }
    const Int8RowScaling scaling = int8_row_scaling(float_from_bits(largest));
    scales[r] = scaling.scale;
    if (std::isfinite(scaling.inverse)) {
      Q::quantize_row_int8(depth, row, scaling.inverse, target);
    } else {
      for (Index k = 0; k < depth; ++k)
        target[k] = static_cast<std::int16_t>(quantize_int8(row[k], scaling.inverse));
    }
    std::fill(target + depth, target + padded_depth(depth), std::int16_t(0));
  }
  return refused;
}

// out (rows, ld_out) = in quantized as quantize_rows_int8 does, stored as unsigned bytes q + 128,
// zero from depth to padded_depth(depth, kInt8QuadGroup). A row that is not finite gets scale 0.
template <class Q>
Index quantize_rows_unsigned(Index rows, Index depth, const float* in, Index ld_in,
                             std::uint8_t* out, Index ld_out, float* scales) {
  Index refused = kAllRowsFinite;
  const Index padded = padded_depth(depth, kInt8QuadGroup);
  for (Index r = 0; r < rows; ++r) {
    const float* row = in + r * ld_in;
    std::uint8_t* target = out + r * ld_out;
    const std::uint32_t largest = Q::largest_magnitude_bits(depth, row);
    std::fill(target + depth, target + padded, std::uint8_t(0));
    if (largest >= kInfBits) {
      if (refused == kAllRowsFinite) refused = r;
      scales[r] = 0.0f;
      std::fill(target, target + depth, std::uint8_t(kUnsignedOffset));
      continue;
    }
    const Int8RowScaling scaling = int8_row_scaling(float_from_bits(largest));
    scales[r] = scaling.scale;
    if (std::isfinite(scaling.inverse)) {
      Q::quantize_row_unsigned(depth, row, scaling.inverse, target);
    } else {
      for (Index k = 0; k < depth; ++k)
        target[k] = static_cast<std::uint8_t>(quantize_int8(row[k], scaling.inverse) + kUnsignedOffset);
    }
  }
  return refused;
}

// Which vectors of panel p hold columns of an n-column matrix, and how many each.
template <int W>
inline int panel_vector_counts(Index n, Index p, int (&count)[3]) {
  const Index col0 = p * 3 * W;
  int vectors = 0;
  for (int v = 0; v < 3; ++v) {
    count[v] = static_cast<int>(std::clamp<Index>(n - col0 - v * W, 0, W));
    vectors += count[v] > 0;
  }
  return vectors;
}

template <class Q, int NV>
void multiply_bf16_panel(Index rows, Index depth, const float* a, Index lda, const Bf16* panel,
                         float* c, Index ldc, const float* column_bias, const int (&count)[3]) {
  using V = typename Q::V;
  constexpr int W = Q::kWidth;
  V start[NV];
  for (int v = 0; v < NV; ++v)
    start[v] = column_bias ? Q::load_n(column_bias + v * W, count[v]) : Q::zero();
  for_each_row_tile<Q>(rows, [&](auto tile_rows, Index r0) {
    constexpr int MR = decltype(tile_rows)::value;
    V acc[MR][NV];
    for (int i = 0; i < MR; ++i)
      for (int v = 0; v < NV; ++v) acc[i][v] = start[v];
    panel_product_bf16<Q, MR, NV, 3>(depth, a + r0 * lda, lda, panel, acc);
    for (int i = 0; i < MR; ++i)
      for (int v = 0; v < NV; ++v) Q::store_n(c + (r0 + i) * ldc + v * W, acc[i][v], count[v]);
  });
}

// One int8 panel for either input format: Element int16 (pairs, sums from zero) or unsigned
// bytes (quads, sums from offset_sums, which take the inputs' offset back out).
template <class Q, int NV, typename Element>
void multiply_int8_panel(Index rows, Index depth, const Element* a, Index lda,
                         const float* row_scales, const std::int8_t* panel,
                         const float* column_scales, const std::int32_t* offset_sums, float* c,
                         Index ldc, const float* column_bias, const int (&count)[3]) {
  using V = typename Q::V;
  constexpr int W = Q::kWidth;
  V bias[NV], scales[NV];
  typename Q::I start[NV];
  for (int v = 0; v < NV; ++v) {
    bias[v] = column_bias ? Q::load_n(column_bias + v * W, count[v]) : Q::zero();
    scales[v] = Q::load(column_scales + v * W);
    if constexpr (std::is_same_v<Element, std::uint8_t>) {
      start[v] = Q::load_i32(offset_sums + v * W);
    } else {
      start[v] = Q::zero_i32();
    }
  }
  for_each_row_tile<Q>(rows, [&](auto tile_rows, Index r0) {
    constexpr int MR = decltype(tile_rows)::value;
    typename Q::I acc[MR][NV];
    for (int i = 0; i < MR; ++i)
      for (int v = 0; v < NV; ++v) acc[i][v] = start[v];
    if constexpr (std::is_same_v<Element, std::uint8_t>) {
      panel_product_unsigned<Q, MR, NV, 3>(depth, a + r0 * lda, lda, panel, acc);
    } else {
      panel_product_int8<Q, MR, NV, 3>(depth, a + r0 * lda, lda, panel, acc);
    }
    for (int i = 0; i < MR; ++i)
      for (int v = 0; v < NV; ++v)
        Q::store_n(c + (r0 + i) * ldc + v * W,
                   dequantize<Q>(acc[i][v], row_scales[r0 + i], scales[v], bias[v]),
                   count[v]);
  });
}

// f(std::integral_constant<int, NV>, col0, count) for each panel of [panel_begin, panel_end) of an
// n-column matrix: NV of its vectors hold columns, count of them each, from column col0.
template <int W, class F>
inline void for_each_panel(Index n, Index panel_begin, Index panel_end, F f) {
  for (Index p = panel_begin; p < panel_end; ++p) {
    int count[3];
    const int vectors = panel_vector_counts<W>(n, p, count);
    const Index col0 = p * 3 * W;
    if (vectors == 3) f(std::integral_constant<int, 3>{}, col0, count);
    if (vectors == 2) f(std::integral_constant<int, 2>{}, col0, count);
    if (vectors == 1) f(std::integral_constant<int, 1>{}, col0, count);
  }
}

// c (rows, the columns of panels [panel_begin, panel_end) of an n-column matrix)
//   = column_bias + a · panels, a (rows, lda) from round_rows_to_bf16. column_bias may be nullptr.
template <class Q>
void multiply_panels_bf16(Index rows, Index n, Index depth, const float* a, Index lda,
                          const Bf16* panels, Index panel_stride, Index panel_begin,
                          Index panel_end, float* c, Index ldc, const float* column_bias) {
  for_each_panel<Q::kWidth>(n, panel_begin, panel_end,
                            [&](auto vectors, Index col0, const int(&count)[3]) {
    multiply_bf16_panel<Q, decltype(vectors)::value>(
        rows, depth, a, lda, panels + col0 / (3 * Q::kWidth) * panel_stride, c + col0, ldc,
        column_bias ? column_bias + col0 : nullptr, count);
  });
}

// The same for int8: a (rows, lda) and row_scales (rows) from quantize_rows_int8; column_scales
// in panel order (Int8Panels::scales), column c of panel p at p·3W + c.
template <class Q>
void multiply_panels_int8(Index rows, Index n, Index depth, const std::int16_t* a, Index lda,
                          const float* row_scales, const std::int8_t* panels,
                          const float* column_scales, Index panel_stride, Index panel_begin,
                          Index panel_end, float* c, Index ldc, const float* column_bias) {
  for_each_panel<Q::kWidth>(n, panel_begin, panel_end,
                            [&](auto vectors, Index col0, const int(&count)[3]) {
    multiply_int8_panel<Q, decltype(vectors)::value>(
        rows, depth, a, lda, row_scales, panels + col0 / (3 * Q::kWidth) * panel_stride,
        column_scales + col0, static_cast<const std::int32_t*>(nullptr), c + col0, ldc,
        column_bias ? column_bias + col0 : nullptr, count);
  });
}

// The same over quad panels: a (rows, lda) and row_scales from quantize_rows_unsigned;
// column_scales and offset_sums in panel order (Int8Panels).
template <class Q>
void multiply_panels_unsigned(Index rows, Index n, Index depth, const std::uint8_t* a, Index lda,
                              const float* row_scales, const std::int8_t* panels,
                              const float* column_scales, const std::int32_t* offset_sums,
                              Index panel_stride, Index panel_begin, Index panel_end, float* c,
                              Index ldc, const float* column_bias) {
  for_each_panel<Q::kWidth>(n, panel_begin, panel_end,
                            [&](auto vectors, Index col0, const int(&count)[3]) {
    multiply_int8_panel<Q, decltype(vectors)::value>(
        rows, depth, a, lda, row_scales, panels + col0 / (3 * Q::kWidth) * panel_stride,
        column_scales + col0, offset_sums + col0, c + col0, ldc,
        column_bias ? column_bias + col0 : nullptr, count);
  });
}

}  // namespace fastgru::kernels
