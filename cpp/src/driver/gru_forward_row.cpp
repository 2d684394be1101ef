// Inference of one sequence (B = 1) when compute calls use one thread: run_forward's time loop
// without its parallel region. At B = 1 a step is one matrix-vector product per block of
// units, 2.6 us at H = 128, and the region's barrier at every step cost ~0.25 us of it (T = 100,
// H = 128: 408 -> 383 us a call).
//
// Bit-identical to run_forward, hence to any thread count: the same kernels over the same
// hidden-unit blocks, and the input projection of each chunk of steps as one product over the
// same row tiles (matmul_packed's row chunks are whole tiles, so one call over all the rows
// tiles them alike).
#include <algorithm>
#include <cstring>

#include "driver/batch_norm.h"
#include "driver/layer.h"
#include "driver/scratch.h"
#include "fastgru/runtime.h"

namespace fastgru::driver {
namespace {

// As run_forward: the input projections held at once.
constexpr Index kProjectionChunkBytes = Index(16) << 20;

}  // namespace

template <typename Real>
bool run_forward_row(const PackedLayer<Real>& L, const StepRows& s, const Real* x, const Real* h0,
                     Real* y, Real* h_n, Real zoneout_rate) {
  const kernels::KernelTable<Real>& k = *L.kernels;
  const Index H = L.hidden, G = L.gates() * H, W = k.vector_width, I = L.input;
  // More threads are the thread pool's: it splits the product, and the projection, across them.
  if (s.batch != 1 || num_threads() != 1) return false;
  const bool ligru = L.cell == Cell::ligru;
  const bool normalise_running = ligru && !L.batch_norm_folded;
  const bool reset_after = L.mode == ResetMode::after;
  const Real* bias_hh = L.bias_hh_or_null();
  const Real* input_bias = ligru ? L.inference_shift.data() : L.bias_ih_or_null();
  const auto step_ligru = ligru ? k.step_ligru[L.activation] : nullptr;
  const Real* input_panels =
      normalise_running ? L.training_input_panels.data() : L.input_panels.data();
  const Index panel_width = 3 * W, input_panel_count = (G + panel_width - 1) / panel_width;
  const Index blocks = (H + W - 1) / W, candidate_panels = (H + panel_width - 1) / panel_width;
  // A row is active at a prefix of the steps: its length.
  Index steps = 0;
  while (steps < s.steps && s.rows_at(steps) > 0) ++steps;
  const Index chunk_steps = std::max<Index>(1, kProjectionChunkBytes / Index(sizeof(Real)) / G);

  Scratch<Real> gi(std::min(chunk_steps, std::max<Index>(steps, 1)) * G);
  Scratch<Real> zero_state(H);
  Scratch<Real> record(ligru || reset_after ? 1 : 4 * H);
  std::fill(zero_state.data(), zero_state.data() + H, Real(0));
  const Real* h_first = h0 ? h0 : zero_state.data();

  for (Index chunk_start = 0; chunk_start < steps; chunk_start += chunk_steps) {
    const Index chunk_end = std::min(steps, chunk_start + chunk_steps);
    const Index rows = chunk_end - chunk_start;
    k.multiply_panels(rows, G, I, x + s.offset(chunk_start) * I, I, Index(1), input_panels,
                      I * panel_width, 0, input_panel_count, gi.data(), G, false,
                      normalise_running ? nullptr : input_bias);
    if (normalise_running) {
      batch_norm_inference(rows, G, L.bn_weight.data(), L.bn_bias.data(), L.bn_running_mean.data(),
                           L.bn_running_var.data(), L.bn_eps, gi.data());
    }
    for (Index t = chunk_start; t < chunk_end; ++t) {
      const Real* h_prev = t > 0 ? y + s.offset(t - 1) * H : h_first;
      const Real* gi_t = gi.data() + (t - chunk_start) * G;
      Real* y_t = y + s.offset(t) * H;
      if (ligru) {
        step_ligru(1, H, 0, blocks, L.step_panels.data(), h_prev, h_prev, gi_t, G,
                   L.negative_slope, y_t, H, nullptr);
      } else if (reset_after) {
        k.step_reset_after(1, H, 0, blocks, L.step_panels.data(), h_prev, h_prev, gi_t, G, bias_hh,
                           y_t, H, nullptr, false);
      } else {
        k.step_reset_before_rz(1, H, 0, blocks, L.step_panels.data(), h_prev, gi_t, G, bias_hh,
                               record.data());
        k.step_reset_before_n(1, H, 0, candidate_panels, L.candidate_panels.data(), h_prev, gi_t, G,
                              bias_hh, y_t, H, record.data());
      }
      if (zoneout_rate != Real(0)) {
        for (Index u = 0; u < H; ++u)
          y_t[u] = zoneout_rate * h_prev[u] + (Real(1) - zoneout_rate) * y_t[u];
      }
    }
  }
  std::memcpy(h_n, steps > 0 ? y + s.offset(steps - 1) * H : h_first, sizeof(Real) * H);
  return true;
}

template bool run_forward_row<float>(const PackedLayer<float>&, const StepRows&, const float*,
                                     const float*, float*, float*, float);
template bool run_forward_row<double>(const PackedLayer<double>&, const StepRows&, const double*,
                                      const double*, double*, double*, double);

}  // namespace fastgru::driver
