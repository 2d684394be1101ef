// Fills a KernelTable with the template kernels instantiated for one SIMD traits class.
#pragma once

#include "kernels/kernels.h"
#include "kernels/simd/gru_step.h"
#include "kernels/simd/ligru_step.h"
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
          column_sum<S>,
          {step_ligru<S, kRelu>, step_ligru<S, kTanh>, step_ligru<S, kLeakyRelu>},
          {backward_ligru<S, kRelu>, backward_ligru<S, kTanh>, backward_ligru<S, kLeakyRelu>}};
}

}  // namespace fastgru::kernels
