// What the driver's time loops call of a cell: one layer and direction of it, built once with
// its weights packed for the kernels of the ISA in use (oneDNN's cell_execution + postgemm
// split, haste's ForwardPass / BackwardPass per cell). The loops own rows, steps, threads and
// regularisation; a cell owns its gates: the input projection, the phases of a step forward and
// backward, and the weight-gradient products after the backward loop.
//
// A step runs as a short list of phases. Threads that split a step's hidden units take, in each
// phase, a contiguous range of that phase's unit grain, and wait for each other between phases;
// threads that split rows run the phases one after the other on their own rows.
#pragma once

#include <memory>
#include <vector>

#include "cells/packing.h"
#include "driver/matmul.h"
#include "driver/step_rows.h"
#include "driver/work_split.h"
#include "fastgru/network.h"
#include "kernels/kernels.h"

namespace fastgru::cells {

using driver::Range;
using driver::StepRows;
using kernels::Index;

// The unit grain of a phase: blocks of W hidden units (gate panels), or natural panels of 3W.
enum class UnitGrain { blocks, panels };

// Rows of x that a chunk of steps projects: chunk row i is x + (first_row + i) · width, or,
// with x_rows, x + x_rows[first_row + i] · width (a caller's array read in place).
template <typename Real>
struct InputRows {
  const Real* x;
  Index width;  // I
  const Index* x_rows;
  Index first_row;
  Index count;
};

// One forward step of `rows` active rows, each pointer at the first of them.
template <typename Real>
struct ForwardStep {
  Index rows;
  const Real* h_prev;      // (rows, H)
  const Real* h_product;   // (rows, H): the recurrent products' input, h_prev or h_prev ⊙ keep
  const Real* projection;  // (rows, G, ld_projection): what project_inputs wrote
  Index ld_projection;
  Real* h_next;            // (rows, H, ld_h_next)
  Index ld_h_next;
  // (rows, 4H): the training cache's rows (training), a per-call workspace (inference, when
  // needs_step_record), or nullptr.
  Real* record;
  bool stream_record;  // the record is read only after the loop: it may bypass the caches
};

// One backward step of `rows` active rows, each pointer at the first of them.
template <typename Real>
struct BackwardStep {
  Index rows;
  const Real* record;     // (rows, 4H) as the forward step wrote it
  const Real* h_prev;     // (rows, H)
  const Real* h_product;  // (rows, H): the forward products' input, h_prev or h_prev ⊙ keep
  const Real* d_state;    // (rows, H): dL/dh of the new state, with d_carry
  const Real* d_carry;    // (rows, H)
  Real* d_input_gates;      // (rows, G) out: dL/d(input projections)
  Real* d_recurrent_gates;  // (rows, G) out: dL/d(recurrent products); d_input_gates itself
                            // unless separate_recurrent_gate_gradients()
  Real* dh_prev;            // (rows, H) out: dL/dh_prev through the gate update
  // (rows, H) out: dL/d(h_product), added to dh_prev's value when it is dh_prev itself (no
  // recurrent dropout), else written
  Real* d_product;
  Real* workspace;          // (rows, backward_workspace_width())
  bool stream_gradients;    // d_input_gates is read only after the loop
};

// What the backward loop leaves for the products after it, all over the packed rows.
template <typename Real>
struct GradientInputs {
  const StepRows* rows;
  const Real* h0;          // (B, H) or nullptr for zeros
  const Real* h_prev_all;  // (total rows, H) every step's product input, or nullptr: h0 then y
  const Real* y;           // (total rows, H)
  const Real* cache;       // (total rows, 4H)
  Real* d_input_gates;            // (total rows, G); project_inputs_backward rewrites it
  const Real* d_recurrent_gates;  // (total rows, G)
  const Real* batch_statistics;   // as the forward wrote them, or nullptr
  // (recurrent_gate_width()) zeros, or nullptr: room for the column sums of d_recurrent_gates
  // when the cell keeps them apart and has biases
  Real* recurrent_bias_sums;
};

template <typename Real>
class CellLayer {
 public:
  // weight_ih (G, I), weight_hh (G, H), biases (G) each or nullptr, in PyTorch's layout.
  CellLayer(const kernels::KernelTable<Real>& kernels, Index input, Index hidden, Index gates,
            const Real* weight_ih, const Real* weight_hh, const Real* bias_ih,
            const Real* bias_hh);
  // A cell whose recurrent arrays have other row counts than its input's: weight_hh
  // (recurrent_gates · H, H), bias_hh (recurrent_bias_gates · H).
  CellLayer(const kernels::KernelTable<Real>& kernels, Index input, Index hidden, Index gates,
            Index recurrent_gates, Index recurrent_bias_gates, const Real* weight_ih,
            const Real* weight_hh, const Real* bias_ih, const Real* bias_hh);
  virtual ~CellLayer() = default;
  CellLayer(const CellLayer&) = delete;
  CellLayer& operator=(const CellLayer&) = delete;

