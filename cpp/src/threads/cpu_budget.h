// How many CPUs this process may actually use: not the machine's core count, but its affinity
// mask (taskset, cpusets, os.sched_setaffinity) and its container's CPU quota (cgroup cpu.max,
// or cpu.cfs_quota_us in cgroup v1), whichever is smaller.
#pragma once

namespace fastgru::threads {

// CPUs in the calling thread's affinity mask (at least 1).
int cpus_in_affinity_mask();

// The cgroup CPU quota rounded up to whole CPUs, or 0 when there is none (or none readable).
// Read once: a container's quota is fixed for the life of the process.
int cpu_quota();

// min(affinity mask, quota): the default thread count. The calling thread's mask is read at
// most every 100 ms.
int usable_cpus();

}  // namespace fastgru::threads
