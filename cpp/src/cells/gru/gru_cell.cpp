// The GRU with either reset convention. Reset-after (§1) runs a step in one phase over blocks of
// W units: the gate panels hold r, z, n side by side. Reset-before (§2) needs r ⊙ h before the
// candidate's product: r, z over blocks, then n over natural panels of W_hn^T.
// The forms of the gates (§7) run the same phases with the kernels of their form: the input
// projection holds n's block alone, and the gates' gradients go to d_recurrent_gates (3H).
#include "cells/gru/gru_cell.h"

#include <algorithm>
#include <cmath>
#include <type_traits>

#include "api/checks.h"
#include "cells/gru/quantized_gru_cell.h"
#include "cells/isa_tables.h"
#include "cells/packing.h"

namespace fastgru::cells {
namespace {

template <typename Real>
const GruKernels<Real>& form_kernels(const GruKernelForms<Real>& forms, GateTerms gates) {
  if (gates == GateTerms::full) return forms.full;
  return gates == GateTerms::bias ? forms.bias_gates : forms.hidden_gates;
}

const GruKernels<float>& gru_kernels(const kernels::KernelTable<float>& shared, GateTerms gates) {
  return form_kernels(table_for_isa<GruKernelForms<float>>(
                          shared.level, f32_gru_kernels__scalar,
                          FASTGRU_X86_TABLE(f32_gru_kernels__avx2),
                          FASTGRU_X86_TABLE(f32_gru_kernels__avx512)),
                      gates);
}

const GruKernels<double>& gru_kernels(const kernels::KernelTable<double>&, GateTerms gates) {
  return form_kernels(f64_gru_kernels__scalar(), gates);
}

const std::vector<std::string> kGateForms{"full", "hidden_bias", "hidden", "bias"};

bool valid_clip(double clip) { return clip > 0; }  // NaN fails; ∞ is none

void check_gru_config(const NetworkConfig& config) {
  api::require(config.mode == ResetMode::after || config.mode == ResetMode::before,
               "config.mode: expected ResetMode::after or ResetMode::before, got " +
                   std::to_string(static_cast<int>(config.mode)));
  const int gates = static_cast<int>(config.gates);
  api::require(gates >= 0 && gates < static_cast<int>(kGateForms.size()),
               "config.gates: expected GateTerms::full, hidden_bias, hidden or bias, got " +
                   std::to_string(gates));
  api::require(valid_clip(config.clip),
               "config.clip: expected a number > 0, or infinity for none, got " + api::printed(config.clip));
}

// Row blocks of each array (EQUATIONS.md §7): the forms but full have n's input block alone.
Index gru_parameter_blocks(const std::string& name, const NetworkConfig& config) {
  const GateTerms gates = config.gates;
  if (gates == GateTerms::full) return 3;
  if (name == "weight_ih" || name == "bias_ih") return 1;
  if (name == "weight_hh") return gates == GateTerms::bias ? 1 : 3;
  return gates == GateTerms::hidden ? 1 : 3;  // bias_hh
}

template <typename Real>
std::unique_ptr<const CellLayer<Real>> make_gru_layer(const kernels::KernelTable<Real>& kernels,
                                                      Index input, const NetworkConfig& config,
                                                      const WeightsView<Real>& weights,
                                                      const std::string& name) {
  if constexpr (std::is_same_v<Real, float>) {
    // A float32 network clips at clip rounded to float32: a bound that rounds to 0 would zero
    // every pre-activation, one that rounds to infinity would clip nothing.
    const float bound = static_cast<float>(config.clip);
    api::require(std::isinf(config.clip) || (bound > 0 && std::isfinite(bound)),
                 "config.clip: a float32 network clips at clip as a float32; expected a number that stays > 0 "
                 "and finite as one, got " + api::printed(config.clip));
    if (config.precision != Precision::full)
      return std::make_unique<QuantizedGruLayer>(kernels, input, config.hidden, config.mode,
                                                 config.gates, config.clip, config.precision,
                                                 weights, name);
  }
  return std::make_unique<GruCellLayer<Real>>(kernels, input, config.hidden, config.mode,
                                              config.gates, config.clip, weights);
}

}  // namespace

const CellDescription& gru_description() {
  static const CellDescription description{
      Cell::gru,
      "gru",
      "GRU",
      {"r", "z", "n"},
      {"weight_ih", "weight_hh", "bias_ih", "bias_hh"},
      {},
      true,
      true,
      false,
      {{"reset_after", CellOption::Kind::boolean, "a boolean", {}, nullptr,
        [](NetworkConfig& config, double after) {
          config.mode = after != 0 ? ResetMode::after : ResetMode::before;
        }},
       {"gates", CellOption::Kind::choice, name_list(kGateForms, "'"), kGateForms, nullptr,
        [](NetworkConfig& config, double form) { config.gates = static_cast<GateTerms>(form); },
        "full"},
       {"clip", CellOption::Kind::bound, "a number > 0 or null", {}, valid_clip,
        [](NetworkConfig& config, double clip) { config.clip = clip; }}},
      check_gru_config,
      make_gru_layer<float>,
      make_gru_layer<double>,
      gru_parameter_blocks};
  return description;
}

template <typename Real>
GruCellLayer<Real>::GruCellLayer(const kernels::KernelTable<Real>& kernels, Index input,
                                 Index hidden, ResetMode mode, GateTerms gates, double clip,
                                 const WeightsView<Real>& w)
    : CellLayer<Real>(kernels, input, hidden, gates == GateTerms::full ? 3 : 1,
                      gates == GateTerms::bias ? 1 : 3, gates == GateTerms::hidden ? 1 : 3,
                      w.weight_ih, w.weight_hh, w.bias_ih, w.bias_hh),
      mode_(mode),
      gates_form_(gates),
      clip_(static_cast<Real>(clip)),
      cell_kernels_(&gru_kernels(kernels, gates)) {
  const Index H = hidden, W = kernels.vector_width;
  const Real* w_hh = this->weight_hh_.data();
  // W_hn's rows in weight_hh: after W_hr, W_hz, or alone (type 3).
  const Index n_block = hidden_gates() ? 2 : 0;
  if (mode == ResetMode::after) {
    step_panels_ = pack_gate_panels(w_hh, H, W, hidden_gates() ? 0 : n_block, hidden_gates() ? 3 : 1);
  } else {
    if (hidden_gates()) step_panels_ = pack_gate_panels(w_hh, H, W, 0, 2);
    candidate_panels_ = pack_natural<Real>(H, H, 3 * W, [&](Index k, Index col) {
      return w_hh[(n_block * H + col) * H + k];
    });
  }
  if (!full() && this->has_bias()) {
    const std::vector<Real>& b = this->bias_hh_;
    form_bias_.assign(3 * H, Real(0));
    std::copy(b.begin(), b.end(), form_bias_.end() - static_cast<std::ptrdiff_t>(b.size()));
  }
}

template <typename Real>
const Real* GruCellLayer<Real>::step_bias() const {
  return full() ? this->bias_hh_or_null() : (form_bias_.empty() ? nullptr : form_bias_.data());
}

template <typename Real>
void GruCellLayer<Real>::add_recurrent_bias_gradient(const Real* sums, Real* grad) const {
  // bias_hh holds the last blocks of b_hr, b_hz, b_hn: all three, or b_hn alone (type 2).
  const Index size = static_cast<Index>(this->bias_hh_.size()), skip = 3 * hidden_ - size;
  for (Index c = 0; c < size; ++c) grad[c] += sums[skip + c];
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
  const Real* bias_hh = step_bias();
  const Index H = hidden_;
  if (mode_ == ResetMode::after) {
    k.step_reset_after(s.rows, H, units.begin, units.end, step_panels_.data(), s.h_prev,
                       s.h_product, s.projection, s.ld_projection, bias_hh, clip_, s.h_next,
                       s.ld_h_next, s.record, s.stream_record);
  } else if (phase == 0) {
    k.step_reset_before_rz(s.rows, H, units.begin, units.end, step_panels_.data(), s.h_product,
                           s.projection, s.ld_projection, bias_hh, clip_, s.record);
  } else {
    k.step_reset_before_n(s.rows, H, units.begin, units.end, candidate_panels_.data(), s.h_prev,
                          s.projection, s.ld_projection, bias_hh, clip_, s.h_next, s.ld_h_next,
                          s.record);
  }
}

template <typename Real>
int GruCellLayer<Real>::backward_phases() const {
  // Reset-before's third phase is the r, z product, which gates of the biases alone lack.
  return mode_ == ResetMode::after ? 2 : (hidden_gates() ? 3 : 2);
}

template <typename Real>
Index GruCellLayer<Real>::backward_workspace_width() const {
  // Reset-before: dL/d(r ⊙ h) between its two products.
  return mode_ == ResetMode::before ? hidden_ : 0;
}

template <typename Real>
bool GruCellLayer<Real>::separate_recurrent_gate_gradients() const {
  // Reset-after feeds r ⊙ dn to W_hn, unlike the input side; the other forms' input side has
  // n's block alone.
  return mode_ == ResetMode::after || !full();
}

template <typename Real>
Index GruCellLayer<Real>::recurrent_gate_width() const {
  return 3 * hidden_;
}

template <typename Real>
void GruCellLayer<Real>::backward_phase(int phase, const BackwardStep<Real>& s, Range panels,
                                        Index unit_begin, Index unit_end) const {
  const GruKernels<Real>& k = *cell_kernels_;
  const kernels::KernelTable<Real>& shared = *kernels_;
  const Index H = hidden_, G = 3 * H, PW = 3 * shared.vector_width;
  const Index GH = this->recurrent_product_width(), panel_stride = GH * PW;
  const Real* backward_panels = recurrent_backward_panels_.data();
  const bool add_to_dh_prev = s.d_product == s.dh_prev;
  if (mode_ == ResetMode::after) {
    if (phase == 0) {
      k.backward_reset_after(s.rows, H, unit_begin, unit_end, s.record, clip_, s.h_prev, s.d_state,
                             s.d_carry, s.d_input_gates, s.d_recurrent_gates, s.dh_prev,
                             s.stream_gradients);
    } else {
      // W_hh's rows are r, z, n, or n alone (type 3: its block of d_recurrent_gates).
      shared.multiply_panels(s.rows, H, GH, s.d_recurrent_gates + (G - GH), G, 1,
                             backward_panels, panel_stride, panels.begin, panels.end,
                             s.d_product, H, add_to_dh_prev, nullptr);
    }
    return;
  }
  // Reset-before: the gates' gradients are in d_input_gates (full GRU) or d_recurrent_gates;
  // the candidate's in d_input_gates' n block.
  Real* d_gates = full() ? s.d_input_gates : s.d_recurrent_gates;
  const Real* d_candidate = full() ? s.d_input_gates + 2 * H : s.d_input_gates;
  const Index ld_candidate = full() ? G : H, n_block = hidden_gates() ? 2 : 0;
  Real* d_rh = s.workspace;
  switch (phase) {
    case 0:
      k.backward_reset_before_zn(s.rows, H, unit_begin, unit_end, s.record, clip_, s.h_prev, s.d_state,
                                 s.d_carry, s.d_input_gates, s.d_recurrent_gates, s.dh_prev);
      // The r kernel and the r, z product add into d_product.
      if (!add_to_dh_prev) {
        for (Index r = 0; r < s.rows; ++r)
          std::fill(s.d_product + r * H + unit_begin, s.d_product + r * H + unit_end, Real(0));
      }
      break;
    case 1:
      shared.multiply_panels(s.rows, H, H, d_candidate, ld_candidate, 1,
                             backward_panels + n_block * H * PW, panel_stride, panels.begin,
                             panels.end, d_rh, H, false, nullptr);
      // r multiplies the product's input: h, or h ⊙ keep.
      k.backward_reset_before_r(s.rows, H, unit_begin, unit_end, s.record, clip_, s.h_product, d_rh,
                                d_gates, s.d_product);
      break;
    default:
      shared.multiply_panels(s.rows, H, 2 * H, d_gates, G, 1, backward_panels, panel_stride,
                             panels.begin, panels.end, s.d_product, H, true, nullptr);
      break;
  }
}

template <typename Real>
void GruCellLayer<Real>::recurrent_gradients(const GradientInputs<Real>& in,
                                             const GradientsView<Real>& grads) const {
  const kernels::KernelTable<Real>& k = *kernels_;
  const Index H = hidden_, G = 3 * H, rows = in.rows->total_rows();
  Real* sums = in.recurrent_bias_sums;
  if (mode_ == ResetMode::after) {
    if (hidden_gates()) {
      accumulate_recurrent_weight_gradient(k, *in.rows, G, H, in.d_recurrent_gates, G, in.h0,
                                           in.h_prev_all, in.y, grads.weight_hh, sums);
    } else {
      accumulate_recurrent_weight_gradient(k, *in.rows, H, H, in.d_recurrent_gates + 2 * H, G,
                                           in.h0, in.h_prev_all, in.y, grads.weight_hh,
                                           static_cast<Real*>(nullptr));
      if (sums) k.column_sum(rows, G, in.d_recurrent_gates, G, sums);
    }
    if (sums) add_recurrent_bias_gradient(sums, grads.bias_hh);
    return;
  }
  // Reset-before: W_hr, W_hz see h_{t-1}; W_hn sees r ⊙ h_{t-1}, kept in the cache's fourth
  // block. The full GRU's gates' gradients are in d_input_gates, with its recurrent biases'.
  const Real* d_gates = full() ? in.d_input_gates : in.d_recurrent_gates;
  const Real* d_candidate = full() ? in.d_input_gates + 2 * H : in.d_input_gates;
  const Index ld_candidate = full() ? G : H;
  if (hidden_gates()) {
    accumulate_recurrent_weight_gradient(k, *in.rows, 2 * H, H, d_gates, G, in.h0,
                                         in.h_prev_all, in.y, grads.weight_hh,
                                         static_cast<Real*>(nullptr));
  }
  Real* grad_w_hn = grads.weight_hh + (hidden_gates() ? 2 * H * H : 0);
  driver::matmul(k, H, H, rows, d_candidate, Index(1), ld_candidate, in.cache + 3 * H, 4 * H,
                 Index(1), grad_w_hn, H, true);
  if (sums) {
    k.column_sum(rows, G, in.d_recurrent_gates, G, sums);
    add_recurrent_bias_gradient(sums, grads.bias_hh);
  }
}

template class GruCellLayer<float>;
template class GruCellLayer<double>;

}  // namespace fastgru::cells
