// What fastgru's threads cost on this machine (README "Threads"): starting a region on workers
// that are still spinning and on workers that have gone to sleep, and one barrier of a step loop.
// Medians of many rounds, in microseconds. Built with -DFASTGRU_BUILD_TESTS=ON.
#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <cstdio>
#include <thread>
#include <vector>

#include "threads/pool.h"

namespace {

using Clock = std::chrono::steady_clock;

double median_us(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

template <class Setup, class Measured>
double time_rounds(int rounds, Setup setup, Measured measured) {
  std::vector<double> us;
  for (int i = 0; i < rounds; ++i) {
    setup();
    const auto start = Clock::now();
    measured();
    us.push_back(std::chrono::duration<double, std::micro>(Clock::now() - start).count());
  }
  return median_us(us);
}

}  // namespace

int main(int argc, char** argv) {
  const int threads = argc > 1 ? std::atoi(argv[1]) : 2;
  auto empty_region = [&] { fastgru::threads::parallel(threads, [](const fastgru::threads::Worker&) {}); };
  empty_region();
  const double hot = time_rounds(2000, [] {}, empty_region);
  const double cold = time_rounds(200, [] { std::this_thread::sleep_for(std::chrono::milliseconds(2)); },
                                  empty_region);
  constexpr int kBarriers = 1000;
  const double barrier = time_rounds(50, [] {}, [&] {
    fastgru::threads::parallel(threads, [](const fastgru::threads::Worker& w) {
      for (int i = 0; i < kBarriers; ++i) w.barrier();
    });
  }) / kBarriers;
  std::printf("threads %d: region on spinning workers %.2f us, on sleeping workers %.2f us, "
              "barrier %.3f us\n", threads, hot, cold, barrier);
}
