// Fills a QuantizedKernels table with the templates of quantized_product.h for one traits class.
#pragma once

#include "kernels/quantized/quantized_kernels.h"
#include "kernels/quantized/quantized_product.h"

namespace fastgru::kernels {

// The quad functions where Q multiplies int8 quads, else nullptr.
template <class Q>
constexpr QuantizeRowsUnsignedFn unsigned_rows_function() {
  if constexpr (Q::kInt8DepthGroup == kInt8QuadGroup) return quantize_rows_unsigned<Q>;
  return nullptr;
}
template <class Q>
constexpr MultiplyPanelsUnsignedFn unsigned_product_function() {
  if constexpr (Q::kInt8DepthGroup == kInt8QuadGroup) return multiply_panels_unsigned<Q>;
  return nullptr;
}

template <class Q>
QuantizedKernels make_quantized_kernels(const char* isa, Isa level) {
  return {isa,
          level,
          Q::kWidth,
          max_tile_rows<Q>(),
          Q::kBf16DotPairs,
          Q::kBf16DotPairs,
          round_rows_to_bf16<Q>,
          quantize_rows_int8<Q>,
          multiply_panels_bf16<Q>,
          multiply_panels_int8<Q>,
          Q::kInt8DepthGroup,
          unsigned_rows_function<Q>(),
          unsigned_product_function<Q>()};
}

}  // namespace fastgru::kernels
