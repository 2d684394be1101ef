// Fills a QuantizedKernels table with the templates of quantized_product.h for one traits class.
#pragma once

#include "kernels/quantized/quantized_kernels.h"
#include "kernels/quantized/quantized_product.h"

namespace fastgru::kernels {

template <class Q>
QuantizedKernels make_quantized_kernels(const char* isa, Isa level) {
  return {isa,
          level,
          Q::kWidth,
          max_tile_rows<Q>(),
          Q::kBf16DotPairs,
          round_rows_to_bf16<Q>,
          quantize_rows_int8<Q>,
          multiply_panels_bf16<Q>,
          multiply_panels_int8<Q>};
}

}  // namespace fastgru::kernels
