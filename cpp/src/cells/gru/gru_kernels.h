// The GRU's fused step kernels (EQUATIONS.md §1, §2), one table per ISA.
//
// Packed weight layouts (built by gru_cell.cpp):
//   gate panels   W_hh^T (K = H) in one panel per block of W hidden units holding that block's
//                 r, z, n columns side by side (3W wide), so the gate update runs on the
//                 product's accumulators (reset-after); reset-before uses r, z only (2W).
//   candidate     reset-before: W_hn^T (K = H, N = H) in natural panels (kernels/kernels.h).
// A "record" row is (4H): r, z, n and the fourth term of the training cache (fastgru/network.h).
#pragma once

#include "kernels/kernels.h"

namespace fastgru::cells {

using kernels::Index;

// Reset-after step (§1) for unit blocks [block_begin, block_end): gh = h_product · W_hh^T from
// gate panels, then h_next = (1 − z) ⊙ n + z ⊙ h_prev. h_product (rows, H) is h_prev itself, or
// h_prev with recurrent dropout applied. gi (rows, 3H, ld_gi) holds W_i x + b_i; bias_hh may be
// nullptr; clip bounds the pre-activations of r, z and n (ONNX's clip, §1.1; ∞ for none);
// record (rows, 4H) may be nullptr (inference). stream_record: the record is not read again
// soon, so it may be written around the caches. Every kernel below takes clip alike.
template <typename Real>
using StepResetAfterFn = void (*)(Index rows, Index hidden, Index block_begin, Index block_end,
                                  const Real* gate_panels, const Real* h_prev,
                                  const Real* h_product, const Real* gi, Index ld_gi,
                                  const Real* bias_hh, Real clip, Real* h_next,
                                  Index ld_h_next, Real* record, bool stream_record);

// Reset-before step (§2), first half, for unit blocks: r and z from h_product, and
// r ⊙ h_product (the candidate product's input), into the record.
template <typename Real>
using StepResetBeforeRzFn = void (*)(Index rows, Index hidden, Index block_begin,
                                     Index block_end, const Real* rz_gate_panels,
                                     const Real* h_product, const Real* gi, Index ld_gi,
                                     const Real* bias_hh, Real clip, Real* record);

// Reset-before step, second half, for natural panels of W_hn^T (3W units each): n from
// W_hn (r ⊙ h) read from the record, then h_next.
template <typename Real>
using StepResetBeforeNFn = void (*)(Index rows, Index hidden, Index panel_begin,
                                    Index panel_end, const Real* n_panels, const Real* h_prev,
                                    const Real* gi, Index ld_gi, const Real* bias_hh, Real clip,
                                    Real* h_next, Index ld_h_next, Real* record);

// Backward of a reset-after step for units [unit_begin, unit_end): with dh = dy + dh_carry,
// dgi (rows, 3H) = dL/d(W_i x + b_i), dgh (rows, 3H) = dL/d(W_h h + b_h), dh_prev = dh ⊙ z
// (the caller adds the recurrent product). stream_dgi: dgi is not read again soon, so it may
// be written around the caches.
template <typename Real>
using BackwardResetAfterFn = void (*)(Index rows, Index hidden, Index unit_begin,
                                      Index unit_end, const Real* record, Real clip,
                                      const Real* h_prev, const Real* dy, const Real* dh_carry,
                                      Real* dgi, Real* dgh, Real* dh_prev, bool stream_dgi);

// Backward of a reset-before step, first half: the z and n blocks of dgi, dh_prev = dh ⊙ z.
// A form whose gates do not see x writes dgi's n block alone (rows of H) and z, n into dgh
// (rows, 3H); the full GRU leaves dgh alone.
template <typename Real>
using BackwardResetBeforeZnFn = void (*)(Index rows, Index hidden, Index unit_begin,
                                         Index unit_end, const Real* record, Real clip,
                                         const Real* h_prev, const Real* dy,
                                         const Real* dh_carry, Real* dgi, Real* dgh,
                                         Real* dh_prev);

// Backward of a reset-before step, second half, given d_rh = dL/d(r ⊙ h) (rows, H):
// the r block of dgi (rows, 3H: dgh for a form whose gates do not see x), and
// dh_prev += d_rh ⊙ r.
template <typename Real>
using BackwardResetBeforeRFn = void (*)(Index rows, Index hidden, Index unit_begin,
                                        Index unit_end, const Real* record, Real clip,
                                        const Real* h_prev, const Real* d_rh, Real* dgi,
                                        Real* dh_prev);

template <typename Real>
struct GruKernels {
  StepResetAfterFn<Real> step_reset_after;
  StepResetBeforeRzFn<Real> step_reset_before_rz;
  StepResetBeforeNFn<Real> step_reset_before_n;
  BackwardResetAfterFn<Real> backward_reset_after;
  BackwardResetBeforeZnFn<Real> backward_reset_before_zn;
  BackwardResetBeforeRFn<Real> backward_reset_before_r;
};

// The kernels of each form of the gates (EQUATIONS.md §7). Where the gates do not see x, the
// projection gi holds n's block alone (rows of H, ld_gi = H) and so does dgi; dgh is always
// (rows, 3H). Where they see neither x nor h (type 3), the gate panels hold n's columns alone
// (W wide) and reset-before's first phase runs no product.
template <typename Real>
struct GruKernelForms {
  GruKernels<Real> full;          // r, z see x, h and biases
  GruKernels<Real> hidden_gates;  // r, z see h (and biases): types 1, 2
  GruKernels<Real> bias_gates;    // r, z see their biases alone: type 3
};

// The gate arithmetic of a bf16 or int8 GRU after its products (gru_quantized_gates.h gives
// the layout of gh, the recurrent products with the recurrent biases): reset-after's update for
// unit panels of 3W units; reset-before's r, z (into the record, with r ⊙ h at 3H) and then n
// and the update. step_bias (3H: b_hr, b_hz, b_hn, zeros where the form has none) gives the
// constant gates of type 3; clip bounds the pre-activations as in the float32 kernels.
using QuantizedAfterGatesFn = void (*)(Index rows, Index hidden, Index panel_begin,
                                       Index panel_end, const float* gh, Index ld_gh,
                                       const float* gi, Index ld_gi, const float* step_bias,
                                       float clip, const float* h_prev, float* h_next,
                                       Index ld_h_next);
using QuantizedBeforeRzFn = void (*)(Index rows, Index hidden, Index panel_begin,
                                     Index panel_end, const float* gh, Index ld_gh,
                                     const float* gi, Index ld_gi, const float* step_bias,
                                     float clip, const float* h_prev, float* record);
using QuantizedBeforeNFn = void (*)(Index rows, Index hidden, Index panel_begin, Index panel_end,
                                    const float* gh, Index ld_gh, const float* gi, Index ld_gi,
                                    float clip, const float* h_prev, const float* record,
                                    float* h_next, Index ld_h_next);

struct GruQuantizedGates {
  QuantizedAfterGatesFn reset_after;
  QuantizedBeforeRzFn reset_before_rz;
  QuantizedBeforeNFn reset_before_n;
};

// One per form of the gates, as GruKernelForms.
struct GruQuantizedGateForms {
  GruQuantizedGates full;
  GruQuantizedGates hidden_gates;
  GruQuantizedGates bias_gates;
};

// One table per ISA, each defined in that ISA's source file (f32-gru-<isa>.cpp, gru-scalar.cpp).
const GruKernelForms<float>& f32_gru_kernels__scalar();
const GruKernelForms<double>& f64_gru_kernels__scalar();
const GruKernelForms<float>& f32_gru_kernels__avx2();
const GruKernelForms<float>& f32_gru_kernels__avx512();
const GruQuantizedGateForms& gru_quantized_gates__scalar();
const GruQuantizedGateForms& gru_quantized_gates__avx2();
const GruQuantizedGateForms& gru_quantized_gates__avx512();

}  // namespace fastgru::cells
