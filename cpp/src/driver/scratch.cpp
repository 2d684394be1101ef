#include "driver/scratch.h"

#include <algorithm>
#include <new>
#include <vector>

namespace fastgru::driver {
namespace {

constexpr std::align_val_t kAlignment{64};
// Blocks kept per thread: a backward call holds about eight at once.
constexpr std::size_t kCachedBlocks = 12;

struct Block {
  void* data;
  std::size_t capacity;
};

struct ScratchCache {
  std::vector<Block> blocks;
  ~ScratchCache() {
    for (const Block& block : blocks) ::operator delete(block.data, kAlignment);
  }
};

ScratchCache& cache() {
  thread_local ScratchCache instance;
  return instance;
}

}  // namespace

void* acquire_scratch(std::size_t bytes, std::size_t* capacity) {
  auto& blocks = cache().blocks;
  // The smallest cached block that fits, so that small requests leave large blocks alone.
  auto best = blocks.end();
  for (auto it = blocks.begin(); it != blocks.end(); ++it)
    if (it->capacity >= bytes && (best == blocks.end() || it->capacity < best->capacity)) best = it;
  if (best != blocks.end()) {
    const Block block = *best;
    blocks.erase(best);
    *capacity = block.capacity;
    return block.data;
  }
  *capacity = bytes;
  return ::operator new(bytes, kAlignment);
}

void release_scratch(void* data, std::size_t capacity) {
  auto& blocks = cache().blocks;
  blocks.push_back({data, capacity});
  if (blocks.size() > kCachedBlocks) {
    // Drop the smallest: the large ones are the expensive ones to map again.
    auto smallest = std::min_element(blocks.begin(), blocks.end(), [](const Block& a, const Block& b) {
      return a.capacity < b.capacity;
    });
    ::operator delete(smallest->data, kAlignment);
    blocks.erase(smallest);
  }
}

}  // namespace fastgru::driver
