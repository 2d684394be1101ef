#include "cells/gru/quantized_gru_cell.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <stdexcept>
#include <utility>

#include "cells/isa_tables.h"
#include "driver/quantized_matmul.h"

namespace fastgru::cells {
namespace {

const GruQuantizedGates& quantized_gates_for(kernels::Isa level, GateTerms form) {
  const GruQuantizedGateForms& forms =
      table_for_isa(level, &gru_quantized_gates__scalar,
                    FASTGRU_X86_TABLE(gru_quantized_gates__avx2),
                    FASTGRU_X86_TABLE(gru_quantized_gates__avx512));
  return form == GateTerms::full  ? forms.full
         : form == GateTerms::bias ? forms.bias_gates
                                   : forms.hidden_gates;
}

// A thread's rounded or quantized product inputs, reused from step to step (each call of
// recurrent_product fills and reads them before it returns).
thread_local std::vector<float> t_rounded;
thread_local std::vector<std::int16_t> t_quantized;
thread_local std::vector<std::uint8_t> t_unsigned;
thread_local std::vector<float> t_scales;

}  // namespace

QuantizedGruLayer::QuantizedGruLayer(const kernels::KernelTable<float>& kernels, Index input,
                                     Index hidden, ResetMode mode, GateTerms form,
                                     Precision precision, const WeightsView<float>& w,
                                     const std::string& name)
    : CellLayer<float>(SizesOnly{}, kernels, input, hidden, form == GateTerms::full ? 3 : 1,
                       form == GateTerms::bias ? 1 : 3),
      mode_(mode),
      hidden_gates_(form != GateTerms::bias),
      precision_(precision),
      quantized_(&kernels::quantized_kernels_for(kernels.level)),
      gates_(&quantized_gates_for(kernels.level, form)) {
  const Index H = hidden, G = gate_width(), PW = 3 * quantized_->vector_width;
  // A panel of 3W float units holds a whole number of quantized panels per gate.
  if (kernels.vector_width % quantized_->vector_width != 0)
    throw std::logic_error(std::string("fastgru: quantized kernels (") + quantized_->isa +
                           ") do not fit the float32 kernels' vector width");
  input_.columns = G;
  if (precision == Precision::bf16) {
    input_.bf16 = kernels::pack_bf16_natural(w.weight_ih, G, input, PW);
  } else {
    input_.int8 = kernels::pack_int8_natural(w.weight_ih, G, input, PW,
                                             (name + ".weight_ih").c_str(),
                                             quantized_->int8_depth_group);
  }
  if (w.bias_ih) input_.column_bias.assign(w.bias_ih, w.bias_ih + G);
  // b_hr, b_hz, b_hn: bias_hh holds the last blocks of them (all three, or b_hn alone).
  step_bias_.assign(static_cast<std::size_t>(3 * H), 0.0f);
  const Index bias_blocks = form == GateTerms::hidden ? 1 : 3;
  if (w.bias_hh) std::copy(w.bias_hh, w.bias_hh + bias_blocks * H, step_bias_.end() - bias_blocks * H);
  const float* bias = w.bias_hh ? step_bias_.data() : nullptr;
  const std::string hh = name + ".weight_hh";
  // W_hn's block of weight_hh: after W_hr, W_hz, or alone (type 3).
  const Index n_block = hidden_gates_ ? 2 : 0;
  if (mode == ResetMode::after) {
    step_ = hidden_gates_ ? pack_gates(w.weight_hh, bias, {{0, 0}, {1, 1}, {2, 2}}, hh)
                          : pack_gates(w.weight_hh, bias, {{n_block, 2}}, hh);
  } else {
    if (hidden_gates_) step_ = pack_gates(w.weight_hh, bias, {{0, 0}, {1, 1}}, hh);
    candidate_ = pack_gates(w.weight_hh, bias, {{n_block, 2}}, hh);
  }
}

QuantizedWeights QuantizedGruLayer::pack_gates(const float* weight, const float* bias,
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

void QuantizedGruLayer::project_inputs(const InputRows<float>& x, float* projection, float*,
                                       float*, bool) const {
  const float* a = x.x_rows ? x.x : x.x + x.first_row * x.width;
  const Index* rows = x.x_rows ? x.x_rows + x.first_row : nullptr;
  const float* bias = input_.column_bias.empty() ? nullptr : input_.column_bias.data();
  if (precision_ == Precision::bf16) {
    driver::matmul_bf16(*quantized_, x.count, input_.columns, a, x.width, input_.bf16,
                        projection, input_.columns, bias, rows);
  } else {
    driver::matmul_int8(*quantized_, x.count, input_.columns, a, x.width, input_.int8,
                        projection, input_.columns, bias, "x", rows);
  }
}

void QuantizedGruLayer::recurrent_product(const QuantizedWeights& weights, Index gates,
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

int QuantizedGruLayer::forward_phases() const {
  return mode_ == ResetMode::after ? 1 : 2;
}

UnitGrain QuantizedGruLayer::forward_grain(int) const {
  return UnitGrain::panels;
}

bool QuantizedGruLayer::needs_step_record() const {
  return mode_ == ResetMode::before;  // r, z and r ⊙ h between the two products
}

namespace {
// A thread's gh rows, reused from step to step.
thread_local std::vector<float> t_products;
}  // namespace

void QuantizedGruLayer::forward_phase(int phase, const ForwardStep<float>& s, Range units) const {
  const Index H = hidden_;
  const QuantizedWeights& weights = mode_ == ResetMode::after || phase == 0 ? step_ : candidate_;
  t_products.resize(static_cast<std::size_t>(s.rows * weights.columns));
  float* gh = t_products.data();
  const float* bias = step_bias_.data();
  if (mode_ == ResetMode::after) {
    recurrent_product(weights, hidden_gates_ ? 3 : 1, s.rows, s.h_product, H, units, gh);
    gates_->reset_after(s.rows, H, units.begin, units.end, gh, weights.columns, s.projection,
                        s.ld_projection, bias, s.h_prev, s.h_next, s.ld_h_next);
  } else if (phase == 0) {
    // Gates of the biases alone need no product.
    if (hidden_gates_) recurrent_product(weights, 2, s.rows, s.h_product, H, units, gh);
    gates_->reset_before_rz(s.rows, H, units.begin, units.end, gh, weights.columns,
                            s.projection, s.ld_projection, bias, s.h_product, s.record);
  } else {
    // The candidate's input: r ⊙ h of every unit, which phase 0's threads wrote to the record.
    recurrent_product(weights, 1, s.rows, s.record + 3 * H, 4 * H, units, gh);
    gates_->reset_before_n(s.rows, H, units.begin, units.end, gh, weights.columns, s.projection,
                           s.ld_projection, s.h_prev, s.record, s.h_next, s.ld_h_next);
  }
}

int QuantizedGruLayer::backward_phases() const {
  throw std::logic_error("fastgru: a bf16 or int8 layer runs inference only");
}

void QuantizedGruLayer::backward_phase(int, const BackwardStep<float>&, Range, Index,
                                       Index) const {
  throw std::logic_error("fastgru: a bf16 or int8 layer runs inference only");
}

void QuantizedGruLayer::recurrent_gradients(const GradientInputs<float>&,
                                            const GradientsView<float>&) const {
  throw std::logic_error("fastgru: a bf16 or int8 layer runs inference only");
}

}  // namespace fastgru::cells
