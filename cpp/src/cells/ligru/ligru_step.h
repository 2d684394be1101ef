// Fused LiGRU step kernels (EQUATIONS.md §5) and their derivatives, written once over a SIMD
// traits class S and the candidate's activation. The forward kernel runs the recurrent product
// of a block of hidden units (z and n columns side by side, 2W wide) and applies the gate update
// to the accumulators before they leave the registers. A record row holds z, n, then the two
// normalised input projections x̂_z, x̂_n that batch normalisation's backward reads.
// make_ligru_kernels<S>() fills the LiGRU's kernel table for one ISA.
#pragma once

#include <algorithm>

#include "cells/ligru/ligru_kernels.h"
#include "kernels/simd/log_space.h"
#include "kernels/simd/panel_product.h"
#include "kernels/simd/step_helpers.h"

namespace fastgru::kernels {

using cells::kLeakyRelu;
using cells::kRelu;
using cells::kSoftplus;
using cells::kTanh;

template <class S, int kActivation>
inline typename S::V ligru_activation(typename S::V a, typename S::V negative_slope) {
  if constexpr (kActivation == kRelu) {
    return S::max(a, S::zero());
  } else if constexpr (kActivation == kTanh) {
    return S::tanh(a);
  } else if constexpr (kActivation == kSoftplus) {
    return softplus<S>(a);
  } else {
    return S::fma(negative_slope, S::min(a, S::zero()), S::max(a, S::zero()));
  }
}

// d act(a) / d a, from n = act(a).
template <class S, int kActivation>
inline typename S::V ligru_activation_derivative(typename S::V n, typename S::V negative_slope) {
  const typename S::V one = S::set1(1);
  if constexpr (kActivation == kRelu) {
    return S::positive(n);
  } else if constexpr (kActivation == kTanh) {
    return S::sub(one, S::mul(n, n));
  } else if constexpr (kActivation == kSoftplus) {
    // n = log(1 + e^a): σ(a) = 1 − 1 / (1 + e^a) = 1 − e^−n.
    return S::sub(one, S::exp(S::sub(S::zero(), n)));
  } else {
    return S::fma(S::sub(one, negative_slope), S::positive(n), negative_slope);
  }
}

template <class S, int kActivation>
void step_ligru(Index rows, Index hidden, Index block_begin, Index block_end,
                const typename S::Real* panels, const typename S::Real* h_prev,
                const typename S::Real* h_product, const typename S::Real* a, Index ld_a,
                typename S::Real negative_slope, typename S::Real* h_next, Index ld_h_next,
                typename S::Real* record) {
  using V = typename S::V;
  constexpr int W = S::kWidth;
  const Index H = hidden;
  const V slope = S::set1(negative_slope);
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
        const V z = S::sigmoid(S::add(S::load_n(a_row + u, count), acc[i][0]));
        const V n = ligru_activation<S, kActivation>(S::add(S::load_n(a_row + H + u, count), acc[i][1]), slope);
        const V h = S::load_n(h_prev + row * H + u, count);
        S::store_n(h_next + row * ld_h_next + u, gate_update<S>(z, h, n), count);
        if (record) {
          typename S::Real* rec = record + row * 4 * H + u;
          S::store_n(rec, z, count);
          S::store_n(rec + H, n, count);
        }
      }
    });
  }
}

template <class S, int kActivation>
void backward_ligru(Index rows, Index hidden, Index unit_begin, Index unit_end,
                    const typename S::Real* record, const typename S::Real* h_prev,
                    const typename S::Real* dy, const typename S::Real* dh_carry,
                    typename S::Real negative_slope, typename S::Real* da,
                    typename S::Real* dh_prev) {
  using V = typename S::V;
  const Index H = hidden;
  const V one = S::set1(1);
  const V slope = S::set1(negative_slope);
  const RowSource<S> sources[] = {{record, 4 * H}, {record + H, 4 * H}, {dy, H}, {h_prev, H}};
  for_each_unit_vector<S>(rows, unit_begin, unit_end, sources, [&](Index b, Index j, int count) {
    const typename S::Real* rec = record + b * 4 * H + j;
    const V z = S::load_n(rec, count), n = S::load_n(rec + H, count);
    const V dh = S::add(S::load_n(dy + b * H + j, count), S::load_n(dh_carry + b * H + j, count));
    const V h = S::load_n(h_prev + b * H + j, count);
    // h' = z ⊙ h + (1 − z) ⊙ n, z = σ(·), n = act(·)
    const V dz_pre = S::mul(S::mul(dh, S::sub(h, n)), S::mul(z, S::sub(one, z)));
    const V dn_pre = S::mul(S::mul(dh, S::sub(one, z)), ligru_activation_derivative<S, kActivation>(n, slope));
    typename S::Real* da_row = da + b * 2 * H + j;
    S::store_n(da_row, dz_pre, count);
    S::store_n(da_row + H, dn_pre, count);
    S::store_n(dh_prev + b * H + j, S::mul(dh, z), count);
  });
}

template <class S>
cells::LigruKernels<typename S::Real> make_ligru_kernels() {
  return {{step_ligru<S, kRelu>, step_ligru<S, kTanh>, step_ligru<S, kLeakyRelu>,
           step_ligru<S, kSoftplus>},
          {backward_ligru<S, kRelu>, backward_ligru<S, kTanh>, backward_ligru<S, kLeakyRelu>,
           backward_ligru<S, kSoftplus>}};
}

}  // namespace fastgru::kernels
