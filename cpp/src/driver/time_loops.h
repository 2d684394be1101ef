// The single-layer, single-direction time loops (forward_loop.cpp, backward_loop.cpp): they run
// any cell through its CellLayer (cells/cell_layer.h) and know none by name.
#pragma once

#include "cells/cell_layer.h"
#include "driver/step_rows.h"
#include "fastgru/network.h"

namespace fastgru::driver {

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
// batch_statistics (layer.batch_statistics_size()): a cell that normalises its input
// projections writes their statistics over all rows there in a training forward (else nullptr).
// caller (inference, optional): rows of the caller's arrays read or written in place; with
// caller->y, y may be nullptr (the states go to caller->y's rows only).
template <typename Real>
void run_forward(const cells::CellLayer<Real>& layer, const StepRows& rows, const Real* x,
                 const Real* h0, Real* y, Real* h_n, Real* cache,
                 const Regularisation<Real>* reg = nullptr, Real* batch_statistics = nullptr,
                 const CallerRows<Real>* caller = nullptr);

// dy (total rows, H), dh_n (B, H) or nullptr, dx (total rows, I), dh0 (B, H) or nullptr; reg as
// given to the forward call.
template <typename Real>
void run_backward(const cells::CellLayer<Real>& layer, const StepRows& rows, const Real* x,
                  const Real* h0, const Real* y, const Real* cache, const Real* dy,
                  const Real* dh_n, Real* dx, Real* dh0, const GradientsView<Real>& grads,
                  const Regularisation<Real>* reg = nullptr,
                  const Real* batch_statistics = nullptr);

}  // namespace fastgru::driver
