// What the driver needs of one layer: its sizes, weights in PyTorch's layout, and the same
// weights packed for the kernel table chosen when the layer was made.
#pragma once

#include <vector>

#include "fastgru/gru.h"
#include "kernels/kernels.h"

namespace fastgru::driver {

using kernels::Index;

// G below is gates() · H: 3H for the GRU, 2H for the LiGRU (row blocks z, n).
template <typename Real>
struct PackedLayer {
  Index input = 0;   // I
  Index hidden = 0;  // H
  ResetMode mode = ResetMode::after;  // GRU only
  Cell cell = Cell::gru;              // gru or ligru (the MGU runs as a GRU)
  const kernels::KernelTable<Real>* kernels = nullptr;
  std::vector<Real> weight_ih, weight_hh, bias_ih, bias_hh;  // PyTorch layout; biases may be empty
  std::vector<Real> input_panels;      // W_ih^T (K = I, N = G), natural panels; the LiGRU's with
                                       // inference's batch normalisation folded in (empty where
                                       // it is not: see batch_norm_folded)
  std::vector<Real> step_panels;       // W_hh^T gate panels: r, z, n (after), r, z (before), z, n (LiGRU)
  std::vector<Real> candidate_panels;  // reset-before: W_hn^T (K = H, N = H), natural panels
  std::vector<Real> backward_panels;   // W_hh (K = G, N = H), natural panels
  std::vector<Real> input_backward_panels;  // W_ih (K = G, N = I), natural panels: dx = dgi · W_ih

  // LiGRU: the candidate's activation, batch normalisation's γ, β (G), running statistics (G),
  // W_ih^T unfolded for training (natural panels) and inference's shift β − γ μ / √(σ² + ε) (G).
  // Without batch_norm_folded (a non-finite γ / √(σ² + ε) ⊙ W_ih), inference projects with the
  // unfolded panels and normalises explicitly; input_panels and inference_shift are empty.
  kernels::LigruActivation activation = kernels::kRelu;
  Real negative_slope = 0;
  Real bn_eps = 0;
  std::vector<Real> bn_weight, bn_bias, bn_running_mean, bn_running_var;
  std::vector<Real> training_input_panels, inference_shift;
  bool batch_norm_folded = true;

  const Real* bias_ih_or_null() const { return bias_ih.empty() ? nullptr : bias_ih.data(); }
  const Real* bias_hh_or_null() const { return bias_hh.empty() ? nullptr : bias_hh.data(); }
  Index panel_width() const { return 3 * kernels->vector_width; }
  Index gates() const { return cell == Cell::ligru ? 2 : 3; }
};

// Fills the packed panels from the PyTorch-layout weights, for `kernels`.
template <typename Real>
void pack_layer(const kernels::KernelTable<Real>& kernels, PackedLayer<Real>& layer);

// A per-step output that is read only after the time loop (the forward's records, backward's
// dL/d(W_i x)) and is larger than this in all is written around the caches: caching it would
// evict the recurrent weights from L2 and cost a read for ownership of every line. Smaller ones
// stay in L2 for their reader (streamed, T = 100, B = 1, H = 128 training was 7% slower).
constexpr Index kStreamedRowBytes = Index(2) << 20;

// Which rows are active at each step. Rows are sorted by length, longest first, so the active
// rows of step t are the prefix [0, rows_at(t)), and every per-row array of a sequence is a
// packed sequence: the active rows of step 0, then those of step 1, and so on (row (t, j) at
// offset(t) + j). A dense batch (every row active at every step) is the (T, B, ·) layout itself.
struct StepRows {
  Index steps = 0;                       // T
  Index batch = 0;                       // B: rows active at step 0
  const Index* batch_sizes = nullptr;    // (T) non-increasing, batch_sizes[0] = B; or nullptr: dense
  const Index* offsets = nullptr;        // (T + 1) prefix sums of batch_sizes; nullptr when dense

  Index rows_at(Index t) const {
    if (t >= steps) return 0;
    return batch_sizes ? batch_sizes[t] : batch;
  }
  Index offset(Index t) const { return offsets ? offsets[t] : t * batch; }
  Index total_rows() const { return offset(steps); }
};

// Inference on a variable-length or batch-first batch, in the caller's arrays: no packed copy of
// x or y. Members are optional (nullptr). x_rows (total rows): packed row i of the input is
// x + x_rows[i] · I. y: each packed state row i is also written to y + y_rows[i] · y_row_width
// (H values) as soon as its step is done, while it is in cache, and y's rows past each sequence's
// end are zeroed beside that step: pad_rows[t · B − offset(t) + k], k < B − rows_at(t), are
// step t's (the rows ended before it), in packed order.
template <typename Real>
struct CallerRows {
  const Index* x_rows = nullptr;
  Real* y = nullptr;
  const Index* y_rows = nullptr;
  const Index* pad_rows = nullptr;
  Index y_row_width = 0;
};

// Regularisation of one layer and direction; every member is optional (nullptr / 0).
template <typename Real>
struct Regularisation {
  // Recurrent (variational) dropout, training: (B, H) per row and unit, 0 or 1/(1 − p), the same
  // at every step; the recurrent products read h ⊙ keep, the gate update reads h.
  const Real* recurrent_keep = nullptr;
  // (total rows, H) the product inputs h ⊙ keep of every step: written by forward, read by
  // backward (with recurrent_keep).
  Real* masked_states = nullptr;
  // Zoneout, training: (total rows, H), 1 where a unit keeps its previous state at that step.
  const Real* zoneout_keep = nullptr;
  // Zoneout, inference: h = p · h_prev + (1 − p) · h_new with this p (when zoneout_keep is null).
  Real zoneout_rate = 0;
};

// x (total rows, I), h0 (B, H) or nullptr, y (total rows, H), h_n (B, H): each row's state after
// its last step, cache (total rows, 4H) or nullptr for inference; reg may be nullptr.
// batch_statistics (2, G): a LiGRU's training forward writes the mean and biased variance of
// its input projections over all rows there (nullptr otherwise).
// caller (inference, optional): rows of the caller's arrays read or written in place; with
// caller->y, y may be nullptr (the states go to caller->y's rows only).
template <typename Real>
void run_forward(const PackedLayer<Real>& layer, const StepRows& rows, const Real* x,
                 const Real* h0, Real* y, Real* h_n, Real* cache,
                 const Regularisation<Real>* reg = nullptr, Real* batch_statistics = nullptr,
                 const CallerRows<Real>* caller = nullptr);

// dy (total rows, H), dh_n (B, H) or nullptr, dx (total rows, I), dh0 (B, H) or nullptr; reg as
// given to the forward call.
template <typename Real>
void run_backward(const PackedLayer<Real>& layer, const StepRows& rows, const Real* x,
                  const Real* h0, const Real* y, const Real* cache, const Real* dy,
                  const Real* dh_n, Real* dx, Real* dh0, const GruGradientsView<Real>& grads,
                  const Regularisation<Real>* reg = nullptr,
                  const Real* batch_statistics = nullptr);

}  // namespace fastgru::driver
