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

// Threads used by the compute calls: n >= 1, or 0 to follow OpenMP (OMP_NUM_THREADS,
// omp_set_num_threads, threadpoolctl). Throws std::invalid_argument for n < 0.
//
// Processes forked (fork(), Python's multiprocessing "fork" start method) work: the OpenMP
// runtime (libgomp) cannot restart in a child the thread pool that the forking thread may have
// started, whether fastgru or another library sharing the runtime started it, so in the child
// that thread's compute calls run on one thread, whatever this setting says, and num_threads()
// there reports 1; threads the child starts use this setting. For several threads per process,
// run the compute calls on a thread the child starts, or start processes with "spawn" or
// "forkserver".
void set_num_threads(int n);
// The thread count compute calls from the calling thread will use at most.
int num_threads();

}  // namespace fastgru
