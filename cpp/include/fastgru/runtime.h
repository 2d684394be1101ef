// fastgru runtime settings: which instruction set the kernels use, and how many threads.
// Standard library only.
#pragma once

#include <string>
#include <vector>

namespace fastgru {

// Instruction sets this CPU and OS can run, best first: a subset of "avx512", "avx2", "scalar".
std::vector<std::string> available_isas();

// The instruction set that layers created from now on use (float32; float64 always runs the
// scalar kernels). Chosen once as the best available, or as the environment variable
// FASTGRU_ISA (avx512 | avx2 | scalar) says; an unknown or unavailable name there is an error
// reported by the first call that needs the kernels.
std::string active_isa();

// Selects the instruction set for layers created from now on. Existing layers keep theirs
// (their weights are packed for it). Throws std::invalid_argument for a name that is not in
// available_isas().
void set_isa(const std::string& isa);

// The most threads a compute call uses: n >= 1, or 0 (the default) for the CPUs this process
// may use (its affinity mask and its container's cgroup CPU quota), capped by OpenMP's setting
// (OMP_NUM_THREADS, omp_set_num_threads, threadpoolctl). Each call uses fewer where its work
// does not pay for more (see README "Threads"). Throws std::invalid_argument for n < 0.
//
// The threads are fastgru's own (one pool per thread that makes compute calls), not OpenMP's;
// their waiting spins briefly and then sleeps, so they give their cores away on a busy machine.
// Processes forked (fork(), multiprocessing's "fork") compute on all their threads: a child
// starts a pool of its own.
void set_num_threads(int n);
// The most threads compute calls from the calling thread will use.
int num_threads();

}  // namespace fastgru
