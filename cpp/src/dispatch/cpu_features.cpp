// Which SIMD instruction sets this CPU offers and the OS has enabled (XSAVE state for the wide
// registers: a CPU flag alone does not make the registers usable).
#include "dispatch/cpu_features.h"

#if defined(__x86_64__) || defined(_M_X64)
#include <cpuid.h>
#endif

namespace fastgru::dispatch {

CpuFeatures detect_cpu_features() {
  CpuFeatures features;
#if FASTGRU_HAVE_X86_KERNELS && (defined(__GNUC__) || defined(__clang__))
  unsigned eax, ebx, ecx, edx;
  if (!__get_cpuid(1, &eax, &ebx, &ecx, &edx)) return features;
  const bool osxsave = ecx & (1u << 27);
  const bool avx = ecx & (1u << 28);
  const bool fma = ecx & (1u << 12);
  if (!osxsave || !avx) return features;
  unsigned xcr0_low, xcr0_high;
  __asm__("xgetbv" : "=a"(xcr0_low), "=d"(xcr0_high) : "c"(0));
  const bool os_ymm = (xcr0_low & 0x6u) == 0x6u;           // SSE and AVX state
  const bool os_zmm = (xcr0_low & 0xE6u) == 0xE6u;         // plus opmask and both ZMM halves
  if (!__get_cpuid_count(7, 0, &eax, &ebx, &ecx, &edx)) return features;
  features.avx2_fma = os_ymm && fma && (ebx & (1u << 5));
  features.avx512f = os_zmm && features.avx2_fma && (ebx & (1u << 16));
  features.avx512bw = features.avx512f && (ebx & (1u << 30));
  features.avx512vnni = features.avx512bw && (ecx & (1u << 11));
  if (features.avx512bw && __get_cpuid_count(7, 1, &eax, &ebx, &ecx, &edx))
    features.avx512bf16 = eax & (1u << 5);
#endif
  return features;
}

}  // namespace fastgru::dispatch
