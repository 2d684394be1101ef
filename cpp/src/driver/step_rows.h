// Which rows of a packed batch each step runs, and the size past which per-step outputs are
// written around the caches.
#pragma once

#include "kernels/kernels.h"

namespace fastgru::driver {

using kernels::Index;

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

}  // namespace fastgru::driver
