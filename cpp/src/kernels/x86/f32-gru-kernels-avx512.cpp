// float32 kernels for AVX-512F. Compiled with -mavx512f -mfma only; called after dispatch.
// GCC 12's avx512fintrin.h starts several intrinsics (min, max, roundscale, scalef) from an
// undefined register that -Wuninitialized reports once they are inlined deeply enough, as in
// the LiGRU tanh step (GCC bug 105593): a false positive, silenced for this file alone.
#pragma GCC diagnostic ignored "-Wuninitialized"
#include "kernels/simd/kernel_table_impl.h"
#include "kernels/simd/vec_avx512.h"

namespace fastgru::kernels {

const KernelTable<float>& f32_kernels__avx512() {
  static const KernelTable<float> table = make_kernel_table<VecAvx512F32>("avx512");
  return table;
}

}  // namespace fastgru::kernels
