// Gru (the network): argument checks and weight ownership; the stacking lives in driver/.
#include <algorithm>
#include <atomic>
#include <cmath>
#include <numeric>
#include <optional>
#include <string>
#include <vector>

#include "api/checks.h"
#include "dispatch/kernel_table.h"
#include "driver/gru_stack.h"
#include "fastgru/gru.h"

namespace fastgru {

namespace {

// Identifies a Gru for the lifetime of the process (an address could be reused).
std::atomic<std::uint64_t> next_network_id{1};

}  // namespace

template <typename Real>
struct GruTrainingCache<Real>::Impl {
  driver::StackCache<Real> stack;
  std::int64_t steps = 0;   // T of that forward (an empty batch packs no steps)
  std::uint64_t owner = 0;  // the id of the Gru whose forward filled it
  bool filled = false;
  std::atomic<bool> in_use{false};
};

// Marks a cache as in use by one call; a second concurrent call gets a clear error instead of a
// data race on its buffers.
template <typename Real>
class CacheUse {
 public:
  explicit CacheUse(std::atomic<bool>& in_use) : in_use_(in_use) {
    api::require(!in_use_.exchange(true), "cache: in use by another forward or backward call");
  }
  ~CacheUse() { in_use_.store(false); }
  CacheUse(const CacheUse&) = delete;
  CacheUse& operator=(const CacheUse&) = delete;

