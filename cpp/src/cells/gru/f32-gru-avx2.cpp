// The GRU step kernels for float32 on AVX2: compiled with that ISA's flags alone (by the file
// name's suffix, CMakeLists.txt); called only after dispatch chose this ISA.
#include "cells/gru/gru_quantized_gates.h"
#include "cells/gru/gru_step.h"
#include "kernels/simd/vec_avx2.h"

namespace fastgru::cells {

const GruKernelForms<float>& f32_gru_kernels__avx2() {
  static const GruKernelForms<float> table = kernels::make_gru_kernels<kernels::VecAvx2F32>();
  return table;
}

const GruQuantizedGateForms& gru_quantized_gates__avx2() {
  static const GruQuantizedGateForms table = kernels::make_gru_quantized_gates<kernels::VecAvx2F32>();
  return table;
}

}  // namespace fastgru::cells
