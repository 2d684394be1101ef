#include "threads/pool.h"

#include <pthread.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <climits>
#include <cstdint>
#include <memory>
#include <system_error>
#include <thread>
#include <vector>

#include "threads/contention.h"

#if defined(__linux__)
#include <linux/futex.h>
#include <sys/syscall.h>
#include <unistd.h>
#endif
#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#endif

namespace fastgru::threads {
namespace {

using Clock = std::chrono::steady_clock;

// How long a waiter spins before it sleeps. At a step's barrier the partner arrives within a
// few microseconds when it is running; when it has been preempted it is gone for a scheduler
// time slice (milliseconds), and the waiter's core is better given to whoever preempted it.
constexpr auto kBarrierSpin = std::chrono::microseconds(40);
// Workers between regions, on an idle machine: waking a sleeping worker took 160 us here (a
// virtual CPU leaving its idle state), so a worker spins through the gaps between the regions of
// one call and between the calls of a loop. While other processes keep the CPUs busy (step loops
// found their threads waiting: threads/contention.h), it gives its core away soon.
constexpr auto kIdleSpin = std::chrono::microseconds(1000);
constexpr auto kIdleSpinOnABusyMachine = std::chrono::microseconds(40);
// How long a sleeping worker takes to wake, as bench/cpp/thread_costs.cpp measured it.
constexpr auto kWakeUp = std::chrono::microseconds(200);

inline void cpu_relax() {
#if defined(__x86_64__) || defined(__i386__)
  _mm_pause();
#endif
}

// std::atomic<uint32_t> is a plain 32-bit word (lock-free), which the futex calls address.
inline void sleep_while_equal(std::atomic<std::uint32_t>& word, std::uint32_t value) {
#if defined(__linux__)
  syscall(SYS_futex, reinterpret_cast<std::uint32_t*>(&word), FUTEX_WAIT_PRIVATE, value, nullptr,
          nullptr, 0);
#else
  if (word.load() == value) std::this_thread::sleep_for(std::chrono::microseconds(20));
#endif
}

// Wake-ups this thread has issued: a woken worker often runs on its waker's CPU first,
// preempting it, which must not count as another process's doing (contention.cpp).
thread_local long wakes_issued = 0;

inline void wake_all(std::atomic<std::uint32_t>& word) {
  ++wakes_issued;
#if defined(__linux__)
  syscall(SYS_futex, reinterpret_cast<std::uint32_t*>(&word), FUTEX_WAKE_PRIVATE, INT_MAX,
          nullptr, nullptr, 0);
#else
  (void)word;
#endif
}

// A counter that threads wait on for a change: they spin for a while, then sleep. The waker
// enters the kernel only when someone sleeps (seq_cst orders its increment against the
// sleeper's registration, so a sleeper either sees the new value or is woken).
class Signal {
 public:
  std::uint32_t value() const { return word_.load(std::memory_order_acquire); }

  // `spin` is asked again after each wake-up: a waiter nudged awake spins anew.
  template <class SpinTime>
  void wait_for_change_with(std::uint32_t seen, SpinTime spin) {
    for (;;) {
      const Clock::time_point start = Clock::now();
      const Clock::duration spin_for = spin();
      for (unsigned i = 1;; ++i) {
        if (word_.load(std::memory_order_acquire) != seen) return;
        cpu_relax();
        if (i % 64 == 0 && Clock::now() - start > spin_for) break;
      }
      sleepers_.fetch_add(1, std::memory_order_seq_cst);
      if (word_.load(std::memory_order_seq_cst) == seen) sleep_while_equal(word_, seen);
      sleepers_.fetch_sub(1, std::memory_order_relaxed);
    }
  }
  void wait_for_change(std::uint32_t seen, Clock::duration spin) {
    wait_for_change_with(seen, [spin] { return spin; });
  }

  void change() {
    word_.fetch_add(1, std::memory_order_seq_cst);
    if (sleepers_.load(std::memory_order_seq_cst) > 0) wake_all(word_);
  }

  // Wakes sleeping waiters without a change: they spin again, ready for one.
  void nudge() {
    if (sleepers_.load(std::memory_order_seq_cst) > 0) wake_all(word_);
  }

