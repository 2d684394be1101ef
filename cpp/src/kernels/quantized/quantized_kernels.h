// The reduced-precision kernels (EQUATIONS.md §9) as plain-pointer functions, one table per ISA,
// beside the float32 KernelTable (kernels/kernels.h) and chosen for the same instruction set.
// Layouts and the templates behind them: quantized_product.h; packing: quantized_panels.h.
#pragma once

#include <cstdint>

#include "kernels/kernels.h"
#include "kernels/quantized/conversions.h"

namespace fastgru::kernels {

// out (rows, ld_out) = in (rows, depth, ld_in) rounded to bf16, kept as float32, zero-padded to
// an even depth: the input rows of a bf16 product. Where the table multiplies pairs
// (bf16_rows_as_pairs), each row instead holds its bf16 pairs (k, k+1) packed in 32 bits, pair p
// in the row's slot p (low half: the value at 2p; zero past depth).
using RoundRowsToBf16Fn = void (*)(Index rows, Index depth, const float* in, Index ld_in,
                                   float* out, Index ld_out);

// out (rows, ld_out) int8 values in int16, zero-padded to an even depth, and scales (rows): the
// input rows of an int8 product. Returns the first row that is not finite (which gets scale 0
// and zeros) or kAllRowsFinite: the caller refuses the input.
using QuantizeRowsInt8Fn = Index (*)(Index rows, Index depth, const float* in, Index ld_in,
                                     std::int16_t* out, Index ld_out, float* scales);

// c (rows, the columns of panels [panel_begin, panel_end) of an n-column matrix)
//   = column_bias + a · panels; column_bias (n) may be nullptr.
using MultiplyPanelsBf16Fn = void (*)(Index rows, Index n, Index depth, const float* a,
                                      Index lda, const Bf16* panels, Index panel_stride,
                                      Index panel_begin, Index panel_end, float* c, Index ldc,
                                      const float* column_bias);

// The same for int8, dequantised by row_scales (rows) and the panels' column_scales.
using MultiplyPanelsInt8Fn = void (*)(Index rows, Index n, Index depth, const std::int16_t* a,
                                      Index lda, const float* row_scales,
                                      const std::int8_t* panels, const float* column_scales,
                                      Index panel_stride, Index panel_begin, Index panel_end,
                                      float* c, Index ldc, const float* column_bias);

// The same as unsigned bytes q + 128, zero-padded to a multiple of 4 (kInt8QuadGroup): the
// input rows of the quad kernels.
using QuantizeRowsUnsignedFn = Index (*)(Index rows, Index depth, const float* in, Index ld_in,
                                         std::uint8_t* out, Index ld_out, float* scales);

// The int8 product of such rows with quad panels: offset_sums (Int8Panels) in panel order.
using MultiplyPanelsUnsignedFn = void (*)(Index rows, Index n, Index depth, const std::uint8_t* a,
                                          Index lda, const float* row_scales,
                                          const std::int8_t* panels, const float* column_scales,
                                          const std::int32_t* offset_sums, Index panel_stride,
                                          Index panel_begin, Index panel_end, float* c, Index ldc,
                                          const float* column_bias);

struct QuantizedKernels {
  const char* isa;
  Isa level;
  Index vector_width;  // W: panels are 3W columns wide
  int tile_rows;
  // The bf16 products treat subnormal values as zero (vdpbf16ps), whatever MXCSR says.
  bool bf16_flushes_subnormals;
  bool bf16_rows_as_pairs;  // round_rows_to_bf16 packs pairs (the pair-product tables)
  RoundRowsToBf16Fn round_rows_to_bf16;
  QuantizeRowsInt8Fn quantize_rows_int8;
  MultiplyPanelsBf16Fn multiply_panels_bf16;
  MultiplyPanelsInt8Fn multiply_panels_int8;
  // How int8 panels for this table group their depth: 2 (the int16 functions above), or
  // kInt8QuadGroup (the unsigned ones below, else nullptr).
  Index int8_depth_group;
  QuantizeRowsUnsignedFn quantize_rows_unsigned;
  MultiplyPanelsUnsignedFn multiply_panels_unsigned;
};

const QuantizedKernels& quantized_kernels__scalar();
const QuantizedKernels& quantized_kernels__avx2();
const QuantizedKernels& quantized_kernels__avx512bw();    // AVX-512F and BW
const QuantizedKernels& quantized_kernels__avx512bf16();  // AVX-512F, BW and BF16
const QuantizedKernels& quantized_kernels__avx512vnni();  // AVX-512F, BW, BF16 and VNNI

// The table for the float32 table's instruction set (KernelTable::level), so that a layer's
// quantized products run on the ISA that dispatch and FASTGRU_ISA chose: at the AVX-512 level
// the AVX512-VNNI one where the CPU has BW, BF16 and VNNI, else the AVX512-BF16 one where it has
// BF16 and BW (a CPU with VNNI but no BF16 multiplies int8 pairs, not quads), the AVX-512 one
// where it has BW, else the AVX2 one. A cell packs its
// quantized panels for the table it gets (3 · vector_width columns), which need not be the
// float table's width.
const QuantizedKernels& quantized_kernels_for(Isa level);

}  // namespace fastgru::kernels
