// The portable quantized kernels (any CPU), and the choice of table for an instruction set.
#include "dispatch/cpu_features.h"
#include "kernels/quantized/quantized_kernel_table.h"
#include "kernels/quantized/vec_scalar_quantized.h"

namespace fastgru::kernels {

const QuantizedKernels& quantized_kernels__scalar() {
  static const QuantizedKernels table =
      make_quantized_kernels<VecScalarQuantized>("scalar", Isa::scalar);
  return table;
}

const QuantizedKernels& quantized_kernels_for(Isa level) {
#if FASTGRU_HAVE_X86_KERNELS
  static const dispatch::CpuFeatures features = dispatch::detect_cpu_features();
  if (level == Isa::avx512 && features.avx512bf16 && features.avx512vnni)
    return quantized_kernels__avx512vnni();
  if (level == Isa::avx512 && features.avx512bf16) return quantized_kernels__avx512bf16();
  if (level == Isa::avx512 && features.avx512bw) return quantized_kernels__avx512bw();
  if (level == Isa::avx2 || level == Isa::avx512) return quantized_kernels__avx2();
#endif
  return quantized_kernels__scalar();
}

}  // namespace fastgru::kernels
