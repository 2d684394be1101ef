// One step phase over blocks of W units (gate panels z and the candidate's side by side). A
// training forward normalises the projections of every step with the batch's statistics, so it
// projects the whole sequence before its loop; inference normalises with the running
// statistics, folded into the input weights where the folding is finite.
#include "cells/batch_norm/batch_norm_layer.h"

#include <algorithm>
#include <cmath>

#include "api/checks.h"
#include "cells/batch_norm/batch_norm.h"
#include "cells/packing.h"

namespace fastgru::cells {

std::vector<CellOption> batch_norm_options() {
  return {{"bn_momentum", CellOption::Kind::number, "a number in [0, 1]", {},
           [](double value) { return value >= 0 && value <= 1; }, nullptr},
          {"bn_eps", CellOption::Kind::number, "a number > 0", {},
           [](double value) { return value > 0; },
           [](NetworkConfig& config, double value) { config.bn_eps = value; }}};
}

void check_batch_norm_config(const NetworkConfig& config, const std::string& class_name) {
  api::require(!config.bias, "config.bias: a " + class_name + " has no biases (batch normalisation's "
                             "shift replaces them), expected false, got true");
  api::require(std::isfinite(config.bn_eps) && config.bn_eps > 0,
               "config.bn_eps: expected a finite number > 0, got " + std::to_string(config.bn_eps));
}

template <typename Real>
void check_batch_norm_weights(const WeightsView<Real>& w, Index hidden, const std::string& name) {
  for (auto [pointer, member] : {std::pair<const Real*, const char*>{w.bn_weight, ".bn_weight"},
                                 {w.bn_bias, ".bn_bias"},
                                 {w.bn_running_mean, ".bn_running_mean"},
                                 {w.bn_running_var, ".bn_running_var"}}) {
    api::require_pointer(pointer, name + member);
  }
  for (Index c = 0; c < 2 * hidden; ++c) {
    api::require(w.bn_running_var[c] >= 0, name + ".bn_running_var: expected values >= 0, got " +
                                               std::to_string(w.bn_running_var[c]) + " at " +
                                               std::to_string(c));
  }
}

template void check_batch_norm_weights<float>(const WeightsView<float>&, Index, const std::string&);
template void check_batch_norm_weights<double>(const WeightsView<double>&, Index, const std::string&);

template <typename Real>
BatchNormCellLayer<Real>::BatchNormCellLayer(const kernels::KernelTable<Real>& kernels,
                                             Index input, const NetworkConfig& config,
                                             const WeightsView<Real>& w,
                                             BatchNormStepFn<Real> step,
                                             BatchNormBackwardFn<Real> backward)
    : CellLayer<Real>(kernels, input, config.hidden, 2, w.weight_ih, w.weight_hh, nullptr,
                      nullptr),
      step_(step),
      backward_(backward),
      negative_slope_(static_cast<Real>(config.negative_slope)),
      bn_eps_(static_cast<Real>(config.bn_eps)) {
  const Index I = input, H = config.hidden, G = 2 * H, W = kernels.vector_width;
  bn_weight_.assign(w.bn_weight, w.bn_weight + G);
  bn_bias_.assign(w.bn_bias, w.bn_bias + G);
  bn_running_mean_.assign(w.bn_running_mean, w.bn_running_mean + G);
  bn_running_var_.assign(w.bn_running_var, w.bn_running_var + G);
  step_panels_ = pack_gate_panels(this->weight_hh_.data(), H, W, 0, 2);
  // Inference normalises with the running statistics: BN(W x) = scale ⊙ (W x) + shift, with
  // scale = γ / √(σ² + ε) folded into the rows of W and shift = β − scale ⊙ μ. The folding
  // holds only where scale ⊙ W is finite: an infinite γ would make the product sum inf − inf
  // and the shift inf · 0 where γ ⊙ (W x − μ) / √(σ² + ε) + β itself is finite (a saturated
  // gate), so such a layer normalises its projections explicitly instead.
  std::vector<double> scale(static_cast<size_t>(G));
  for (Index c = 0; c < G; ++c)
    scale[c] = bn_weight_[c] / std::sqrt(double(bn_running_var_[c]) + bn_eps_);
  const Real* w_ih = this->weight_ih_.data();
  Panels<Real> folded = pack_natural<Real>(I, G, 3 * W, [&](Index k, Index col) {
    return static_cast<Real>(scale[col] * w_ih[col * I + k]);
  });
  batch_norm_folded_ =
      std::all_of(folded.begin(), folded.end(), [](Real v) { return std::isfinite(v); });
  if (batch_norm_folded_) {
    folded_input_panels_ = std::move(folded);
    for (Index c = 0; c < G; ++c)
      inference_shift_.push_back(static_cast<Real>(bn_bias_[c] - scale[c] * bn_running_mean_[c]));
  }
}

template <typename Real>
void BatchNormCellLayer<Real>::project_inputs(const InputRows<Real>& x, Real* projection,
                                              Real* record, Real* batch_statistics,
                                              bool training) const {
  const Index H = hidden_, G = 2 * H;
  if (training) {
    this->project(x, this->input_panels_.data(), nullptr, projection);
    // x̂ goes to the records' last two blocks, which backward's normalisation reads.
    batch_norm_forward(x.count, G, bn_weight_.data(), bn_bias_.data(), bn_eps_, projection,
                       record + 2 * H, 4 * H, batch_statistics);
  } else if (!batch_norm_folded_) {
    this->project(x, this->input_panels_.data(), nullptr, projection);
    batch_norm_inference(x.count, G, bn_weight_.data(), bn_bias_.data(), bn_running_mean_.data(),
                         bn_running_var_.data(), bn_eps_, projection);
  } else {
    this->project(x, folded_input_panels_.data(), inference_shift_.data(), projection);
  }
}

template <typename Real>
bool BatchNormCellLayer<Real>::projects_whole_sequence(bool training) const {
  return training;
}

template <typename Real>
Index BatchNormCellLayer<Real>::batch_statistics_size() const {
  return 2 * this->gate_width();
}

template <typename Real>
int BatchNormCellLayer<Real>::forward_phases() const {
  return 1;
}

template <typename Real>
UnitGrain BatchNormCellLayer<Real>::forward_grain(int) const {
  return UnitGrain::blocks;
}

template <typename Real>
bool BatchNormCellLayer<Real>::needs_step_record() const {
  return false;
}

template <typename Real>
void BatchNormCellLayer<Real>::forward_phase(int, const ForwardStep<Real>& s, Range units) const {
  step_(s.rows, hidden_, units.begin, units.end, step_panels_.data(), s.h_prev, s.h_product,
        s.projection, s.ld_projection, negative_slope_, s.h_next, s.ld_h_next, s.record);
}

template <typename Real>
int BatchNormCellLayer<Real>::backward_phases() const {
  return 2;
}

template <typename Real>
void BatchNormCellLayer<Real>::backward_phase(int phase, const BackwardStep<Real>& s, Range panels,
                                              Index unit_begin, Index unit_end) const {
  const Index H = hidden_, G = 2 * H, PW = 3 * kernels_->vector_width;
  if (phase == 0) {
    backward_(s.rows, H, unit_begin, unit_end, s.record, s.h_prev, s.d_state, s.d_carry,
              negative_slope_, s.d_input_gates, s.dh_prev);
  } else {
    kernels_->multiply_panels(s.rows, H, G, s.d_recurrent_gates, G, 1,
                              this->recurrent_backward_panels_.data(), G * PW, panels.begin,
                              panels.end, s.d_product, H, s.d_product == s.dh_prev, nullptr);
  }
}

template <typename Real>
void BatchNormCellLayer<Real>::recurrent_gradients(const GradientInputs<Real>& in,
                                                   const GradientsView<Real>& grads) const {
  const Index H = hidden_, G = 2 * H;
  accumulate_recurrent_weight_gradient(*kernels_, *in.rows, G, H, in.d_recurrent_gates, G, in.h0,
                                       in.h_prev_all, in.y, grads.weight_hh,
                                       in.recurrent_bias_sums);
}

template <typename Real>
void BatchNormCellLayer<Real>::project_inputs_backward(const GradientInputs<Real>& in,
                                                       const GradientsView<Real>& grads) const {
  const Index rows = in.rows->total_rows(), H = hidden_;
  if (rows == 0) return;
  // d_input_gates holds dL/da; batch normalisation turns it into dL/d(W_ih x) in place.
  batch_norm_backward(rows, 2 * H, bn_weight_.data(), bn_eps_, in.cache + 2 * H, 4 * H,
                      in.batch_statistics, in.d_input_gates, grads.bn_weight, grads.bn_bias);
}

template class BatchNormCellLayer<float>;
template class BatchNormCellLayer<double>;

}  // namespace fastgru::cells
