// Forward time loop. The input projection of a chunk of steps is one product before the loop
// (the cell's project_inputs); each step runs only the cell's fused recurrent product + gate
// update phases, over the rows still active. Threads take row tiles (independent sequences: no
// barrier) when there are enough rows, else hidden units (a barrier every step, and one between
// a cell's phases). In a variable-length batch the rows drop out as their sequences end: the
// steps left with too few rows for row tiles run as a batch of those rows would.
// Inference on a variable-length or batch-first batch reads x's rows and writes y's in place
// (CallerRows in time_loops.h).
#include <algorithm>
#include <cstring>

#include "driver/scratch.h"
#include "driver/time_loops.h"
#include "driver/work_split.h"
#include "threads/contention.h"

namespace fastgru::driver {
namespace {

// Steps whose input projections are held at once: bounds inference memory independently of T
// while keeping the projection product large: W_ih streams from L3 once per chunk, so a large
// W_ih needs many rows per chunk (4 MB chunks made H = 1024, B = 128 inference 5-8% slower),
// and the chunk must stay in L3 for the loop that reads it (32 MB chunks were slower again).
constexpr Index kProjectionChunkBytes = Index(16) << 20;

}  // namespace

template <typename Real>
void run_forward(const cells::CellLayer<Real>& L, const StepRows& s, const Real* x, const Real* h0,
                 Real* y, Real* h_n, Real* cache, const Regularisation<Real>* reg,
                 Real* batch_statistics, const CallerRows<Real>* caller) {
  // No rows: y and h_n are empty, whatever the step count.
  if (s.batch == 0) return;
  const kernels::KernelTable<Real>& k = L.kernels();
  const Index H = L.hidden(), G = L.gate_width(), W = k.vector_width;
  // A step's recurrent products: GH · H multiply-adds per row (the threads' work estimate).
  const Index GH = L.recurrent_product_width();
  const Index B = s.batch, I = L.input();
  const bool training = cache != nullptr;
  const Index chunk_steps =
      L.projects_whole_sequence(training)
          ? std::max<Index>(1, s.steps)
          : std::max<Index>(1, kProjectionChunkBytes / Index(sizeof(Real)) / std::max<Index>(1, B * G));
  const int phases = L.forward_phases();

  Scratch<Real> gi(std::min(chunk_steps, std::max<Index>(s.steps, 1)) * B * G);
  Scratch<Real> zero_state(B * H);
  const bool step_workspace = !training && L.needs_step_record();
  Scratch<Real> step_record(step_workspace ? B * 4 * H : 0);
  std::fill(zero_state.data(), zero_state.data() + B * H, Real(0));

  const Index blocks = (H + W - 1) / W, panels = (H + 3 * W - 1) / (3 * W);
  const Real* h_first = h0 ? h0 : zero_state.data();
  const Index* x_rows = caller ? caller->x_rows : nullptr;
  Real* y_caller = caller ? caller->y : nullptr;
  // States written only to the caller's rows (y null) need just the last step's for the next:
  // two alternating (B, H) slots, which stay in cache, instead of every step's.
  const bool ring = !y && y_caller;
  Scratch<Real> slots(ring ? 2 * B * H : 0);
  auto states_at = [&](Index t) {
    return ring ? slots.data() + (t & 1) * B * H : y + s.offset(t) * H;
  };
  // Backward reads the records only after its loop.
  const bool stream_records =
      training && s.total_rows() * 4 * H * Index(sizeof(Real)) > kStreamedRowBytes;
  const Real* recurrent_keep = reg ? reg->recurrent_keep : nullptr;
  const Real* zoneout_keep = reg ? reg->zoneout_keep : nullptr;
  const Real zoneout_rate = reg ? reg->zoneout_rate : Real(0);

  for (Index chunk_start = 0; chunk_start < s.steps; chunk_start += chunk_steps) {
    const Index chunk_end = std::min(s.steps, chunk_start + chunk_steps);
    const Index row0 = s.offset(chunk_start);
    const cells::InputRows<Real> chunk_x{x, I, x_rows, row0, s.offset(chunk_end) - row0};
    L.project_inputs(chunk_x, gi.data(), training ? cache + row0 * 4 * H : nullptr,
                     batch_statistics, training);

    // Steps [first, last) on `threads`, taking row tiles or hidden units.
    auto run_steps = [&](Index first, Index last, int threads, bool by_rows) {
      threads::StepLoopWatch watch(std::max(uneven_share(blocks, threads),
                                            uneven_share(panels, threads)));
      threads::parallel(threads, [&](const threads::Worker& worker) {
        const threads::Worker alone(0, 1, nullptr);
        const threads::Worker* team = &worker;
        const Range my_rows =
            by_rows ? balanced_row_range(B, first, last, [&](Index t) { return s.rows_at(t); },
                                         k.tile_rows, worker.count(), worker.index())
                    : Range{0, B};
        Range my_blocks{0, blocks}, my_panels{0, panels};
        // Units this thread computes in a unit split, in each grain. It masks the states of
        // its blocks; it writes the states of its units of the last phase's grain.
        auto units_of = [&](cells::UnitGrain grain) {
          return grain == cells::UnitGrain::blocks ? my_blocks : my_panels;
        };
        const cells::UnitGrain state_grain = L.forward_grain(phases - 1);
        const Index state_grain_width = state_grain == cells::UnitGrain::blocks ? W : 3 * W;
        Index block_u0 = 0, block_u1 = H, state_u0 = 0, state_u1 = H;
        auto take_units = [&](int nt, int tid) {
          my_blocks = split_evenly(blocks, nt, tid);
          my_panels = split_evenly(panels, nt, tid);
          block_u0 = std::min(my_blocks.begin * W, H);
          block_u1 = std::min(my_blocks.end * W, H);
          state_u0 = std::min(units_of(state_grain).begin * state_grain_width, H);
          state_u1 = std::min(units_of(state_grain).end * state_grain_width, H);
        };
        if (!by_rows) take_units(worker.count(), worker.index());
        for (Index t = first; t < last; ++t) {
          const Index active = s.rows_at(t);
          const Real* h_prev = t > 0 ? states_at(t - 1) : h_first;
          const Real* gi_t = gi.data() + (s.offset(t) - row0) * G;
          Real* y_t = states_at(t);
          Real* record = training ? cache + s.offset(t) * 4 * H
                                  : (step_workspace ? step_record.data() : nullptr);
          // Recurrent dropout: the products read h ⊙ keep, kept for backward.
          Real* masked = recurrent_keep ? reg->masked_states + s.offset(t) * H : nullptr;
          auto mask_states = [&](Index r0, Index n, Index u0, Index u1) {
            for (Index r = r0; r < r0 + n; ++r)
              for (Index u = u0; u < u1; ++u)
                masked[r * H + u] = h_prev[r * H + u] * recurrent_keep[r * H + u];
          };
          // Zoneout: each unit keeps its previous state where the mask says so (training), or
          // by the rate's share (inference). As the gate update, a mix exact at keep = 1 and 0.
          auto zone_out = [&](Index r0, Index n, Index u0, Index u1) {
            for (Index r = r0; r < r0 + n; ++r)
              for (Index u = u0; u < u1; ++u) {
                Real& h = y_t[r * H + u];
                const Real keep = zoneout_keep ? zoneout_keep[(s.offset(t) + r) * H + u] : zoneout_rate;
                h = keep * h_prev[r * H + u] + (Real(1) - keep) * h;
              }
          };
          auto run_rows = [&](Index r0, Index n) {
            if (masked) {
              mask_states(r0, n, by_rows ? 0 : block_u0, by_rows ? H : block_u1);
              if (!by_rows) team->barrier();
            }
            const cells::ForwardStep<Real> step{n,
                                                h_prev + r0 * H,
                                                (masked ? masked : h_prev) + r0 * H,
                                                gi_t + r0 * G,
                                                G,
                                                y_t + r0 * H,
                                                H,
                                                record ? record + r0 * 4 * H : nullptr,
                                                stream_records};
            for (int phase = 0; phase < phases; ++phase) {
              if (phase > 0 && !by_rows) team->barrier();
              L.forward_phase(phase, step, units_of(L.forward_grain(phase)));
            }
            if (zoneout_keep || zoneout_rate != Real(0)) {
              zone_out(r0, n, by_rows ? 0 : state_u0, by_rows ? H : state_u1);
            }
          };
          // Finished states to the caller's rows, from this thread's cache, and zeros to the rows
          // of the caller's rows [r0, r1) that ended before this step.
          auto copy_out = [&](Index r0, Index r1) {
            const Index* rows = caller->y_rows + s.offset(t);
            for (Index r = r0; r < std::min(r1, active); ++r)
              std::memcpy(y_caller + rows[r] * caller->y_row_width, y_t + r * H, sizeof(Real) * H);
            // The slots keep no step past the next: the final states of rows ending here too.
            for (Index r = std::max(r0, s.rows_at(t + 1)); ring && r < std::min(r1, active); ++r)
              std::memcpy(h_n + r * H, y_t + r * H, sizeof(Real) * H);
            if (r1 <= active) return;
            const Index* pads = caller->pad_rows + (t * B - s.offset(t));
            for (Index r = std::max(r0, active); r < r1; ++r)
              std::fill_n(y_caller + pads[r - active] * caller->y_row_width, H, Real(0));
          };
          if (by_rows) {
            const Index end = std::min(my_rows.end, active);
            if (end > my_rows.begin) run_rows(my_rows.begin, end - my_rows.begin);
            if (y_caller) copy_out(my_rows.begin, my_rows.end);
          } else {
            run_rows(0, active);
            team->barrier();
            if (y_caller) {
              const Range mine = split_evenly(B, team->count(), team->index());
              copy_out(mine.begin, mine.end);
            }
            // On a busy machine the loop may continue on thread 0 alone, over every unit.
            const Index step = t - first;
            watch.observe(*team, step);
            if (team != &alone && watch.alone(step)) {
              if (worker.index() != 0) return;
              team = &alone;
              take_units(1, 0);
            }
          }
        }
      });
    };
    // Taking rows, the threads keep the same rows for the chunk; once too few rows remain for
    // that (the longest sequences' last steps), the rest of the chunk runs as a batch of those
    // rows would: by hidden units, or on one thread. Balancing rows over only the steps that
    // take rows keeps a thread from being left with the long sequences' tail alone.
    // Planned per chunk: the machine may have become busy, or idle, since the last.
    const StepLoopPlan plan = plan_step_loop(2.0 * B * GH * H, chunk_end - chunk_start, B, k.tile_rows);
    Index rows_end = chunk_end;
    int tail_threads = plan.threads;
    if (plan.by_rows) {
      rows_end = chunk_start;
      while (rows_end < chunk_end && split_by_rows(s.rows_at(rows_end), plan.threads, k.tile_rows))
        ++rows_end;
      if (rows_end < chunk_end) {
        const Index tail_rows = s.rows_at(rows_end);
        const StepLoopPlan tail =
            plan_step_loop(2.0 * tail_rows * GH * H, chunk_end - rows_end, tail_rows, k.tile_rows);
        if (tail.by_rows) {
          rows_end = chunk_end;
        } else {
          tail_threads = std::min(plan.threads, tail.threads);
        }
      }
    }
    if (rows_end > chunk_start) run_steps(chunk_start, rows_end, plan.threads, plan.by_rows);
    if (rows_end < chunk_end) run_steps(rows_end, chunk_end, tail_threads, false);
  }
  // Each row's final state is its state after its own last step.
  if (s.steps == 0) std::memcpy(h_n, h_first, sizeof(Real) * B * H);
  for (Index t = 0; t < s.steps && !ring; ++t) {
    const Index ending = s.rows_at(t) - s.rows_at(t + 1);
    if (ending > 0) {
      std::memcpy(h_n + s.rows_at(t + 1) * H, y + (s.offset(t) + s.rows_at(t + 1)) * H,
                  sizeof(Real) * ending * H);
    }
  }
}

template void run_forward<float>(const cells::CellLayer<float>&, const StepRows&, const float*,
                                 const float*, float*, float*, float*,
                                 const Regularisation<float>*, float*,
                                 const CallerRows<float>*);
template void run_forward<double>(const cells::CellLayer<double>&, const StepRows&, const double*,
                                  const double*, double*, double*, double*,
                                  const Regularisation<double>*, double*,
                                  const CallerRows<double>*);

}  // namespace fastgru::driver
