// The quantized LiBRU's update (EQUATIONS.md §8, §9) after its reduced-precision product, in
// float32, over a SIMD traits class S (libru_kernels.h names the table), as step_libru computes
// it from the sums: a (rows, 2H) holds the normalised input projections.
#pragma once

#include "cells/libru/libru_step.h"
#include "cells/quantized_gate_vectors.h"

namespace fastgru::kernels {

template <class S>
void quantized_libru_step(Index rows, Index hidden, Index panel_begin, Index panel_end,
                          const float* gh, Index ld_gh, const float* a, Index ld_a, float,
                          const float* h_prev, float* h_next, Index ld_h_next) {
  constexpr Index W = S::kWidth;
  const Index H = hidden;
  for_each_gate_vector<S, 2>(rows, H, panel_begin, panel_end,
                             [&](Index row, Index u, int count, Index column) {
    const float* a_row = a + row * ld_a;
    const float* g = gh + row * ld_gh + column;
    const auto a_z = S::add(S::load_n(a_row + u, count), S::load_n(g, count));
    const auto a_c = S::add(S::load_n(a_row + H + u, count), S::load_n(g + 3 * W, count));
    // log z = −softplus(−a_z), log(1 − z) = −softplus(a_z): one log(1 + e^−|a_z|) for both.
    const auto shared = S::log1p_exp_negative(absolute<S>(a_z));
    const auto log_z = S::sub(S::zero(), S::add(S::max(S::sub(S::zero(), a_z), S::zero()), shared));
    const auto log_not_z = S::sub(S::zero(), S::add(S::max(a_z, S::zero()), shared));
    const auto kept = S::add(S::load_n(h_prev + row * H + u, count), log_z);
    const auto fresh = S::add(softplus<S>(a_c), log_not_z);
    S::store_n(h_next + row * ld_h_next + u, logaddexp<S>(kept, fresh), count);
  });
}

template <class S>
cells::LibruQuantizedGates make_libru_quantized_gates() {
  return {quantized_libru_step<S>};
}

}  // namespace fastgru::kernels
