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
// more than one thread (it has no fork handler). The pool may have been started by fastgru or
// by any other library sharing the runtime (PyTorch, NumPy's BLAS, ...), so in a child the
// thread that forked computes on one thread, always. Threads the child starts get pools of
// their own. The handler is registered when the library is loaded, before any pool exists.
thread_local bool lost_worker_pool = false;

void after_fork_in_child() { lost_worker_pool = true; }

const bool fork_handler_registered = pthread_atfork(nullptr, nullptr, after_fork_in_child) == 0;

}  // namespace

void set_num_threads(int n) {
  if (n < 0) {
    throw std::invalid_argument("fastgru: set_num_threads: expected n >= 0 (0 follows OpenMP), got " +
                                std::to_string(n));
  }
  requested_threads.store(n);
}

int num_threads() {
  // Without the handler (registration fails only when out of memory), a child could hang.
  if (lost_worker_pool || !fork_handler_registered) return 1;
  const int n = requested_threads.load();
  return n > 0 ? n : omp_get_max_threads();
}

namespace driver {

int threads_for(double flops) {
  const int useful = static_cast<int>(std::max(1.0, flops / kMinFlopsPerThread));
  return std::max(1, std::min(num_threads(), useful));
}

}  // namespace driver
}  // namespace fastgru
