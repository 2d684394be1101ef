// The minimal gated unit's fused step kernels (EQUATIONS.md §4), one table per ISA.
//
// Both forward phases run natural panels (kernels/kernels.h) of 3W units: W_hf^T first, then
// W_hn^T, whose input f ⊙ h needs every unit's f. A record row (4H) holds f, n and f ⊙ h_product
// (the candidate product's input); its fourth block is unused.
#pragma once

#include "kernels/kernels.h"

namespace fastgru::cells {

using kernels::Index;

// Gate phase for natural panels [panel_begin, panel_end) of W_hf^T: f = σ(a_f + W_hf h_product
// + b_hf), and f ⊙ h_product, into the record. gi (rows, 2H, ld_gi) holds W_i x + b_i; bias_hh
// may be nullptr.
template <typename Real>
using StepMguGateFn = void (*)(Index rows, Index hidden, Index panel_begin, Index panel_end,
                               const Real* f_panels, const Real* h_product, const Real* gi,
                               Index ld_gi, const Real* bias_hh, Real* record);

// Candidate phase for natural panels of W_hn^T: n = tanh(a_n + W_hn (f ⊙ h) + b_hn) from the
// record's f ⊙ h, then h_next = (1 − f) ⊙ h_prev + f ⊙ n; n into the record.
template <typename Real>
using StepMguCandidateFn = void (*)(Index rows, Index hidden, Index panel_begin,
                                    Index panel_end, const Real* n_panels, const Real* h_prev,
                                    const Real* gi, Index ld_gi, const Real* bias_hh,
                                    Real* h_next, Index ld_h_next, Real* record);

// Backward, first half, for units [unit_begin, unit_end): with dh = dy + dh_carry, the n block
// of dgi (rows, 2H) = dh ⊙ f ⊙ (1 − n²), the f block = dh ⊙ (n − h_prev) (the gate update's
// share of dL/df, completed by the second half), dh_prev = dh ⊙ (1 − f).
template <typename Real>
using BackwardMguCandidateFn = void (*)(Index rows, Index hidden, Index unit_begin,
                                        Index unit_end, const Real* record, const Real* h_prev,
                                        const Real* dy, const Real* dh_carry, Real* dgi,
                                        Real* dh_prev);

// Backward, second half, given d_fh = dL/d(f ⊙ h_product) (rows, H): the f block of dgi
// = (its gate-update share + d_fh ⊙ h_product) ⊙ f ⊙ (1 − f), and d_product += d_fh ⊙ f.
template <typename Real>
using BackwardMguGateFn = void (*)(Index rows, Index hidden, Index unit_begin, Index unit_end,
                                   const Real* record, const Real* h_product, const Real* d_fh,
                                   Real* dgi, Real* d_product);

template <typename Real>
struct MguKernels {
  StepMguGateFn<Real> step_gate;
  StepMguCandidateFn<Real> step_candidate;
  BackwardMguCandidateFn<Real> backward_candidate;
  BackwardMguGateFn<Real> backward_gate;
};

// The gate arithmetic of a bf16 or int8 MGU after its products (cells/quantized_gate_vectors.h
// gives the layout of gh, the products with their biases): f from gi and gh into the record
// with f ⊙ h at 3H; then n from the candidate's product of f ⊙ h, and the update.
using QuantizedMguGateFn = void (*)(Index rows, Index hidden, Index panel_begin, Index panel_end,
                                    const float* gh, Index ld_gh, const float* gi, Index ld_gi,
                                    const float* h_prev, float* record);
using QuantizedMguCandidateFn = void (*)(Index rows, Index hidden, Index panel_begin,
                                         Index panel_end, const float* gh, Index ld_gh,
                                         const float* gi, Index ld_gi, const float* h_prev,
                                         const float* record, float* h_next, Index ld_h_next);

struct MguQuantizedGates {
  QuantizedMguGateFn gate;
  QuantizedMguCandidateFn candidate;
};

// One table per ISA, each defined in that ISA's source file (f32-mgu-<isa>.cpp, mgu-scalar.cpp).
const MguKernels<float>& f32_mgu_kernels__scalar();
const MguKernels<double>& f64_mgu_kernels__scalar();
const MguKernels<float>& f32_mgu_kernels__avx2();
const MguKernels<float>& f32_mgu_kernels__avx512();
const MguQuantizedGates& mgu_quantized_gates__scalar();
const MguQuantizedGates& mgu_quantized_gates__avx2();
const MguQuantizedGates& mgu_quantized_gates__avx512();

}  // namespace fastgru::cells
