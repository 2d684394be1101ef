// Whole-matrix products with quantized weights (the input projections of a quantized layer),
// on fastgru's threads: the input rows are rounded or quantized in parallel, then the
// (row chunk, panel) pairs are shared out as matmul_packed shares them.
#pragma once

#include "kernels/quantized/quantized_kernels.h"
#include "kernels/quantized/quantized_panels.h"

namespace fastgru::driver {

using kernels::Index;

// c (m, n) = column_bias + bf16(a) · weight, a (m, weight.depth) with row stride lda; column_bias
// (n) may be nullptr. weight is packed for `kernels` (panels 3W wide) and holds n columns. With
// a_rows, row i of a is a + a_rows[i] · lda (a variable-length batch's rows, gathered as they are
// rounded: as matmul_packed_rows, without a full copy first).
void matmul_bf16(const kernels::QuantizedKernels& kernels, Index m, Index n, const float* a,
                 Index lda, const kernels::Bf16Panels& weight, float* c, Index ldc,
                 const float* column_bias, const Index* a_rows = nullptr);

// The same with each row of a quantized to int8 (its own scale) and int32 sums dequantised.
// A row of a that is not finite cannot be scaled: std::invalid_argument naming `input_name`
// and the row (as a_rows numbers it, when given), and c is left unspecified; with input_name
// nullptr, that row of c is NaN instead, as a float32 product would make it.
void matmul_int8(const kernels::QuantizedKernels& kernels, Index m, Index n, const float* a,
                 Index lda, const kernels::Int8Panels& weight, float* c, Index ldc,
                 const float* column_bias, const char* input_name,
                 const Index* a_rows = nullptr);

}  // namespace fastgru::driver
