// The LiBRU step kernels for float32 on AVX2: compiled with that ISA's flags alone (by the file
// name's suffix, CMakeLists.txt); called only after dispatch chose this ISA.
#include "cells/libru/libru_quantized_gates.h"
#include "cells/libru/libru_step.h"
#include "kernels/simd/vec_avx2.h"

namespace fastgru::cells {

const LibruKernels<float>& f32_libru_kernels__avx2() {
  static const LibruKernels<float> table = kernels::make_libru_kernels<kernels::VecAvx2F32>();
  return table;
}

const LibruQuantizedGates& libru_quantized_gates__avx2() {
  static const LibruQuantizedGates table = kernels::make_libru_quantized_gates<kernels::VecAvx2F32>();
  return table;
}

}  // namespace fastgru::cells
