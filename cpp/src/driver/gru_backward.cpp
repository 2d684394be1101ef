// Backward time loop: each step runs the fused gate derivatives and the recurrent product for
// dL/dh; dx, dW_ih, dW_hh and the bias gradients are single products or reductions afterwards.
#include <algorithm>
#include <cstring>
#include <utility>

#include "driver/driver.h"
#include "driver/scratch.h"

namespace fastgru::driver {
namespace {

// dW += dG^T · H_prev over all steps, where H_prev is h0 for step 0 and y[t-1] after it.
template <typename Real>
void accumulate_recurrent_weight_gradient(const kernels::KernelTable<Real>& k, Index steps,
                                          Index batch, Index rows_out, Index hidden,
                                          const Real* dg, Index ld_dg, const Real* h0,
                                          const Real* y, Real* grad_w) {
  if (steps > 1) {
    k.gemm(rows_out, hidden, (steps - 1) * batch, dg + batch * ld_dg, ld_dg, true, y, hidden,
           false, grad_w, hidden, true);
  }
  if (h0) k.gemm(rows_out, hidden, batch, dg, ld_dg, true, h0, hidden, false, grad_w, hidden, true);
}

}  // namespace

template <typename Real>
void run_backward(const kernels::KernelTable<Real>& k, const LayerWeights<Real>& w, Index steps,
                  Index batch, const Real* x, const Real* h0, const Real* y, const Real* cache,
                  const Real* dy, const Real* dh_n, Real* dx, Real* dh0,
                  const GruGradientsView<Real>& grads) {
  const Index B = batch, H = w.hidden, I = w.input, G = 3 * H, rows = steps * B;
  const bool reset_after = w.mode == ResetMode::after;

  Scratch<Real> dgi(rows * G);
  // Reset-after feeds r ⊙ dn to W_hn, unlike the input side; reset-before's differ in no block.
  Scratch<Real> dgh_storage(reset_after ? rows * G : 0);
  Real* dgh = reset_after ? dgh_storage.data() : dgi.data();
  Scratch<Real> dh_carry(B * H), dh_prev(B * H), d_rh(B * H), zero_state(B * H);
  std::fill(zero_state.data(), zero_state.data() + B * H, Real(0));
  if (dh_n) {
    std::memcpy(dh_carry.data(), dh_n, sizeof(Real) * B * H);
  } else {
    std::fill(dh_carry.data(), dh_carry.data() + B * H, Real(0));
  }

  Real* carry = dh_carry.data();
  Real* prev = dh_prev.data();
  for (Index t = steps - 1; t >= 0; --t) {
    const Real* h_prev = t > 0 ? y + (t - 1) * B * H : (h0 ? h0 : zero_state.data());
    const Real* record = cache + t * B * 4 * H;
    const Real* dy_t = dy + t * B * H;
    Real* dgi_t = dgi.data() + t * B * G;
    if (reset_after) {
      Real* dgh_t = dgh + t * B * G;
      k.gates_reset_after_backward(B, H, record, h_prev, dy_t, carry, dgi_t, dgh_t, prev);
      k.gemm(B, H, G, dgh_t, G, false, w.weight_hh, H, false, prev, H, true);
    } else {
      k.gates_reset_before_backward_zn(B, H, record, h_prev, dy_t, carry, dgi_t, prev);
      k.gemm(B, H, H, dgi_t + 2 * H, G, false, w.weight_hh + 2 * H * H, H, false, d_rh.data(), H,
             false);
      k.gates_reset_before_backward_r(B, H, record, h_prev, d_rh.data(), dgi_t, prev);
      k.gemm(B, H, 2 * H, dgi_t, G, false, w.weight_hh, H, false, prev, H, true);
    }
    std::swap(carry, prev);
  }
  if (dh0) std::memcpy(dh0, carry, sizeof(Real) * B * H);

  k.gemm(rows, I, G, dgi.data(), G, false, w.weight_ih, I, false, dx, I, false);
  k.gemm(G, I, rows, dgi.data(), G, true, x, I, false, grads.weight_ih, I, true);
  if (reset_after) {
    accumulate_recurrent_weight_gradient(k, steps, B, G, H, dgh, G, h0, y, grads.weight_hh);
  } else {
    accumulate_recurrent_weight_gradient(k, steps, B, 2 * H, H, dgi.data(), G, h0, y,
                                         grads.weight_hh);
    // The candidate's recurrent input is r ⊙ h_{t-1}, kept in the cache's fourth block.
    k.gemm(H, H, rows, dgi.data() + 2 * H, G, true, cache + 3 * H, 4 * H, false,
           grads.weight_hh + 2 * H * H, H, true);
  }
  if (grads.bias_ih) k.column_sum(rows, G, dgi.data(), G, grads.bias_ih);
  if (grads.bias_hh) k.column_sum(rows, G, dgh, G, grads.bias_hh);
}

template void run_backward<float>(const kernels::KernelTable<float>&, const LayerWeights<float>&,
                                  Index, Index, const float*, const float*, const float*,
                                  const float*, const float*, const float*, float*, float*,
                                  const GruGradientsView<float>&);
template void run_backward<double>(const kernels::KernelTable<double>&,
                                   const LayerWeights<double>&, Index, Index, const double*,
                                   const double*, const double*, const double*, const double*,
                                   const double*, double*, double*,
                                   const GruGradientsView<double>&);

}  // namespace fastgru::driver
