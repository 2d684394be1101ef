// float32 kernels for AVX2 + FMA. Compiled with -mavx2 -mfma only; called after dispatch.
#include "kernels/simd/kernel_table_impl.h"
#include "kernels/simd/vec_avx2.h"

namespace fastgru::kernels {

const KernelTable<float>& f32_kernels__avx2() {
  static const KernelTable<float> table = make_kernel_table<VecAvx2F32>("avx2", Isa::avx2);
  return table;
}

}  // namespace fastgru::kernels
