// Thread counts and work splitting for the driver's OpenMP regions.
#pragma once

#include <algorithm>
#include <cstdint>

namespace fastgru::driver {

// Threads worth using for `flops` of work: none beyond the first for tiny problems, where
// waking threads costs more than it saves.
int threads_for(double flops);

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

// Whether threads take batch rows (independent sequences, no barriers) rather than hidden
// units: each needs a couple of full row tiles to keep its kernels busy.
inline bool split_by_rows(std::int64_t batch, int threads, int tile_rows) {
  return threads > 1 && batch >= std::int64_t(2) * threads * tile_rows;
}

// Calls body(row_begin, row_count) for this thread's rows among the `active` rows of a batch of
// `batch`. A thread keeps the same rows at every step (it alone reads and writes their state: no
// barrier). In a dense batch they are one contiguous range, so each weight panel serves all of
// them while it is in cache; when rows drop out (variable lengths) whole row tiles are dealt
// round-robin instead, so that the shrinking batch stays balanced between threads.
template <class Body>
inline void for_my_rows(std::int64_t active, std::int64_t batch, bool dense, int tile_rows,
                        int threads, int thread, Body&& body) {
  if (dense) {
    const std::int64_t tiles = (batch + tile_rows - 1) / tile_rows;
    const Range mine = split_evenly(tiles, threads, thread);
    const std::int64_t begin = std::min(mine.begin * tile_rows, active);
    const std::int64_t end = std::min(mine.end * tile_rows, active);
    if (end > begin) body(begin, end - begin);
    return;
  }
  const std::int64_t tiles = (active + tile_rows - 1) / tile_rows;
  for (std::int64_t tile = thread; tile < tiles; tile += threads) {
    const std::int64_t begin = tile * tile_rows;
    body(begin, std::min<std::int64_t>(tile_rows, active - begin));
  }
}

}  // namespace fastgru::driver