 private:
  alignas(64) std::atomic<std::uint32_t> word_{0};
  std::atomic<int> sleepers_{0};
};

// Bumped in a forked child: its pools name worker threads that were not copied.
std::atomic<unsigned> forks{0};
const bool fork_handler_registered =
    pthread_atfork(nullptr, nullptr, [] { forks.fetch_add(1, std::memory_order_relaxed); }) == 0;

std::atomic<long long> threaded_regions{0};

// Set on pool workers and while a thread runs a region: a region inside runs on one thread.
thread_local bool inside_region = false;

}  // namespace

class Region {
 public:
  void start(int threads) {
    threads_ = threads;
    arrived_.store(0, std::memory_order_relaxed);
    waited_ns_.store(0, std::memory_order_relaxed);
  }
  int threads() const { return threads_; }

  void barrier() {
    const std::uint32_t seen = passed_.value();
    if (arrived_.fetch_add(1, std::memory_order_acq_rel) + 1 == threads_) {
      arrived_.store(0, std::memory_order_relaxed);
      passed_.change();
    } else {
      const Clock::time_point arrival = Clock::now();
      passed_.wait_for_change(seen, kBarrierSpin);
      const auto waited = std::chrono::duration_cast<std::chrono::nanoseconds>(Clock::now() - arrival);
      waited_ns_.fetch_add(waited.count(), std::memory_order_relaxed);
    }
  }

  long long waited_ns() const { return waited_ns_.load(std::memory_order_relaxed); }

 private:
  int threads_ = 1;
  alignas(64) std::atomic<int> arrived_{0};
  // Apart from arrived_: released waiters write it while fast threads arrive at the next barrier.
  alignas(64) std::atomic<long long> waited_ns_{0};
  Signal passed_;
};

void Worker::barrier() const {
  if (count_ > 1) region_->barrier();
}

long long Worker::barrier_wait_ns() const { return count_ > 1 ? region_->waited_ns() : 0; }

namespace {

// The workers of one calling thread (OpenMP, too, keeps a team per thread that starts regions):
// regions started from different threads run concurrently on different workers.
class Pool {
 public:
  Pool() : forks_at_start_(forks.load(std::memory_order_relaxed)) {}

  ~Pool() {
    for (auto& w : workers_) {
      w->stop = true;
      w->start.change();
    }
    for (auto& w : workers_) w->thread.join();
  }

  bool outlived_a_fork() const { return forks_at_start_ != forks.load(std::memory_order_relaxed); }

  // The threads a region gets: `wanted`, or fewer when the system refuses new threads.
  int reserve(int wanted) {
    // Room first: a started thread must not be lost to a failed push_back.
    workers_.reserve(static_cast<size_t>(std::max(wanted - 1, 0)));
    while (static_cast<int>(workers_.size()) + 1 < wanted) {
      auto w = std::make_unique<WorkerThread>();
      const int index = static_cast<int>(workers_.size()) + 1;
      try {
        w->thread = std::thread(&Pool::work, this, w.get(), index);
      } catch (const std::system_error&) {
        break;
      }
      workers_.push_back(std::move(w));
    }
    return std::min(wanted, static_cast<int>(workers_.size()) + 1);
  }

  // Whether the workers a region of `threads` would use are likely awake and spinning (the
  // master's estimate): the region then starts without waking them.
  bool workers_spinning(int threads) const {
    if (static_cast<int>(workers_.size()) + 1 < threads) return false;
    const Clock::time_point now = Clock::now();
    for (int i = 0; i + 1 < threads; ++i) {
      if (workers_[i]->awake_from > now || workers_[i]->spinning_until < now) return false;
    }
    return true;
  }

  // Wakes the workers a region of `threads` would use that are not awake or waking already.
  void nudge(int threads) {
    threads = reserve(threads);
    const Clock::time_point now = Clock::now();
    for (int i = 0; i + 1 < threads; ++i) {
      WorkerThread& w = *workers_[i];
      if (w.spinning_until >= now) continue;
      w.start.nudge();
      w.awake_from = now + kWakeUp;
      w.spinning_until = w.awake_from + idle_spin();
    }
  }

