// Fused GRU step kernels (EQUATIONS.md §1, §2) and their derivatives, written once over a SIMD
// traits class S. Each forward kernel runs the recurrent product for a range of hidden-unit
// blocks and applies the gate update to the accumulators before they leave the registers.
// Packed layouts are described in gru_kernels.h; a step record row holds r, z, n and the fourth
// term. make_gru_kernels<S>() fills the GRU's kernel tables for one ISA: one per form of the
// gates (EQUATIONS.md §7), chosen by two template flags of each kernel:
//   kInputGates   r and z see W_i x (the full GRU); else the projection gi holds n's block alone
//                 (rows of H) and the gate gradients of a step go to dgh only;
//   kHiddenGates  r and z see W_h h (the full GRU, types 1 and 2); else they see their biases
//                 alone (type 3) and the gate panels hold n's columns alone.
#pragma once

#include <algorithm>

#include "cells/gru/gru_clip.h"
#include "cells/gru/gru_kernels.h"
#include "kernels/simd/panel_product.h"
#include "kernels/simd/step_helpers.h"

namespace fastgru::kernels {

template <class S, bool kInputGates, bool kHiddenGates>
void step_reset_after(Index rows, Index hidden, Index block_begin, Index block_end,
                      const typename S::Real* panels, const typename S::Real* h_prev,
                      const typename S::Real* h_product, const typename S::Real* gi, Index ld_gi,
                      const typename S::Real* bias_hh, typename S::Real clip,
                      typename S::Real* h_next, Index ld_h_next, typename S::Real* record,
                      bool stream_record) {
  using V = typename S::V;
  constexpr int W = S::kWidth;
  static_assert(kHiddenGates || !kInputGates, "gates from the input need the state's too");
  constexpr int NB = kHiddenGates ? 3 : 1;  // vectors of a gate panel's row: r, z, n or n
  const Index H = hidden, n_offset = kInputGates ? 2 * H : 0;
  const bool stream = stream_record && can_stream_rows<S>(record, H);
  const PreActivationClip<S> clipped(clip);
  for (Index block = block_begin; block < block_end; ++block) {
    const Index u = block * W;
    const int count = static_cast<int>(std::min<Index>(W, H - u));
    const V b_r = load_bias<S>(bias_hh, u, count);
    const V b_z = load_bias<S>(bias_hh, H + u, count);
    const V b_n = load_bias<S>(bias_hh, 2 * H + u, count);
    // Gates of the biases alone are the same at every step and row.
    const V fixed_r = kHiddenGates ? S::zero() : S::sigmoid(clipped(b_r));
    const V fixed_z = kHiddenGates ? S::zero() : S::sigmoid(clipped(b_z));
    const typename S::Real* panel = panels + block * H * NB * W;
    for_each_row_tile<S>(rows, [&](auto tile_rows, Index r0) {
      constexpr int MR = decltype(tile_rows)::value;
      V acc[MR][NB];
      for (int i = 0; i < MR; ++i)
        for (int v = 0; v < NB; ++v) acc[i][v] = S::zero();
      panel_product<S, MR, NB>(H, h_product + r0 * H, H, 1, panel, acc);
      for (int i = 0; i < MR; ++i) {
        const Index row = r0 + i;
        const typename S::Real* g = gi + row * ld_gi;
        V r = fixed_r, z = fixed_z;
        if constexpr (kInputGates) {
          r = S::sigmoid(clipped(S::add(S::add(S::load_n(g + u, count), acc[i][0]), b_r)));
          z = S::sigmoid(clipped(S::add(S::add(S::load_n(g + H + u, count), acc[i][1]), b_z)));
        } else if constexpr (kHiddenGates) {
          r = S::sigmoid(clipped(S::add(acc[i][0], b_r)));
          z = S::sigmoid(clipped(S::add(acc[i][1], b_z)));
        }
        const V hn = S::add(acc[i][NB - 1], b_n);
        const V n = S::tanh(clipped(S::fma(r, hn, S::load_n(g + n_offset + u, count))));
        const V h = S::load_n(h_prev + row * H + u, count);
        S::store_n(h_next + row * ld_h_next + u, gate_update<S>(z, h, n), count);
        if (record) {
          typename S::Real* rec = record + row * 4 * H + u;
          store_streamed<S>(rec, r, count, stream);
          store_streamed<S>(rec + H, z, count, stream);
          store_streamed<S>(rec + 2 * H, n, count, stream);
          store_streamed<S>(rec + 3 * H, hn, count, stream);
        }
      }
    });
  }
  end_streaming<S>(stream);
}

template <class S, bool kInputGates, bool kHiddenGates>
void step_reset_before_rz(Index rows, Index hidden, Index block_begin, Index block_end,
                          const typename S::Real* panels, const typename S::Real* h_product,
                          const typename S::Real* gi, Index ld_gi,
                          const typename S::Real* bias_hh, typename S::Real clip,
                          typename S::Real* record) {
  using V = typename S::V;
  constexpr int W = S::kWidth;
  static_assert(kHiddenGates || !kInputGates, "gates from the input need the state's too");
  const Index H = hidden;
  const PreActivationClip<S> clipped(clip);
  for (Index block = block_begin; block < block_end; ++block) {
    const Index u = block * W;
    const int count = static_cast<int>(std::min<Index>(W, H - u));
    const V b_r = load_bias<S>(bias_hh, u, count);
    const V b_z = load_bias<S>(bias_hh, H + u, count);
    if constexpr (!kHiddenGates) {
      // Gates of the biases alone: no product, the same r and z for every row.
      const V r = S::sigmoid(clipped(b_r)), z = S::sigmoid(clipped(b_z));
      for (Index row = 0; row < rows; ++row) {
        typename S::Real* rec = record + row * 4 * H + u;
        S::store_n(rec, r, count);
        S::store_n(rec + H, z, count);
        S::store_n(rec + 3 * H, S::mul(r, S::load_n(h_product + row * H + u, count)), count);
      }
      continue;
    }
    const typename S::Real* panel = panels + block * H * 2 * W;
    for_each_row_tile<S>(rows, [&](auto tile_rows, Index r0) {
      constexpr int MR = decltype(tile_rows)::value;
      V acc[MR][2];
      for (int i = 0; i < MR; ++i) acc[i][0] = acc[i][1] = S::zero();
      panel_product<S, MR, 2>(H, h_product + r0 * H, H, 1, panel, acc);
      for (int i = 0; i < MR; ++i) {
        const Index row = r0 + i;
        const typename S::Real* g = gi + row * ld_gi;
        V r, z;
        if constexpr (kInputGates) {
          r = S::sigmoid(clipped(S::add(S::add(S::load_n(g + u, count), acc[i][0]), b_r)));
          z = S::sigmoid(clipped(S::add(S::add(S::load_n(g + H + u, count), acc[i][1]), b_z)));
        } else {
          r = S::sigmoid(clipped(S::add(acc[i][0], b_r)));
          z = S::sigmoid(clipped(S::add(acc[i][1], b_z)));
        }
        typename S::Real* rec = record + row * 4 * H + u;
        S::store_n(rec, r, count);
        S::store_n(rec + H, z, count);
        S::store_n(rec + 3 * H, S::mul(r, S::load_n(h_product + row * H + u, count)), count);
      }
    });
  }
}

template <class S, bool kInputGates>
void step_reset_before_n(Index rows, Index hidden, Index panel_begin, Index panel_end,
                         const typename S::Real* panels, const typename S::Real* h_prev,
                         const typename S::Real* gi, Index ld_gi,
                         const typename S::Real* bias_hh, typename S::Real clip,
                         typename S::Real* h_next, Index ld_h_next, typename S::Real* record) {
  using V = typename S::V;
  constexpr int W = S::kWidth;
  const Index H = hidden, n_offset = kInputGates ? 2 * H : 0;
  const PreActivationClip<S> clipped(clip);
  for (Index p = panel_begin; p < panel_end; ++p) {
    Index u[3];
    int count[3];
    V b_n[3];
    for (int v = 0; v < 3; ++v) {
      u[v] = (3 * p + v) * W;
      count[v] = static_cast<int>(std::clamp<Index>(H - u[v], 0, W));
      b_n[v] = count[v] ? load_bias<S>(bias_hh, 2 * H + u[v], count[v]) : S::zero();
    }
    const typename S::Real* panel = panels + p * H * 3 * W;
    for_each_row_tile<S>(rows, [&](auto tile_rows, Index r0) {
      constexpr int MR = decltype(tile_rows)::value;
      V acc[MR][3];
      for (int i = 0; i < MR; ++i) acc[i][0] = acc[i][1] = acc[i][2] = S::zero();
      // The candidate's recurrent input is r ⊙ h, kept in the record's fourth block.
      panel_product<S, MR, 3>(H, record + r0 * 4 * H + 3 * H, 4 * H, 1, panel, acc);
      for (int i = 0; i < MR; ++i) {
        const Index row = r0 + i;
        typename S::Real* rec = record + row * 4 * H;
        for (int v = 0; v < 3; ++v) {
          if (!count[v]) continue;
          const V a_n = S::add(S::load_n(gi + row * ld_gi + n_offset + u[v], count[v]), b_n[v]);
          const V n = S::tanh(clipped(S::add(a_n, acc[i][v])));
          const V z = S::load_n(rec + H + u[v], count[v]);
          const V h = S::load_n(h_prev + row * H + u[v], count[v]);
          S::store_n(rec + 2 * H + u[v], n, count[v]);
          S::store_n(h_next + row * ld_h_next + u[v], gate_update<S>(z, h, n), count[v]);
        }
      }
    });
  }
}

template <class S, bool kInputGates>
void backward_reset_after(Index rows, Index hidden, Index unit_begin, Index unit_end,
                          const typename S::Real* record, typename S::Real clip,
                          const typename S::Real* h_prev,
                          const typename S::Real* dy, const typename S::Real* dh_carry,
                          typename S::Real* dgi, typename S::Real* dgh,
                          typename S::Real* dh_prev, bool stream_dgi) {
  using V = typename S::V;
  const Index H = hidden;
  const V one = S::set1(1);
  const bool stream = stream_dgi && unit_begin % S::kWidth == 0 && can_stream_rows<S>(dgi, H);
  const ClippedGradient<S> clipped(clip);
  const RowSource<S> sources[] = {{record, 4 * H},     {record + H, 4 * H}, {record + 2 * H, 4 * H},
                                  {record + 3 * H, 4 * H}, {dy, H},             {h_prev, H}};
  for_each_unit_vector<S>(rows, unit_begin, unit_end, sources, [&](Index b, Index j, int count) {
    const typename S::Real* rec = record + b * 4 * H + j;
    const V r = S::load_n(rec, count), z = S::load_n(rec + H, count);
    const V n = S::load_n(rec + 2 * H, count), hn = S::load_n(rec + 3 * H, count);
    const V dh = S::add(S::load_n(dy + b * H + j, count), S::load_n(dh_carry + b * H + j, count));
    const V h = S::load_n(h_prev + b * H + j, count);
    const V dn_pre = clipped.through_tanh(S::mul(S::mul(dh, S::sub(one, z)), S::sub(one, S::mul(n, n))), n);
    const V dz_pre = clipped.through_sigmoid(S::mul(S::mul(dh, S::sub(h, n)), S::mul(z, S::sub(one, z))), z);
    const V dr_pre = clipped.through_sigmoid(S::mul(S::mul(dn_pre, hn), S::mul(r, S::sub(one, r))), r);
    typename S::Real* gh_row = dgh + b * 3 * H + j;
    S::store_n(gh_row, dr_pre, count);
    S::store_n(gh_row + H, dz_pre, count);
    S::store_n(gh_row + 2 * H, S::mul(dn_pre, r), count);
    if constexpr (kInputGates) {
      typename S::Real* gi_row = dgi + b * 3 * H + j;
      store_streamed<S>(gi_row, dr_pre, count, stream);
      store_streamed<S>(gi_row + H, dz_pre, count, stream);
      store_streamed<S>(gi_row + 2 * H, dn_pre, count, stream);
    } else {
      store_streamed<S>(dgi + b * H + j, dn_pre, count, stream);
    }
    S::store_n(dh_prev + b * H + j, S::mul(dh, z), count);
  });
  end_streaming<S>(stream);
}

template <class S, bool kInputGates>
void backward_reset_before_zn(Index rows, Index hidden, Index unit_begin, Index unit_end,
                              const typename S::Real* record, typename S::Real clip,
                              const typename S::Real* h_prev,
                              const typename S::Real* dy, const typename S::Real* dh_carry,
                              typename S::Real* dgi, typename S::Real* dgh,
                              typename S::Real* dh_prev) {
  using V = typename S::V;
  const Index H = hidden;
  const V one = S::set1(1);
  const ClippedGradient<S> clipped(clip);
  const RowSource<S> sources[] = {{record + H, 4 * H}, {record + 2 * H, 4 * H}, {dy, H}, {h_prev, H}};
  for_each_unit_vector<S>(rows, unit_begin, unit_end, sources, [&](Index b, Index j, int count) {
    const typename S::Real* rec = record + b * 4 * H + j;
    const V z = S::load_n(rec + H, count), n = S::load_n(rec + 2 * H, count);
    const V dh = S::add(S::load_n(dy + b * H + j, count), S::load_n(dh_carry + b * H + j, count));
    const V h = S::load_n(h_prev + b * H + j, count);
    const V dz_pre = clipped.through_sigmoid(S::mul(S::mul(dh, S::sub(h, n)), S::mul(z, S::sub(one, z))), z);
    const V dn_pre = clipped.through_tanh(S::mul(S::mul(dh, S::sub(one, z)), S::sub(one, S::mul(n, n))), n);
    if constexpr (kInputGates) {
      typename S::Real* gi_row = dgi + b * 3 * H + j;
      S::store_n(gi_row + H, dz_pre, count);
      S::store_n(gi_row + 2 * H, dn_pre, count);
    } else {
      typename S::Real* gh_row = dgh + b * 3 * H + j;
      S::store_n(gh_row + H, dz_pre, count);
      S::store_n(gh_row + 2 * H, dn_pre, count);
      S::store_n(dgi + b * H + j, dn_pre, count);
    }
    S::store_n(dh_prev + b * H + j, S::mul(dh, z), count);
  });
}

template <class S>
void backward_reset_before_r(Index rows, Index hidden, Index unit_begin, Index unit_end,
                             const typename S::Real* record, typename S::Real clip,
                             const typename S::Real* h_prev,
                             const typename S::Real* d_rh, typename S::Real* dgi,
                             typename S::Real* dh_prev) {
  using V = typename S::V;
  const Index H = hidden;
  const V one = S::set1(1);
  const ClippedGradient<S> clipped(clip);
  const RowSource<S> sources[] = {{record, 4 * H}, {h_prev, H}};
  for_each_unit_vector<S>(rows, unit_begin, unit_end, sources, [&](Index b, Index j, int count) {
    const V r = S::load_n(record + b * 4 * H + j, count);
    const V d = S::load_n(d_rh + b * H + j, count);
    const V h = S::load_n(h_prev + b * H + j, count);
    S::store_n(dgi + b * 3 * H + j, clipped.through_sigmoid(S::mul(S::mul(d, h), S::mul(r, S::sub(one, r))), r), count);
    typename S::Real* out = dh_prev + b * H + j;
    S::store_n(out, S::fma(d, r, S::load_n(out, count)), count);
  });
}

template <class S, bool kInputGates, bool kHiddenGates>
cells::GruKernels<typename S::Real> make_gru_form_kernels() {
  return {step_reset_after<S, kInputGates, kHiddenGates>,
          step_reset_before_rz<S, kInputGates, kHiddenGates>,
          step_reset_before_n<S, kInputGates>,
          backward_reset_after<S, kInputGates>,
          backward_reset_before_zn<S, kInputGates>,
          backward_reset_before_r<S>};
}

template <class S>
cells::GruKernelForms<typename S::Real> make_gru_kernels() {
  return {make_gru_form_kernels<S, true, true>(), make_gru_form_kernels<S, false, true>(),
          make_gru_form_kernels<S, false, false>()};
}

}  // namespace fastgru::kernels
