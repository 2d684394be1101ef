// GruLayer: argument checks and weight ownership; the GRU cell lives in cells/gru/, the time
// loops in driver/.
#include <memory>
#include <string>
#include <vector>

#include "api/checks.h"
#include "cells/gru/gru_cell.h"
#include "dispatch/kernel_table.h"
#include "driver/time_loops.h"
#include "fastgru/network.h"

namespace fastgru {
namespace {

template <typename Real>
std::unique_ptr<const cells::GruCellLayer<Real>> make_layer(GruLayerSizes sizes, ResetMode mode,
                                                            const WeightsView<Real>& w) {
  api::require_at_least(sizes.input, 1, "input size");
  api::require_at_least(sizes.hidden, 1, "hidden size");
  api::require(mode == ResetMode::after || mode == ResetMode::before,
               "reset mode must be ResetMode::after or ResetMode::before");
  api::require_pointer(w.weight_ih, "weights.weight_ih");
  api::require_pointer(w.weight_hh, "weights.weight_hh");
  api::require((w.bias_ih == nullptr) == (w.bias_hh == nullptr),
               "weights.bias_ih and weights.bias_hh must be both given or both null");
  return std::make_unique<const cells::GruCellLayer<Real>>(dispatch::active_kernels<Real>(),
                                                           sizes.input, sizes.hidden, mode,
                                                           GateTerms::full, NetworkConfig().clip, w);
}

}  // namespace

std::int64_t training_cache_size(std::int64_t steps, std::int64_t batch, std::int64_t hidden) {
  return steps * batch * 4 * hidden;
}

template <typename Real>
struct GruLayer<Real>::Impl {
  std::unique_ptr<const cells::GruCellLayer<Real>> layer;
};

template <typename Real>
GruLayer<Real>::GruLayer(GruLayerSizes sizes, ResetMode mode, const WeightsView<Real>& w)
    : impl_(std::make_unique<Impl>(Impl{make_layer(sizes, mode, w)})) {}

template <typename Real>
GruLayer<Real>::~GruLayer() = default;
template <typename Real>
GruLayer<Real>::GruLayer(GruLayer&&) noexcept = default;
template <typename Real>
GruLayer<Real>& GruLayer<Real>::operator=(GruLayer&&) noexcept = default;

template <typename Real>
GruLayerSizes GruLayer<Real>::sizes() const {
  return {impl_->layer->input(), impl_->layer->hidden()};
}

template <typename Real>
ResetMode GruLayer<Real>::reset_mode() const {
  return impl_->layer->reset_mode();
}

template <typename Real>
bool GruLayer<Real>::has_bias() const {
  return impl_->layer->has_bias();
}

template <typename Real>
void GruLayer<Real>::forward(std::int64_t steps, std::int64_t batch, const Real* x,
                             const Real* h0, Real* y, Real* h_n, Real* cache) const {
  api::require_at_least(steps, 0, "steps");
  api::require_at_least(batch, 0, "batch");
  if (steps * batch > 0) {
    api::require_pointer(x, "x");
    api::require_pointer(y, "y");
  }
  if (batch > 0) api::require_pointer(h_n, "h_n");
  driver::StepRows rows;
  rows.steps = steps;
  rows.batch = batch;
  driver::run_forward(*impl_->layer, rows, x, h0, y, h_n, cache);
}

template <typename Real>
void GruLayer<Real>::backward(std::int64_t steps, std::int64_t batch, const Real* x,
                              const Real* h0, const Real* y, const Real* cache, const Real* dy,
                              const Real* dh_n, Real* dx, Real* dh0,
                              const GradientsView<Real>& grads) const {
  api::require_at_least(steps, 0, "steps");
  api::require_at_least(batch, 0, "batch");
  if (steps * batch > 0) {
    for (auto [pointer, name] : {std::pair<const void*, const char*>{x, "x"},
                                 {y, "y"},
                                 {cache, "cache"},
                                 {dy, "dy"},
                                 {dx, "dx"},
                                 {grads.weight_ih, "grads.weight_ih"},
                                 {grads.weight_hh, "grads.weight_hh"}}) {
      api::require_pointer(pointer, name);
    }
  }
  api::require((grads.bias_ih == nullptr) == (grads.bias_hh == nullptr),
               "grads.bias_ih and grads.bias_hh must be both given or both null");
  driver::StepRows rows;
  rows.steps = steps;
  rows.batch = batch;
  driver::run_backward(*impl_->layer, rows, x, h0, y, cache, dy, dh_n, dx, dh0, grads);
}

template class GruLayer<float>;
template class GruLayer<double>;

}  // namespace fastgru
