// Fills a KernelTable with the template kernels instantiated for one SIMD traits class.
#pragma once

#include "kernels/kernels.h"
#include "kernels/simd/gru_step.h"
#include "kernels/simd/panel_product.h"

namespace fastgru::kernels {

template <class S>
KernelTable<typename S::Real> make_kernel_table(const char* isa) {
  return {isa,
          S::kWidth,
          max_tile_rows<S>(),
          multiply_panels<S>,
          step_reset_after<S>,
          step_reset_before_rz<S>,
          step_reset_before_n<S>,
          backward_reset_after<S>,
          backward_reset_before_zn<S>,
          backward_reset_before_r<S>,
          column_sum<S>};
}

}  // namespace fastgru::kernels
