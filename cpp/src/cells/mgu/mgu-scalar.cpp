// The portable MGU step kernels: any CPU, and every float64 computation.
#include "cells/mgu/mgu_quantized_gates.h"
#include "cells/mgu/mgu_step.h"
#include "kernels/simd/vec_scalar.h"

namespace fastgru::cells {

const MguKernels<float>& f32_mgu_kernels__scalar() {
  static const MguKernels<float> table = kernels::make_mgu_kernels<kernels::VecScalar<float>>();
  return table;
}

const MguKernels<double>& f64_mgu_kernels__scalar() {
  static const MguKernels<double> table = kernels::make_mgu_kernels<kernels::VecScalar<double>>();
  return table;
}

const MguQuantizedGates& mgu_quantized_gates__scalar() {
  static const MguQuantizedGates table = kernels::make_mgu_quantized_gates<kernels::VecScalar<float>>();
  return table;
}

}  // namespace fastgru::cells
