// The threads of the compute calls: a pool of our own rather than OpenMP's, because its waiting
// must cost little on a shared server. A thread that waits (for a region, at a barrier) spins
// briefly, then sleeps in the kernel: when a partner is preempted by another process, the
// waiter gives its core away instead of burning it (libgomp spins for milliseconds by default,
// which made 2 threads 2.5x slower than 1 beside busy processes).
#pragma once

#include <type_traits>

namespace fastgru::threads {

class Region;

// One thread of a parallel region: its index in [0, count) and the region's barrier.
class Worker {
 public:
  Worker(int index, int count, Region* region) : index_(index), count_(count), region_(region) {}
  int index() const { return index_; }
  int count() const { return count_; }
  // Returns once every thread of the region has called it (the same number of times); writes
  // made before it are visible after it. Free with one thread.
  void barrier() const;
  // Nanoseconds the region's threads have spent waiting at its barriers, all threads summed.
  long long barrier_wait_ns() const;

 private:
  int index_;
  int count_;
  Region* region_;
};

using RegionBody = void (*)(void* body, const Worker& worker);

// Whether the calling thread's workers that a region of `threads` would use are awake and
// spinning (they ran a region moments ago): it then starts in under a microsecond, against
// 100-200 us to wake sleeping workers.
bool workers_spinning(int threads);

// Wakes up to threads - 1 sleeping workers without giving them work, so that the next regions
// find them spinning. Returns at once.
void wake_workers(int threads);

// Sleeping threads the calling thread has woken so far.
long wake_ups_issued();

// Regions that have run on more than one thread in this process (for tests).
long long regions_on_several_threads();

// Runs body on `threads` threads of the calling thread's pool (the caller is thread 0) and
// returns when all have finished. A region started from inside a region runs on one thread.
void run_region(int threads, RegionBody call, void* body);

// body(const Worker&) must not throw: its partners would wait for it at the next barrier
// forever, so an exception ends the program instead.
template <class Body>
void parallel(int threads, Body&& body) {
  using BodyType = std::remove_reference_t<Body>;
  run_region(threads, [](void* b, const Worker& w) noexcept { (*static_cast<BodyType*>(b))(w); },
             const_cast<void*>(static_cast<const void*>(&body)));
}

}  // namespace fastgru::threads
