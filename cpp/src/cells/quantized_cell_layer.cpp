#include "cells/quantized_cell_layer.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <stdexcept>
#include <utility>

#include "driver/quantized_matmul.h"

namespace fastgru::cells {
namespace {

// A thread's rounded or quantized product inputs and its products, reused from step to step
// (each call of recurrent_product fills and reads the inputs before it returns).
thread_local std::vector<float> t_rounded;
thread_local std::vector<std::int16_t> t_quantized;
thread_local std::vector<std::uint8_t> t_unsigned;
thread_local std::vector<float> t_scales;
thread_local std::vector<float> t_products;

}  // namespace

QuantizedCellLayer::QuantizedCellLayer(const kernels::KernelTable<float>& kernels, Index input,
                                       Index hidden, Index gates, Index recurrent_gates,
                                       Precision precision, const float* weight_ih,
                                       const float* bias_ih, const std::string& name)
    : CellLayer<float>(SizesOnly{}, kernels, input, hidden, gates, recurrent_gates, bias_ih),
      precision_(precision),
      quantized_(&kernels::quantized_kernels_for(kernels.level)) {
  const Index G = gate_width(), PW = 3 * quantized_->vector_width;
  // A panel of 3W float units holds a whole number of quantized panels per gate.
  if (kernels.vector_width % quantized_->vector_width != 0)
    throw std::logic_error(std::string("fastgru: quantized kernels (") + quantized_->isa +
                           ") do not fit the float32 kernels' vector width");
  input_.columns = G;
  if (precision == Precision::bf16) {
    input_.bf16 = kernels::pack_bf16_natural(weight_ih, G, input, PW);
  } else {
    input_.int8 = kernels::pack_int8_natural(weight_ih, G, input, PW,
                                             (name + ".weight_ih").c_str(),
                                             quantized_->int8_depth_group);
  }
  if (bias_ih) input_.column_bias.assign(bias_ih, bias_ih + G);
}

QuantizedWeights QuantizedCellLayer::pack_gates(const float* weight, const float* bias,
                                                std::initializer_list<GateBlocks> gate_blocks,
                                                const std::string& name) const {
  const Index H = hidden_, depth = H, UW = 3 * kernels_->vector_width,
              QW = 3 * quantized_->vector_width;
  const Index gates = static_cast<Index>(gate_blocks.size());
  const Index unit_panels = (H + UW - 1) / UW;
  QuantizedWeights packed;
  packed.columns = unit_panels * gates * UW;
  // Product column j's unit (H past the last: a zero column) and gate blocks.
  auto column_unit = [&](Index j) {
    const Index within = j % (gates * UW), u = (j / (gates * UW)) * UW + within % UW;
    return std::pair<Index, const GateBlocks&>(std::min(u, H), gate_blocks.begin()[within / UW]);
  };
  auto column_row = [&](Index j) -> const float* {
    const auto [u, blocks] = column_unit(j);
    return u < H ? weight + (blocks.weight * H + u) * depth : nullptr;
  };
  auto panel_column = [&](Index p, Index c) { return column_row(p * QW + c); };
  const Index panels = packed.columns / QW;
  // An int8 row needs a scale: a weight that is not finite is refused where the caller set it.
  for (const GateBlocks& blocks : gate_blocks) {
    for (Index u = 0; u < H && precision_ == Precision::int8; ++u) {
      const Index row = blocks.weight * H + u;
      for (Index k = 0; k < depth; ++k)
        if (!std::isfinite(weight[row * depth + k]))
          throw std::invalid_argument("fastgru: " + name + ": int8 quantization needs finite weights, got " +
                                      std::to_string(weight[row * depth + k]) + " at row " +
                                      std::to_string(row) + ", column " + std::to_string(k));
    }
  }
  if (precision_ == Precision::bf16) {
    packed.bf16 = kernels::pack_bf16_panels(depth, panels, QW, panel_column);
  } else {
    packed.int8 = kernels::pack_int8_panels(depth, panels, QW, panel_column, name.c_str(),
                                            quantized_->int8_depth_group);
  }
  if (bias) {
    packed.column_bias.assign(static_cast<std::size_t>(packed.columns), 0.0f);
    for (Index j = 0; j < packed.columns; ++j) {
      const auto [u, blocks] = column_unit(j);
      if (u < H) packed.column_bias[j] = bias[blocks.bias * H + u];
    }
  }
  return packed;
}

void QuantizedCellLayer::project_inputs(const InputRows<float>& x, float* projection, float*,
                                       float*, bool) const {
  const float* a = x.x_rows ? x.x : x.x + x.first_row * x.width;
  const Index* rows = x.x_rows ? x.x_rows + x.first_row : nullptr;
  const float* bias = input_.column_bias.empty() ? nullptr : input_.column_bias.data();
  if (precision_ == Precision::bf16) {
    driver::matmul_bf16(*quantized_, x.count, input_.columns, a, x.width, input_.bf16,
                        projection, input_.columns, bias, rows);
  } else {
    driver::matmul_int8(*quantized_, x.count, input_.columns, a, x.width, input_.int8,
                        projection, input_.columns, bias, nullptr, rows);
  }
}

void QuantizedCellLayer::recurrent_product(const QuantizedWeights& weights, Index gates,
                                          Index rows, const float* input, Index ld_input,
                                          Range units, float* gh) const {
  const kernels::QuantizedKernels& q = *quantized_;
  const Index H = hidden_, ld = kernels::padded_depth(H);
  // Quantized panels per unit panel: the product's gates, each 3W float units wide.
  const Index per_unit_panel = gates * kernels_->vector_width / q.vector_width;
  const Index first = units.begin * per_unit_panel, last = units.end * per_unit_panel;
  const float* bias = weights.column_bias.empty() ? nullptr : weights.column_bias.data();
  if (precision_ == Precision::bf16) {
    t_rounded.resize(static_cast<std::size_t>(rows * ld));
    q.round_rows_to_bf16(rows, H, input, ld_input, t_rounded.data(), ld);
    q.multiply_panels_bf16(rows, weights.columns, H, t_rounded.data(), ld,
                           weights.bf16.values.data(), weights.bf16.panel_stride(), first, last,
                           gh, weights.columns, bias);
    return;
  }
  t_scales.resize(static_cast<std::size_t>(rows));
  const kernels::Int8Panels& w = weights.int8;
  Index refused;
  if (w.depth_group == kernels::kInt8QuadGroup) {
    const Index ld_quads = kernels::padded_depth(H, kernels::kInt8QuadGroup);
    t_unsigned.resize(static_cast<std::size_t>(rows * ld_quads));
    refused = q.quantize_rows_unsigned(rows, H, input, ld_input, t_unsigned.data(), ld_quads,
                                       t_scales.data());
    q.multiply_panels_unsigned(rows, weights.columns, H, t_unsigned.data(), ld_quads,
                               t_scales.data(), w.values.data(), w.scales.data(),
                               w.offset_sums.data(), w.panel_stride(), first, last, gh,
                               weights.columns, bias);
  } else {
    t_quantized.resize(static_cast<std::size_t>(rows * ld));
    refused = q.quantize_rows_int8(rows, H, input, ld_input, t_quantized.data(), ld,
                                   t_scales.data());
    q.multiply_panels_int8(rows, weights.columns, H, t_quantized.data(), ld, t_scales.data(),
                           w.values.data(), w.scales.data(), w.panel_stride(), first, last, gh,
                           weights.columns, bias);
  }
  if (refused == kernels::kAllRowsFinite) return;
  // The rows from `refused` on were quantized one by one: mark each that is not finite.
  const Index width = (last - first) * 3 * q.vector_width;
  for (Index row = refused; row < rows; ++row) {
    bool finite = true;
    for (Index u = 0; u < H && finite; ++u) finite = std::isfinite(input[row * ld_input + u]);
    if (finite) continue;
    std::fill_n(gh + row * weights.columns + first * 3 * q.vector_width, width,
                std::numeric_limits<float>::quiet_NaN());
  }
}

float* QuantizedCellLayer::products_buffer(Index rows, const QuantizedWeights& weights) {
  t_products.resize(static_cast<std::size_t>(rows * weights.columns));
  return t_products.data();
}

UnitGrain QuantizedCellLayer::forward_grain(int) const {
  return UnitGrain::panels;
}

int QuantizedCellLayer::backward_phases() const {
  throw std::logic_error("fastgru: a bf16 or int8 layer runs inference only");
}

void QuantizedCellLayer::backward_phase(int, const BackwardStep<float>&, Range, Index,
                                       Index) const {
  throw std::logic_error("fastgru: a bf16 or int8 layer runs inference only");
}

void QuantizedCellLayer::recurrent_gradients(const GradientInputs<float>&,
                                            const GradientsView<float>&) const {
  throw std::logic_error("fastgru: a bf16 or int8 layer runs inference only");
}

}  // namespace fastgru::cells
