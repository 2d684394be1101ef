// The GRU with either reset convention. Reset-after (§1) runs a step in one phase over blocks of
// W units: the gate panels hold r, z, n side by side. Reset-before (§2) needs r ⊙ h before the
// candidate's product: r, z over blocks, then n over natural panels of W_hn^T.
#include "cells/gru/gru_cell.h"

#include <algorithm>

#include "api/checks.h"
#include "cells/isa_tables.h"
#include "cells/packing.h"

namespace fastgru::cells {
namespace {

const GruKernels<float>& gru_kernels(const kernels::KernelTable<float>& shared) {
  return table_for_isa<GruKernels<float>>(shared.level, f32_gru_kernels__scalar,
                                          FASTGRU_X86_TABLE(f32_gru_kernels__avx2),
                                          FASTGRU_X86_TABLE(f32_gru_kernels__avx512));
}

const GruKernels<double>& gru_kernels(const kernels::KernelTable<double>&) {
  return f64_gru_kernels__scalar();
}

void check_gru_config(const GruConfig& config) {
  api::require(config.mode == ResetMode::after || config.mode == ResetMode::before,
               "config.mode: expected ResetMode::after or ResetMode::before, got " +
                   std::to_string(static_cast<int>(config.mode)));
}

template <typename Real>
std::unique_ptr<const CellLayer<Real>> make_gru_layer(const kernels::KernelTable<Real>& kernels,
                                                      Index input, const GruConfig& config,
                                                      const GruWeightsView<Real>& weights,
                                                      const std::string&) {
  return std::make_unique<GruCellLayer<Real>>(kernels, input, config.hidden, config.mode, weights);
}

}  // namespace

const CellDescription& gru_description() {
  static const CellDescription description{
      Cell::gru, "gru", "GRU", {"r", "z", "n"}, {"weight_ih", "weight_hh", "bias_ih", "bias_hh"},
      {}, true, true, false, {}, check_gru_config, make_gru_layer<float>, make_gru_layer<double>};
  return description;
}

template <typename Real>
GruCellLayer<Real>::GruCellLayer(const kernels::KernelTable<Real>& kernels, Index input,
                                 Index hidden, ResetMode mode, const GruWeightsView<Real>& w)
    : CellLayer<Real>(kernels, input, hidden, 3, w.weight_ih, w.weight_hh, w.bias_ih, w.bias_hh),
      mode_(mode),
      cell_kernels_(&gru_kernels(kernels)) {
  const Index H = hidden, W = kernels.vector_width;
  const Real* w_hh = this->weight_hh_.data();
  step_panels_ = pack_gate_panels(w_hh, H, W, 0, mode == ResetMode::after ? 3 : 2);
  if (mode == ResetMode::before) {
    candidate_panels_ = pack_natural<Real>(H, H, 3 * W, [&](Index k, Index col) {
      return w_hh[(2 * H + col) * H + k];
    });
  }
}

template <typename Real>
int GruCellLayer<Real>::forward_phases() const {
  return mode_ == ResetMode::after ? 1 : 2;
}

template <typename Real>
UnitGrain GruCellLayer<Real>::forward_grain(int phase) const {
  return phase == 0 ? UnitGrain::blocks : UnitGrain::panels;
}

template <typename Real>
bool GruCellLayer<Real>::needs_step_record() const {
  // Reset-before keeps r, z and r ⊙ h between its two products even when nothing is cached.
  return mode_ == ResetMode::before;
}

template <typename Real>
void GruCellLayer<Real>::forward_phase(int phase, const ForwardStep<Real>& s, Range units) const {
  const GruKernels<Real>& k = *cell_kernels_;
  const Real* bias_hh = this->bias_hh_or_null();
  const Index H = hidden_;
  if (mode_ == ResetMode::after) {
    k.step_reset_after(s.rows, H, units.begin, units.end, step_panels_.data(), s.h_prev,
                       s.h_product, s.projection, s.ld_projection, bias_hh, s.h_next, s.ld_h_next,
                       s.record, s.stream_record);
  } else if (phase == 0) {
    k.step_reset_before_rz(s.rows, H, units.begin, units.end, step_panels_.data(), s.h_product,
                           s.projection, s.ld_projection, bias_hh, s.record);
  } else {
    k.step_reset_before_n(s.rows, H, units.begin, units.end, candidate_panels_.data(), s.h_prev,
                          s.projection, s.ld_projection, bias_hh, s.h_next, s.ld_h_next, s.record);
  }
}

template <typename Real>
int GruCellLayer<Real>::backward_phases() const {
  return mode_ == ResetMode::after ? 2 : 3;
}

template <typename Real>
Index GruCellLayer<Real>::backward_workspace_width() const {
  // Reset-before: dL/d(r ⊙ h) between its two products.
  return mode_ == ResetMode::before ? hidden_ : 0;
}

template <typename Real>
bool GruCellLayer<Real>::separate_recurrent_gate_gradients() const {
  // Reset-after feeds r ⊙ dn to W_hn, unlike the input side.
  return mode_ == ResetMode::after;
}

template <typename Real>
void GruCellLayer<Real>::backward_phase(int phase, const BackwardStep<Real>& s, Range panels,
                                        Index unit_begin, Index unit_end) const {
  const GruKernels<Real>& k = *cell_kernels_;
  const kernels::KernelTable<Real>& shared = *kernels_;
  const Index H = hidden_, G = 3 * H, PW = 3 * shared.vector_width, panel_stride = G * PW;
  const Real* backward_panels = recurrent_backward_panels_.data();
  const bool add_to_dh_prev = s.d_product == s.dh_prev;
  if (mode_ == ResetMode::after) {
    if (phase == 0) {
      k.backward_reset_after(s.rows, H, unit_begin, unit_end, s.record, s.h_prev, s.d_state,
                             s.d_carry, s.d_input_gates, s.d_recurrent_gates, s.dh_prev,
                             s.stream_gradients);
    } else {
      shared.multiply_panels(s.rows, H, G, s.d_recurrent_gates, G, 1, backward_panels,
                             panel_stride, panels.begin, panels.end, s.d_product, H,
                             add_to_dh_prev, nullptr);
    }
    return;
  }
  Real* d_rh = s.workspace;
  switch (phase) {
    case 0:
      k.backward_reset_before_zn(s.rows, H, unit_begin, unit_end, s.record, s.h_prev, s.d_state,
                                 s.d_carry, s.d_input_gates, s.dh_prev);
      // The r kernel and the r, z product add into d_product.
      if (!add_to_dh_prev) {
        for (Index r = 0; r < s.rows; ++r)
          std::fill(s.d_product + r * H + unit_begin, s.d_product + r * H + unit_end, Real(0));
      }
      break;
    case 1:
      shared.multiply_panels(s.rows, H, H, s.d_input_gates + 2 * H, G, 1,
                             backward_panels + 2 * H * PW, panel_stride, panels.begin, panels.end,
                             d_rh, H, false, nullptr);
      // r multiplies the product's input: h, or h ⊙ keep.
      k.backward_reset_before_r(s.rows, H, unit_begin, unit_end, s.record, s.h_product, d_rh,
                                s.d_input_gates, s.d_product);
      break;
    default:
      shared.multiply_panels(s.rows, H, 2 * H, s.d_input_gates, G, 1, backward_panels,
                             panel_stride, panels.begin, panels.end, s.d_product, H, true,
                             nullptr);
      break;
  }
}

template <typename Real>
void GruCellLayer<Real>::recurrent_gradients(const GradientInputs<Real>& in,
                                             const GruGradientsView<Real>& grads) const {
  const kernels::KernelTable<Real>& k = *kernels_;
  const Index H = hidden_, G = 3 * H;
  if (mode_ == ResetMode::after) {
    accumulate_recurrent_weight_gradient(k, *in.rows, G, H, in.d_recurrent_gates, G, in.h0,
                                         in.h_prev_all, in.y, grads.weight_hh,
                                         in.recurrent_bias_sums);
    return;
  }
  accumulate_recurrent_weight_gradient(k, *in.rows, 2 * H, H, in.d_input_gates, G, in.h0,
                                       in.h_prev_all, in.y, grads.weight_hh,
                                       static_cast<Real*>(nullptr));
  // The candidate's recurrent input is r ⊙ h_{t-1}, kept in the cache's fourth block.
  driver::matmul(k, H, H, in.rows->total_rows(), in.d_input_gates + 2 * H, Index(1), G,
                 in.cache + 3 * H, 4 * H, Index(1), grads.weight_hh + 2 * H * H, H, true);
}

template class GruCellLayer<float>;
template class GruCellLayer<double>;

}  // namespace fastgru::cells
