// What every bf16 or int8 cell shares (EQUATIONS.md §9), for inference: the input projection's
// weights packed for the quantized products (kernels/quantized/), the recurrent weights packed so
// that a product's columns run per panel of 3W hidden units gate by gate (the unit grain of the
// driver's unit split), and the recurrent product of a step, whose input rows each thread
// rounds or quantizes for itself (a row's int8 scale needs all of it). A cell adds its phases
// and its float32 gate arithmetic (gru_quantized_gates.h and its siblings).
#pragma once

#include <initializer_list>
#include <string>
#include <vector>

#include "cells/cell_layer.h"
#include "kernels/quantized/quantized_kernels.h"
#include "kernels/quantized/quantized_panels.h"

namespace fastgru::cells {

// A reduced-precision product's weights: the panels of one mode, the other empty.
struct QuantizedWeights {
  kernels::Bf16Panels bf16;
  kernels::Int8Panels int8;
  std::vector<float> column_bias;  // in the product's column order; empty without biases
  Index columns = 0;               // of the product, padding included
};

class QuantizedCellLayer : public CellLayer<float> {
 public:
  void project_inputs(const InputRows<float>& x, float* projection, float* record,
                      float* batch_statistics, bool training) const override;
  UnitGrain forward_grain(int phase) const override;

  // Inference only: Network refuses a training forward before any of these could run.
  int backward_phases() const override;
  void backward_phase(int phase, const BackwardStep<float>& step, Range panels,
                      Index unit_begin, Index unit_end) const override;
  void recurrent_gradients(const GradientInputs<float>& in,
                           const GradientsView<float>& grads) const override;

 protected:
  // weight_ih (gates · H, input) and bias_ih (gates · H) or nullptr: the input projection's
  // (a batch-normalised cell's folded ones); `name` names a weight that cannot be quantized.
  QuantizedCellLayer(const kernels::KernelTable<float>& kernels, Index input, Index hidden,
                     Index gates, Index recurrent_gates, Precision precision,
                     const float* weight_ih, const float* bias_ih, const std::string& name);

  // A product's gate: its block of rows in the recurrent weight, and its block of the biases.
  struct GateBlocks {
    Index weight, bias;
  };
  // Blocks of weight_hh (·, H) as a product whose columns run per panel of 3W units, gate by
  // gate; bias (blocks of H) or nullptr.
  QuantizedWeights pack_gates(const float* weight_hh, const float* bias,
                              std::initializer_list<GateBlocks> gate_blocks,
                              const std::string& name) const;
  // gh (rows, weights.columns), for the columns of unit panels `units`: input (rows, H, row
  // stride ld_input) rounded or quantized, times weights of `gates` gates. A row that is not
  // finite has no int8 scale: its products are NaN, as a float32 product of it would be.
  void recurrent_product(const QuantizedWeights& weights, Index gates, Index rows,
                         const float* input, Index ld_input, Range units, float* gh) const;
  // This thread's buffer for a step's products: (rows, weights.columns).
  static float* products_buffer(Index rows, const QuantizedWeights& weights);

  Precision precision_;
  const kernels::QuantizedKernels* quantized_;
  QuantizedWeights input_;  // W_ih^T, natural panels over G columns, b_ih
};

}  // namespace fastgru::cells
