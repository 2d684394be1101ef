// The LiGRU step kernels for float32 on AVX2: compiled with that ISA's flags alone (by the file
// name's suffix, CMakeLists.txt); called only after dispatch chose this ISA.
#include "cells/ligru/ligru_quantized_gates.h"
#include "cells/ligru/ligru_step.h"
#include "kernels/simd/vec_avx2.h"

namespace fastgru::cells {

const LigruKernels<float>& f32_ligru_kernels__avx2() {
  static const LigruKernels<float> table = kernels::make_ligru_kernels<kernels::VecAvx2F32>();
  return table;
}

const LigruQuantizedGates& ligru_quantized_gates__avx2() {
  static const LigruQuantizedGates table = kernels::make_ligru_quantized_gates<kernels::VecAvx2F32>();
  return table;
}

}  // namespace fastgru::cells
