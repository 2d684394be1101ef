#include "driver/threads.h"

#include <omp.h>
#include <pthread.h>

#include <atomic>
#include <stdexcept>
#include <string>

#include "fastgru/runtime.h"

namespace fastgru {
namespace {

std::atomic<int> requested_threads{0};

// Below this much work per thread, a fork and the barriers cost more than they save.
constexpr double kMinFlopsPerThread = 60e3;

// The OpenMP runtime keeps a pool of worker threads per thread that starts parallel regions,
// and a fork copies only the forking thread: in the child, that thread's pool names workers
// that do not exist, and libgomp then waits for them forever in its next parallel region of
// more than one thread (it has no fork handler). Per thread, as the pools are: whether this
// thread started a pool, and whether it lost it in a fork (the child inherits the flags of
// the thread that forked). Threads the child starts later get pools of their own.
thread_local bool started_worker_pool = false;
thread_local bool lost_worker_pool = false;

void after_fork_in_child() { lost_worker_pool = started_worker_pool; }

}  // namespace

void set_num_threads(int n) {
  if (n < 0) {
    throw std::invalid_argument("fastgru: set_num_threads: expected n >= 0 (0 follows OpenMP), got " +
                                std::to_string(n));
  }
  requested_threads.store(n);
}

int num_threads() {
  if (lost_worker_pool) return 1;
  const int n = requested_threads.load();
  return n > 0 ? n : omp_get_max_threads();
}

namespace driver {

int threads_for(double flops) {
  const int useful = static_cast<int>(std::max(1.0, flops / kMinFlopsPerThread));
  const int threads = std::max(1, std::min(num_threads(), useful));
  if (threads > 1 && !started_worker_pool) {
    // Registered before the first pool starts, so that every fork after it is seen.
    [[maybe_unused]] static const int registered = pthread_atfork(nullptr, nullptr, after_fork_in_child);
    started_worker_pool = true;
  }
  return threads;
}

}  // namespace driver
}  // namespace fastgru
