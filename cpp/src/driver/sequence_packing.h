// Packing a batch of sequences for the driver (see StepRows in step_rows.h): rows sorted by length,
// longest first (stable, so equal lengths keep the caller's order), each step's active rows one
// after the other. The reverse direction runs the same forward loop over each row's steps in
// mirrored order: `mirrored` maps a packed row (t, j) to (length_j − 1 − t, j).
#pragma once

#include <vector>

#include "driver/step_rows.h"

namespace fastgru::driver {

struct SequencePacking {
  Index steps = 0;
  Index batch = 0;
  bool dense = true;                // every row has all T steps (the order is the identity)
  std::vector<Index> order;         // (B) packed row j is the caller's row order[j]
  std::vector<Index> lengths;       // (B) lengths in packed order, non-increasing
  std::vector<Index> batch_sizes;   // (T) rows active at each step
  std::vector<Index> offsets;       // (T + 1) first packed row of each step
  std::vector<Index> mirrored;      // (total rows) the same row's packed index at the mirrored step

  StepRows step_rows() const;
  Index total_rows() const { return offsets.empty() ? 0 : offsets.back(); }
};

// lengths (B) in 1..T, or nullptr for all T (checked by the caller).
SequencePacking pack_sequences(Index steps, Index batch, const Index* lengths);

// out (total rows, cols) = the caller's rows: x is (T, B, ·) or, batch_first, (B, T, ·), with rows
// of x_row_width elements of which cols are read from column x_col.
template <typename Real>
void gather_packed(const SequencePacking& p, bool batch_first, const Real* x, Index x_row_width,
                   Index x_col, Index cols, Real* out);

// (total rows) the row of x (as gather_packed reads it, in rows of the caller's layout) that
// each packed row holds; `mirrored` for the reverse direction's step order.
std::vector<Index> packed_source_rows(const SequencePacking& p, bool batch_first, bool mirrored);
// (T · B − total rows) the caller's rows past each sequence's end, step by step (step t's from
// t · B − offsets[t]), in packed order.
std::vector<Index> padded_rows(const SequencePacking& p, bool batch_first);

// The inverse of gather_packed into columns [out_col, out_col + cols) of rows of out_row_width;
// those columns of padded steps are set to zero.
template <typename Real>
void scatter_packed(const SequencePacking& p, bool batch_first, const Real* packed, Index cols,
                    Real* out, Index out_row_width, Index out_col);

// out[mirrored[i]] = in[i] for rows of `cols` (its own inverse).
template <typename Real>
void mirror_packed(const SequencePacking& p, const Real* in, Index in_row_width, Index cols,
                   Real* out, Index out_row_width);

// (B, H) states in the caller's row order <-> packed order.
template <typename Real>
void gather_states(const SequencePacking& p, const Real* caller, Index hidden, Real* packed);
template <typename Real>
void scatter_states(const SequencePacking& p, const Real* packed, Index hidden, Real* caller);

}  // namespace fastgru::driver
