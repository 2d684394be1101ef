#include "driver/quantized_matmul.h"

#include <algorithm>
#include <atomic>
#include <cmath>
#include <limits>
#include <stdexcept>
#include <string>

#include "driver/scratch.h"
#include "driver/work_split.h"
#include "kernels/quantized/quantized_product.h"

namespace fastgru::driver {
namespace {

// Most row tiles that share one panel while it is in cache (as driver/matmul.cpp).
constexpr Index kChunkTiles = 64;

void check_shapes(const kernels::QuantizedKernels& k, const kernels::QuantizedPanelShape& weight,
                  Index m, Index n, Index lda, Index ldc) {
  const std::string where = std::string("fastgru: quantized product (") + k.isa + "): ";
  if (weight.panel_width != 3 * k.vector_width)
    throw std::invalid_argument(where + "expected panels " + std::to_string(3 * k.vector_width) +
                                " columns wide, got " + std::to_string(weight.panel_width));
  if (m < 0 || n < 0 || n > weight.panel_count * weight.panel_width)
    throw std::invalid_argument(where + "expected 0 <= rows and 0 <= columns <= " +
                                std::to_string(weight.panel_count * weight.panel_width) +
                                ", got rows " + std::to_string(m) + ", columns " +
                                std::to_string(n));
  if (lda < weight.depth || ldc < n)
    throw std::invalid_argument(where + "expected lda >= " + std::to_string(weight.depth) +
                                " and ldc >= " + std::to_string(n) + ", got " +
                                std::to_string(lda) + " and " + std::to_string(ldc));
}

// convert(rows, first row of a, its row stride, i) for this thread's rows [i, i + rows) of a:
// one call over the contiguous rows, or one per gathered row.
template <class Convert>
void convert_my_rows(const threads::Worker& worker, Index m, const float* a, Index lda,
                     const Index* a_rows, Convert convert) {
  const Range mine = split_evenly(m, worker.count(), worker.index());
  if (!a_rows) {
    convert(mine.end - mine.begin, a + mine.begin * lda, lda, mine.begin);
    return;
  }
  for (Index i = mine.begin; i < mine.end; ++i) convert(Index(1), a + a_rows[i] * lda, lda, i);
}

// multiply(r0, rows, panel) for this thread's share of the (row chunk, panel) pairs.
template <class Multiply>
void share_panels(const threads::Worker& worker, const kernels::QuantizedKernels& k, Index m,
                  Index n, Multiply multiply) {
  const Index panel_count = (n + 3 * k.vector_width - 1) / (3 * k.vector_width);
  const Index most_rows = kChunkTiles * k.tile_rows;
  const Index row_chunks = (m + most_rows - 1) / most_rows;
  const Index tiles_per_chunk = ((m + row_chunks - 1) / row_chunks + k.tile_rows - 1) / k.tile_rows;
  const Index chunk_rows = tiles_per_chunk * k.tile_rows;
  const Range mine = split_evenly(row_chunks * panel_count, worker.count(), worker.index());
  for (Index item = mine.begin; item < mine.end; ++item) {
    const Index r0 = (item / panel_count) * chunk_rows;
    multiply(r0, std::min(chunk_rows, m - r0), item % panel_count);
  }
}

}  // namespace

void matmul_bf16(const kernels::QuantizedKernels& k, Index m, Index n, const float* a, Index lda,
                 const kernels::Bf16Panels& weight, float* c, Index ldc, const float* column_bias,
                 const Index* a_rows) {
  check_shapes(k, weight, m, n, lda, ldc);
  if (m == 0 || n == 0) return;
  const Index depth = weight.depth, ld = kernels::padded_depth(depth);
  Scratch<float> rounded(m * ld);  // allocated here: region bodies must not throw
  threads::parallel(threads_for(2.0 * m * n * depth), [&](const threads::Worker& worker) {
    convert_my_rows(worker, m, a, lda, a_rows,
                    [&](Index rows, const float* first, Index stride, Index i) {
                      k.round_rows_to_bf16(rows, depth, first, stride, rounded.data() + i * ld, ld);
                    });
    worker.barrier();  // every panel reads every row
    share_panels(worker, k, m, n, [&](Index r0, Index rows, Index p) {
      k.multiply_panels_bf16(rows, n, depth, rounded.data() + r0 * ld, ld, weight.values.data(),
                             weight.panel_stride(), p, p + 1, c + r0 * ldc, ldc, column_bias);
    });
  });
}

namespace {

// The int8 product's input rows and kernels for panels of either depth grouping: Element is
// int16 (pairs) or unsigned bytes (quads).
template <typename Element>
struct Int8Path;

template <>
struct Int8Path<std::int16_t> {
  static Index quantize(const kernels::QuantizedKernels& k, Index rows, Index depth,
                        const float* in, Index ld_in, std::int16_t* out, Index ld_out,
                        float* scales) {
    return k.quantize_rows_int8(rows, depth, in, ld_in, out, ld_out, scales);
  }
  static void multiply(const kernels::QuantizedKernels& k, Index rows, Index n, Index depth,
                       const std::int16_t* a, Index lda, const float* row_scales,
                       const kernels::Int8Panels& w, Index p, float* c, Index ldc,
                       const float* bias) {
    k.multiply_panels_int8(rows, n, depth, a, lda, row_scales, w.values.data(), w.scales.data(),
                           w.panel_stride(), p, p + 1, c, ldc, bias);
  }
};

template <>
struct Int8Path<std::uint8_t> {
  static Index quantize(const kernels::QuantizedKernels& k, Index rows, Index depth,
                        const float* in, Index ld_in, std::uint8_t* out, Index ld_out,
                        float* scales) {
    return k.quantize_rows_unsigned(rows, depth, in, ld_in, out, ld_out, scales);
  }
  static void multiply(const kernels::QuantizedKernels& k, Index rows, Index n, Index depth,
                       const std::uint8_t* a, Index lda, const float* row_scales,
                       const kernels::Int8Panels& w, Index p, float* c, Index ldc,
                       const float* bias) {
    k.multiply_panels_unsigned(rows, n, depth, a, lda, row_scales, w.values.data(),
                               w.scales.data(), w.offset_sums.data(), w.panel_stride(), p, p + 1,
                               c, ldc, bias);
  }
};

template <typename Element>
void matmul_int8_rows(const kernels::QuantizedKernels& k, Index m, Index n, const float* a,
                      Index lda, const kernels::Int8Panels& weight, float* c, Index ldc,
                      const float* column_bias, const char* input_name, const Index* a_rows) {
  const Index depth = weight.depth, ld = kernels::padded_depth(depth, weight.depth_group);
  Scratch<Element> quantized(m * ld);
  Scratch<float> scales(m);
  std::atomic<Index> first_refused{m};
  threads::parallel(threads_for(2.0 * m * n * depth), [&](const threads::Worker& worker) {
    convert_my_rows(worker, m, a, lda, a_rows,
                    [&](Index rows, const float* first, Index stride, Index i) {
                      Element* target = quantized.data() + i * ld;
                      const Index refused = Int8Path<Element>::quantize(
                          k, rows, depth, first, stride, target, ld, scales.data() + i);
                      if (refused == kernels::kAllRowsFinite) return;
                      Index seen = first_refused.load();
                      while (i + refused < seen &&
                             !first_refused.compare_exchange_weak(seen, i + refused)) {
                      }
                    });
    worker.barrier();  // every panel reads every row; every thread sees a refusal
    if (input_name && first_refused.load() < m) return;
    share_panels(worker, k, m, n, [&](Index r0, Index rows, Index p) {
      Int8Path<Element>::multiply(k, rows, n, depth, quantized.data() + r0 * ld, ld,
                                  scales.data() + r0, weight, p, c + r0 * ldc, ldc, column_bias);
    });
  });
  if (!input_name) {
    // Rows that are not finite give NaN, as a float32 product of them would.
    for (Index i = first_refused.load(); i < m; ++i) {
      const float* values = a + (a_rows ? a_rows[i] : i) * lda;
      if (!std::all_of(values, values + depth, [](float v) { return std::isfinite(v); }))
        std::fill_n(c + i * ldc, n, std::numeric_limits<float>::quiet_NaN());
    }
    return;
  }
  if (Index row = first_refused.load(); row < m) {
    if (a_rows) row = a_rows[row];
    const float* values = a + row * lda;
    Index j = 0;
    while (std::isfinite(values[j])) ++j;
    throw std::invalid_argument(std::string("fastgru: ") + input_name +
                                ": int8 quantization needs finite values, got " +
                                std::to_string(values[j]) + " in row " + std::to_string(row) +
                                " at " + std::to_string(j));
  }
}

}  // namespace

void matmul_int8(const kernels::QuantizedKernels& k, Index m, Index n, const float* a, Index lda,
                 const kernels::Int8Panels& weight, float* c, Index ldc, const float* column_bias,
                 const char* input_name, const Index* a_rows) {
  check_shapes(k, weight, m, n, lda, ldc);
  if (weight.depth_group != k.int8_depth_group)
    throw std::invalid_argument(std::string("fastgru: quantized product (") + k.isa +
                                "): expected int8 panels in depth groups of " +
                                std::to_string(k.int8_depth_group) + ", got " +
                                std::to_string(weight.depth_group));
  if (m == 0 || n == 0) return;
  if (weight.depth_group == kernels::kInt8QuadGroup) {
    matmul_int8_rows<std::uint8_t>(k, m, n, a, lda, weight, c, ldc, column_bias, input_name,
                                   a_rows);
  } else {
    matmul_int8_rows<std::int16_t>(k, m, n, a, lda, weight, c, ldc, column_bias, input_name,
                                   a_rows);
  }
}

}  // namespace fastgru::driver
