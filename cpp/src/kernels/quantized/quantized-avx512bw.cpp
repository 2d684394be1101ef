// The quantized kernels for AVX-512F and BW. Compiled with -mavx512f -mavx512bw -mfma only;
// called after dispatch found both (quantized_kernels_for).
#include "kernels/quantized/quantized_kernel_table.h"
#include "kernels/quantized/vec_avx512_quantized.h"

namespace fastgru::kernels {

const QuantizedKernels& quantized_kernels__avx512bw() {
  static const QuantizedKernels table =
      make_quantized_kernels<VecAvx512Quantized>("avx512bw", Isa::avx512);
  return table;
}

}  // namespace fastgru::kernels
