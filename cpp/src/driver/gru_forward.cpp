// Forward time loop: the input projection of a chunk of steps is one product before the loop;
// each step runs only the recurrent product and the fused gate update.
#include <algorithm>
#include <cstring>

#include "driver/driver.h"
#include "driver/scratch.h"

namespace fastgru::driver {
namespace {

// Steps whose input projections are held at once: bounds inference memory independently of T
// while keeping the projection product large enough to run at full rate.
constexpr Index kProjectionChunkElements = Index(1) << 20;

template <typename Real>
void broadcast_rows(Index rows, Index cols, const Real* row, Real* out) {
  for (Index i = 0; i < rows; ++i) {
    if (row) {
      std::memcpy(out + i * cols, row, sizeof(Real) * cols);
    } else {
      std::fill(out + i * cols, out + (i + 1) * cols, Real(0));
    }
  }
}

}  // namespace

template <typename Real>
void run_forward(const kernels::KernelTable<Real>& k, const LayerWeights<Real>& w, Index steps,
                 Index batch, const Real* x, const Real* h0, Real* y, Real* h_n, Real* cache) {
  const Index B = batch, H = w.hidden, I = w.input, G = 3 * H;
  const Index chunk_steps =
      std::max<Index>(1, std::min<Index>(steps, kProjectionChunkElements / std::max<Index>(1, B * G)));

  Scratch<Real> gi(chunk_steps * B * G);
  Scratch<Real> gh(B * G);
  Scratch<Real> zero_state(B * H);
  // Reset-before needs r, z and r ⊙ h between its two products even when nothing is cached.
  Scratch<Real> step_record(B * 4 * H);
  std::fill(zero_state.data(), zero_state.data() + B * H, Real(0));

  const Real* h_prev = h0 ? h0 : zero_state.data();
  for (Index chunk_start = 0; chunk_start < steps; chunk_start += chunk_steps) {
    const Index chunk = std::min(chunk_steps, steps - chunk_start);
    const Index rows = chunk * B;
    broadcast_rows(rows, G, w.bias_ih, gi.data());
    k.gemm(rows, G, I, x + chunk_start * B * I, I, false, w.weight_ih, I, true, gi.data(), G,
           true);

    for (Index s = 0; s < chunk; ++s) {
      const Index t = chunk_start + s;
      const Real* gi_t = gi.data() + s * B * G;
      Real* y_t = y + t * B * H;
      Real* record = cache ? cache + t * B * 4 * H : nullptr;
      if (w.mode == ResetMode::after) {
        k.gemm(B, G, H, h_prev, H, false, w.weight_hh, H, true, gh.data(), G, false);
        k.gates_reset_after(B, H, gi_t, G, gh.data(), w.bias_hh, h_prev, y_t, H, record);
      } else {
        if (!record) record = step_record.data();
        k.gemm(B, 2 * H, H, h_prev, H, false, w.weight_hh, H, true, gh.data(), 2 * H, false);
        k.gates_reset_before_rz(B, H, gi_t, G, gh.data(), w.bias_hh, h_prev, record);
        k.gemm(B, H, H, record + 3 * H, 4 * H, false, w.weight_hh + 2 * H * H, H, true,
               gh.data(), H, false);
        k.gates_reset_before_n(B, H, gi_t, G, gh.data(), w.bias_hh, h_prev, y_t, H, record);
      }
      h_prev = y_t;
    }
  }
  std::memcpy(h_n, h_prev, sizeof(Real) * B * H);
}

template void run_forward<float>(const kernels::KernelTable<float>&, const LayerWeights<float>&,
                                 Index, Index, const float*, const float*, float*, float*,
                                 float*);
template void run_forward<double>(const kernels::KernelTable<double>&,
                                  const LayerWeights<double>&, Index, Index, const double*,
                                  const double*, double*, double*, double*);

}  // namespace fastgru::driver
