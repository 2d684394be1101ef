// Thread counts and work splitting for the driver's parallel regions.
#pragma once

#include <algorithm>
#include <cstdint>

#include "threads/pool.h"

namespace fastgru::driver {

// Threads worth using for a region of `flops` of work (a product, a copy): see work_split.cpp.
// May wake sleeping workers for the calls that follow, without waiting for them.
int threads_for(double flops);

// How a step loop runs: `threads`, taking row tiles (no barriers) or hidden units (a barrier
// every step, so each thread needs kMinStepFlopsPerThread per step, and one thread while the
// machine is busy: threads/contention.h).
struct StepLoopPlan {
  int threads;
  bool by_rows;
};
StepLoopPlan plan_step_loop(double step_flops, std::int64_t steps, std::int64_t batch,
                            int tile_rows);

// For tests and bench/threads.py: every region and step loop uses num_threads() threads,
// whatever its work and the machine's load.
void force_threads(bool force);

struct Range {
  std::int64_t begin;
  std::int64_t end;
};

// Part `index` of `parts` near-equal contiguous parts of [0, total).
inline Range split_evenly(std::int64_t total, int parts, int index) {
  const std::int64_t base = total / parts, extra = total % parts;
  const std::int64_t begin = index * base + std::min<std::int64_t>(index, extra);
  return {begin, begin + base + (index < extra ? 1 : 0)};
}

// The share of their time threads wait at a barrier on an idle machine when they split `total`
// equal parts evenly: 1 - mean part / largest part.
inline double uneven_share(std::int64_t total, int threads) {
  if (threads <= 1 || total <= 0) return 0.0;
  const std::int64_t largest = (total + threads - 1) / threads;
  return 1.0 - static_cast<double>(total) / threads / static_cast<double>(largest);
}

// body(i) for every i in [0, count), the threads taking near-equal contiguous parts.
template <class Body>
void parallel_for(int threads, std::int64_t count, Body body) {
  threads::parallel(threads, [&](const threads::Worker& worker) {
    const Range mine = split_evenly(count, worker.count(), worker.index());
    for (std::int64_t i = mine.begin; i < mine.end; ++i) body(i);
  });
}

// Whether threads take batch rows (independent sequences, no barriers) rather than hidden
// units: each needs a couple of full row tiles to keep its kernels busy.
inline bool split_by_rows(std::int64_t batch, int threads, int tile_rows) {
  return threads > 1 && batch >= std::int64_t(2) * threads * tile_rows;
}

// This thread's rows when threads take rows: one contiguous range of whole row tiles, the same
// at every step of a parallel region (a thread alone reads and writes its rows' states: no
// barrier), so each weight panel serves all of them while it is in cache. Rows are sorted
// longest first and drop out as their sequences end, so the ranges balance the rows the
// threads will run summed over the region's steps [step_begin, step_end), not the row counts.
template <class ActiveAt>
inline Range balanced_row_range(std::int64_t batch, std::int64_t step_begin,
                                std::int64_t step_end, ActiveAt active_at, int tile_rows,
                                int threads, int thread) {
  const std::int64_t tiles = (batch + tile_rows - 1) / tile_rows;
  // Rows of `tile` summed over the steps; recomputed rather than stored, so that a region body
  // allocates nothing (it must not throw).
  auto tile_work = [&](std::int64_t tile) {
    std::int64_t rows = 0;
    for (std::int64_t t = step_begin; t < step_end; ++t)
      rows += std::clamp<std::int64_t>(active_at(t) - tile * tile_rows, 0, tile_rows);
    return rows;
  };
  std::int64_t total = 0;
  for (std::int64_t tile = 0; tile < tiles; ++tile) total += tile_work(tile);
  // Thread k starts at the first tile whose preceding work reaches k/threads of the total.
  auto start = [&](int k) {
    if (k >= threads) return tiles;
    std::int64_t tile = 0, done = 0;
    while (tile < tiles && done * threads < total * k) done += tile_work(tile++);
    return tile;
  };
  return {std::min(start(thread) * tile_rows, batch), std::min(start(thread + 1) * tile_rows, batch)};
}

}  // namespace fastgru::driver
