#include "threads/contention.h"

#include <sys/resource.h>

#include <algorithm>
#include <limits>

namespace fastgru::threads {
namespace {

using Clock = std::chrono::steady_clock;
using Nanoseconds = std::chrono::nanoseconds;

// Share of the threads' time spent waiting for each other above which the machine counts as
// busy (step loops add what their uneven split leaves them waiting on an idle machine). A
// preempted partner keeps the others waiting for a scheduler time slice, milliseconds against
// a step's microseconds, so beside busy processes the share is far above this.
constexpr double kMostWaitingShare = 0.3;
// Regions are judged over windows that span several scheduler ticks.
constexpr long long kWindowNs = 2'000'000;
constexpr std::int64_t kWindowSteps = 8;
// How long the machine counts as busy after threads found it so: doubled each time it still is
// when they are tried again, back to the first after a window in which they did not wait.
constexpr long long kFirstHoldNs = 50'000'000;
constexpr long long kLongestHoldNs = 2'000'000'000;

long long now_ns() {
  return std::chrono::duration_cast<Nanoseconds>(Clock::now().time_since_epoch()).count();
}

std::atomic<long long> busy_until_ns{std::numeric_limits<long long>::min()};
std::atomic<long long> hold_ns{kFirstHoldNs};
// The current window of reported regions (thread time and waiting, all threads summed).
std::atomic<long long> window_thread_ns{0};
std::atomic<long long> window_waited_ns{0};

std::atomic<std::int64_t> forced_collapse_step{-1};

bool machine_busy_at(long long now) { return now < busy_until_ns.load(std::memory_order_relaxed); }

void judge(bool waited_too_long) {
  const long long now = now_ns();
  if (waited_too_long) {
    const long long hold = hold_ns.load(std::memory_order_relaxed);
    busy_until_ns.store(now + hold, std::memory_order_relaxed);
    hold_ns.store(std::min(2 * hold, kLongestHoldNs), std::memory_order_relaxed);
  } else if (!machine_busy_at(now)) {
    // (During a hold, the regions that still run on threads are long ones, or a loop that
    // went on alone: neither says the machine is idle again.)
    hold_ns.store(kFirstHoldNs, std::memory_order_relaxed);
  }
}

bool too_long(long long waited, long long thread_time, double share) {
  return static_cast<double>(waited) > share * static_cast<double>(thread_time);
}

constexpr std::int64_t kNever = std::numeric_limits<std::int64_t>::max();

}  // namespace

bool machine_busy() { return machine_busy_at(now_ns()); }

void collapse_step_loops_after(std::int64_t step) {
  forced_collapse_step.store(step, std::memory_order_relaxed);
}

void report_region(int threads, long long elapsed_ns, long long waited_ns) {
  const long long thread_ns = threads * elapsed_ns;
  const long long waited = window_waited_ns.fetch_add(waited_ns, std::memory_order_relaxed) + waited_ns;
  const long long total = window_thread_ns.fetch_add(thread_ns, std::memory_order_relaxed) + thread_ns;
  if (total < threads * kWindowNs) return;
  // One reporter closes the window (concurrent reporters may blur one window: harmless).
  if (window_thread_ns.exchange(0, std::memory_order_relaxed) == 0) return;
  window_waited_ns.store(0, std::memory_order_relaxed);
  judge(too_long(waited, total, kMostWaitingShare));
}

void notice_preemptions() {
#if defined(RUSAGE_THREAD)
  // Involuntary context switches: the scheduler took the CPU from this thread for another one.
  // On an idle machine there are next to none; beside one busy process per CPU, one every few
  // milliseconds of this thread's running.
  // Workers this thread woke may have preempted it themselves: those switches do not count.
  constexpr long kPreemptions = 3;
  constexpr long long kWithinNs = 50'000'000;
  thread_local long last_count = -1;
  thread_local long long last_ns = 0;
  rusage usage{};
  if (getrusage(RUSAGE_THREAD, &usage) != 0) return;
  const long count = usage.ru_nivcsw - wake_ups_issued();
  const long long now = now_ns();
  if (last_count >= 0 && count - last_count >= kPreemptions && now - last_ns <= kWithinNs) judge(true);
  if (last_count < 0 || now - last_ns > kWithinNs || count - last_count >= kPreemptions) {
    last_count = count;
    last_ns = now;
  }
#endif
}

StepLoopWatch::StepLoopWatch(double uneven_share)
    : uneven_share_(uneven_share), alone_from_(kNever), window_start_(Clock::now()) {}

void StepLoopWatch::observe(const Worker& worker, std::int64_t step) {
  if (worker.count() <= 1 || worker.index() != 0) return;
  if (alone_from_.load(std::memory_order_relaxed) != kNever) return;
  const std::int64_t forced = forced_collapse_step.load(std::memory_order_relaxed);
  if (forced >= 0 && step >= forced) {
    alone_from_.store(step + 1, std::memory_order_release);
    return;
  }
  if (step - window_start_step_ < kWindowSteps) return;
  const Clock::time_point now = Clock::now();
  const long long elapsed = std::chrono::duration_cast<Nanoseconds>(now - window_start_).count();
  if (elapsed < kWindowNs) return;
  const long long waited = worker.barrier_wait_ns() - window_start_wait_ns_;
  if (too_long(waited, worker.count() * elapsed, kMostWaitingShare + uneven_share_)) {
    judge(true);
    // Read by the other threads after the next barrier, which they pass only after this store.
    alone_from_.store(step + 1, std::memory_order_release);
  } else {
    window_start_ = now;
    window_start_wait_ns_ += waited;
    window_start_step_ = step;
  }
}

}  // namespace fastgru::threads
