#include "driver/matmul.h"

#include <algorithm>

#include "driver/scratch.h"
#include "driver/work_split.h"

namespace fastgru::driver {
namespace {

// Depth of one packed block: a 3W-column panel of it stays in the L1 cache.
constexpr Index kDepthBlock = 256;
// Most row tiles of a product over pre-packed panels that share one panel.
constexpr Index kChunkTiles = 64;
// Rows of a transposed A requested ahead of their copy.
constexpr Index kCopyPrefetchRows = 16;

template <typename Real>
void zero_matrix(Index m, Index n, Real* c, Index ldc) {
  for (Index i = 0; i < m; ++i) std::fill(c + i * ldc, c + i * ldc + n, Real(0));
}

// This thread's share of the (row chunk, panel) pairs of c.
template <typename Real>
void multiply_block(const threads::Worker& worker, const kernels::KernelTable<Real>& k, Index m,
                    Index n, Index depth,
                    const Real* a, Index a_row_stride, Index a_depth_stride, const Real* panels,
                    Index panel_stride, Real* c, Index ldc, bool accumulate,
                    const Real* column_bias) {
  const Index panel_count = (n + 3 * k.vector_width - 1) / (3 * k.vector_width);
  // A panel beyond the L2 (weights of a large layer) streams from L3 for its first row tile:
  // up to 64 tiles share it (64-tile chunks ran the H = 1024 projection 5-10% faster than
  // 8-tile ones). Chunks are near-equal whole tiles, so the threads' shares balance and every
  // row falls in the same tile as with any other chunking.
  const Index most_rows = kChunkTiles * k.tile_rows;
  const Index row_chunks = (m + most_rows - 1) / most_rows;
  const Index tiles_per_chunk = ((m + row_chunks - 1) / row_chunks + k.tile_rows - 1) / k.tile_rows;
  const Index chunk_rows = tiles_per_chunk * k.tile_rows;
  const Range mine = split_evenly(row_chunks * panel_count, worker.count(), worker.index());
  for (Index item = mine.begin; item < mine.end; ++item) {
    const Index r0 = (item / panel_count) * chunk_rows, p = item % panel_count;
    k.multiply_panels(std::min(chunk_rows, m - r0), n, depth, a + r0 * a_row_stride, a_row_stride,
                      a_depth_stride, panels, panel_stride, p, p + 1, c + r0 * ldc, ldc,
                      accumulate, column_bias);
  }
}

}  // namespace

template <typename Real>
void matmul(const kernels::KernelTable<Real>& k, Index m, Index n, Index depth, const Real* a,
            Index a_row_stride, Index a_depth_stride, const Real* b, Index b_row_stride,
            Index b_col_stride, Real* c, Index ldc, bool accumulate, Real* a_row_sums) {
  if (m == 0 || n == 0) return;
  if (depth == 0) {
    if (!accumulate) zero_matrix(m, n, c, ldc);
    return;
  }
  const Index PW = 3 * k.vector_width, panel_count = (n + PW - 1) / PW;
  const Index block = std::min(depth, kDepthBlock);
  const Index chunk_rows = 8 * k.tile_rows, row_chunks = (m + chunk_rows - 1) / chunk_rows;
  Scratch<Real> packed(block * panel_count * PW);
  const int threads = threads_for(2.0 * m * n * depth);
  const bool copy_a = a_depth_stride != 1 || a_row_sums;
  // A row chunk of a transposed A per thread, allocated here: region bodies must not throw.
  Scratch<Real> chunks(copy_a ? threads * block * chunk_rows : 0);
  for (Index k0 = 0; k0 < depth; k0 += block) {
    const Index kb = std::min(block, depth - k0);
    threads::parallel(threads, [&](const threads::Worker& worker) {
      const Range my_panels = split_evenly(panel_count, worker.count(), worker.index());
      for (Index p = my_panels.begin; p < my_panels.end; ++p) {
        Real* out = packed.data() + p * kb * PW;
        const Index col0 = p * PW, width = std::min(PW, n - col0);
        for (Index kk = 0; kk < kb; ++kk, out += PW) {
          const Real* row = b + (k0 + kk) * b_row_stride + col0 * b_col_stride;
          // Unit column stride (every caller's) lets the copy vectorise.
          if (b_col_stride == 1) {
            std::copy(row, row + width, out);
          } else {
            for (Index j = 0; j < width; ++j) out[j] = row[j * b_col_stride];
          }
          std::fill(out + width, out + PW, Real(0));
        }
      }
      // Every thread's products read every packed panel.
      worker.barrier();
      if (!copy_a) {
        multiply_block(worker, k, m, n, kb, a + k0, a_row_stride, Index(1), packed.data(), kb * PW, c,
                       ldc, accumulate || k0 > 0, static_cast<const Real*>(nullptr));
      } else {
        // A transposed touches a new page at every k: a row chunk of it is copied k-major once
        // and reused for every panel (and summed on the way when asked).
        Real* chunk = chunks.data() + worker.index() * block * chunk_rows;
        const Range my_chunks = split_evenly(row_chunks, worker.count(), worker.index());
        for (Index rc = my_chunks.begin; rc < my_chunks.end; ++rc) {
          const Index r0 = rc * chunk_rows, rows = std::min(chunk_rows, m - r0);
          Real* sums = a_row_sums ? a_row_sums + r0 : nullptr;
          for (Index kk = 0; kk < kb; ++kk) {
            const Real* source = a + r0 * a_row_stride + (k0 + kk) * a_depth_stride;
            Real* target = chunk + kk * chunk_rows;
            if (a_row_stride == 1) {
              // Each k starts a new source row; asking for later rows early hides the misses.
              if (kk + kCopyPrefetchRows < kb)
                kernels::prefetch_range(source + kCopyPrefetchRows * a_depth_stride, rows);
              std::copy(source, source + rows, target);
            } else {
              for (Index i = 0; i < rows; ++i) target[i] = source[i * a_row_stride];
            }
            if (sums) {
              for (Index i = 0; i < rows; ++i) sums[i] += target[i];
            }
          }
          k.multiply_panels(rows, n, kb, chunk, 1, chunk_rows, packed.data(), kb * PW, 0,
                            panel_count, c + r0 * ldc, ldc, accumulate || k0 > 0, nullptr);
        }
      }
    });
  }
}

template <typename Real>
void matmul_packed(const kernels::KernelTable<Real>& k, Index m, Index n, Index depth,
                   const Real* a, Index a_row_stride, Index a_depth_stride, const Real* panels,
                   Real* c, Index ldc, const Real* column_bias) {
  if (m == 0 || n == 0) return;
  const int threads = threads_for(2.0 * m * n * depth);
  threads::parallel(threads, [&](const threads::Worker& worker) {
    multiply_block(worker, k, m, n, depth, a, a_row_stride, a_depth_stride, panels,
                   depth * 3 * k.vector_width, c, ldc, false, column_bias);
  });
}

template <typename Real>
void matmul_packed_rows(const kernels::KernelTable<Real>& k, Index m, Index n, Index depth,
                        const Real* a, Index a_row_stride, const Index* rows,
                        const Real* panels, Real* c, Index ldc, const Real* column_bias) {
  if (m == 0 || n == 0) return;
  const int threads = threads_for(2.0 * m * n * depth);
  // Chunks of at most kChunkTiles tiles and about 64 KB of gathered rows (the L2 holds them
  // beside the panels), near-equal whole tiles, a multiple of the thread count.
  const Index tiles = (m + k.tile_rows - 1) / k.tile_rows;
  const Index row_bytes = std::max<Index>(1, depth * Index(sizeof(Real)));
  const Index most_tiles =
      std::max<Index>(1, std::min<Index>(kChunkTiles, (Index(64) << 10) / row_bytes / k.tile_rows));
  Index row_chunks = (tiles + most_tiles - 1) / most_tiles;
  row_chunks = std::min(tiles, (row_chunks + threads - 1) / threads * threads);
  const Index chunk_rows = (tiles + row_chunks - 1) / row_chunks * k.tile_rows;
  row_chunks = (m + chunk_rows - 1) / chunk_rows;
  const Index panel_count = (n + 3 * k.vector_width - 1) / (3 * k.vector_width);
  // Allocated here: region bodies must not throw.
  Scratch<Real> gathered(threads * chunk_rows * depth);
  threads::parallel(threads, [&](const threads::Worker& worker) {
    Real* chunk = gathered.data() + worker.index() * chunk_rows * depth;
    const Range mine = split_evenly(row_chunks, worker.count(), worker.index());
    for (Index rc = mine.begin; rc < mine.end; ++rc) {
      const Index r0 = rc * chunk_rows, count = std::min(chunk_rows, m - r0);
      for (Index i = 0; i < count; ++i)
        std::copy(a + rows[r0 + i] * a_row_stride, a + rows[r0 + i] * a_row_stride + depth,
                  chunk + i * depth);
      k.multiply_panels(count, n, depth, chunk, depth, Index(1), panels, depth * 3 * k.vector_width,
                        0, panel_count, c + r0 * ldc, ldc, false, column_bias);
    }
  });
}

#define FASTGRU_INSTANTIATE_MATMUL(Real)                                                     \
  template void matmul<Real>(const kernels::KernelTable<Real>&, Index, Index, Index,         \
                             const Real*, Index, Index, const Real*, Index, Index, Real*,    \
                             Index, bool, Real*);                                            \
  template void matmul_packed<Real>(const kernels::KernelTable<Real>&, Index, Index, Index,  \
                                    const Real*, Index, Index, const Real*, Real*, Index,        \
                                    const Real*);                                            \
  template void matmul_packed_rows<Real>(const kernels::KernelTable<Real>&, Index, Index, Index, \
                                         const Real*, Index, const Index*, const Real*, Real*,   \
                                         Index, const Real*);
FASTGRU_INSTANTIATE_MATMUL(float)
FASTGRU_INSTANTIATE_MATMUL(double)
#undef FASTGRU_INSTANTIATE_MATMUL

}  // namespace fastgru::driver
