#include "cells/gru/quantized_gru_cell.h"

#include <algorithm>

#include "cells/isa_tables.h"

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

}  // namespace

QuantizedGruLayer::QuantizedGruLayer(const kernels::KernelTable<float>& kernels, Index input,
                                     Index hidden, ResetMode mode, GateTerms form, double clip,
                                     Precision precision, const WeightsView<float>& w,
                                     const std::string& name)
    : QuantizedCellLayer(kernels, input, hidden, form == GateTerms::full ? 3 : 1,
                         form == GateTerms::bias ? 1 : 3, precision, w.weight_ih, w.bias_ih, name),
      mode_(mode),
      hidden_gates_(form != GateTerms::bias),
      clip_(static_cast<float>(clip)),
      gates_(&quantized_gates_for(kernels.level, form)) {
  const Index H = hidden;
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

int QuantizedGruLayer::forward_phases() const {
  return mode_ == ResetMode::after ? 1 : 2;
}

bool QuantizedGruLayer::needs_step_record() const {
  return mode_ == ResetMode::before;  // r, z and r ⊙ h between the two products
}

void QuantizedGruLayer::forward_phase(int phase, const ForwardStep<float>& s, Range units) const {
  const Index H = hidden_;
  const QuantizedWeights& weights = mode_ == ResetMode::after || phase == 0 ? step_ : candidate_;
  float* gh = products_buffer(s.rows, weights);
  const float* bias = step_bias_.data();
  if (mode_ == ResetMode::after) {
    recurrent_product(weights, hidden_gates_ ? 3 : 1, s.rows, s.h_product, H, units, gh);
    gates_->reset_after(s.rows, H, units.begin, units.end, gh, weights.columns, s.projection,
                        s.ld_projection, bias, clip_, s.h_prev, s.h_next, s.ld_h_next);
  } else if (phase == 0) {
    // Gates of the biases alone need no product.
    if (hidden_gates_) recurrent_product(weights, 2, s.rows, s.h_product, H, units, gh);
    gates_->reset_before_rz(s.rows, H, units.begin, units.end, gh, weights.columns,
                            s.projection, s.ld_projection, bias, clip_, s.h_product, s.record);
  } else {
    // The candidate's input: r ⊙ h of every unit, which phase 0's threads wrote to the record.
    recurrent_product(weights, 1, s.rows, s.record + 3 * H, 4 * H, units, gh);
    gates_->reset_before_n(s.rows, H, units.begin, units.end, gh, weights.columns, s.projection,
                           s.ld_projection, clip_, s.h_prev, s.record, s.h_next, s.ld_h_next);
  }
}

}  // namespace fastgru::cells
