// The minimal gated unit: a step in two phases over natural panels of 3W units, f from W_hf h,
// then n from W_hn (f ⊙ h), which needs every unit's f. Backward mirrors them: the candidate's
// derivatives, dL/d(f ⊙ h) through W_hn and f's derivative, then dL/dh through W_hf.
#include "cells/mgu/mgu_cell.h"

#include <algorithm>
#include <type_traits>

#include "cells/isa_tables.h"
#include "cells/mgu/quantized_mgu_cell.h"
#include "cells/packing.h"

namespace fastgru::cells {
namespace {

const MguKernels<float>& mgu_kernels(const kernels::KernelTable<float>& shared) {
  return table_for_isa<MguKernels<float>>(shared.level, f32_mgu_kernels__scalar,
                                          FASTGRU_X86_TABLE(f32_mgu_kernels__avx2),
                                          FASTGRU_X86_TABLE(f32_mgu_kernels__avx512));
}

const MguKernels<double>& mgu_kernels(const kernels::KernelTable<double>&) {
  return f64_mgu_kernels__scalar();
}

template <typename Real>
std::unique_ptr<const CellLayer<Real>> make_mgu_layer(const kernels::KernelTable<Real>& kernels,
                                                      Index input, const NetworkConfig& config,
                                                      const WeightsView<Real>& weights,
                                                      const std::string& name) {
  if constexpr (std::is_same_v<Real, float>) {
    if (config.precision != Precision::full)
      return std::make_unique<QuantizedMguLayer>(kernels, input, config.hidden, config.precision,
                                                 weights, name);
  }
  return std::make_unique<MguCellLayer<Real>>(kernels, input, config.hidden, weights);
}

}  // namespace

const CellDescription& mgu_description() {
  static const CellDescription description{
      Cell::mgu, "mgu", "MGU", {"f", "n"}, {"weight_ih", "weight_hh", "bias_ih", "bias_hh"},
      {}, true, false, false, {}, nullptr, make_mgu_layer<float>, make_mgu_layer<double>};
  return description;
}

template <typename Real>
MguCellLayer<Real>::MguCellLayer(const kernels::KernelTable<Real>& kernels, Index input,
                                 Index hidden, const WeightsView<Real>& w)
    : CellLayer<Real>(kernels, input, hidden, 2, w.weight_ih, w.weight_hh, w.bias_ih, w.bias_hh),
      cell_kernels_(&mgu_kernels(kernels)) {
  const Index H = hidden, PW = 3 * kernels.vector_width;
  const Real* w_hh = this->weight_hh_.data();
  gate_panels_ = pack_natural<Real>(H, H, PW, [&](Index k, Index col) { return w_hh[col * H + k]; });
  candidate_panels_ = pack_natural<Real>(H, H, PW, [&](Index k, Index col) {
    return w_hh[(H + col) * H + k];
  });
}

template <typename Real>
int MguCellLayer<Real>::forward_phases() const {
  return 2;
}

template <typename Real>
UnitGrain MguCellLayer<Real>::forward_grain(int) const {
  return UnitGrain::panels;
}

template <typename Real>
bool MguCellLayer<Real>::needs_step_record() const {
  // f and f ⊙ h pass from the first phase to the second even when nothing is cached.
  return true;
}

template <typename Real>
void MguCellLayer<Real>::forward_phase(int phase, const ForwardStep<Real>& s, Range units) const {
  const Real* bias_hh = this->bias_hh_or_null();
  if (phase == 0) {
    cell_kernels_->step_gate(s.rows, hidden_, units.begin, units.end, gate_panels_.data(),
                             s.h_product, s.projection, s.ld_projection, bias_hh, s.record);
  } else {
    cell_kernels_->step_candidate(s.rows, hidden_, units.begin, units.end,
                                  candidate_panels_.data(), s.h_prev, s.projection,
                                  s.ld_projection, bias_hh, s.h_next, s.ld_h_next, s.record);
  }
}

template <typename Real>
int MguCellLayer<Real>::backward_phases() const {
  return 3;
}

template <typename Real>
Index MguCellLayer<Real>::backward_workspace_width() const {
  // dL/d(f ⊙ h) between the candidate's product and the gate's.
  return hidden_;
}

template <typename Real>
void MguCellLayer<Real>::backward_phase(int phase, const BackwardStep<Real>& s, Range panels,
                                        Index unit_begin, Index unit_end) const {
  const MguKernels<Real>& k = *cell_kernels_;
  const kernels::KernelTable<Real>& shared = *kernels_;
  const Index H = hidden_, G = 2 * H, PW = 3 * shared.vector_width, panel_stride = G * PW;
  const Real* backward_panels = this->recurrent_backward_panels_.data();
  Real* d_fh = s.workspace;
  switch (phase) {
    case 0:
      k.backward_candidate(s.rows, H, unit_begin, unit_end, s.record, s.h_prev, s.d_state,
                           s.d_carry, s.d_input_gates, s.dh_prev);
      // The gate kernel and the gate's product add into d_product.
      if (s.d_product != s.dh_prev) {
        for (Index r = 0; r < s.rows; ++r)
          std::fill(s.d_product + r * H + unit_begin, s.d_product + r * H + unit_end, Real(0));
      }
      break;
    case 1:
      shared.multiply_panels(s.rows, H, H, s.d_input_gates + H, G, 1, backward_panels + H * PW,
                             panel_stride, panels.begin, panels.end, d_fh, H, false, nullptr);
      k.backward_gate(s.rows, H, unit_begin, unit_end, s.record, s.h_product, d_fh,
                      s.d_input_gates, s.d_product);
      break;
    default:
      shared.multiply_panels(s.rows, H, H, s.d_input_gates, G, 1, backward_panels, panel_stride,
                             panels.begin, panels.end, s.d_product, H, true, nullptr);
      break;
  }
}

template <typename Real>
void MguCellLayer<Real>::recurrent_gradients(const GradientInputs<Real>& in,
                                             const GradientsView<Real>& grads) const {
  const kernels::KernelTable<Real>& k = *kernels_;
  const Index H = hidden_, G = 2 * H;
  accumulate_recurrent_weight_gradient(k, *in.rows, H, H, in.d_input_gates, G, in.h0,
                                       in.h_prev_all, in.y, grads.weight_hh,
                                       static_cast<Real*>(nullptr));
  // The candidate's recurrent input is f ⊙ h_{t-1}, kept in the cache's third block.
  driver::matmul(k, H, H, in.rows->total_rows(), in.d_input_gates + H, Index(1), G,
                 in.cache + 2 * H, 4 * H, Index(1), grads.weight_hh + H * H, H, true);
}

template class MguCellLayer<float>;
template class MguCellLayer<double>;

}  // namespace fastgru::cells
