// Threads on a busy machine. Threads that meet at barriers advance only while all of them run:
// when other processes keep the CPUs busy, the scheduler preempts one thread or another every
// few milliseconds and the rest wait (two threads ran 1.5-9x slower than one beside busy
// processes). The pool reports how long each region's threads waited for each other; when they
// waited more than a share of their time, the machine counts as busy for a while (longer each
// time it still is when threads are tried again): then step loops and short regions run on one
// thread, and a long step loop that finds its threads waiting continues on one thread at once.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>

#include "threads/pool.h"

namespace fastgru::threads {

// Whether recent regions found their threads waiting for preempted partners.
bool machine_busy();

// For tests: step loops on several threads continue on one after `step` (-1: only when their
// threads wait for each other).
void collapse_step_loops_after(std::int64_t step);

// A region of `threads` threads ran `elapsed_ns`, its threads waiting `waited_ns` in all.
void report_region(int threads, long long elapsed_ns, long long waited_ns);

// Called where threads are about to be chosen: when the calling thread itself has been
// preempted repeatedly since its last call (runnable processes outnumber the CPUs), the machine
// counts as busy, before any region on several threads has had to find it out by waiting.
void notice_preemptions();

// Shared by the threads of one step loop, whose every step has a barrier. After it, every
// thread calls observe(); when the threads spent too much of the last window at barriers,
// alone(step) turns true from the next step on, the same step on every thread: the loop then
// meets once more and continues on thread 0 alone, over the whole range.
class StepLoopWatch {
 public:
  // `uneven_share`: the share of the threads' time an idle machine leaves them waiting because
  // their parts of a step differ (1 - mean part / largest part), added to the threshold.
  explicit StepLoopWatch(double uneven_share);
  StepLoopWatch(const StepLoopWatch&) = delete;
  StepLoopWatch& operator=(const StepLoopWatch&) = delete;

  // `step` counts the loop's steps from 0 on every thread; thread 0 does the watching.
  void observe(const Worker& worker, std::int64_t step);
  // Read after the step's barrier.
  bool alone(std::int64_t step) const { return step >= alone_from_.load(std::memory_order_acquire); }

 private:
  using Clock = std::chrono::steady_clock;
  const double uneven_share_;
  // The first step after which thread 0 goes on alone: written by thread 0 between two
  // barriers, read by all after the later one, so all threads agree on it.
  std::atomic<std::int64_t> alone_from_;
  // Thread 0's window.
  Clock::time_point window_start_;
  long long window_start_wait_ns_ = 0;
  std::int64_t window_start_step_ = 0;
};

}  // namespace fastgru::threads
