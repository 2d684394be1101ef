// The quantized kernels for AVX2 + FMA. Compiled with -mavx2 -mfma only; called after dispatch.
#include "kernels/quantized/quantized_kernel_table.h"
#include "kernels/quantized/vec_avx2_quantized.h"

namespace fastgru::kernels {

const QuantizedKernels& quantized_kernels__avx2() {
  static const QuantizedKernels table = make_quantized_kernels<VecAvx2Quantized>("avx2", Isa::avx2);
  return table;
}

}  // namespace fastgru::kernels
