#include "driver/work_split.h"

#include <atomic>

#include "fastgru/runtime.h"
#include "threads/contention.h"

namespace fastgru::driver {
namespace {

// Crossovers measured with bench/threads.py (README "Threads"): below these, a second thread
// costs more in wake-ups and barriers than it saves. A region on spinning workers starts in
// 0.3 us and a barrier takes 0.15 us; sleeping workers take 160 us to wake (all measured by
// bench/cpp/thread_costs.cpp on the 2-core development machine), which is 8 MFLOP of work.
constexpr double kMinRegionFlopsPerThread = 1e6;
constexpr double kMinColdRegionFlopsPerThread = 16e6;
constexpr double kMinStepFlopsPerThread = 60e3;
std::atomic<double> min_region_flops_per_thread{kMinRegionFlopsPerThread};
std::atomic<double> min_step_flops_per_thread{kMinStepFlopsPerThread};
// On a busy machine (threads/contention.h) a region's threads each need a few scheduler time
// slices of work (200 MFLOP, about 4 ms) to come out ahead of one thread.
constexpr double kMinBusyRegionFlopsPerThread = 200e6;

int useful_threads(double flops, double per_thread) {
  return static_cast<int>(std::min<double>(num_threads(), std::max(1.0, flops / per_thread)));
}

}  // namespace

ThreadCrossovers set_thread_crossovers(ThreadCrossovers crossovers) {
  return {min_region_flops_per_thread.exchange(crossovers.region_flops_per_thread),
          min_step_flops_per_thread.exchange(crossovers.step_flops_per_thread)};
}

int threads_for(double flops) {
  const double per_thread = min_region_flops_per_thread.load(std::memory_order_relaxed);
  const int warm = useful_threads(flops, per_thread);
  if (warm == 1) return 1;
  if (threads::machine_busy()) return useful_threads(flops, kMinBusyRegionFlopsPerThread);
  if (threads::workers_spinning()) return warm;
  // Work that threads would speed up once awake: wake them for the calls that follow (a loop
  // of calls, the next layer), and run this one as their wake-up allows.
  threads::wake_workers(warm);
  return useful_threads(flops, std::max(per_thread, kMinColdRegionFlopsPerThread));
}

StepLoopPlan plan_step_loop(double step_flops, std::int64_t steps, std::int64_t batch,
                            int tile_rows) {
  int threads = threads_for(step_flops * static_cast<double>(steps));
  if (split_by_rows(batch, threads, tile_rows)) return {threads, true};
  threads = std::min(threads, useful_threads(step_flops, min_step_flops_per_thread.load(std::memory_order_relaxed)));
  if (threads::machine_busy()) threads = 1;
  return {threads, false};
}

}  // namespace fastgru::driver
