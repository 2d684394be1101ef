#include "driver/sequence_packing.h"

#include "driver/work_split.h"

#include <algorithm>
#include <cstring>
#include <numeric>

namespace fastgru::driver {

StepRows SequencePacking::step_rows() const {
  StepRows rows;
  rows.steps = steps;
  rows.batch = batch;
  if (!dense) {
    rows.batch_sizes = batch_sizes.data();
    rows.offsets = offsets.data();
  }
  return rows;
}

SequencePacking pack_sequences(Index steps, Index batch, const Index* lengths) {
  SequencePacking p;
  p.steps = steps;
  p.batch = batch;
  p.order.resize(batch);
  std::iota(p.order.begin(), p.order.end(), Index(0));
  p.lengths.assign(batch, steps);
  if (lengths) {
    std::stable_sort(p.order.begin(), p.order.end(),
                     [&](Index a, Index b) { return lengths[a] > lengths[b]; });
    for (Index j = 0; j < batch; ++j) p.lengths[j] = lengths[p.order[j]];
    p.dense = std::all_of(p.lengths.begin(), p.lengths.end(), [&](Index n) { return n == steps; });
  }
  p.batch_sizes.assign(steps, 0);
  for (Index j = 0; j < batch; ++j)
    for (Index t = 0; t < p.lengths[j]; ++t) ++p.batch_sizes[t];
  p.offsets.assign(steps + 1, 0);
  for (Index t = 0; t < steps; ++t) p.offsets[t + 1] = p.offsets[t] + p.batch_sizes[t];
  p.mirrored.resize(p.offsets[steps]);
  for (Index t = 0; t < steps; ++t)
    for (Index j = 0; j < p.batch_sizes[t]; ++j)
      p.mirrored[p.offsets[t] + j] = p.offsets[p.lengths[j] - 1 - t] + j;
  return p;
}

namespace {

Index caller_row(const SequencePacking& p, bool batch_first, Index t, Index j) {
  const Index b = p.order[j];
  return batch_first ? b * p.steps + t : t * p.batch + b;
}

// Threads for copying `elements` values: copies are memory-bound, so worth it only for large ones.
int copy_threads(Index elements) { return threads_for(4.0 * static_cast<double>(elements)); }

}  // namespace

std::vector<Index> packed_source_rows(const SequencePacking& p, bool batch_first, bool mirrored) {
  std::vector<Index> rows(static_cast<size_t>(p.total_rows()));
  for (Index t = 0; t < p.steps; ++t)
    for (Index j = 0; j < p.batch_sizes[t]; ++j) {
      // The reverse direction's input is mirror_packed of the forward order's: row i moves to
      // mirrored[i].
      const Index i = p.offsets[t] + j;
      rows[mirrored ? p.mirrored[i] : i] = caller_row(p, batch_first, t, j);
    }
  return rows;
}

std::vector<Index> padded_rows(const SequencePacking& p, bool batch_first) {
  std::vector<Index> rows;
  rows.reserve(static_cast<size_t>(p.steps * p.batch - p.total_rows()));
  for (Index t = 0; t < p.steps; ++t)
    for (Index j = p.batch_sizes[t]; j < p.batch; ++j) rows.push_back(caller_row(p, batch_first, t, j));
  return rows;
}

template <typename Real>
void gather_packed(const SequencePacking& p, bool batch_first, const Real* x, Index x_row_width,
                   Index x_col, Index cols, Real* out) {
  const int threads = copy_threads(p.total_rows() * cols);
  parallel_for(threads, p.steps, [&](Index t) {
    for (Index j = 0; j < p.batch_sizes[t]; ++j)
      std::memcpy(out + (p.offsets[t] + j) * cols,
                  x + caller_row(p, batch_first, t, j) * x_row_width + x_col, sizeof(Real) * cols);
  });
}

template <typename Real>
void scatter_packed(const SequencePacking& p, bool batch_first, const Real* packed, Index cols,
                    Real* out, Index out_row_width, Index out_col) {
  const int threads = copy_threads(p.steps * p.batch * cols);
  parallel_for(threads, p.steps, [&](Index t) {
    for (Index j = 0; j < p.batch; ++j) {
      Real* row = out + caller_row(p, batch_first, t, j) * out_row_width + out_col;
      if (j < p.batch_sizes[t]) {
        std::memcpy(row, packed + (p.offsets[t] + j) * cols, sizeof(Real) * cols);
      } else {
        std::fill(row, row + cols, Real(0));
      }
    }
  });
}

template <typename Real>
void mirror_packed(const SequencePacking& p, const Real* in, Index in_row_width, Index cols,
                   Real* out, Index out_row_width) {
  const int threads = copy_threads(p.total_rows() * cols);
  parallel_for(threads, p.total_rows(), [&](Index i) {
    std::memcpy(out + p.mirrored[i] * out_row_width, in + i * in_row_width, sizeof(Real) * cols);
  });
}

template <typename Real>
void gather_states(const SequencePacking& p, const Real* caller, Index hidden, Real* packed) {
  for (Index j = 0; j < p.batch; ++j)
    std::memcpy(packed + j * hidden, caller + p.order[j] * hidden, sizeof(Real) * hidden);
}

template <typename Real>
void scatter_states(const SequencePacking& p, const Real* packed, Index hidden, Real* caller) {
  for (Index j = 0; j < p.batch; ++j)
    std::memcpy(caller + p.order[j] * hidden, packed + j * hidden, sizeof(Real) * hidden);
}

#define FASTGRU_INSTANTIATE_PACKING(Real)                                                      \
  template void gather_packed<Real>(const SequencePacking&, bool, const Real*, Index, Index,   \
                                    Index, Real*);                                             \
  template void scatter_packed<Real>(const SequencePacking&, bool, const Real*, Index, Real*,  \
                                     Index, Index);                                            \
  template void mirror_packed<Real>(const SequencePacking&, const Real*, Index, Index, Real*,  \
                                    Index);                                                    \
  template void gather_states<Real>(const SequencePacking&, const Real*, Index, Real*);        \
  template void scatter_states<Real>(const SequencePacking&, const Real*, Index, Real*);
FASTGRU_INSTANTIATE_PACKING(float)
FASTGRU_INSTANTIATE_PACKING(double)
#undef FASTGRU_INSTANTIATE_PACKING

}  // namespace fastgru::driver
