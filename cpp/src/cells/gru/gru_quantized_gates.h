// The quantized GRU's gate arithmetic (EQUATIONS.md §9), after its reduced-precision products:
// in float32, as the float32 kernels compute it, written once over a SIMD traits class S and
// instantiated per ISA beside the GRU's step kernels (gru_kernels.h names the tables).
//
// gh (rows, ld_gh) holds a step's recurrent products with b_hh added, per panel of 3W hidden
// units (W = S::kWidth): unit u of product gate g at column (u / 3W) · NG · 3W + g · 3W + u mod 3W,
// for the NG gates of that product (r, z, n: 3; r, z: 2; n: 1). gi (rows, 3H, ld_gi) holds
// W_i x + b_i. A record row (4H) holds r, z and, at 3H, r ⊙ h (reset-before's candidate input).
#pragma once

#include <algorithm>

#include "cells/gru/gru_kernels.h"
#include "kernels/simd/step_helpers.h"

namespace fastgru::kernels {

// f(row, u, count, column): the vectors of unit panels [panel_begin, panel_end), u their first
// unit and column the offset of gate 0's values in gh's row.
template <class S, int kGates, class F>
inline void for_each_gate_vector(Index rows, Index hidden, Index panel_begin, Index panel_end,
                                 F f) {
  constexpr Index W = S::kWidth;
  for (Index row = 0; row < rows; ++row)
    for (Index p = panel_begin; p < panel_end; ++p)
      for (Index j = 0; j < 3; ++j) {
        const Index u = p * 3 * W + j * W;
        if (u >= hidden) break;
        f(row, u, static_cast<int>(std::min<Index>(W, hidden - u)), p * kGates * 3 * W + j * W);
      }
}

template <class S>
void quantized_reset_after_gates(Index rows, Index hidden, Index panel_begin, Index panel_end,
                                 const float* gh, Index ld_gh, const float* gi, Index ld_gi,
                                 const float* h_prev, float* h_next, Index ld_h_next) {
  constexpr Index W = S::kWidth;
  const Index H = hidden;
  for_each_gate_vector<S, 3>(rows, H, panel_begin, panel_end,
                             [&](Index row, Index u, int count, Index column) {
    const float* g = gi + row * ld_gi + u;
    const float* p = gh + row * ld_gh + column;
    const auto r = S::sigmoid(S::add(S::load_n(g, count), S::load_n(p, count)));
    const auto z = S::sigmoid(S::add(S::load_n(g + H, count), S::load_n(p + 3 * W, count)));
    const auto n = S::tanh(S::fma(r, S::load_n(p + 6 * W, count), S::load_n(g + 2 * H, count)));
    const auto h = S::load_n(h_prev + row * H + u, count);
    S::store_n(h_next + row * ld_h_next + u, gate_update<S>(z, h, n), count);
  });
}

template <class S>
void quantized_reset_before_rz(Index rows, Index hidden, Index panel_begin, Index panel_end,
                               const float* gh, Index ld_gh, const float* gi, Index ld_gi,
                               const float* h_prev, float* record) {
  constexpr Index W = S::kWidth;
  const Index H = hidden;
  for_each_gate_vector<S, 2>(rows, H, panel_begin, panel_end,
                             [&](Index row, Index u, int count, Index column) {
    const float* g = gi + row * ld_gi + u;
    const float* p = gh + row * ld_gh + column;
    const auto r = S::sigmoid(S::add(S::load_n(g, count), S::load_n(p, count)));
    const auto z = S::sigmoid(S::add(S::load_n(g + H, count), S::load_n(p + 3 * W, count)));
    float* rec = record + row * 4 * H + u;
    S::store_n(rec, r, count);
    S::store_n(rec + H, z, count);
    S::store_n(rec + 3 * H, S::mul(r, S::load_n(h_prev + row * H + u, count)), count);
  });
}

template <class S>
void quantized_reset_before_n(Index rows, Index hidden, Index panel_begin, Index panel_end,
                              const float* gh, Index ld_gh, const float* gi, Index ld_gi,
                              const float* h_prev, const float* record, float* h_next,
                              Index ld_h_next) {
  const Index H = hidden;
  for_each_gate_vector<S, 1>(rows, H, panel_begin, panel_end,
                             [&](Index row, Index u, int count, Index column) {
    const auto n = S::tanh(S::add(S::load_n(gi + row * ld_gi + 2 * H + u, count),
                                  S::load_n(gh + row * ld_gh + column, count)));
    const auto z = S::load_n(record + row * 4 * H + H + u, count);
    const auto h = S::load_n(h_prev + row * H + u, count);
    S::store_n(h_next + row * ld_h_next + u, gate_update<S>(z, h, n), count);
  });
}

template <class S>
cells::GruQuantizedGates make_gru_quantized_gates() {
  return {quantized_reset_after_gates<S>, quantized_reset_before_rz<S>,
          quantized_reset_before_n<S>};
}

}  // namespace fastgru::kernels