  void run(int threads, RegionBody call, void* body) {
    // Sleeping workers arrive late by their wake-up: only regions on spinning ones say how
    // busy the machine is.
    const bool warm = workers_spinning(threads);
    const Clock::time_point start = Clock::now();
    call_ = call;
    body_ = body;
    region_.start(threads);
    unfinished_.store(threads - 1, std::memory_order_relaxed);
    for (int i = 0; i + 1 < threads; ++i) workers_[i]->start.change();
    call(body, Worker(0, threads, &region_));
    const Clock::time_point done = Clock::now();
    for (;;) {
      const std::uint32_t seen = finished_.value();
      if (unfinished_.load(std::memory_order_acquire) == 0) break;
      finished_.wait_for_change(seen, kBarrierSpin);
    }
    const Clock::time_point end = Clock::now();
    for (int i = 0; i + 1 < threads; ++i) {
      workers_[i]->awake_from = end;
      workers_[i]->spinning_until = end + idle_spin();
    }
    if (warm) {
      report_region(threads, std::chrono::duration_cast<std::chrono::nanoseconds>(end - start).count(),
                    region_.waited_ns() +
                        std::chrono::duration_cast<std::chrono::nanoseconds>(end - done).count());
    }
  }

 private:
  struct WorkerThread {
    Signal start;
    bool stop = false;  // written before `start` changes, read after
    std::thread thread;
    // The master's estimate of when this worker is awake and until when it spins (a new
    // thread starts spinning).
    Clock::time_point awake_from = Clock::now();
    Clock::time_point spinning_until = awake_from + kIdleSpin;
  };

  static Clock::duration idle_spin() {
    return machine_busy() ? Clock::duration(kIdleSpinOnABusyMachine) : Clock::duration(kIdleSpin);
  }

  void work(WorkerThread* self, int index) {
    inside_region = true;
    // Each change of `start` is one region (or the stop): counted from 0, not read here, since
    // the first region may start before this thread runs.
    for (std::uint32_t seen = 0;; ++seen) {
      self->start.wait_for_change_with(seen, idle_spin);
      if (self->stop) return;
      call_(body_, Worker(index, region_.threads(), &region_));
      if (unfinished_.fetch_sub(1, std::memory_order_acq_rel) == 1) finished_.change();
    }
  }

  const unsigned forks_at_start_;
  std::vector<std::unique_ptr<WorkerThread>> workers_;
  RegionBody call_ = nullptr;
  void* body_ = nullptr;
  Region region_;
  alignas(64) std::atomic<int> unfinished_{0};
  Signal finished_;
};

// A pool that outlived a fork names threads the child does not have: it is abandoned (not
// joined, not freed) and the child's next region starts a new one.
struct PoolHolder {
  Pool* pool = nullptr;
  ~PoolHolder() {
    if (pool && !pool->outlived_a_fork()) delete pool;
  }
  bool workers_spinning(int threads) const {
    return pool && !pool->outlived_a_fork() && pool->workers_spinning(threads);
  }
  Pool& get() {
    if (pool && pool->outlived_a_fork()) pool = nullptr;
    if (!pool) pool = new Pool();
    return *pool;
  }
};

thread_local PoolHolder calling_thread_pool;

}  // namespace

long wake_ups_issued() { return wakes_issued; }

long long regions_on_several_threads() { return threaded_regions.load(std::memory_order_relaxed); }

bool workers_spinning(int threads) { return calling_thread_pool.workers_spinning(threads); }

void wake_workers(int threads) {
  if (threads > 1 && !inside_region && fork_handler_registered) calling_thread_pool.get().nudge(threads);
}

void run_region(int threads, RegionBody call, void* body) {
  if (threads > 1 && !inside_region && fork_handler_registered) {
    Pool& pool = calling_thread_pool.get();
    threads = pool.reserve(threads);
    if (threads > 1) {
      threaded_regions.fetch_add(1, std::memory_order_relaxed);
      inside_region = true;
      pool.run(threads, call, body);
      inside_region = false;
      return;
    }
  }
  call(body, Worker(0, 1, nullptr));
}

}  // namespace fastgru::threads
