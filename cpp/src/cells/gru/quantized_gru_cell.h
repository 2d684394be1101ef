// The GRU in bf16 or int8 (EQUATIONS.md §9), for inference: its weights packed for the quantized
// products (kernels/quantized/), each step's input rows rounded or quantized by every thread for
// itself (a row's int8 scale needs all of it), then the float32 gate arithmetic of
// gru_quantized_gates.h. Every form of the gates (EQUATIONS.md §7), either reset convention.
#pragma once

#include <string>
#include <vector>

#include "cells/cell_layer.h"
#include "cells/gru/gru_kernels.h"
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

class QuantizedGruLayer final : public CellLayer<float> {
 public:
  // weights (3H, I), (3H, H) and biases (3H) each or nullptr, PyTorch's layout; `name` (the
  // network's "weights[k]") names a weight that cannot be quantized.
  // weights with the row blocks of `form` (fastgru::GateTerms), as GruCellLayer takes them.
  QuantizedGruLayer(const kernels::KernelTable<float>& kernels, Index input, Index hidden,
                    ResetMode mode, GateTerms form, Precision precision,
                    const WeightsView<float>& weights, const std::string& name);

  void project_inputs(const InputRows<float>& x, float* projection, float* record,
                      float* batch_statistics, bool training) const override;
  int forward_phases() const override;
  UnitGrain forward_grain(int phase) const override;
  bool needs_step_record() const override;
  void forward_phase(int phase, const ForwardStep<float>& step, Range units) const override;

  // Inference only: Network refuses a training forward before any of these could run.
  int backward_phases() const override;
  void backward_phase(int phase, const BackwardStep<float>& step, Range panels,
                      Index unit_begin, Index unit_end) const override;
  void recurrent_gradients(const GradientInputs<float>& in,
                           const GradientsView<float>& grads) const override;

 private:
  // A product's gate: its block of rows in weight_hh, and its block of the 3H recurrent biases.
  struct GateBlocks {
    Index weight, bias;
  };
  // weight_hh's blocks as a product whose columns run per panel of 3W units, gate by gate; bias
  // (3H: b_hr, b_hz, b_hn) or nullptr.
  QuantizedWeights pack_gates(const float* weight_hh, const float* bias,
                              std::initializer_list<GateBlocks> gate_blocks,
                              const std::string& name) const;
  // gh (rows, weights.columns), for the columns of unit panels `units`: input (rows, H, row
  // stride ld_input) rounded or quantized, times weights. A row that is not finite has no int8 scale:
  // its products are NaN, as a float32 product of it would be.
  void recurrent_product(const QuantizedWeights& weights, Index gates, Index rows,
                         const float* input, Index ld_input, Range units, float* gh) const;

  ResetMode mode_;
  bool hidden_gates_;  // r and z see h: every form but type 3's constants
  Precision precision_;
  const kernels::QuantizedKernels* quantized_;
  const GruQuantizedGates* gates_;
  QuantizedWeights input_;      // W_ih^T, natural panels over G columns, b_ih
  QuantizedWeights step_;       // reset-after: r, z, n of W_hh (n alone: type 3); reset-before: r, z
  QuantizedWeights candidate_;  // reset-before: W_hn
  std::vector<float> step_bias_;  // b_hr, b_hz, b_hn (3H), zeros where absent
};

}  // namespace fastgru::cells
