// Fused MGU step kernels (EQUATIONS.md §4) and their derivatives, written once over a SIMD
// traits class S. Each forward kernel runs a recurrent product over natural panels of 3W units
// and applies its part of the update to the accumulators before they leave the registers.
// Layouts are described in mgu_kernels.h. make_mgu_kernels<S>() fills the MGU's kernel table
// for one ISA.
#pragma once

#include <algorithm>

#include "cells/mgu/mgu_kernels.h"
#include "kernels/simd/panel_product.h"
#include "kernels/simd/step_helpers.h"

namespace fastgru::kernels {

// Runs update(row, v, unit, count, accumulator) for every vector of natural panels
// [panel_begin, panel_end) of a product over the rows of a (rows, H, lda).
template <class S, class Update>
inline void for_each_panel_vector(Index rows, Index hidden, Index panel_begin, Index panel_end,
                                  const typename S::Real* panels, const typename S::Real* a,
                                  Index lda, Update&& update) {
  using V = typename S::V;
  constexpr int W = S::kWidth;
  const Index H = hidden;
  for (Index p = panel_begin; p < panel_end; ++p) {
    Index u[3];
    int count[3];
    for (int v = 0; v < 3; ++v) {
      u[v] = (3 * p + v) * W;
      count[v] = static_cast<int>(std::clamp<Index>(H - u[v], 0, W));
    }
    const typename S::Real* panel = panels + p * H * 3 * W;
    for_each_row_tile<S>(rows, [&](auto tile_rows, Index r0) {
      constexpr int MR = decltype(tile_rows)::value;
      V acc[MR][3];
      for (int i = 0; i < MR; ++i) acc[i][0] = acc[i][1] = acc[i][2] = S::zero();
      panel_product<S, MR, 3>(H, a + r0 * lda, lda, 1, panel, acc);
      for (int i = 0; i < MR; ++i)
        for (int v = 0; v < 3; ++v)
          if (count[v]) update(r0 + i, u[v], count[v], acc[i][v]);
    });
  }
}

template <class S>
void step_mgu_gate(Index rows, Index hidden, Index panel_begin, Index panel_end,
                   const typename S::Real* panels, const typename S::Real* h_product,
                   const typename S::Real* gi, Index ld_gi, const typename S::Real* bias_hh,
                   typename S::Real* record) {
  using V = typename S::V;
  const Index H = hidden;
  for_each_panel_vector<S>(rows, H, panel_begin, panel_end, panels, h_product, H,
                           [&](Index row, Index u, int count, V acc) {
    const V f = S::sigmoid(S::add(S::add(S::load_n(gi + row * ld_gi + u, count), acc),
                                  load_bias<S>(bias_hh, u, count)));
    typename S::Real* rec = record + row * 4 * H + u;
    S::store_n(rec, f, count);
    S::store_n(rec + 2 * H, S::mul(f, S::load_n(h_product + row * H + u, count)), count);
  });
}

template <class S>
void step_mgu_candidate(Index rows, Index hidden, Index panel_begin, Index panel_end,
                        const typename S::Real* panels, const typename S::Real* h_prev,
                        const typename S::Real* gi, Index ld_gi,
                        const typename S::Real* bias_hh, typename S::Real* h_next,
                        Index ld_h_next, typename S::Real* record) {
  using V = typename S::V;
  const Index H = hidden;
  // The candidate's recurrent input is f ⊙ h, kept in the record's third block.
  for_each_panel_vector<S>(rows, H, panel_begin, panel_end, panels, record + 2 * H, 4 * H,
                           [&](Index row, Index u, int count, V acc) {
    typename S::Real* rec = record + row * 4 * H;
    const V a_n = S::add(S::load_n(gi + row * ld_gi + H + u, count), load_bias<S>(bias_hh, H + u, count));
    const V n = S::tanh(S::add(a_n, acc));
    const V f = S::load_n(rec + u, count);
    const V h = S::load_n(h_prev + row * H + u, count);
    S::store_n(rec + H + u, n, count);
    // h' = (1 − f) ⊙ h + f ⊙ n, exact where f = 0 and f = 1 (gate_update).
    S::store_n(h_next + row * ld_h_next + u, gate_update<S>(f, n, h), count);
  });
}

template <class S>
void backward_mgu_candidate(Index rows, Index hidden, Index unit_begin, Index unit_end,
                            const typename S::Real* record, const typename S::Real* h_prev,
                            const typename S::Real* dy, const typename S::Real* dh_carry,
                            typename S::Real* dgi, typename S::Real* dh_prev) {
  using V = typename S::V;
  const Index H = hidden;
  const V one = S::set1(1);
  const RowSource<S> sources[] = {{record, 4 * H}, {record + H, 4 * H}, {dy, H}, {h_prev, H}};
  for_each_unit_vector<S>(rows, unit_begin, unit_end, sources, [&](Index b, Index j, int count) {
    const typename S::Real* rec = record + b * 4 * H + j;
    const V f = S::load_n(rec, count), n = S::load_n(rec + H, count);
    const V dh = S::add(S::load_n(dy + b * H + j, count), S::load_n(dh_carry + b * H + j, count));
    const V h = S::load_n(h_prev + b * H + j, count);
    typename S::Real* gi_row = dgi + b * 2 * H + j;
    S::store_n(gi_row, S::mul(dh, S::sub(n, h)), count);
    S::store_n(gi_row + H, S::mul(S::mul(dh, f), S::sub(one, S::mul(n, n))), count);
    S::store_n(dh_prev + b * H + j, S::mul(dh, S::sub(one, f)), count);
  });
}

template <class S>
void backward_mgu_gate(Index rows, Index hidden, Index unit_begin, Index unit_end,
                       const typename S::Real* record, const typename S::Real* h_product,
                       const typename S::Real* d_fh, typename S::Real* dgi,
                       typename S::Real* d_product) {
  using V = typename S::V;
  const Index H = hidden;
  const V one = S::set1(1);
  const RowSource<S> sources[] = {{record, 4 * H}, {h_product, H}};
  for_each_unit_vector<S>(rows, unit_begin, unit_end, sources, [&](Index b, Index j, int count) {
    const V f = S::load_n(record + b * 4 * H + j, count);
    const V d = S::load_n(d_fh + b * H + j, count);
    const V h = S::load_n(h_product + b * H + j, count);
    typename S::Real* gi_f = dgi + b * 2 * H + j;
    const V df = S::fma(d, h, S::load_n(gi_f, count));
    S::store_n(gi_f, S::mul(df, S::mul(f, S::sub(one, f))), count);
    typename S::Real* out = d_product + b * H + j;
    S::store_n(out, S::fma(d, f, S::load_n(out, count)), count);
  });
}

template <class S>
cells::MguKernels<typename S::Real> make_mgu_kernels() {
  return {step_mgu_gate<S>, step_mgu_candidate<S>, backward_mgu_candidate<S>,
          backward_mgu_gate<S>};
}

}  // namespace fastgru::kernels
