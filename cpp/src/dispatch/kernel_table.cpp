// Chooses the kernels the driver runs.
#include "dispatch/kernel_table.h"

#include "kernels/reference/reference.h"

namespace fastgru::kernels {

template <typename Real>
const KernelTable<Real>& reference_kernels() {
  static const KernelTable<Real> table = {
      "scalar",
      gemm_reference<Real>,
      gates_reset_after_reference<Real>,
      gates_reset_before_rz_reference<Real>,
      gates_reset_before_n_reference<Real>,
      gates_reset_after_backward_reference<Real>,
      gates_reset_before_backward_zn_reference<Real>,
      gates_reset_before_backward_r_reference<Real>,
      column_sum_reference<Real>,
  };
  return table;
}

template <typename Real>
const KernelTable<Real>& active_kernels() {
  return reference_kernels<Real>();
}

template const KernelTable<float>& reference_kernels<float>();
template const KernelTable<double>& reference_kernels<double>();
template const KernelTable<float>& active_kernels<float>();
template const KernelTable<double>& active_kernels<double>();

}  // namespace fastgru::kernels
