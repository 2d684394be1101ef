// Backward time loop: each step runs the fused gate derivatives and the recurrent product for
// dL/dh; dx, dW_ih, dW_hh and the bias gradients are single products or reductions afterwards.
// Threads split rows or hidden units as in the forward loop.
#include <omp.h>

#include <algorithm>
#include <cstring>

#include "driver/layer.h"
#include "driver/matmul.h"
#include "driver/scratch.h"
#include "driver/threads.h"

namespace fastgru::driver {

namespace {

// grad_w (rows_out, H) += dg^T · H_prev over all steps: h0 for step 0, y[t-1] after it.
template <typename Real>
void accumulate_recurrent_weight_gradient(const kernels::KernelTable<Real>& k, Index steps,
                                          Index batch, Index rows_out, Index hidden,
                                          const Real* dg, Index ld_dg, const Real* h0,
                                          const Real* y, Real* grad_w) {
  if (steps > 1) {
    matmul(k, rows_out, hidden, (steps - 1) * batch, dg + batch * ld_dg, Index(1), ld_dg, y,
           hidden, Index(1), grad_w, hidden, true);
  }
  if (h0 && steps > 0) {
    matmul(k, rows_out, hidden, batch, dg, Index(1), ld_dg, h0, hidden, Index(1), grad_w, hidden,
           true);
  }
}

}  // namespace

template <typename Real>
void run_backward(const PackedLayer<Real>& L, Index steps, Index batch, const Real* x,
                  const Real* h0, const Real* y, const Real* cache, const Real* dy,
                  const Real* dh_n, Real* dx, Real* dh0, const GruGradientsView<Real>& grads) {
  const kernels::KernelTable<Real>& k = *L.kernels;
  const Index B = batch, H = L.hidden, I = L.input, G = 3 * H, rows = steps * B;
  const Index PW = L.panel_width(), panels = (H + PW - 1) / PW, panel_stride = 3 * H * PW;
  const bool reset_after = L.mode == ResetMode::after;

  Scratch<Real> dgi(rows * G);
  // Reset-after feeds r ⊙ dn to W_hn, unlike the input side; reset-before's differ in no block.
  Scratch<Real> dgh_storage(reset_after ? rows * G : 0);
  Real* dgh = reset_after ? dgh_storage.data() : dgi.data();
  Scratch<Real> dh_even(B * H), dh_odd(B * H), d_rh(B * H), zero_state(B * H);
  std::fill(zero_state.data(), zero_state.data() + B * H, Real(0));
  if (dh_n) {
    std::memcpy(dh_even.data(), dh_n, sizeof(Real) * B * H);
  } else {
    std::fill(dh_even.data(), dh_even.data() + B * H, Real(0));
  }
  const Real* backward_panels = L.backward_panels.data();

  const int threads = threads_for(2.0 * B * G * H);
  const bool by_rows = split_by_rows(B, threads, k.tile_rows);
#pragma omp parallel num_threads(threads) if (threads > 1)
  {
    const int nt = omp_get_num_threads(), tid = omp_get_thread_num();
    const Range my_rows = by_rows ? split_evenly(B, nt, tid) : Range{0, B};
    const Range my_panels = by_rows ? Range{0, panels} : split_evenly(panels, nt, tid);
    const Index r0 = my_rows.begin, n = my_rows.end - my_rows.begin;
    const Index u0 = my_panels.begin * PW, u1 = std::min(my_panels.end * PW, H);
    for (Index t = steps - 1; t >= 0; --t) {
      // dL/dh_t arrives in `carry`; dL/dh_{t-1} leaves in `prev` (the buffers alternate).
      const bool even = (steps - 1 - t) % 2 == 0;
      const Real* carry = (even ? dh_even.data() : dh_odd.data()) + r0 * H;
      Real* prev = (even ? dh_odd.data() : dh_even.data()) + r0 * H;
      const Real* h_prev = (t > 0 ? y + (t - 1) * B * H : (h0 ? h0 : zero_state.data())) + r0 * H;
      const Real* record = cache + t * B * 4 * H + r0 * 4 * H;
      const Real* dy_t = dy + t * B * H + r0 * H;
      Real* dgi_t = dgi.data() + t * B * G + r0 * G;
      if (reset_after) {
        Real* dgh_t = dgh + t * B * G + r0 * G;
        k.backward_reset_after(n, H, u0, u1, record, h_prev, dy_t, carry, dgi_t, dgh_t, prev);
        if (!by_rows) {
#pragma omp barrier
        }
        k.multiply_panels(n, H, G, dgh_t, G, 1, backward_panels, panel_stride, my_panels.begin,
                          my_panels.end, prev, H, true, nullptr);
      } else {
        k.backward_reset_before_zn(n, H, u0, u1, record, h_prev, dy_t, carry, dgi_t, prev);
        if (!by_rows) {
#pragma omp barrier
        }
        k.multiply_panels(n, H, H, dgi_t + 2 * H, G, 1, backward_panels + 2 * H * PW,
                          panel_stride, my_panels.begin, my_panels.end, d_rh.data() + r0 * H, H,
                          false, nullptr);
        k.backward_reset_before_r(n, H, u0, u1, record, h_prev, d_rh.data() + r0 * H, dgi_t, prev);
        if (!by_rows) {
#pragma omp barrier
        }
        k.multiply_panels(n, H, 2 * H, dgi_t, G, 1, backward_panels, panel_stride,
                          my_panels.begin, my_panels.end, prev, H, true, nullptr);
      }
    }
  }
  const Real* dh_first = (steps % 2 == 1) ? dh_odd.data() : dh_even.data();
  if (dh0) std::memcpy(dh0, dh_first, sizeof(Real) * B * H);

  matmul(k, rows, I, G, dgi.data(), G, Index(1), L.weight_ih.data(), I, Index(1), dx, I, false);
  matmul(k, G, I, rows, dgi.data(), Index(1), G, x, I, Index(1), grads.weight_ih, I, true);
  if (reset_after) {
    accumulate_recurrent_weight_gradient(k, steps, B, G, H, dgh, G, h0, y, grads.weight_hh);
  } else {
    accumulate_recurrent_weight_gradient(k, steps, B, 2 * H, H, dgi.data(), G, h0, y,
                                         grads.weight_hh);
    // The candidate's recurrent input is r ⊙ h_{t-1}, kept in the cache's fourth block.
    matmul(k, H, H, rows, dgi.data() + 2 * H, Index(1), G, cache + 3 * H, 4 * H, Index(1),
           grads.weight_hh + 2 * H * H, H, true);
  }
  if (grads.bias_ih) {
    const int sum_threads = threads_for(2.0 * rows * G);
#pragma omp parallel num_threads(sum_threads) if (sum_threads > 1)
    {
      // Threads take disjoint column ranges, whole vectors each, so no sum is shared.
      const Index W = k.vector_width;
      const Range vectors = split_evenly((G + W - 1) / W, omp_get_num_threads(), omp_get_thread_num());
      const Index c0 = vectors.begin * W, c1 = std::min(vectors.end * W, G);
      k.column_sum(rows, c1 - c0, dgi.data() + c0, G, grads.bias_ih + c0);
      k.column_sum(rows, c1 - c0, dgh + c0, G, grads.bias_hh + c0);
    }
  }
}

template void run_backward<float>(const PackedLayer<float>&, Index, Index, const float*,
                                  const float*, const float*, const float*, const float*,
                                  const float*, float*, float*, const GruGradientsView<float>&);
template void run_backward<double>(const PackedLayer<double>&, Index, Index, const double*,
                                   const double*, const double*, const double*, const double*,
                                   const double*, double*, double*,
                                   const GruGradientsView<double>&);

}  // namespace fastgru::driver
