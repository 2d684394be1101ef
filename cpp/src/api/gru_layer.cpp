// GruLayer: argument checks and weight ownership; the time loops live in driver/.
#include <stdexcept>
#include <string>
#include <vector>

#include "dispatch/kernel_table.h"
#include "driver/layer.h"
#include "fastgru/gru.h"

namespace fastgru {
namespace {

void require(bool condition, const std::string& message) {
  if (!condition) throw std::invalid_argument(message);
}

void require_pointer(const void* pointer, const char* name) {
  require(pointer != nullptr, std::string("fastgru: ") + name + " must not be null");
}

void require_non_negative(std::int64_t value, const char* name) {
  require(value >= 0,
          std::string("fastgru: ") + name + " must be >= 0, got " + std::to_string(value));
}

template <typename Real>
std::vector<Real> copy_of(const Real* data, std::int64_t count) {
  return data ? std::vector<Real>(data, data + count) : std::vector<Real>();
}

}  // namespace

std::int64_t training_cache_size(std::int64_t steps, std::int64_t batch, std::int64_t hidden) {
  return steps * batch * 4 * hidden;
}

template <typename Real>
struct GruLayer<Real>::Impl {
  driver::PackedLayer<Real> layer;
};

template <typename Real>
GruLayer<Real>::GruLayer(GruLayerSizes sizes, ResetMode mode, const GruWeightsView<Real>& w) {
  require(sizes.input >= 1,
          "fastgru: input size must be >= 1, got " + std::to_string(sizes.input));
  require(sizes.hidden >= 1,
          "fastgru: hidden size must be >= 1, got " + std::to_string(sizes.hidden));
  require(mode == ResetMode::after || mode == ResetMode::before,
          "fastgru: reset mode must be ResetMode::after or ResetMode::before");
  require_pointer(w.weight_ih, "weight_ih");
  require_pointer(w.weight_hh, "weight_hh");
  require((w.bias_ih == nullptr) == (w.bias_hh == nullptr),
          "fastgru: bias_ih and bias_hh must be both given or both null");
  const std::int64_t G = 3 * sizes.hidden;
  impl_ = std::make_unique<Impl>();
  driver::PackedLayer<Real>& layer = impl_->layer;
  layer.input = sizes.input;
  layer.hidden = sizes.hidden;
  layer.mode = mode;
  layer.weight_ih = copy_of(w.weight_ih, G * sizes.input);
  layer.weight_hh = copy_of(w.weight_hh, G * sizes.hidden);
  layer.bias_ih = copy_of(w.bias_ih, G);
  layer.bias_hh = copy_of(w.bias_hh, G);
  driver::pack_layer(dispatch::active_kernels<Real>(), layer);
}

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
  require_non_negative(steps, "steps");
  require_non_negative(batch, "batch");
  if (steps * batch > 0) {
    require_pointer(x, "x");
    require_pointer(y, "y");
  }
  if (batch > 0) require_pointer(h_n, "h_n");
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
  require_non_negative(steps, "steps");
  require_non_negative(batch, "batch");
  if (steps * batch > 0) {
    for (auto [pointer, name] : {std::pair<const void*, const char*>{x, "x"},
                                 {y, "y"},
                                 {cache, "cache"},
                                 {dy, "dy"},
                                 {dx, "dx"},
                                 {grads.weight_ih, "grads.weight_ih"},
                                 {grads.weight_hh, "grads.weight_hh"}}) {
      require_pointer(pointer, name);
    }
  }
  require((grads.bias_ih == nullptr) == (grads.bias_hh == nullptr),
          "fastgru: grads.bias_ih and grads.bias_hh must be both given or both null");
  driver::StepRows rows;
  rows.steps = steps;
  rows.batch = batch;
  driver::run_backward(impl_->layer, rows, x, h0, y, cache, dy, dh_n, dx, dh0, grads);
}

template class GruLayer<float>;
template class GruLayer<double>;

}  // namespace fastgru
