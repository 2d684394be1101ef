// The quantized MGU's gate arithmetic (EQUATIONS.md §4, §9) after its reduced-precision
// products, in float32, written once over a SIMD traits class S (mgu_kernels.h names the table).
// gi (rows, 2H) holds W_i x + b_i: f, n.
#pragma once

#include "cells/mgu/mgu_kernels.h"
#include "cells/quantized_gate_vectors.h"
#include "kernels/simd/step_helpers.h"

namespace fastgru::kernels {

template <class S>
void quantized_mgu_gate(Index rows, Index hidden, Index panel_begin, Index panel_end,
                        const float* gh, Index ld_gh, const float* gi, Index ld_gi,
                        const float* h_prev, float* record) {
  const Index H = hidden;
  for_each_gate_vector<S, 1>(rows, H, panel_begin, panel_end,
                             [&](Index row, Index u, int count, Index column) {
    const auto f = S::sigmoid(S::add(S::load_n(gi + row * ld_gi + u, count),
                                     S::load_n(gh + row * ld_gh + column, count)));
    float* rec = record + row * 4 * H + u;
    S::store_n(rec, f, count);
    S::store_n(rec + 3 * H, S::mul(f, S::load_n(h_prev + row * H + u, count)), count);
  });
}

template <class S>
void quantized_mgu_candidate(Index rows, Index hidden, Index panel_begin, Index panel_end,
                             const float* gh, Index ld_gh, const float* gi, Index ld_gi,
                             const float* h_prev, const float* record, float* h_next,
                             Index ld_h_next) {
  const Index H = hidden;
  for_each_gate_vector<S, 1>(rows, H, panel_begin, panel_end,
                             [&](Index row, Index u, int count, Index column) {
    const auto n = S::tanh(S::add(S::load_n(gi + row * ld_gi + H + u, count),
                                  S::load_n(gh + row * ld_gh + column, count)));
    // h' = (1 − f) ⊙ h + f ⊙ n: the GRU's update with z = 1 − f.
    const auto keep = S::sub(S::set1(1), S::load_n(record + row * 4 * H + u, count));
    const auto h = S::load_n(h_prev + row * H + u, count);
    S::store_n(h_next + row * ld_h_next + u, gate_update<S>(keep, h, n), count);
  });
}

template <class S>
cells::MguQuantizedGates make_mgu_quantized_gates() {
  return {quantized_mgu_gate<S>, quantized_mgu_candidate<S>};
}

}  // namespace fastgru::kernels
