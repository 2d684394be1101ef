// The quantized kernels for AVX512-VNNI (and F, BW, BF16). Compiled with -mavx512f -mavx512bw
// -mavx512bf16 -mavx512vnni -mfma only; called after dispatch found all of them
// (quantized_kernels_for).
#include "kernels/quantized/quantized_kernel_table.h"
#include "kernels/quantized/vec_avx512vnni_quantized.h"

namespace fastgru::kernels {

const QuantizedKernels& quantized_kernels__avx512vnni() {
  static const QuantizedKernels table =
      make_quantized_kernels<VecAvx512VnniQuantized>("avx512vnni", Isa::avx512);
  return table;
}

}  // namespace fastgru::kernels