  Index input() const { return input_; }
  Index hidden() const { return hidden_; }
  Index gate_width() const { return gates_ * hidden_; }  // G: the input projection's columns
  // Rows of W_hh: a step's recurrent products take this many multiply-adds per row and unit.
  Index recurrent_product_width() const { return recurrent_gates_ * hidden_; }
  bool has_bias() const { return !bias_ih_.empty(); }
  const kernels::KernelTable<Real>& kernels() const { return *kernels_; }

  // Input projections of one chunk of steps, before its loop: projection (rows, G). A training
  // call's record is the cache's rows of the chunk (rows, 4H); batch_statistics as in
  // driver::run_forward. The default: W_ih x + b_ih.
  virtual void project_inputs(const InputRows<Real>& x, Real* projection, Real* record,
                              Real* batch_statistics, bool training) const;
  // Whether the projections of all steps must be made at once (statistics over the batch).
  virtual bool projects_whole_sequence(bool training) const;
  // Values a training forward writes to batch_statistics (0: none).
  virtual Index batch_statistics_size() const;

  virtual int forward_phases() const = 0;
  virtual UnitGrain forward_grain(int phase) const = 0;
  // Whether an inference step needs a record (rows, 4H) as workspace.
  virtual bool needs_step_record() const = 0;
  // Phase `phase` of a step for the units of `units` (in that phase's grain).
  virtual void forward_phase(int phase, const ForwardStep<Real>& step, Range units) const = 0;

  // Backward phases all take natural panels of 3W units: units [unit_begin, unit_end) are
  // those of `panels`. A step has at least two phases, and phase 0 reads and writes only its
  // own units of the step's arrays: the barrier before phase 1 is where the threads of a step
  // meet (the loop has none at a step's end), and where a busy machine is noticed.
  virtual int backward_phases() const = 0;
  virtual Index backward_workspace_width() const;
  // Whether d_recurrent_gates is an array of its own, (rows, recurrent_gate_width()); then
  // recurrent_gradients adds the recurrent bias gradient itself. Else it is d_input_gates.
  virtual bool separate_recurrent_gate_gradients() const;
  virtual Index recurrent_gate_width() const;  // default: recurrent_product_width()
  virtual void backward_phase(int phase, const BackwardStep<Real>& step, Range panels,
                              Index unit_begin, Index unit_end) const = 0;

  // After the backward loop: dL/dW_hh (and the recurrent bias sums) into grads, then
  // d_input_gates turned into dL/d(W_ih x) where the cell transforms its projections.
  virtual void recurrent_gradients(const GradientInputs<Real>& in,
                                   const GradientsView<Real>& grads) const = 0;
  virtual void project_inputs_backward(const GradientInputs<Real>& in,
                                       const GradientsView<Real>& grads) const;

  // W_ih in natural panels (K = G, N = I): dx = d_input_gates · W_ih.
  const Real* input_backward_panels() const { return input_backward_panels_.data(); }

 protected:
  // An inference-only cell that keeps its weights in its own form (a bf16 or int8 layer): the
  // base holds its sizes and input bias (bias_ih, gates · H, or nullptr) alone, no weights or
  // panels.
  struct SizesOnly {};
  CellLayer(SizesOnly, const kernels::KernelTable<Real>& kernels, Index input, Index hidden,
            Index gates, Index recurrent_gates, const Real* bias_ih)
      : kernels_(&kernels), input_(input), hidden_(hidden), gates_(gates),
        recurrent_gates_(recurrent_gates) {
    if (bias_ih) bias_ih_.assign(bias_ih, bias_ih + gates * hidden);
  }

  // projection = x's rows · panels + bias, panels natural (K = I, N = G).
  void project(const InputRows<Real>& x, const Real* panels, const Real* bias,
               Real* projection) const;
  const Real* bias_ih_or_null() const { return bias_ih_.empty() ? nullptr : bias_ih_.data(); }
  const Real* bias_hh_or_null() const { return bias_hh_.empty() ? nullptr : bias_hh_.data(); }

  const kernels::KernelTable<Real>* kernels_;
  Index input_, hidden_, gates_, recurrent_gates_;
  std::vector<Real> weight_ih_, weight_hh_, bias_ih_, bias_hh_;  // PyTorch layout
  Panels<Real> input_panels_;           // W_ih^T (K = I, N = G), natural panels
  Panels<Real> recurrent_backward_panels_;  // W_hh (K = its rows, N = H), natural panels
  Panels<Real> input_backward_panels_;  // W_ih (K = G, N = I), natural panels
};

template <typename Real>
using CellLayers = std::vector<std::unique_ptr<const CellLayer<Real>>>;

// grad_w (rows_out, H) += dg^T · H_prev over all steps: h0 for step 0, the previous step's state
// after it, or h_prev_all where given. column_sums (rows_out) or nullptr: adds the column sums
// of dg over every row.
template <typename Real>
void accumulate_recurrent_weight_gradient(const kernels::KernelTable<Real>& k, const StepRows& s,
                                          Index rows_out, Index hidden, const Real* dg,
                                          Index ld_dg, const Real* h_first,
                                          const Real* h_prev_all, const Real* y, Real* grad_w,
                                          Real* column_sums);

}  // namespace fastgru::cells
