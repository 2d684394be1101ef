#include "threads/cpu_budget.h"

#include <sched.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

namespace fastgru::threads {
namespace {

// The first line of a small file, or "" when it cannot be read.
std::string first_line(const std::string& path) {
  std::ifstream in(path);
  std::string line;
  if (in) std::getline(in, line);
  return line;
}

// Whole CPUs for `quota` microseconds per `period`, or 0 for no limit.
int whole_cpus(double quota, double period) {
  if (!(quota > 0) || !(period > 0)) return 0;
  return std::max(1, static_cast<int>(std::ceil(quota / period)));
}

// The smallest limit that `limit_in(folder)` finds in `folder` and each folder above it up to
// `root` (a limit set on a parent cgroup binds its children), or 0 when none has one.
template <class LimitIn>
int tightest_limit(const std::string& root, std::string relative, LimitIn limit_in) {
  int tightest = 0;
  for (;;) {
    const int limit = limit_in(root + relative);
    if (limit > 0) tightest = tightest > 0 ? std::min(tightest, limit) : limit;
    if (relative.empty() || relative == "/") break;
    const size_t slash = relative.find_last_of('/');
    relative = slash == std::string::npos ? std::string() : relative.substr(0, slash);
  }
  return tightest;
}

// cgroup v2: "max 100000" (no limit) or "<quota> <period>".
int cgroup2_limit(const std::string& folder) {
  std::istringstream fields(first_line(folder + "/cpu.max"));
  std::string quota;
  double period = 0;
  if (!(fields >> quota >> period) || quota == "max") return 0;
  try {
    return whole_cpus(std::stod(quota), period);
  } catch (const std::exception&) {
    return 0;
  }
}

// cgroup v1: cpu.cfs_quota_us (-1 = no limit) over cpu.cfs_period_us.
int cgroup1_limit(const std::string& folder) {
  try {
    const std::string quota = first_line(folder + "/cpu.cfs_quota_us");
    const std::string period = first_line(folder + "/cpu.cfs_period_us");
    if (quota.empty() || period.empty()) return 0;
    return whole_cpus(std::stod(quota), std::stod(period));
  } catch (const std::exception&) {
    return 0;
  }
}

int read_cpu_quota() {
  std::ifstream cgroups("/proc/self/cgroup");
  std::string line;
  int tightest = 0;
  auto tighten = [&](int limit) {
    if (limit > 0) tightest = tightest > 0 ? std::min(tightest, limit) : limit;
  };
  // Lines are "id:controllers:path"; v2's is "0::path". Inside a cgroup namespace the path is
  // "/" and the mount point is the container's own cgroup, which the walk reads last.
  while (std::getline(cgroups, line)) {
    const size_t first = line.find(':'), second = line.find(':', first + 1);
    if (first == std::string::npos || second == std::string::npos) continue;
    const std::string controllers = line.substr(first + 1, second - first - 1);
    const std::string path = line.substr(second + 1);
    if (controllers.empty()) {
      tighten(tightest_limit("/sys/fs/cgroup", path, cgroup2_limit));
      continue;
    }
    std::istringstream names(controllers);
    for (std::string name; std::getline(names, name, ',');) {
      if (name != "cpu") continue;
      for (const char* mount : {"/sys/fs/cgroup/cpu,cpuacct", "/sys/fs/cgroup/cpu"})
        tighten(tightest_limit(mount, path, cgroup1_limit));
    }
  }
  return tightest;
}

// Read when the library is loaded: a first read racing a fork could leave a child waiting on
// a function-local static's guard that another thread held.
const int quota_at_load = read_cpu_quota();

}  // namespace

int cpus_in_affinity_mask() {
  // Masks grow with the CPUs the kernel supports: retry with a larger set when refused.
  for (int cpus = 1024; cpus <= (1 << 16); cpus *= 2) {
    cpu_set_t* set = CPU_ALLOC(cpus);
    if (!set) break;
    const size_t bytes = CPU_ALLOC_SIZE(cpus);
    CPU_ZERO_S(bytes, set);
    const bool got = sched_getaffinity(0, bytes, set) == 0;
    const int count = got ? CPU_COUNT_S(bytes, set) : 0;
    CPU_FREE(set);
    if (got) return std::max(1, count);
  }
  return 1;
}

int cpu_quota() { return quota_at_load; }

int usable_cpus() {
  // The mask is the calling thread's and may change (os.sched_setaffinity, taskset -p): read
  // again after a while, not on every call (a system call, where a B = 1 step takes 3 us).
  constexpr auto kMaskLifetime = std::chrono::milliseconds(100);
  thread_local std::chrono::steady_clock::time_point read_at;
  thread_local int mask = 0;
  const auto now = std::chrono::steady_clock::now();
  if (mask == 0 || now - read_at > kMaskLifetime) {
    mask = cpus_in_affinity_mask();
    read_at = now;
  }
  const int quota = cpu_quota();
  return quota > 0 ? std::min(mask, quota) : mask;
}

}  // namespace fastgru::threads
