// The MGU step kernels for float32 on AVX2: compiled with that ISA's flags alone (by the file
// name's suffix, CMakeLists.txt); called only after dispatch chose this ISA.
#include "cells/mgu/mgu_quantized_gates.h"
#include "cells/mgu/mgu_step.h"
#include "kernels/simd/vec_avx2.h"

namespace fastgru::cells {

const MguKernels<float>& f32_mgu_kernels__avx2() {
  static const MguKernels<float> table = kernels::make_mgu_kernels<kernels::VecAvx2F32>();
  return table;
}

const MguQuantizedGates& mgu_quantized_gates__avx2() {
  static const MguQuantizedGates table = kernels::make_mgu_quantized_gates<kernels::VecAvx2F32>();
  return table;
}

}  // namespace fastgru::cells
