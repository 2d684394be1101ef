// Backward time loop: each step runs the fused gate derivatives and the recurrent product for
// dL/dh over the rows active at that step; dx, dW_ih, dW_hh and the bias gradients are single
// products or reductions afterwards (for the LiGRU after batch normalisation's backward, which
// turns dL/da into dL/d(W_ih x)). Threads split rows or hidden units as in the forward loop.
#include <algorithm>
#include <cstring>

#include "driver/batch_norm.h"
#include "driver/layer.h"
#include "driver/matmul.h"
#include "driver/scratch.h"
#include "driver/work_split.h"
#include "threads/contention.h"

namespace fastgru::driver {
namespace {

// grad_w (rows_out, H) += dg^T · H_prev over all steps: h0 for step 0, the previous step's state
// after it. In a dense batch H_prev is h0 followed by y itself; otherwise it is gathered.
// column_sums (rows_out) or nullptr: adds the column sums of dg over every row.
template <typename Real>
void accumulate_recurrent_weight_gradient(const kernels::KernelTable<Real>& k, const StepRows& s,
                                          Index rows_out, Index hidden, const Real* dg,
                                          Index ld_dg, const Real* h_first, const Real* h_prev_all,
                                          const Real* y, Real* grad_w, Real* column_sums) {
  if (h_prev_all) {
    matmul(k, rows_out, hidden, s.total_rows(), dg, Index(1), ld_dg, h_prev_all, hidden, Index(1),
           grad_w, hidden, true, column_sums);
    return;
  }
  if (s.steps > 1) {
    matmul(k, rows_out, hidden, s.total_rows() - s.batch, dg + s.batch * ld_dg, Index(1), ld_dg,
           y, hidden, Index(1), grad_w, hidden, true, column_sums);
  }
  if (s.steps == 0) return;
  if (h_first) {
    matmul(k, rows_out, hidden, s.batch, dg, Index(1), ld_dg, h_first, hidden, Index(1), grad_w,
           hidden, true, column_sums);
  } else if (column_sums) {
    // A zero h0 adds nothing to grad_w, but step 0's rows still count in the sums.
    k.column_sum(s.batch, rows_out, dg, ld_dg, column_sums);
  }
}

}  // namespace

template <typename Real>
void run_backward(const PackedLayer<Real>& L, const StepRows& s, const Real* x, const Real* h0,
                  const Real* y, const Real* cache, const Real* dy, const Real* dh_n, Real* dx,
                  Real* dh0, const GruGradientsView<Real>& grads, const Regularisation<Real>* reg,
                  const Real* batch_statistics) {
  // No rows: dx and dh0 are empty and the gradients sum no terms, whatever the step count.
  if (s.batch == 0) return;
  const kernels::KernelTable<Real>& k = *L.kernels;
  const Index B = s.batch, H = L.hidden, I = L.input, G = L.gates() * H, rows = s.total_rows();
  const Index PW = L.panel_width(), panels = (H + PW - 1) / PW, panel_stride = G * PW;
  const bool ligru = L.cell == Cell::ligru;
  const bool reset_after = !ligru && L.mode == ResetMode::after;
  const auto backward_ligru = ligru ? k.backward_ligru[L.activation] : nullptr;

  Scratch<Real> dgi(rows * G);
  // Reset-after feeds r ⊙ dn to W_hn, unlike the input side; reset-before's and the LiGRU's
  // differ in no block.
  Scratch<Real> dgh_storage(reset_after ? rows * G : 0);
  Real* dgh = reset_after ? dgh_storage.data() : dgi.data();
  Scratch<Real> dh_even(B * H), dh_odd(B * H), d_rh(B * H), zero_state(B * H);
  std::fill(zero_state.data(), zero_state.data() + B * H, Real(0));
  const Real* h_first = h0 ? h0 : zero_state.data();
  const Real* dh_last = dh_n ? dh_n : zero_state.data();
  const Real* backward_panels = L.backward_panels.data();
  const Real* recurrent_keep = reg ? reg->recurrent_keep : nullptr;
  const Real* masked_states = reg ? reg->masked_states : nullptr;
  const Real* zoneout_keep = reg ? reg->zoneout_keep : nullptr;
  // With zoneout, the candidate's share of dL/dh_t; with recurrent dropout, dL/d(h ⊙ keep).
  Scratch<Real> d_candidate(zoneout_keep ? B * H : 0), d_masked(recurrent_keep ? B * H : 0);

  // dgi is read only by the products after the loop; when it outgrows L2, it is written around
  // the caches, as the forward's records are.
  const bool stream_dgi = rows * G * Index(sizeof(Real)) > kStreamedRowBytes;
  const StepLoopPlan plan = plan_step_loop(2.0 * B * G * H, s.steps, B, k.tile_rows);
  const bool by_rows = plan.by_rows;
  threads::StepLoopWatch watch(uneven_share(panels, plan.threads));
  threads::parallel(plan.threads, [&](const threads::Worker& worker) {
    const threads::Worker alone(0, 1, nullptr);
    const threads::Worker* team = &worker;
    const Range my_rows =
        by_rows ? balanced_row_range(B, 0, s.steps, [&](Index t) { return s.rows_at(t); }, k.tile_rows,
                                     worker.count(), worker.index())
                : Range{0, B};
    Range my_panels{0, panels};
    Index u0 = 0, u1 = H;
    // A thread left without panels (fewer panels than threads) gets an empty unit range.
    auto take_units = [&](int nt, int tid) {
      my_panels = split_evenly(panels, nt, tid);
      u0 = std::min(my_panels.begin * PW, H);
      u1 = std::min(my_panels.end * PW, H);
    };
    if (!by_rows) take_units(worker.count(), worker.index());
    for (Index t = s.steps - 1; t >= 0; --t) {
      const Index step = s.steps - 1 - t;
      // dL/dh_t arrives in `carry`; dL/dh_{t-1} leaves in `prev` (the buffers alternate).
      const bool even = (s.steps - 1 - t) % 2 == 0;
      Real* carry = even ? dh_even.data() : dh_odd.data();
      Real* prev = even ? dh_odd.data() : dh_even.data();
      const Index active = s.rows_at(t), continuing = s.rows_at(t + 1);
      const Real* h_prev = t > 0 ? y + s.offset(t - 1) * H : h_first;
      const Real* record = cache + s.offset(t) * 4 * H;
      const Real* dy_t = dy + s.offset(t) * H;
      Real* dgi_t = dgi.data() + s.offset(t) * G;
      Real* dgh_t = dgh + s.offset(t) * G;
      auto run_rows = [&](Index r0, Index n, Index unit_begin, Index unit_end) {
        // Rows whose sequence ends at this step start from dL/dh_n.
        for (Index r = std::max(r0, continuing); r < r0 + n; ++r)
          std::copy(dh_last + r * H + unit_begin, dh_last + r * H + unit_end,
                    carry + r * H + unit_begin);
        const Real* rec = record + r0 * 4 * H;
        const Real* hp = h_prev + r0 * H;
        // The gate derivatives see dL/dh of the candidate state: all of dy + carry, or with
        // zoneout the share of the units that did not keep their previous state.
        const Real* d_state = dy_t + r0 * H;
        const Real* d_carry = carry + r0 * H;
        const Real* zone = zoneout_keep ? zoneout_keep + s.offset(t) * H : nullptr;
        if (zone) {
          for (Index r = r0; r < r0 + n; ++r)
            for (Index u = unit_begin; u < unit_end; ++u)
              d_candidate.data()[r * H + u] =
                  (Real(1) - zone[r * H + u]) * (dy_t[r * H + u] + carry[r * H + u]);
          d_state = d_candidate.data() + r0 * H;
          d_carry = zero_state.data() + r0 * H;
        }
        // The recurrent products give dL/d(h ⊙ keep) with recurrent dropout, else dL/dh itself.
        const Real* product_input = recurrent_keep ? masked_states + s.offset(t) * H : nullptr;
        Real* d_product = (recurrent_keep ? d_masked.data() : prev) + r0 * H;
        if (reset_after || ligru) {
          if (ligru) {
            backward_ligru(n, H, unit_begin, unit_end, rec, hp, d_state, d_carry, L.negative_slope,
                           dgi_t + r0 * G, prev + r0 * H);
          } else {
            k.backward_reset_after(n, H, unit_begin, unit_end, rec, hp, d_state, d_carry,
                                   dgi_t + r0 * G, dgh_t + r0 * G, prev + r0 * H, stream_dgi);
          }
          if (!by_rows) {
            team->barrier();
            watch.observe(*team, step);
          }
          k.multiply_panels(n, H, G, dgh_t + r0 * G, G, 1, backward_panels, panel_stride,
                            my_panels.begin, my_panels.end, d_product, H, !recurrent_keep,
                            nullptr);
        } else {
          k.backward_reset_before_zn(n, H, unit_begin, unit_end, rec, hp, d_state, d_carry,
                                     dgi_t + r0 * G, prev + r0 * H);
          if (recurrent_keep) {
            for (Index r = r0; r < r0 + n; ++r)
              std::fill(d_masked.data() + r * H + unit_begin, d_masked.data() + r * H + unit_end, Real(0));
          }
          if (!by_rows) {
            team->barrier();
            watch.observe(*team, step);
          }
          k.multiply_panels(n, H, H, dgi_t + r0 * G + 2 * H, G, 1, backward_panels + 2 * H * PW,
                            panel_stride, my_panels.begin, my_panels.end, d_rh.data() + r0 * H, H,
                            false, nullptr);
          // r multiplies the product's input: h, or h ⊙ keep.
          k.backward_reset_before_r(n, H, unit_begin, unit_end, rec,
                                    product_input ? product_input + r0 * H : hp,
                                    d_rh.data() + r0 * H, dgi_t + r0 * G, d_product);
          if (!by_rows) team->barrier();
          k.multiply_panels(n, H, 2 * H, dgi_t + r0 * G, G, 1, backward_panels, panel_stride,
                            my_panels.begin, my_panels.end, d_product, H, true, nullptr);
        }
        if (!recurrent_keep && !zone) return;
        for (Index r = r0; r < r0 + n; ++r)
          for (Index u = unit_begin; u < unit_end; ++u) {
            Real& d = prev[r * H + u];
            if (recurrent_keep) d += recurrent_keep[r * H + u] * d_masked.data()[r * H + u];
            if (zone) d += zone[r * H + u] * (dy_t[r * H + u] + carry[r * H + u]);
          }
      };
      if (by_rows) {
        const Index end = std::min(my_rows.end, active);
        if (end > my_rows.begin) run_rows(my_rows.begin, end - my_rows.begin, 0, H);
      } else {
        run_rows(0, active, u0, u1);
        // On a busy machine the loop may continue on thread 0 alone, over every unit, once
        // every thread has finished this step (the steps have no closing barrier otherwise).
        if (team != &alone && watch.alone(step)) {
          team->barrier();
          if (worker.index() != 0) return;
          team = &alone;
          take_units(1, 0);
        }
      }
    }
  });
  if (dh0) {
    // Every row is active at step 0, so dL/dh0 is the last `prev` (dh_n when there are no steps).
    const Real* first = s.steps == 0 ? dh_last : (s.steps % 2 == 1 ? dh_odd.data() : dh_even.data());
    std::memcpy(dh0, first, sizeof(Real) * B * H);
  }

  // With variable lengths the rows of step t's previous state are a prefix of step t-1's rows.
  Scratch<Real> h_prev_all(s.batch_sizes && !recurrent_keep ? rows * H : 0);
  if (s.batch_sizes && !recurrent_keep) {
    for (Index t = 0; t < s.steps; ++t) {
      const Real* source = t > 0 ? y + s.offset(t - 1) * H : h_first;
      std::memcpy(h_prev_all.data() + s.offset(t) * H, source, sizeof(Real) * s.rows_at(t) * H);
    }
  }
  // With recurrent dropout the products' input was h ⊙ keep, kept by forward.
  const Real* gathered = recurrent_keep ? masked_states : (s.batch_sizes ? h_prev_all.data() : nullptr);
  const Real* h_first_or_null = h0;
  // Bias gradients are column sums of dL/dg, taken by the weight-gradient products as they copy
  // it: dL/db_i from dgi; dL/db_h from dgh where reset-after's n block differs, else the same.
  const bool bias = grads.bias_ih != nullptr;
  const Index sum_count = bias ? G : 0;
  Scratch<Real> input_sums(sum_count), recurrent_sums(sum_count);
  std::fill(input_sums.data(), input_sums.data() + sum_count, Real(0));
  std::fill(recurrent_sums.data(), recurrent_sums.data() + sum_count, Real(0));
  if (reset_after || ligru) {
    accumulate_recurrent_weight_gradient(k, s, G, H, dgh, G, h_first_or_null, gathered, y,
                                         grads.weight_hh,
                                         bias ? recurrent_sums.data() : static_cast<Real*>(nullptr));
  } else {
    accumulate_recurrent_weight_gradient(k, s, 2 * H, H, dgi.data(), G, h_first_or_null, gathered,
                                         y, grads.weight_hh, static_cast<Real*>(nullptr));
    // The candidate's recurrent input is r ⊙ h_{t-1}, kept in the cache's fourth block.
    matmul(k, H, H, rows, dgi.data() + 2 * H, Index(1), G, cache + 3 * H, 4 * H, Index(1),
           grads.weight_hh + 2 * H * H, H, true);
  }
  if (ligru && rows > 0) {
    // dgi holds dL/da; batch normalisation turns it into dL/d(W_ih x) in place.
    batch_norm_backward(rows, G, L.bn_weight.data(), L.bn_eps, cache + 2 * H, 4 * H,
                        batch_statistics, dgi.data(), grads.bn_weight, grads.bn_bias);
  }
  matmul_packed(k, rows, I, G, dgi.data(), G, Index(1), L.input_backward_panels.data(), dx, I,
                static_cast<const Real*>(nullptr));
  matmul(k, G, I, rows, dgi.data(), Index(1), G, x, I, Index(1), grads.weight_ih, I, true,
         bias ? input_sums.data() : static_cast<Real*>(nullptr));
  if (bias) {
    const Real* recurrent = reset_after ? recurrent_sums.data() : input_sums.data();
    for (Index c = 0; c < G; ++c) {
      grads.bias_ih[c] += input_sums.data()[c];
      grads.bias_hh[c] += recurrent[c];
    }
  }
}

template void run_backward<float>(const PackedLayer<float>&, const StepRows&, const float*,
                                  const float*, const float*, const float*, const float*,
                                  const float*, float*, float*, const GruGradientsView<float>&,
                                  const Regularisation<float>*, const float*);
template void run_backward<double>(const PackedLayer<double>&, const StepRows&, const double*,
                                   const double*, const double*, const double*, const double*,
                                   const double*, double*, double*,
                                   const GruGradientsView<double>&,
                                   const Regularisation<double>*, const double*);

}  // namespace fastgru::driver
