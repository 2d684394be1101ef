// Fused LiBRU step kernels (EQUATIONS.md §8) and their derivatives, written once over a SIMD
// traits class S. The forward kernel runs the recurrent product of a block of hidden units (z
// and c columns side by side, 2W wide) and applies the update in log space to the accumulators
// before they leave the registers, in the form that never overflows. make_libru_kernels<S>()
// fills the LiBRU's kernel table for one ISA.
#pragma once

#include <algorithm>

#include "cells/libru/libru_kernels.h"
#include "kernels/simd/log_space.h"
#include "kernels/simd/panel_product.h"
#include "kernels/simd/step_helpers.h"

namespace fastgru::kernels {

template <class S>
void step_libru(Index rows, Index hidden, Index block_begin, Index block_end,
                const typename S::Real* panels, const typename S::Real* h_prev,
                const typename S::Real* h_product, const typename S::Real* a, Index ld_a,
                typename S::Real, typename S::Real* h_next, Index ld_h_next,
                typename S::Real* record) {
  using V = typename S::V;
  constexpr int W = S::kWidth;
  const Index H = hidden;
  for (Index block = block_begin; block < block_end; ++block) {
    const Index u = block * W;
    const int count = static_cast<int>(std::min<Index>(W, H - u));
    const typename S::Real* panel = panels + block * H * 2 * W;
    for_each_row_tile<S>(rows, [&](auto tile_rows, Index r0) {
      constexpr int MR = decltype(tile_rows)::value;
      V acc[MR][2];
      for (int i = 0; i < MR; ++i) acc[i][0] = acc[i][1] = S::zero();
      panel_product<S, MR, 2>(H, h_product + r0 * H, H, 1, panel, acc);
      for (int i = 0; i < MR; ++i) {
        const Index row = r0 + i;
        const typename S::Real* a_row = a + row * ld_a;
        const V a_z = S::add(S::load_n(a_row + u, count), acc[i][0]);
        const V a_c = S::add(S::load_n(a_row + H + u, count), acc[i][1]);
        // log z = −softplus(−a_z), log(1 − z) = −softplus(a_z): one log(1 + e^−|a_z|) for both.
        const V shared = S::log1p_exp_negative(absolute<S>(a_z));
        const V log_z = S::sub(S::zero(), S::add(S::max(S::sub(S::zero(), a_z), S::zero()), shared));
        const V log_not_z = S::sub(S::zero(), S::add(S::max(a_z, S::zero()), shared));
        const V h = S::load_n(h_prev + row * H + u, count);
        const V kept = S::add(h, log_z);
        const V fresh = S::add(softplus<S>(a_c), log_not_z);
        S::store_n(h_next + row * ld_h_next + u, logaddexp<S>(kept, fresh), count);
        if (record) {
          typename S::Real* rec = record + row * 4 * H + u;
          S::store_n(rec, a_z, count);
          S::store_n(rec + H, a_c, count);
        }
      }
    });
  }
}

template <class S>
void backward_libru(Index rows, Index hidden, Index unit_begin, Index unit_end,
                    const typename S::Real* record, const typename S::Real* h_prev,
                    const typename S::Real* dy, const typename S::Real* dh_carry,
                    typename S::Real, typename S::Real* da, typename S::Real* dh_prev) {
  using V = typename S::V;
  const Index H = hidden;
  const V one = S::set1(1);
  const RowSource<S> sources[] = {{record, 4 * H}, {record + H, 4 * H}, {dy, H}, {h_prev, H}};
  for_each_unit_vector<S>(rows, unit_begin, unit_end, sources, [&](Index b, Index j, int count) {
    const typename S::Real* rec = record + b * 4 * H + j;
    const V a_z = S::load_n(rec, count), a_c = S::load_n(rec + H, count);
    const V g = S::add(S::load_n(dy + b * H + j, count), S::load_n(dh_carry + b * H + j, count));
    const V h = S::load_n(h_prev + b * H + j, count);
    const V z = S::sigmoid(a_z);
    // w = z e^ĥ / e^ĥ' = σ(a_z + ĥ − c): the kept state's share of the new one.
    const V w = S::sigmoid(S::sub(S::add(a_z, h), softplus<S>(a_c)));
    typename S::Real* da_row = da + b * 2 * H + j;
    S::store_n(da_row, S::mul(g, S::sub(w, z)), count);
    S::store_n(da_row + H, S::mul(S::mul(g, S::sub(one, w)), S::sigmoid(a_c)), count);
    S::store_n(dh_prev + b * H + j, S::mul(g, w), count);
  });
}

template <class S>
cells::LibruKernels<typename S::Real> make_libru_kernels() {
  return {step_libru<S>, backward_libru<S>};
}

}  // namespace fastgru::kernels
