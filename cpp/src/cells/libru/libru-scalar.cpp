// The portable LiBRU step kernels: any CPU, and every float64 computation.
#include "cells/libru/libru_quantized_gates.h"
#include "cells/libru/libru_step.h"
#include "kernels/simd/vec_scalar.h"

namespace fastgru::cells {

const LibruKernels<float>& f32_libru_kernels__scalar() {
  static const LibruKernels<float> table = kernels::make_libru_kernels<kernels::VecScalar<float>>();
  return table;
}

const LibruKernels<double>& f64_libru_kernels__scalar() {
  static const LibruKernels<double> table = kernels::make_libru_kernels<kernels::VecScalar<double>>();
  return table;
}

const LibruQuantizedGates& libru_quantized_gates__scalar() {
  static const LibruQuantizedGates table = kernels::make_libru_quantized_gates<kernels::VecScalar<float>>();
  return table;
}

}  // namespace fastgru::cells