 private:
  std::atomic<bool>& in_use_;
};

template <typename Real>
GruTrainingCache<Real>::GruTrainingCache() : impl_(std::make_unique<Impl>()) {}
template <typename Real>
GruTrainingCache<Real>::~GruTrainingCache() = default;
template <typename Real>
GruTrainingCache<Real>::GruTrainingCache(GruTrainingCache&&) noexcept = default;
template <typename Real>
GruTrainingCache<Real>& GruTrainingCache<Real>::operator=(GruTrainingCache&&) noexcept = default;
template <typename Real>
bool GruTrainingCache<Real>::filled() const {
  return impl_ && impl_->filled;
}

template <typename Real>
std::int64_t GruTrainingCache<Real>::steps() const {
  return filled() ? impl_->steps : 0;
}
template <typename Real>
std::int64_t GruTrainingCache<Real>::batch() const {
  return filled() ? impl_->stack.packing.batch : 0;
}
template <typename Real>
bool GruTrainingCache<Real>::batch_first() const {
  return filled() && impl_->stack.batch_first;
}

template <typename Real>
std::int64_t GruTrainingCache<Real>::normalised_rows() const {
  return filled() ? impl_->stack.packing.total_rows() : 0;
}

template <typename Real>
void GruTrainingCache<Real>::batch_statistics(std::int64_t index, Real* mean, Real* variance) const {
  api::require(filled() && !impl_->stack.batch_statistics.empty(),
               "cache: expected one filled by a LiGRU's training forward");
  const auto count = static_cast<std::int64_t>(impl_->stack.batch_statistics.size());
  api::require(index >= 0 && index < count, "batch_statistics: index expected in 0.." +
                                                std::to_string(count - 1) + ", got " +
                                                std::to_string(index));
  const std::int64_t G = 2 * impl_->stack.hidden;
  const Real* statistics = impl_->stack.batch_statistics[index].data();
  std::copy(statistics, statistics + G, mean);
  std::copy(statistics + G, statistics + 2 * G, variance);
}

template <typename Real>
struct Gru<Real>::Impl {
  GruConfig config;
  std::vector<driver::PackedLayer<Real>> layers;
  std::uint64_t id = next_network_id.fetch_add(1);
};

namespace {

// The MGU is the reset-before GRU with r = f and z = 1 − f = σ(−a_f): its weights with the row
// blocks f, n become the GRU's r = f, z = −f, n, which the GRU kernels then run exactly.
template <typename Real>
std::vector<Real> mgu_as_gru_rows(const Real* rows, std::int64_t hidden, std::int64_t width) {
  const std::int64_t block = hidden * width;
  std::vector<Real> out(static_cast<size_t>(3 * block));
  std::copy(rows, rows + block, out.begin());
  std::transform(rows, rows + block, out.begin() + block, [](Real v) { return -v; });
  std::copy(rows + block, rows + 2 * block, out.begin() + 2 * block);
  return out;
}

// Gradients of the GRU's r, z, n rows back to the MGU's f, n rows: d f = d r − d z.
template <typename Real>
void fold_gru_gradient(const std::vector<Real>& gru_rows, std::int64_t hidden, std::int64_t width,
                       Real* mgu_rows) {
  const std::int64_t block = hidden * width;
  for (std::int64_t i = 0; i < block; ++i) mgu_rows[i] += gru_rows[i] - gru_rows[block + i];
  for (std::int64_t i = 0; i < block; ++i) mgu_rows[block + i] += gru_rows[2 * block + i];
}

// A LiGRU layer: its weights, batch normalisation parameters and running statistics copied
// and packed (with inference's normalisation folded into the input weights).
template <typename Real>
driver::PackedLayer<Real> make_ligru_layer(std::int64_t input, const GruConfig& config,
                                           const GruWeightsView<Real>& w, const std::string& name) {
  const std::int64_t H = config.hidden, G = 2 * H;
  for (auto [pointer, member] : {std::pair<const Real*, const char*>{w.weight_ih, ".weight_ih"},
                                 {w.weight_hh, ".weight_hh"},
                                 {w.bn_weight, ".bn_weight"},
                                 {w.bn_bias, ".bn_bias"},
                                 {w.bn_running_mean, ".bn_running_mean"},
                                 {w.bn_running_var, ".bn_running_var"}}) {
    api::require_pointer(pointer, name + member);
  }
  for (std::int64_t c = 0; c < G; ++c) {
    api::require(w.bn_running_var[c] >= 0, name + ".bn_running_var: expected values >= 0, got " +
                                               std::to_string(w.bn_running_var[c]) + " at " +
                                               std::to_string(c));
  }
  driver::PackedLayer<Real> layer;
  layer.cell = Cell::ligru;
  layer.input = input;
  layer.hidden = H;
  layer.activation = static_cast<kernels::LigruActivation>(config.activation);
  layer.negative_slope = static_cast<Real>(config.negative_slope);
  layer.bn_eps = static_cast<Real>(config.bn_eps);
  layer.weight_ih.assign(w.weight_ih, w.weight_ih + G * input);
  layer.weight_hh.assign(w.weight_hh, w.weight_hh + G * H);
  layer.bn_weight.assign(w.bn_weight, w.bn_weight + G);
  layer.bn_bias.assign(w.bn_bias, w.bn_bias + G);
  layer.bn_running_mean.assign(w.bn_running_mean, w.bn_running_mean + G);
  layer.bn_running_var.assign(w.bn_running_var, w.bn_running_var + G);
  driver::pack_layer(dispatch::active_kernels<Real>(), layer);
  return layer;
}

static_assert(static_cast<int>(Activation::relu) == kernels::kRelu &&
                  static_cast<int>(Activation::tanh) == kernels::kTanh &&
                  static_cast<int>(Activation::leaky_relu) == kernels::kLeakyRelu,
              "the kernel tables index their LiGRU kernels by Activation");

}  // namespace

template <typename Real>
Gru<Real>::Gru(const GruConfig& config, const std::vector<GruWeightsView<Real>>& weights)
    : impl_(std::make_unique<Impl>()) {
  api::require_at_least(config.input, 1, "config.input");
  api::require_at_least(config.hidden, 1, "config.hidden");
  api::require_at_least(config.layers, 1, "config.layers");
  const std::int64_t D = config.bidirectional ? 2 : 1;
  api::require(static_cast<std::int64_t>(weights.size()) == config.layers * D,
               "weights: expected " + std::to_string(config.layers * D) +
                   " entries (layers x directions), got " + std::to_string(weights.size()));
  for (auto [rate, name] : {std::pair<double, const char*>{config.dropout, "config.dropout"},
                            {config.recurrent_dropout, "config.recurrent_dropout"},
                            {config.zoneout, "config.zoneout"}}) {
    api::require(rate >= 0 && rate < 1, std::string(name) + " must be a probability in [0, 1), got " +
                                            std::to_string(rate));
  }
  if (config.cell == Cell::ligru) {
    api::require(!config.bias, "config.bias: a LiGRU has no biases (batch normalisation's shift "
                               "replaces them), expected false, got true");
    const int activation = static_cast<int>(config.activation);
    api::require(activation >= 0 && activation < kernels::kLigruActivations,
                 "config.activation: expected relu, tanh or leaky_relu, got " + std::to_string(activation));
    api::require(std::isfinite(config.negative_slope) && config.negative_slope >= 0,
                 "config.negative_slope: expected a finite number >= 0, got " +
                     std::to_string(config.negative_slope));
    api::require(std::isfinite(config.bn_eps) && config.bn_eps > 0,
                 "config.bn_eps: expected a finite number > 0, got " + std::to_string(config.bn_eps));
  } else {
    api::require(config.cell == Cell::gru || config.cell == Cell::mgu,
                 "config.cell: expected gru, mgu or ligru, got " +
                     std::to_string(static_cast<int>(config.cell)));
  }
  impl_->config = config;
  for (std::int64_t l = 0; l < config.layers; ++l) {
    for (std::int64_t d = 0; d < D; ++d) {
      const GruWeightsView<Real>& w = weights[l * D + d];
      const std::string name = "weights[" + std::to_string(l * D + d) + "]";
      for (auto [bias, member] : {std::pair<const Real*, const char*>{w.bias_ih, ".bias_ih"},
                                  {w.bias_hh, ".bias_hh"}}) {
        api::require((bias != nullptr) == config.bias,
                     name + member + ": expected " + (config.bias ? "an array" : "null") +
                         " as config.bias is " + (config.bias ? "true" : "false") + ", got " +
                         (bias ? "an array" : "null"));
      }
      const std::int64_t input = l == 0 ? config.input : D * config.hidden;
      if (config.cell == Cell::ligru) {
        impl_->layers.push_back(make_ligru_layer(input, config, w, name));
        continue;
      }
      if (config.cell == Cell::gru) {
        impl_->layers.push_back(
            api::make_packed_layer<Real>({input, config.hidden}, config.mode, w, name));
        continue;
      }
      api::require_pointer(w.weight_ih, name + ".weight_ih");
      api::require_pointer(w.weight_hh, name + ".weight_hh");
      const std::int64_t H = config.hidden;
      const auto w_ih = mgu_as_gru_rows(w.weight_ih, H, input);
      const auto w_hh = mgu_as_gru_rows(w.weight_hh, H, H);
      std::vector<Real> b_ih, b_hh;
      GruWeightsView<Real> gru{w_ih.data(), w_hh.data(), nullptr, nullptr};
      if (config.bias) {
        b_ih = mgu_as_gru_rows(w.bias_ih, H, 1);
        b_hh = mgu_as_gru_rows(w.bias_hh, H, 1);
        gru.bias_ih = b_ih.data();
        gru.bias_hh = b_hh.data();
      }
      impl_->layers.push_back(
          api::make_packed_layer<Real>({input, H}, ResetMode::before, gru, name));
    }
  }
}

template <typename Real>
Gru<Real>::~Gru() = default;
template <typename Real>
Gru<Real>::Gru(Gru&&) noexcept = default;
template <typename Real>
Gru<Real>& Gru<Real>::operator=(Gru&&) noexcept = default;

template <typename Real>
const GruConfig& Gru<Real>::config() const {
  return impl_->config;
}

template <typename Real>
std::int64_t Gru<Real>::directions() const {
  return impl_->config.bidirectional ? 2 : 1;
}

template <typename Real>
void Gru<Real>::forward(const SequenceLayout& layout, const Real* x, const Real* h0, Real* y,
                        Real* h_n, GruTrainingCache<Real>* cache, std::uint64_t seed) const {
  const std::int64_t T = layout.steps, B = layout.batch;
  api::require_at_least(T, 0, "layout.steps");
  api::require_at_least(B, 0, "layout.batch");
  if (T * B > 0) {
    api::require_pointer(x, "x");
    api::require_pointer(y, "y");
  }
  if (B > 0) api::require_pointer(h_n, "h_n");
  if (layout.lengths) {
    for (std::int64_t b = 0; b < B; ++b) {
      const std::int64_t n = layout.lengths[b];
      api::require(n >= 1 && n <= T, "lengths[" + std::to_string(b) + "]: expected 1.." +
                                         std::to_string(T) + ", got " + std::to_string(n));
    }
  }
  if (cache && impl_->config.cell == Cell::ligru) {
    std::int64_t real_steps = T * B;
    if (layout.lengths) real_steps = std::accumulate(layout.lengths, layout.lengths + B, std::int64_t(0));
    api::require(real_steps >= 2, "x: a LiGRU's training forward normalises over the batch's real steps "
                                  "and needs at least 2 of them, got " + std::to_string(real_steps));
  }
  const GruConfig& c = impl_->config;
  if (!cache && T == 1 && B > 0 && !c.bidirectional) {
    // One step of a unidirectional network (streaming): its rows need no packing, lengths
    // being 1 everywhere (and checked above), and y, h_n have the same layout batch-first or not.
    driver::run_stack_step(impl_->layers, c.zoneout, B, x, h0, y, h_n);
    return;
  }
  driver::StackCache<Real>* stack = nullptr;
  std::optional<CacheUse<Real>> use;
  if (cache) {
    if (!cache->impl_) cache->impl_ = std::make_unique<typename GruTrainingCache<Real>::Impl>();
    use.emplace(cache->impl_->in_use);
    cache->impl_->filled = false;
    stack = &cache->impl_->stack;
  }
  driver::RegularisationRates rates;
  rates.dropout = c.dropout;
  rates.recurrent_dropout = c.recurrent_dropout;
  rates.zoneout = c.zoneout;
  rates.seed = seed;
  // An empty batch has nothing to compute at any step: packed as no steps, it costs nothing
  // however many steps it has.
  driver::run_stack_forward(impl_->layers, directions(), rates,
                            driver::pack_sequences(B > 0 ? T : 0, B, layout.lengths),
                            layout.batch_first, x, h0, y, h_n, stack);
  if (cache) {
    cache->impl_->steps = T;
    cache->impl_->owner = impl_->id;
    cache->impl_->filled = true;
  }
}

template <typename Real>
void Gru<Real>::backward(GruTrainingCache<Real>& cache, const Real* dy, const Real* dh_n,
                         Real* dx, Real* dh0,
                         const std::vector<GruGradientsView<Real>>& grads) const {
  api::require(cache.filled(),
               "cache: expected one filled by a training forward and not yet used by backward");
  CacheUse<Real> use(cache.impl_->in_use);
  api::require(cache.filled(), "cache: emptied by another call");
  api::require(cache.impl_->owner == impl_->id, "cache: filled by another Gru");
  const std::int64_t D = directions();
  api::require(static_cast<std::int64_t>(grads.size()) == impl_->config.layers * D,
               "grads: expected " + std::to_string(impl_->config.layers * D) + " entries, got " +
                   std::to_string(grads.size()));
  const driver::SequencePacking& p = cache.impl_->stack.packing;
  if (p.total_rows() > 0) {
    api::require_pointer(dy, "dy");
    api::require_pointer(dx, "dx");
  }
  for (size_t s = 0; s < grads.size(); ++s) {
    const std::string name = "grads[" + std::to_string(s) + "]";
    api::require_pointer(grads[s].weight_ih, name + ".weight_ih");
    api::require_pointer(grads[s].weight_hh, name + ".weight_hh");
    api::require((grads[s].bias_ih != nullptr) == (grads[s].bias_hh != nullptr),
                 name + ".bias_ih and .bias_hh must be both given or both null");
    if (impl_->config.cell == Cell::ligru) {
      api::require_pointer(grads[s].bn_weight, name + ".bn_weight");
      api::require_pointer(grads[s].bn_bias, name + ".bn_bias");
      api::require(grads[s].bias_ih == nullptr, name + ": a LiGRU has no bias gradients, expected null");
    }
  }
  if (impl_->config.cell != Cell::mgu) {
    driver::run_stack_backward(impl_->layers, D, cache.impl_->stack, dy, dh_n, dx, dh0, grads);
  } else {
    // The equivalent GRU's gradients, folded back onto the MGU's rows.
    const std::int64_t H = impl_->config.hidden;
    std::vector<std::vector<Real>> parts(grads.size() * 4);
    std::vector<GruGradientsView<Real>> gru_grads(grads.size());
    for (size_t s = 0; s < grads.size(); ++s) {
      const std::int64_t input = impl_->layers[s].input;
      std::int64_t widths[4] = {input, H, 1, 1};
      Real** views[4] = {&gru_grads[s].weight_ih, &gru_grads[s].weight_hh, &gru_grads[s].bias_ih,
                         &gru_grads[s].bias_hh};
      for (int k = 0; k < 4; ++k) {
        if (k >= 2 && !grads[s].bias_ih) continue;
        parts[s * 4 + k].assign(static_cast<size_t>(3 * H * widths[k]), Real(0));
        *views[k] = parts[s * 4 + k].data();
      }
    }
    driver::run_stack_backward(impl_->layers, D, cache.impl_->stack, dy, dh_n, dx, dh0, gru_grads);
    for (size_t s = 0; s < grads.size(); ++s) {
      const std::int64_t input = impl_->layers[s].input;
      fold_gru_gradient(parts[s * 4], H, input, grads[s].weight_ih);
      fold_gru_gradient(parts[s * 4 + 1], H, H, grads[s].weight_hh);
      if (grads[s].bias_ih) {
        fold_gru_gradient(parts[s * 4 + 2], H, 1, grads[s].bias_ih);
        fold_gru_gradient(parts[s * 4 + 3], H, 1, grads[s].bias_hh);
      }
    }
  }
  // Its buffers stay allocated for the next training forward.
  cache.impl_->filled = false;
}

template class GruTrainingCache<float>;
template class GruTrainingCache<double>;
template class Gru<float>;
template class Gru<double>;

}  // namespace fastgru
