// The portable LiGRU step kernels: any CPU, and every float64 computation.
#include "cells/ligru/ligru_quantized_gates.h"
#include "cells/ligru/ligru_step.h"
#include "kernels/simd/vec_scalar.h"

namespace fastgru::cells {

const LigruKernels<float>& f32_ligru_kernels__scalar() {
  static const LigruKernels<float> table = kernels::make_ligru_kernels<kernels::VecScalar<float>>();
  return table;
}

const LigruKernels<double>& f64_ligru_kernels__scalar() {
  static const LigruKernels<double> table = kernels::make_ligru_kernels<kernels::VecScalar<double>>();
  return table;
}

const LigruQuantizedGates& ligru_quantized_gates__scalar() {
  static const LigruQuantizedGates table = kernels::make_ligru_quantized_gates<kernels::VecScalar<float>>();
  return table;
}

}  // namespace fastgru::cells
