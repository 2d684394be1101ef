// The thread settings of the public API (fastgru/runtime.h).
#include <omp.h>

#include <algorithm>
#include <atomic>
#include <stdexcept>
#include <string>

#include "fastgru/runtime.h"
#include "threads/cpu_budget.h"

namespace fastgru {
namespace {

std::atomic<int> requested_threads{0};

}  // namespace

void set_num_threads(int n) {
  if (n < 0) {
    throw std::invalid_argument(
        "fastgru: set_num_threads: expected n >= 0 (0 = the CPUs this process may use, capped by "
        "OpenMP's setting), got " + std::to_string(n));
  }
  requested_threads.store(n);
}

int num_threads() {
  const int n = requested_threads.load();
  if (n > 0) return n;
  // OMP_NUM_THREADS, omp_set_num_threads and threadpoolctl set OpenMP's count: a cap here.
  return std::max(1, std::min(omp_get_max_threads(), threads::usable_cpus()));
}

}  // namespace fastgru
