// The quantized kernels for AVX512-BF16 (and F, BW). Compiled with -mavx512f -mavx512bw
// -mavx512bf16 -mfma only; called after dispatch found all of them (quantized_kernels_for).
#include "kernels/quantized/quantized_kernel_table.h"
#include "kernels/quantized/vec_avx512bf16_quantized.h"

namespace fastgru::kernels {

const QuantizedKernels& quantized_kernels__avx512bf16() {
  static const QuantizedKernels table =
      make_quantized_kernels<VecAvx512Bf16Quantized>("avx512bf16", Isa::avx512);
  return table;
}

}  // namespace fastgru::kernels
