// What every cell shares: its weights in PyTorch's layout, the panels of the input product and
// of the products after the backward loop, and the input projection without normalisation.
#include "cells/cell_layer.h"

#include "cells/packing.h"

namespace fastgru::cells {

template <typename Real>
CellLayer<Real>::CellLayer(const kernels::KernelTable<Real>& kernels, Index input, Index hidden,
                           Index gates, const Real* weight_ih, const Real* weight_hh,
                           const Real* bias_ih, const Real* bias_hh)
    : CellLayer(kernels, input, hidden, gates, gates, gates, weight_ih, weight_hh, bias_ih,
                bias_hh) {}

template <typename Real>
CellLayer<Real>::CellLayer(const kernels::KernelTable<Real>& kernels, Index input, Index hidden,
                           Index gates, Index recurrent_gates, Index recurrent_bias_gates,
                           const Real* weight_ih, const Real* weight_hh, const Real* bias_ih,
                           const Real* bias_hh)
    : kernels_(&kernels), input_(input), hidden_(hidden), gates_(gates),
      recurrent_gates_(recurrent_gates) {
  const Index I = input, H = hidden, G = gates * hidden, GH = recurrent_gates * hidden,
              PW = 3 * kernels.vector_width;
  weight_ih_.assign(weight_ih, weight_ih + G * I);
  weight_hh_.assign(weight_hh, weight_hh + GH * H);
  if (bias_ih) bias_ih_.assign(bias_ih, bias_ih + G);
  if (bias_hh) bias_hh_.assign(bias_hh, bias_hh + recurrent_bias_gates * H);
  const Real* w_ih = weight_ih_.data();
  const Real* w_hh = weight_hh_.data();
  input_panels_ = pack_natural<Real>(I, G, PW, [&](Index k, Index col) { return w_ih[col * I + k]; });
  recurrent_backward_panels_ =
      pack_natural<Real>(GH, H, PW, [&](Index k, Index col) { return w_hh[k * H + col]; });
  input_backward_panels_ =
      pack_natural<Real>(G, I, PW, [&](Index k, Index col) { return w_ih[k * I + col]; });
}

template <typename Real>
void CellLayer<Real>::project(const InputRows<Real>& x, const Real* panels, const Real* bias,
                              Real* projection) const {
  const Index G = gate_width();
  if (x.x_rows) {
    driver::matmul_packed_rows(*kernels_, x.count, G, x.width, x.x, x.width,
                               x.x_rows + x.first_row, panels, projection, G, bias);
  } else {
    driver::matmul_packed(*kernels_, x.count, G, x.width, x.x + x.first_row * x.width, x.width,
                          Index(1), panels, projection, G, bias);
  }
}

template <typename Real>
void CellLayer<Real>::project_inputs(const InputRows<Real>& x, Real* projection, Real*, Real*,
                                     bool) const {
  project(x, input_panels_.data(), bias_ih_or_null(), projection);
}

template <typename Real>
bool CellLayer<Real>::projects_whole_sequence(bool) const {
  return false;
}

template <typename Real>
Index CellLayer<Real>::batch_statistics_size() const {
  return 0;
}

template <typename Real>
Index CellLayer<Real>::backward_workspace_width() const {
  return 0;
}

template <typename Real>
bool CellLayer<Real>::separate_recurrent_gate_gradients() const {
  return false;
}

template <typename Real>
Index CellLayer<Real>::recurrent_gate_width() const {
  return recurrent_product_width();
}

template <typename Real>
void CellLayer<Real>::project_inputs_backward(const GradientInputs<Real>&,
                                              const GradientsView<Real>&) const {}

template <typename Real>
void accumulate_recurrent_weight_gradient(const kernels::KernelTable<Real>& k, const StepRows& s,
                                          Index rows_out, Index hidden, const Real* dg,
                                          Index ld_dg, const Real* h_first,
                                          const Real* h_prev_all, const Real* y, Real* grad_w,
                                          Real* column_sums) {
  if (h_prev_all) {
    driver::matmul(k, rows_out, hidden, s.total_rows(), dg, Index(1), ld_dg, h_prev_all, hidden,
                   Index(1), grad_w, hidden, true, column_sums);
    return;
  }
  if (s.steps > 1) {
    driver::matmul(k, rows_out, hidden, s.total_rows() - s.batch, dg + s.batch * ld_dg,
                   Index(1), ld_dg, y, hidden, Index(1), grad_w, hidden, true, column_sums);
  }
  if (s.steps == 0) return;
  if (h_first) {
    driver::matmul(k, rows_out, hidden, s.batch, dg, Index(1), ld_dg, h_first, hidden, Index(1),
                   grad_w, hidden, true, column_sums);
  } else if (column_sums) {
    // A zero h0 adds nothing to grad_w, but step 0's rows still count in the sums.
    k.column_sum(s.batch, rows_out, dg, ld_dg, column_sums);
  }
}

template class CellLayer<float>;
template class CellLayer<double>;
template void accumulate_recurrent_weight_gradient<float>(const kernels::KernelTable<float>&,
                                                          const StepRows&, Index, Index,
                                                          const float*, Index, const float*,
                                                          const float*, const float*, float*,
                                                          float*);
template void accumulate_recurrent_weight_gradient<double>(const kernels::KernelTable<double>&,
                                                           const StepRows&, Index, Index,
                                                           const double*, Index, const double*,
                                                           const double*, const double*, double*,
                                                           double*);

}  // namespace fastgru::cells
