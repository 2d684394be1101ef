#pragma once

namespace fastgru::dispatch {

struct CpuFeatures {
  bool avx2_fma = false;  // AVX2 and FMA, with the OS saving YMM state
  bool avx512f = false;   // AVX-512F, with the OS saving ZMM and opmask state
  bool avx512bw = false;  // AVX-512BW (byte and word integers) besides AVX-512F
  bool avx512bf16 = false;  // AVX512-BF16 (bf16 pair products) besides AVX-512F and BW
  bool avx512vnni = false;  // AVX512-VNNI (int8 quad products) besides AVX-512F and BW
};

CpuFeatures detect_cpu_features();

}  // namespace fastgru::dispatch
