#include "driver/threads.h"

#include <omp.h>

#include <atomic>
#include <stdexcept>
#include <string>

#include "fastgru/runtime.h"

namespace fastgru {
namespace {

std::atomic<int> requested_threads{0};

// Below this much work per thread, a fork and the barriers cost more than they save.
constexpr double kMinFlopsPerThread = 60e3;

}  // namespace

void set_num_threads(int n) {
  if (n < 0) {
    throw std::invalid_argument("fastgru: set_num_threads: expected n >= 0 (0 follows OpenMP), got " +
                                std::to_string(n));
  }
  requested_threads.store(n);
}

int num_threads() {
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
