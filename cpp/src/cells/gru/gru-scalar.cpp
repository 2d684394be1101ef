// The portable GRU step kernels: any CPU, and every float64 computation.
#include "cells/gru/gru_quantized_gates.h"
#include "cells/gru/gru_step.h"
#include "kernels/simd/vec_scalar.h"

namespace fastgru::cells {

const GruKernelForms<float>& f32_gru_kernels__scalar() {
  static const GruKernelForms<float> table = kernels::make_gru_kernels<kernels::VecScalar<float>>();
  return table;
}

const GruKernelForms<double>& f64_gru_kernels__scalar() {
  static const GruKernelForms<double> table = kernels::make_gru_kernels<kernels::VecScalar<double>>();
  return table;
}

const GruQuantizedGateForms& gru_quantized_gates__scalar() {
  static const GruQuantizedGateForms table = kernels::make_gru_quantized_gates<kernels::VecScalar<float>>();
  return table;
}

}  // namespace fastgru::cells
