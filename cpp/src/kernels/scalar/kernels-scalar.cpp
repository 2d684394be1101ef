// The portable kernels: any x86-64 (or other) CPU, and every float64 computation.
#include "kernels/simd/kernel_table_impl.h"
#include "kernels/simd/vec_scalar.h"

namespace fastgru::kernels {

const KernelTable<float>& f32_kernels__scalar() {
  static const KernelTable<float> table =
      make_kernel_table<VecScalar<float>>("scalar", Isa::scalar);
  return table;
}

const KernelTable<double>& f64_kernels__scalar() {
  static const KernelTable<double> table =
      make_kernel_table<VecScalar<double>>("scalar", Isa::scalar);
  return table;
}

}  // namespace fastgru::kernels
