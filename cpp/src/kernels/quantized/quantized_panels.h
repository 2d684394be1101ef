// Weights packed for the quantized products (quantized_product.h): natural panels of 3W columns,
// depth pairs side by side, in bf16 or in int8 with one scale per column (int8 in depth quads
// where the kernels multiply quads: QuantizedKernels::int8_depth_group). A panel column is one
// output unit, a row of the weight in PyTorch's layout (out, in), which is also the unit of int8
// scaling; a packer is given, for each panel column, the weight row it holds, so the same
// packers serve natural panels (column c of the matrix) and a cell's gate panels.
#pragma once

#include <cmath>
#include <cstdint>
#include <stdexcept>
#include <string>

#include "cells/packing.h"
#include "kernels/quantized/conversions.h"

namespace fastgru::kernels {

struct QuantizedPanelShape {
  Index depth = 0;         // K: the length of a weight row
  Index panel_count = 0;
  Index panel_width = 0;   // columns per panel: 3W of the kernel table
  Index depth_group = kQuantizedDepthGroup;  // depth values of a column side by side: 2 or 4
  // Elements between consecutive panels: the padded depth times the width.
  Index panel_stride() const { return padded_depth(depth, depth_group) * panel_width; }
};

struct Bf16Panels : QuantizedPanelShape {
  cells::Panels<Bf16> values;
};

struct Int8Panels : QuantizedPanelShape {
  cells::Panels<std::int8_t> values;
  // The weight rows' scales in panel order: column c of panel p at p · panel_width + c (zero
  // past the matrix), so a kernel loads a vector's scales as it loads its accumulators' bias.
  cells::Panels<float> scales;
  // Depth quads only: −128 Σ_k q(k, c) in the same order, where an unsigned input row's sums
  // start (conversions.h, kUnsignedOffset).
  cells::Panels<std::int32_t> offset_sums;
};

// column_row(p, c) returns the weight row (depth contiguous float32) held by column c of panel
// p, or nullptr where the panel is past the matrix (zeros).
template <class ColumnRow>
Bf16Panels pack_bf16_panels(Index depth, Index panel_count, Index panel_width,
                            ColumnRow column_row) {
  Bf16Panels packed;
  packed.depth = depth;
  packed.panel_count = panel_count;
  packed.panel_width = panel_width;
  const Index stride = packed.panel_stride();
  packed.values.assign(static_cast<std::size_t>(panel_count * stride), Bf16(0));
  for (Index p = 0; p < panel_count; ++p)
    for (Index c = 0; c < panel_width; ++c)
      if (const float* row = column_row(p, c))
        for (Index k = 0; k < depth; ++k)
          packed.values[p * stride + (k / 2) * 2 * panel_width + 2 * c + k % 2] =
              bf16_from_float(row[k]);
  return packed;
}

// Throws std::invalid_argument naming `weight_name` when a row is not finite (it has no int8
// scale) or the depth is past kMaxInt8Depth (the int32 sums could overflow). depth_group: 2, or
// kInt8QuadGroup for the kernels that multiply quads.
template <class ColumnRow>
Int8Panels pack_int8_panels(Index depth, Index panel_count, Index panel_width,
                            ColumnRow column_row, const char* weight_name,
                            Index depth_group = kQuantizedDepthGroup) {
  if (depth > kMaxInt8Depth)
    throw std::invalid_argument(std::string("fastgru: ") + weight_name +
                                ": int8 products take at most " + std::to_string(kMaxInt8Depth) +
                                " inputs (int32 sums), got " + std::to_string(depth));
  Int8Panels packed;
  packed.depth = depth;
  packed.panel_count = panel_count;
  packed.panel_width = panel_width;
  packed.depth_group = depth_group;
  const Index stride = packed.panel_stride(), G = depth_group;
  packed.values.assign(static_cast<std::size_t>(panel_count * stride), std::int8_t(0));
  packed.scales.assign(static_cast<std::size_t>(panel_count * panel_width), 0.0f);
  if (G == kInt8QuadGroup)
    packed.offset_sums.assign(static_cast<std::size_t>(panel_count * panel_width), 0);
  for (Index p = 0; p < panel_count; ++p) {
    for (Index c = 0; c < panel_width; ++c) {
      const float* row = column_row(p, c);
      if (!row) continue;
      const std::uint32_t largest = largest_magnitude_bits(depth, row);
      if (largest >= kInfBits) {
        Index k = 0;
        while (std::isfinite(row[k])) ++k;
        throw std::invalid_argument(std::string("fastgru: ") + weight_name +
                                    ": int8 quantization needs finite weights, got " +
                                    std::to_string(row[k]) + " at input " + std::to_string(k) +
                                    " of panel column " + std::to_string(p * panel_width + c));
      }
      const Int8RowScaling scaling = int8_row_scaling(float_from_bits(largest));
      packed.scales[p * panel_width + c] = scaling.scale;
      std::int32_t sum = 0;
      for (Index k = 0; k < depth; ++k) {
        const int q = quantize_int8(row[k], scaling.inverse);
        packed.values[p * stride + (k / G) * G * panel_width + G * c + k % G] =
            static_cast<std::int8_t>(q);
        sum += q;
      }
      // Modulo 2^32, as the kernels' sums wrap: the product's true value fits in int32.
      if (G == kInt8QuadGroup)
        packed.offset_sums[p * panel_width + c] = static_cast<std::int32_t>(
            std::uint32_t(0) - std::uint32_t(kUnsignedOffset) * static_cast<std::uint32_t>(sum));
    }
  }
  return packed;
}

// Natural panels of weightᵀ for a weight (n, depth) in PyTorch's layout: column j of the product
// is row j of the weight.
inline Index natural_panel_count(Index n, Index panel_width) {
  return (n + panel_width - 1) / panel_width;
}

inline Bf16Panels pack_bf16_natural(const float* weight, Index n, Index depth, Index panel_width) {
  return pack_bf16_panels(depth, natural_panel_count(n, panel_width), panel_width,
                          [&](Index p, Index c) -> const float* {
                            const Index j = p * panel_width + c;
                            return j < n ? weight + j * depth : nullptr;
                          });
}

inline Int8Panels pack_int8_natural(const float* weight, Index n, Index depth, Index panel_width,
                                    const char* weight_name,
                                    Index depth_group = kQuantizedDepthGroup) {
  return pack_int8_panels(depth, natural_panel_count(n, panel_width), panel_width,
                          [&](Index p, Index c) -> const float* {
                            const Index j = p * panel_width + c;
                            return j < n ? weight + j * depth : nullptr;
                          }, weight_name, depth_group);
}

}  // namespace fastgru::kernels
