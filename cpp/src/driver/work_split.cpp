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
// Two threads splitting hidden units at B = 1 ran 0.72x one thread's time at H = 64 (25 KFLOP
// a step) and 0.65x at H = 128 (bench/threads.py, forced threads, idle machine).
constexpr double kMinStepFlopsPerThread = 20e3;
// On a busy machine (threads/contention.h) a region's threads each need a few scheduler time
// slices of work (200 MFLOP, about 4 ms) to come out ahead of one thread.
constexpr double kMinBusyRegionFlopsPerThread = 200e6;
// Set by tests and bench/threads.py: every region and step loop uses num_threads().
std::atomic<bool> forced{false};

int useful_threads(double flops, double per_thread) {
  return static_cast<int>(std::min<double>(num_threads(), std::max(1.0, flops / per_thread)));
}

// Threads for a region of `flops`, at most `cap`: as many as pay on spinning workers. Sleeping
// ones are woken for the calls that follow (a loop of calls, the next layer) and this region
// runs as their wake-up allows; on a busy machine only long regions get threads.
int region_threads(double flops, int cap) {
  if (forced.load(std::memory_order_relaxed)) return num_threads();
  const int warm = std::min(cap, useful_threads(flops, kMinRegionFlopsPerThread));
  if (warm <= 1) return 1;
  threads::notice_preemptions();
  if (threads::machine_busy()) return std::min(cap, useful_threads(flops, kMinBusyRegionFlopsPerThread));
  if (threads::workers_spinning(warm)) return warm;
  threads::wake_workers(warm);
  return std::min(cap, useful_threads(flops, kMinColdRegionFlopsPerThread));
}

}  // namespace

void force_threads(bool force) { forced.store(force, std::memory_order_relaxed); }

int threads_for(double flops) { return region_threads(flops, num_threads()); }

StepLoopPlan plan_step_loop(double step_flops, std::int64_t steps, std::int64_t batch,
                            int tile_rows) {
  const double flops = step_flops * static_cast<double>(steps);
  if (forced.load(std::memory_order_relaxed)) {
    const int n = num_threads();
    return {n, split_by_rows(batch, n, tile_rows)};
  }
  // The most threads that pay on an idle machine, first without waking any.
  const int most = useful_threads(flops, kMinRegionFlopsPerThread);
  if (most > 1) threads::notice_preemptions();
  int cap = most;
  if (!split_by_rows(batch, most, tile_rows)) {
    // Hidden units: a barrier every step, and one thread while the machine is busy.
    cap = threads::machine_busy() ? 1 : std::min(cap, useful_threads(step_flops, kMinStepFlopsPerThread));
  }
  const int threads = region_threads(flops, cap);
  return {threads, split_by_rows(batch, threads, tile_rows)};
}

}  // namespace fastgru::driver
