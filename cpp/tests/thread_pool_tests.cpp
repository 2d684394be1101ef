// The thread pool, the barrier, the step-loop watch and the CPU budget.
#include <sched.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <thread>
#include <vector>

#include "threads/contention.h"
#include "threads/cpu_budget.h"
#include "threads/pool.h"

using fastgru::threads::parallel;
using fastgru::threads::Worker;

namespace {

int failures = 0;

void check(bool ok, const char* what) {
  if (!ok) {
    std::fprintf(stderr, "FAILED: %s\n", what);
    ++failures;
  }
}

void every_thread_runs_once() {
  for (int threads = 1; threads <= 5; ++threads) {
    for (int round = 0; round < 200; ++round) {
      std::vector<std::atomic<int>> runs(threads);
      std::atomic<bool> counts_agree{true};
      parallel(threads, [&](const Worker& w) {
        runs[w.index()].fetch_add(1);
        if (w.count() != threads) counts_agree = false;
      });
      bool once = true;
      for (auto& r : runs) once = once && r.load() == 1;
      check(once && counts_agree, "each index of a region runs exactly once");
    }
  }
}

void barrier_orders_phases() {
  constexpr int kThreads = 3, kPhases = 2000;
  std::vector<int> slots(kThreads, -1);
  std::atomic<bool> ordered{true};
  parallel(kThreads, [&](const Worker& w) {
    for (int phase = 0; phase < kPhases; ++phase) {
      slots[w.index()] = phase;
      w.barrier();
      for (int s : slots)
        if (s != phase) ordered = false;
      w.barrier();
    }
  });
  check(ordered, "a barrier makes every thread's writes before it visible after it");
}

void nested_region_runs_on_one_thread() {
  std::atomic<int> inner_counts{0};
  parallel(2, [&](const Worker&) {
    parallel(2, [&](const Worker& inner) { inner_counts.fetch_add(inner.count()); });
  });
  check(inner_counts.load() == 2, "a region inside a region runs on one thread");
}

void regions_from_several_threads() {
  std::atomic<long> total{0};
  std::vector<std::thread> callers;
  for (int c = 0; c < 4; ++c) {
    callers.emplace_back([&] {
      for (int round = 0; round < 300; ++round)
        parallel(2, [&](const Worker& w) {
          w.barrier();
          total.fetch_add(w.index() + 1);
        });
    });
  }
  for (auto& c : callers) c.join();
  check(total.load() == 4L * 300 * 3, "callers on several threads each get their own workers");
}

void a_forked_child_computes_on_threads() {
  parallel(2, [](const Worker&) {});
  const pid_t pid = fork();
  if (pid == 0) {
    alarm(20);  // a hang fails the test instead of blocking it
    std::atomic<int> seen{0};
    parallel(2, [&](const Worker& w) {
      w.barrier();
      seen.fetch_add(w.count());
    });
    _exit(seen.load() == 4 ? 0 : 1);
  }
  int status = 0;
  waitpid(pid, &status, 0);
  check(WIFEXITED(status) && WEXITSTATUS(status) == 0,
        "a child forked after a region starts a pool of its own");
}

// A loop whose thread 1 loses the CPU for 1 ms every step, as when another process preempts
// it, goes on alone from the same step on every thread. (That a balanced loop keeps its threads
// is seen in the benchmarks: here other processes could make it wait as well.)
void a_loop_of_waiting_threads_continues_alone() {
  {
    constexpr int kSteps = 200;
    std::atomic<long> alone_from_seen[2] = {{-1}, {-1}};
    std::atomic<int> steps_run[2] = {{0}, {0}};
    {
      fastgru::threads::StepLoopWatch watch(0.0);
      parallel(2, [&](const Worker& w) {
        for (int step = 0; step < kSteps; ++step) {
          if (w.index() == 1) std::this_thread::sleep_for(std::chrono::milliseconds(1));
          steps_run[w.index()].fetch_add(1);
          w.barrier();
          watch.observe(w, step);
          if (watch.alone(step)) {
            alone_from_seen[w.index()] = step;
            return;
          }
        }
      });
    }
    check(alone_from_seen[0] >= 0 && alone_from_seen[0] == alone_from_seen[1],
          "a loop whose threads wait for a preempted partner goes on alone, agreed by all");
    check(steps_run[0] == steps_run[1] && steps_run[0] == alone_from_seen[0] + 1,
          "every thread ran the steps before the agreed one");
    check(fastgru::threads::machine_busy(),
          "after such a loop, the next ones start on one thread");
  }
}

void cpu_budget_follows_the_affinity_mask() {
  using namespace fastgru::threads;
  const int usable = usable_cpus();
  check(usable >= 1 && usable <= cpus_in_affinity_mask(), "usable CPUs within the affinity mask");
  std::thread pinned([] {
    cpu_set_t one;
    CPU_ZERO(&one);
    CPU_SET(sched_getcpu() >= 0 ? sched_getcpu() : 0, &one);
    if (sched_setaffinity(0, sizeof(one), &one) == 0) {
      std::this_thread::sleep_for(std::chrono::milliseconds(150));  // usable_cpus() reads it again
      check(cpus_in_affinity_mask() == 1 && usable_cpus() == 1,
            "a thread pinned to one CPU may use one");
    }
  });
  pinned.join();
}

}  // namespace

int main() {
  every_thread_runs_once();
  barrier_orders_phases();
  nested_region_runs_on_one_thread();
  regions_from_several_threads();
  a_forked_child_computes_on_threads();
  a_loop_of_waiting_threads_continues_alone();
  cpu_budget_follows_the_affinity_mask();
  if (failures == 0) std::printf("thread pool tests passed\n");
  return failures == 0 ? 0 : 1;
}
