// GruLayer: argument checks and weight ownership; the time loops live in driver/.
#include <string>
#include <vector>

#include "api/checks.h"
#include "dispatch/kernel_table.h"
#include "driver/layer.h"
#include "fastgru/gru.h"

namespace fastgru {
namespace api {

template <typename Real>
driver::PackedLayer<Real> make_packed_layer(GruLayerSizes sizes, ResetMode mode,
                                            const GruWeightsView<Real>& w,
                                            const std::string& name) {
  require_at_least(sizes.input, 1, "input size");
  require_at_least(sizes.hidden, 1, "hidden size");
  require(mode == ResetMode::after || mode == ResetMode::before,
          "reset mode must be ResetMode::after or ResetMode::before");
  require_pointer(w.weight_ih, name + ".weight_ih");
  require_pointer(w.weight_hh, name + ".weight_hh");
  require((w.bias_ih == nullptr) == (w.bias_hh == nullptr),
          name + ".bias_ih and " + name + ".bias_hh must be both given or both null");
  const std::int64_t G = 3 * sizes.hidden;
  auto copy_of = [](const Real* data, std::int64_t count) {
    return data ? std::vector<Real>(data, data + count) : std::vector<Real>();
  };
  driver::PackedLayer<Real> layer;
  layer.input = sizes.input;
  layer.hidden = sizes.hidden;
  layer.mode = mode;
  layer.weight_ih = copy_of(w.weight_ih, G * sizes.input);
  layer.weight_hh = copy_of(w.weight_hh, G * sizes.hidden);
  layer.bias_ih = copy_of(w.bias_ih, G);
  layer.bias_hh = copy_of(w.bias_hh, G);
  driver::pack_layer(dispatch::active_kernels<Real>(), layer);
  return layer;
}

template driver::PackedLayer<float> make_packed_layer<float>(GruLayerSizes, ResetMode,
                                                             const GruWeightsView<float>&,
                                                             const std::string&);
template driver::PackedLayer<double> make_packed_layer<double>(GruLayerSizes, ResetMode,
                                                               const GruWeightsView<double>&,
                                                               const std::string&);

}  // namespace api

std::int64_t training_cache_size(std::int64_t steps, std::int64_t batch, std::int64_t hidden) {
  return steps * batch * 4 * hidden;
}

template <typename Real>
struct GruLayer<Real>::Impl {
  driver::PackedLayer<Real> layer;
};

template <typename Real>
GruLayer<Real>::GruLayer(GruLayerSizes sizes, ResetMode mode, const GruWeightsView<Real>& w)
    : impl_(std::make_unique<Impl>(Impl{api::make_packed_layer(sizes, mode, w, "weights")})) {}

template <typename Real>
GruLayer<Real>::~GruLayer() = default;
template <typename Real>
GruLayer<Real>::GruLayer(GruLayer&&) noexcept = default;
template <typename Real>
GruLayer<Real>& GruLayer<Real>::operator=(GruLayer&&) noexcept = default;

template <typename Real>
GruLayerSizes GruLayer<Real>::sizes() const {
  return {impl_->layer.input, impl_->layer.hidden};
}

template <typename Real>
ResetMode GruLayer<Real>::reset_mode() const {
  return impl_->layer.mode;
}

template <typename Real>
bool GruLayer<Real>::has_bias() const {
  return !impl_->layer.bias_ih.empty();
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
  driver::run_forward(impl_->layer, rows, x, h0, y, h_n, cache);
}

template <typename Real>
void GruLayer<Real>::backward(std::int64_t steps, std::int64_t batch, const Real* x,
                              const Real* h0, const Real* y, const Real* cache, const Real* dy,
                              const Real* dh_n, Real* dx, Real* dh0,
                              const GruGradientsView<Real>& grads) const {
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
  driver::run_backward(impl_->layer, rows, x, h0, y, cache, dy, dh_n, dx, dh0, grads);
}

template class GruLayer<float>;
template class GruLayer<double>;

}  // namespace fastgru
