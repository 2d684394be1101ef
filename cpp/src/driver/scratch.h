// Uninitialised, 64-byte aligned scratch memory for one call. Blocks are recycled through a
// small per-thread cache: large fresh allocations are mapped anew by the OS and every first
// touch of a page faults and zeroes it, which costs a tenth of a large backward pass.
#pragma once

#include <cstddef>
#include <cstdint>

namespace fastgru::driver {

// Returns a block of at least `bytes` bytes, from this thread's cache when one fits.
void* acquire_scratch(std::size_t bytes, std::size_t* capacity);
// Gives a block back to this thread's cache (or frees it when the cache is full).
void release_scratch(void* block, std::size_t capacity);

template <typename Real>
class Scratch {
 public:
  explicit Scratch(std::int64_t count)
      : data_(static_cast<Real*>(acquire_scratch(
            static_cast<std::size_t>(count > 0 ? count : 1) * sizeof(Real), &capacity_))) {}
  ~Scratch() { release_scratch(data_, capacity_); }
  Scratch(const Scratch&) = delete;
  Scratch& operator=(const Scratch&) = delete;

  Real* data() const { return data_; }

 private:
  std::size_t capacity_ = 0;
  Real* data_;
};

}  // namespace fastgru::driver
