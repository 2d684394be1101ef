// Backward time loop: each step runs the cell's backward phases (fused gate derivatives and the
// recurrent products for dL/dh) over the rows active at that step; dx, dW_ih, dW_hh and the bias
// gradients are single products or reductions afterwards (after the cell's own transform of its
// input projections' gradients, e.g. batch normalisation's backward). Threads split rows or
// hidden units as in the forward loop, units in natural panels of 3W.
#include <algorithm>
#include <cstring>
#include <stdexcept>

#include "driver/matmul.h"
#include "driver/scratch.h"
#include "driver/time_loops.h"
#include "driver/work_split.h"
#include "threads/contention.h"

namespace fastgru::driver {

template <typename Real>
void run_backward(const cells::CellLayer<Real>& L, const StepRows& s, const Real* x, const Real* h0,
                  const Real* y, const Real* cache, const Real* dy, const Real* dh_n, Real* dx,
                  Real* dh0, const GradientsView<Real>& grads, const Regularisation<Real>* reg,
                  const Real* batch_statistics) {
  // No rows: dx and dh0 are empty and the gradients sum no terms, whatever the step count.
  if (s.batch == 0) return;
  const kernels::KernelTable<Real>& k = L.kernels();
  const Index B = s.batch, H = L.hidden(), I = L.input(), G = L.gate_width(), rows = s.total_rows();
  const Index PW = 3 * k.vector_width, panels = (H + PW - 1) / PW;
  const int phases = L.backward_phases();
  // The barrier before phase 1 orders one step's products before the next step's reads.
  if (phases < 2) throw std::logic_error("fastgru: a cell's backward step needs at least 2 phases");
  const bool separate = L.separate_recurrent_gate_gradients();
  // dL/d(the recurrent products' gates): G columns where they are dgi itself.
  const Index GH = separate ? L.recurrent_gate_width() : G;

  Scratch<Real> dgi(rows * G);
  Scratch<Real> dgh_storage(separate ? rows * GH : 0);
  Real* dgh = separate ? dgh_storage.data() : dgi.data();
  const Index workspace_width = L.backward_workspace_width();
  Scratch<Real> dh_even(B * H), dh_odd(B * H), workspace(B * workspace_width), zero_state(B * H);
  std::fill(zero_state.data(), zero_state.data() + B * H, Real(0));
  const Real* h_first = h0 ? h0 : zero_state.data();
  const Real* dh_last = dh_n ? dh_n : zero_state.data();
  const Real* recurrent_keep = reg ? reg->recurrent_keep : nullptr;
  const Real* masked_states = reg ? reg->masked_states : nullptr;
  const Real* zoneout_keep = reg ? reg->zoneout_keep : nullptr;
  // With zoneout, the candidate's share of dL/dh_t; with recurrent dropout, dL/d(h ⊙ keep).
  Scratch<Real> d_candidate(zoneout_keep ? B * H : 0), d_masked(recurrent_keep ? B * H : 0);

  // dgi is read only by the products after the loop; when it outgrows L2, it is written around
  // the caches, as the forward's records are.
  const bool stream_dgi = rows * G * Index(sizeof(Real)) > kStreamedRowBytes;
  const StepLoopPlan plan =
      plan_step_loop(2.0 * B * L.recurrent_product_width() * H, s.steps, B, k.tile_rows);
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
      Real* dgh_t = dgh + s.offset(t) * GH;
      auto run_rows = [&](Index r0, Index n, Range unit_panels, Index unit_begin, Index unit_end) {
        // Rows whose sequence ends at this step start from dL/dh_n.
        for (Index r = std::max(r0, continuing); r < r0 + n; ++r)
          std::copy(dh_last + r * H + unit_begin, dh_last + r * H + unit_end,
                    carry + r * H + unit_begin);
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
        const Real* product_input = recurrent_keep ? masked_states + s.offset(t) * H + r0 * H
                                                   : h_prev + r0 * H;
        const cells::BackwardStep<Real> backward_step{
            n,
            record + r0 * 4 * H,
            h_prev + r0 * H,
            product_input,
            d_state,
            d_carry,
            dgi_t + r0 * G,
            dgh_t + r0 * GH,
            prev + r0 * H,
            (recurrent_keep ? d_masked.data() : prev) + r0 * H,
            workspace_width ? workspace.data() + r0 * workspace_width : nullptr,
            stream_dgi};
        for (int phase = 0; phase < phases; ++phase) {
          if (phase > 0 && !by_rows) {
            team->barrier();
            if (phase == 1) watch.observe(*team, step);
          }
          L.backward_phase(phase, backward_step, unit_panels, unit_begin, unit_end);
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
        if (end > my_rows.begin) run_rows(my_rows.begin, end - my_rows.begin, Range{0, panels}, 0, H);
      } else {
        run_rows(0, active, my_panels, u0, u1);
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
  // Bias gradients are column sums of dL/dg, taken by the weight-gradient products as they copy
  // it: dL/db_i from dgi; dL/db_h from dgh where the cell keeps it apart (the cell adds them),
  // else the same as dL/db_i.
  const bool bias = grads.bias_ih != nullptr;
  const Index sum_count = bias ? G : 0, recurrent_sum_count = bias && separate ? GH : 0;
  Scratch<Real> input_sums(sum_count), recurrent_sums(recurrent_sum_count);
  std::fill(input_sums.data(), input_sums.data() + sum_count, Real(0));
  std::fill(recurrent_sums.data(), recurrent_sums.data() + recurrent_sum_count, Real(0));
  const cells::GradientInputs<Real> gradient_inputs{
      &s,
      h0,
      // With recurrent dropout the products' input was h ⊙ keep, kept by forward.
      recurrent_keep ? masked_states : (s.batch_sizes ? h_prev_all.data() : nullptr),
      y,
      cache,
      dgi.data(),
      dgh,
      batch_statistics,
      bias && separate ? recurrent_sums.data() : nullptr};
  L.recurrent_gradients(gradient_inputs, grads);
  L.project_inputs_backward(gradient_inputs, grads);
  matmul_packed(k, rows, I, G, dgi.data(), G, Index(1), L.input_backward_panels(), dx, I,
                static_cast<const Real*>(nullptr));
  matmul(k, G, I, rows, dgi.data(), Index(1), G, x, I, Index(1), grads.weight_ih, I, true,
         bias ? input_sums.data() : static_cast<Real*>(nullptr));
  if (bias) {
    for (Index c = 0; c < G; ++c) {
      grads.bias_ih[c] += input_sums.data()[c];
      if (!separate) grads.bias_hh[c] += input_sums.data()[c];
    }
  }
}

template void run_backward<float>(const cells::CellLayer<float>&, const StepRows&, const float*,
                                  const float*, const float*, const float*, const float*,
                                  const float*, float*, float*, const GradientsView<float>&,
                                  const Regularisation<float>*, const float*);
template void run_backward<double>(const cells::CellLayer<double>&, const StepRows&, const double*,
                                   const double*, const double*, const double*, const double*,
                                   const double*, double*, double*,
                                   const GradientsView<double>&,
                                   const Regularisation<double>*, const double*);

}  // namespace fastgru::driver
