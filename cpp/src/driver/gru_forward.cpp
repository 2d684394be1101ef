// Forward time loop. The input projection of a chunk of steps is one product before the loop;
// each step runs only the fused recurrent product + gate update. Threads split the batch rows
// (independent sequences: no barrier) when there are enough, else the hidden-unit blocks (one
// barrier per step; reset-before needs a second between its two dependent products).
#include <omp.h>

#include <algorithm>
#include <cstring>

#include "driver/layer.h"
#include "driver/matmul.h"
#include "driver/scratch.h"
#include "driver/threads.h"

namespace fastgru::driver {
namespace {

// Steps whose input projections are held at once: bounds inference memory independently of T
// while keeping the projection product large enough to run at full rate.
constexpr Index kProjectionChunkElements = Index(1) << 20;

}  // namespace

template <typename Real>
void run_forward(const PackedLayer<Real>& L, Index steps, Index batch, const Real* x,
                 const Real* h0, Real* y, Real* h_n, Real* cache) {
  const kernels::KernelTable<Real>& k = *L.kernels;
  const Index B = batch, H = L.hidden, I = L.input, G = 3 * H, W = k.vector_width;
  const Index chunk_steps = std::max<Index>(
      1, std::min<Index>(steps, kProjectionChunkElements / std::max<Index>(1, B * G)));
  const bool reset_after = L.mode == ResetMode::after;
  const Real* bias_hh = L.bias_hh_or_null();

  Scratch<Real> gi(chunk_steps * B * G);
  Scratch<Real> zero_state(B * H);
  // Reset-before needs r, z and r ⊙ h between its two products even when nothing is cached.
  Scratch<Real> step_record(cache ? 0 : B * 4 * H);
  std::fill(zero_state.data(), zero_state.data() + B * H, Real(0));

  const int threads = threads_for(2.0 * B * G * H);
  const bool by_rows = split_by_rows(B, threads, k.tile_rows);
  const Index blocks = (H + W - 1) / W, candidate_panels = (H + 3 * W - 1) / (3 * W);

  const Real* h_prev = h0 ? h0 : zero_state.data();
  for (Index chunk_start = 0; chunk_start < steps; chunk_start += chunk_steps) {
    const Index chunk = std::min(chunk_steps, steps - chunk_start);
    matmul_packed(k, chunk * B, G, I, x + chunk_start * B * I, I, Index(1), L.input_panels.data(),
                  gi.data(), G, L.bias_ih_or_null());

#pragma omp parallel num_threads(threads) if (threads > 1)
    {
      const int nt = omp_get_num_threads(), tid = omp_get_thread_num();
      const Range rows = by_rows ? split_evenly(B, nt, tid) : Range{0, B};
      const Range my_blocks = by_rows ? Range{0, blocks} : split_evenly(blocks, nt, tid);
      const Range my_panels =
          by_rows ? Range{0, candidate_panels} : split_evenly(candidate_panels, nt, tid);
      const Index r0 = rows.begin, n_rows = rows.end - rows.begin;
      const Real* hp = h_prev;
      for (Index s = 0; s < chunk; ++s) {
        const Index t = chunk_start + s;
        const Real* gi_t = gi.data() + s * B * G + r0 * G;
        Real* y_t = y + t * B * H;
        Real* record = cache ? cache + t * B * 4 * H : (reset_after ? nullptr : step_record.data());
        Real* my_record = record ? record + r0 * 4 * H : nullptr;
        if (reset_after) {
          k.step_reset_after(n_rows, H, my_blocks.begin, my_blocks.end, L.step_panels.data(),
                             hp + r0 * H, gi_t, G, bias_hh, y_t + r0 * H, H, my_record);
        } else {
          k.step_reset_before_rz(n_rows, H, my_blocks.begin, my_blocks.end, L.step_panels.data(),
                                 hp + r0 * H, gi_t, G, bias_hh, my_record);
          if (!by_rows) {
#pragma omp barrier
          }
          k.step_reset_before_n(n_rows, H, my_panels.begin, my_panels.end,
                                L.candidate_panels.data(), hp + r0 * H, gi_t, G, bias_hh,
                                y_t + r0 * H, H, my_record);
        }
        if (!by_rows) {
#pragma omp barrier
        }
        hp = y_t;
      }
    }
    h_prev = y + (chunk_start + chunk - 1) * B * H;
  }
  std::memcpy(h_n, h_prev, sizeof(Real) * B * H);
}

template void run_forward<float>(const PackedLayer<float>&, Index, Index, const float*,
                                 const float*, float*, float*, float*);
template void run_forward<double>(const PackedLayer<double>&, Index, Index, const double*,
                                  const double*, double*, double*, double*);

}  // namespace fastgru::driver
