// The quantized GRU's gate arithmetic (EQUATIONS.md §9), after its reduced-precision products:
// in float32, as the float32 kernels compute it, written once over a SIMD traits class S and
// instantiated per ISA beside the GRU's step kernels (gru_kernels.h names the tables).
//
// gh (rows, ld_gh) holds a step's recurrent products with b_hh added, per panel of 3W hidden
// units (W = S::kWidth): unit u of product gate g at column (u / 3W) · NG · 3W + g · 3W + u mod 3W,
// for the NG gates of that product (r, z, n: 3; r, z: 2; n: 1). gi (rows, ld_gi) holds W_i x + b_i:
// r, z, n (3H) for the full GRU, n's block alone (H) for the other forms of the gates
// (EQUATIONS.md §7), chosen by two template flags as in gru_step.h:
//   kInputGates   r and z see W_i x (the full GRU);
//   kHiddenGates  r and z see W_h h (types 1, 2; gh holds their products); else they are the
//                 constants σ(b_hr), σ(b_hz) of step_bias (3H: b_hr, b_hz, b_hn), and gh holds n's.
// A record row (4H) holds r, z and, at 3H, r ⊙ h (reset-before's candidate input).
#pragma once

#include <algorithm>

#include "cells/gru/gru_clip.h"
#include "cells/gru/gru_kernels.h"
#include "cells/quantized_gate_vectors.h"
#include "kernels/simd/step_helpers.h"

namespace fastgru::kernels {

// r and z of one vector of units: from gi and gh (column: gate 0's offset in gh's row, NG
// gates), or the constants of step_bias.
template <class S, bool kInputGates, bool kHiddenGates, int NG>
inline void reset_and_update(const float* gi, const float* gh_row, Index column, Index u,
                             int count, Index H, const float* step_bias,
                             const PreActivationClip<S>& clipped, typename S::V& r,
                             typename S::V& z) {
  constexpr Index W = S::kWidth;
  if constexpr (kHiddenGates) {
    r = S::load_n(gh_row + column, count);
    z = S::load_n(gh_row + column + 3 * W, count);
    if constexpr (kInputGates) {
      r = S::add(r, S::load_n(gi + u, count));
      z = S::add(z, S::load_n(gi + H + u, count));
    }
    r = S::sigmoid(clipped(r));
    z = S::sigmoid(clipped(z));
  } else {
    r = S::sigmoid(clipped(S::load_n(step_bias + u, count)));
    z = S::sigmoid(clipped(S::load_n(step_bias + H + u, count)));
  }
}

template <class S, bool kInputGates, bool kHiddenGates>
void quantized_reset_after_gates(Index rows, Index hidden, Index panel_begin, Index panel_end,
                                 const float* gh, Index ld_gh, const float* gi, Index ld_gi,
                                 const float* step_bias, float clip, const float* h_prev,
                                 float* h_next, Index ld_h_next) {
  constexpr Index W = S::kWidth;
  constexpr int NG = kHiddenGates ? 3 : 1;
  const Index H = hidden, n_offset = kInputGates ? 2 * H : 0;
  const PreActivationClip<S> clipped(clip);
  for_each_gate_vector<S, NG>(rows, H, panel_begin, panel_end,
                              [&](Index row, Index u, int count, Index column) {
    const float* g = gi + row * ld_gi;
    const float* p = gh + row * ld_gh;
    typename S::V r, z;
    reset_and_update<S, kInputGates, kHiddenGates, NG>(g, p, column, u, count, H, step_bias, clipped, r, z);
    const auto hn = S::load_n(p + column + (NG - 1) * 3 * W, count);
    const auto n = S::tanh(clipped(S::fma(r, hn, S::load_n(g + n_offset + u, count))));
    const auto h = S::load_n(h_prev + row * H + u, count);
    S::store_n(h_next + row * ld_h_next + u, gate_update<S>(z, h, n), count);
  });
}

// For the forms without hidden gates, r and z need no product: panel_begin..panel_end still
// name the units (gh is not read).
template <class S, bool kInputGates, bool kHiddenGates>
void quantized_reset_before_rz(Index rows, Index hidden, Index panel_begin, Index panel_end,
                               const float* gh, Index ld_gh, const float* gi, Index ld_gi,
                               const float* step_bias, float clip, const float* h_prev,
                               float* record) {
  const Index H = hidden;
  const PreActivationClip<S> clipped(clip);
  for_each_gate_vector<S, 2>(rows, H, panel_begin, panel_end,
                             [&](Index row, Index u, int count, Index column) {
    typename S::V r, z;
    reset_and_update<S, kInputGates, kHiddenGates, 2>(gi + row * ld_gi, gh + row * ld_gh, column,
                                                      u, count, H, step_bias, clipped, r, z);
    float* rec = record + row * 4 * H + u;
    S::store_n(rec, r, count);
    S::store_n(rec + H, z, count);
    S::store_n(rec + 3 * H, S::mul(r, S::load_n(h_prev + row * H + u, count)), count);
  });
}

template <class S, bool kInputGates>
void quantized_reset_before_n(Index rows, Index hidden, Index panel_begin, Index panel_end,
                              const float* gh, Index ld_gh, const float* gi, Index ld_gi,
                              float clip, const float* h_prev, const float* record,
                              float* h_next, Index ld_h_next) {
  const Index H = hidden, n_offset = kInputGates ? 2 * H : 0;
  const PreActivationClip<S> clipped(clip);
  for_each_gate_vector<S, 1>(rows, H, panel_begin, panel_end,
                             [&](Index row, Index u, int count, Index column) {
    const auto n = S::tanh(clipped(S::add(S::load_n(gi + row * ld_gi + n_offset + u, count),
                                          S::load_n(gh + row * ld_gh + column, count))));
    const auto z = S::load_n(record + row * 4 * H + H + u, count);
    const auto h = S::load_n(h_prev + row * H + u, count);
    S::store_n(h_next + row * ld_h_next + u, gate_update<S>(z, h, n), count);
  });
}

template <class S, bool kInputGates, bool kHiddenGates>
cells::GruQuantizedGates make_gru_quantized_form_gates() {
  return {quantized_reset_after_gates<S, kInputGates, kHiddenGates>,
          quantized_reset_before_rz<S, kInputGates, kHiddenGates>,
          quantized_reset_before_n<S, kInputGates>};
}

template <class S>
cells::GruQuantizedGateForms make_gru_quantized_gates() {
  return {make_gru_quantized_form_gates<S, true, true>(),
          make_gru_quantized_form_gates<S, false, true>(),
          make_gru_quantized_form_gates<S, false, false>()};
}

}  // namespace fastgru::kernels
