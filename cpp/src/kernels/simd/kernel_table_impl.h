// Fills a KernelTable with the template kernels instantiated for one SIMD traits class.
#pragma once

#include "kernels/kernels.h"
#include "kernels/simd/column_sum.h"
#include "kernels/simd/panel_product.h"

namespace fastgru::kernels {

template <class S>
KernelTable<typename S::Real> make_kernel_table(const char* isa, Isa level) {
  return {isa, level, S::kWidth, max_tile_rows<S>(), multiply_panels<S>, column_sum<S>};
}

}  // namespace fastgru::kernels
