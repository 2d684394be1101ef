// The quantized LiGRU's update (EQUATIONS.md §5, §9) after its reduced-precision product, in
// float32, over a SIMD traits class S and the candidate's activation (ligru_kernels.h names the
// table). a (rows, 2H) holds the normalised input projections.
#pragma once

#include "cells/ligru/ligru_step.h"
#include "cells/quantized_gate_vectors.h"

namespace fastgru::kernels {

template <class S, int kActivation>
void quantized_ligru_step(Index rows, Index hidden, Index panel_begin, Index panel_end,
                          const float* gh, Index ld_gh, const float* a, Index ld_a,
                          float negative_slope, const float* h_prev, float* h_next,
                          Index ld_h_next) {
  constexpr Index W = S::kWidth;
  const Index H = hidden;
  const typename S::V slope = S::set1(negative_slope);
  for_each_gate_vector<S, 2>(rows, H, panel_begin, panel_end,
                             [&](Index row, Index u, int count, Index column) {
    const float* a_row = a + row * ld_a;
    const float* g = gh + row * ld_gh + column;
    const auto z = S::sigmoid(S::add(S::load_n(a_row + u, count), S::load_n(g, count)));
    const auto n = ligru_activation<S, kActivation>(
        S::add(S::load_n(a_row + H + u, count), S::load_n(g + 3 * W, count)), slope);
    const auto h = S::load_n(h_prev + row * H + u, count);
    S::store_n(h_next + row * ld_h_next + u, gate_update<S>(z, h, n), count);
  });
}

template <class S>
cells::LigruQuantizedGates make_ligru_quantized_gates() {
  return {{quantized_ligru_step<S, kRelu>, quantized_ligru_step<S, kTanh>,
           quantized_ligru_step<S, kLeakyRelu>, quantized_ligru_step<S, kSoftplus>}};
}

}  // namespace fastgru::kernels
