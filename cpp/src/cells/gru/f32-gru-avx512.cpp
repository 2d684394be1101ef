// The GRU step kernels for float32 on AVX512: compiled with that ISA's flags alone (by the file
// name's suffix, CMakeLists.txt); called only after dispatch chose this ISA.
// GCC 12's avx512fintrin.h starts several intrinsics (min, max, roundscale, scalef) from an
// undefined register that -Wuninitialized reports once they are inlined deeply enough, as in
// a step kernel's tanh (GCC bug 105593): a false positive, silenced for this file alone.
#pragma GCC diagnostic ignored "-Wuninitialized"
#include "cells/gru/gru_quantized_gates.h"
#include "cells/gru/gru_step.h"
#include "kernels/simd/vec_avx512.h"

namespace fastgru::cells {

const GruKernelForms<float>& f32_gru_kernels__avx512() {
  static const GruKernelForms<float> table = kernels::make_gru_kernels<kernels::VecAvx512F32>();
  return table;
}

const GruQuantizedGateForms& gru_quantized_gates__avx512() {
  static const GruQuantizedGateForms table = kernels::make_gru_quantized_gates<kernels::VecAvx512F32>();
  return table;
}

}  // namespace fastgru::cells
