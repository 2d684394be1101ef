// float32 kernels for AVX-512F. Compiled with -mavx512f -mfma only; called after dispatch.
#include "kernels/simd/kernel_table_impl.h"
#include "kernels/simd/vec_avx512.h"

namespace fastgru::kernels {

const KernelTable<float>& f32_kernels__avx512() {
  static const KernelTable<float> table = make_kernel_table<VecAvx512F32>("avx512", Isa::avx512);
  return table;
}

}  // namespace fastgru::kernels
