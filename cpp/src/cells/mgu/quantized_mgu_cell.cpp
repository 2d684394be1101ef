#include "cells/mgu/quantized_mgu_cell.h"

#include "cells/isa_tables.h"

namespace fastgru::cells {

QuantizedMguLayer::QuantizedMguLayer(const kernels::KernelTable<float>& kernels, Index input,
                                     Index hidden, Precision precision,
                                     const WeightsView<float>& w, const std::string& name)
    : QuantizedCellLayer(kernels, input, hidden, 2, 2, precision, w.weight_ih, w.bias_ih, name),
      gates_(&table_for_isa(kernels.level, &mgu_quantized_gates__scalar,
                            FASTGRU_X86_TABLE(mgu_quantized_gates__avx2),
                            FASTGRU_X86_TABLE(mgu_quantized_gates__avx512))) {
  const std::string hh = name + ".weight_hh";
  gate_ = pack_gates(w.weight_hh, w.bias_hh, {{0, 0}}, hh);
  candidate_ = pack_gates(w.weight_hh, w.bias_hh, {{1, 1}}, hh);
}

int QuantizedMguLayer::forward_phases() const {
  return 2;
}

bool QuantizedMguLayer::needs_step_record() const {
  return true;  // f and f ⊙ h between the two products
}

void QuantizedMguLayer::forward_phase(int phase, const ForwardStep<float>& s, Range units) const {
  const Index H = hidden_;
  const QuantizedWeights& weights = phase == 0 ? gate_ : candidate_;
  float* gh = products_buffer(s.rows, weights);
  if (phase == 0) {
    recurrent_product(weights, 1, s.rows, s.h_product, H, units, gh);
    gates_->gate(s.rows, H, units.begin, units.end, gh, weights.columns, s.projection,
                 s.ld_projection, s.h_product, s.record);
  } else {
    recurrent_product(weights, 1, s.rows, s.record + 3 * H, 4 * H, units, gh);
    gates_->candidate(s.rows, H, units.begin, units.end, gh, weights.columns, s.projection,
                      s.ld_projection, s.h_prev, s.record, s.h_next, s.ld_h_next);
  }
}

}  // namespace fastgru::cells
