// fastgru::Model: the embedding, the network, the dense head and the output scaling, computed as
// Python's Model computes them (python/fastgru/training/model.py).
#include "fastgru/model.h"

#include <algorithm>
#include <cmath>
#include <stdexcept>
#include <string>
#include <vector>

#include "api/model_impl.h"

namespace fastgru {
namespace {

void require(bool condition, const std::string& message) {
  if (!condition) throw std::invalid_argument("fastgru: " + message);
}

void require_pointer(const void* pointer, const char* name) {
  require(pointer != nullptr, std::string(name) + " must not be null");
}

}  // namespace

template <typename Real>
Model<Real>::Model(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
template <typename Real>
Model<Real>::~Model() = default;
template <typename Real>
Model<Real>::Model(Model&&) noexcept = default;
template <typename Real>
Model<Real>& Model<Real>::operator=(Model&&) noexcept = default;

template <typename Real>
const ModelConfig& Model<Real>::config() const {
  return impl_->config;
}

template <typename Real>
const Network<Real>& Model<Real>::network() const {
  return impl_->network;
}

template <typename Real>
std::int64_t Model<Real>::input_width() const {
  return impl_->config.vocab_size ? 1 : impl_->network.config().input;
}

namespace {

// The head on `rows` feature rows (rows, D·H): out (rows, K) = features · Wᵀ + b, then the
// output scaling or the softmax.
template <typename Real>
void apply_head(const typename Model<Real>::Impl& model, std::int64_t rows, const Real* features, Real* out,
                Outputs outputs) {
  const std::int64_t K = model.config.outputs;
  const std::int64_t width = static_cast<std::int64_t>(model.head_weight.size()) / K;
  for (std::int64_t r = 0; r < rows; ++r) {
    const Real* f = features + r * width;
    Real* o = out + r * K;
    for (std::int64_t k = 0; k < K; ++k) {
      const Real* w = model.head_weight.data() + k * width;
      Real sum = 0;
      for (std::int64_t j = 0; j < width; ++j) sum += w[j] * f[j];
      o[k] = sum + model.head_bias[static_cast<std::size_t>(k)];
    }
    if (outputs == Outputs::probabilities) {
      const Real largest = *std::max_element(o, o + K);
      double total = 0;
      for (std::int64_t k = 0; k < K; ++k) total += std::exp(static_cast<double>(o[k] - largest));
      for (std::int64_t k = 0; k < K; ++k) o[k] = static_cast<Real>(std::exp(static_cast<double>(o[k] - largest)) / total);
    } else if (!model.scale.empty()) {
      for (std::int64_t k = 0; k < K; ++k) o[k] = o[k] * model.scale[static_cast<std::size_t>(k)] + model.offset[static_cast<std::size_t>(k)];
    }
  }
}

template <typename Real>
void check_outputs(const typename Model<Real>::Impl& model, Outputs outputs) {
  require(outputs == Outputs::values || outputs == Outputs::probabilities,
          "outputs: expected Outputs::values (0) or Outputs::probabilities (1), got " +
              std::to_string(static_cast<int>(outputs)));
  require(outputs == Outputs::values || model.config.classifier,
          "outputs: probabilities are a classifier's (a cross_entropy model); this model is a regression");
}

// ids (count) looked up in the embedding: x (count, F). Every id is checked first.
template <typename Real>
std::vector<Real> embedded(const typename Model<Real>::Impl& model, std::int64_t count, const std::int64_t* ids,
                           const char* name) {
  require(model.config.vocab_size > 0, std::string(name) + ": this model takes real inputs, not token ids (it has no "
                                                           "embedding): use predict / step");
  const std::int64_t V = model.config.vocab_size, F = model.network.config().input;
  for (std::int64_t i = 0; i < count; ++i) {
    require(ids[i] >= 0 && ids[i] < V, std::string(name) + ": expected token ids in 0.." + std::to_string(V - 1) +
                                           " (vocab_size=" + std::to_string(V) + "), got " + std::to_string(ids[i]) +
                                           " at position " + std::to_string(i));
  }
  std::vector<Real> x(static_cast<std::size_t>(count * F));
  for (std::int64_t i = 0; i < count; ++i) {
    std::copy_n(model.embedding.begin() + ids[i] * F, F, x.begin() + i * F);
  }
  return x;
}

// Refuses a layout whose buffers, T·N·max(F, D·H, L·D·H, K) values, could not exist.
template <typename Real>
void check_layout(const typename Model<Real>::Impl& model, const SequenceLayout& layout) {
  constexpr std::int64_t kMaxElements = std::int64_t(1) << 60;
  const NetworkConfig& c = model.network.config();
  const std::int64_t T = layout.steps, N = layout.batch, DH = model.network.directions() * c.hidden;
  require(T >= 0 && N >= 0, "layout: expected steps >= 0 and batch >= 0, got " + std::to_string(T) + " and " +
                                std::to_string(N));
  const std::int64_t widest = std::max({c.input, DH, c.layers * DH, model.config.outputs});
  require(N <= kMaxElements / widest && T <= kMaxElements / std::max<std::int64_t>(1, N * widest),
          "layout: " + std::to_string(T) + " steps of " + std::to_string(N) + " rows are too many: the buffers "
          "would hold more than 2^60 values");
}

template <typename Real>
void predict_features(const typename Model<Real>::Impl& model, const SequenceLayout& layout, const Real* x, Real* out,
                      Outputs outputs) {
  const Network<Real>& network = model.network;
  const NetworkConfig& c = network.config();
  const std::int64_t T = layout.steps, N = layout.batch, D = network.directions(), H = c.hidden, DH = D * H;
  check_layout<Real>(model, layout);
  require(T >= 1 || N == 0, "layout: a head needs at least one step (steps >= 1), got steps 0 with batch " +
                                std::to_string(N));
  require_pointer(out, "out");
  if (N == 0) return;
  if (layout.lengths) {  // Python's Model predicts from one step at least (the network allows 0)
    for (std::int64_t b = 0; b < N; ++b) {
      require(layout.lengths[b] >= 1 && layout.lengths[b] <= T, "lengths[" + std::to_string(b) + "]: expected 1.." +
                                                                     std::to_string(T) + ", got " +
                                                                     std::to_string(layout.lengths[b]));
    }
  }
  std::vector<Real> y(static_cast<std::size_t>(T * N * network.output_width())), h_n(static_cast<std::size_t>(c.layers * D * N * H));
  network.forward(layout, x, nullptr, y.data(), h_n.data(), nullptr);
  const std::int64_t K = model.config.outputs;
  if (model.config.head == Head::last) {
    // each row's final states of the last layer, directions side by side
    std::vector<Real> features(static_cast<std::size_t>(N * DH));
    for (std::int64_t d = 0; d < D; ++d) {
      const Real* state = h_n.data() + ((c.layers - 1) * D + d) * N * H;
      for (std::int64_t b = 0; b < N; ++b) std::copy_n(state + b * H, H, features.begin() + b * DH + d * H);
    }
    apply_head<Real>(model, N, features.data(), out, outputs);
    return;
  }
  apply_head<Real>(model, T * N, y.data(), out, outputs);
  if (layout.lengths) {  // zero past each row's length, as Python's predict
    for (std::int64_t b = 0; b < N; ++b) {
      for (std::int64_t t = layout.lengths[b]; t < T; ++t) {
        Real* o = out + (layout.batch_first ? b * T + t : t * N + b) * K;
        std::fill(o, o + K, Real(0));
      }
    }
  }
}

template <typename Real>
void step_features(const typename Model<Real>::Impl& model, std::int64_t batch, const Real* x_t, Real* state, Real* out,
                   Outputs outputs) {
  const Network<Real>& network = model.network;
  const NetworkConfig& c = network.config();
  require(!c.bidirectional && !c.reverse, std::string("model: expected a forward-in-time network for streaming, got a ") +
                                             (c.reverse ? "reverse" : "bidirectional") +
                                             " one (it needs whole sequences: use predict)");
  require(batch >= 1 && batch <= (std::int64_t(1) << 60) / std::max(c.layers * c.hidden, model.config.outputs),
          "batch: expected >= 1 with buffers of at most 2^60 values, got " + std::to_string(batch));
  require_pointer(state, "state");
  require_pointer(out, "out");
  SequenceLayout one_step;
  one_step.steps = 1;
  one_step.batch = batch;
  std::vector<Real> y(static_cast<std::size_t>(batch * c.hidden)), next(static_cast<std::size_t>(c.layers * batch * c.hidden));
  network.forward(one_step, x_t, state, y.data(), next.data(), nullptr);
  std::copy(next.begin(), next.end(), state);
  apply_head<Real>(model, batch, y.data(), out, outputs);
}

}  // namespace

template <typename Real>
void Model<Real>::predict(const SequenceLayout& layout, const Real* x, Real* out, Outputs outputs) const {
  check_outputs<Real>(*impl_, outputs);
  require(impl_->config.vocab_size == 0, "x: this is a token model (an embedding of vocab_size " +
                                             std::to_string(impl_->config.vocab_size) + "): give ids to predict_ids");
  predict_features<Real>(*impl_, layout, x, out, outputs);
}

template <typename Real>
void Model<Real>::predict_ids(const SequenceLayout& layout, const std::int64_t* ids, Real* out, Outputs outputs) const {
  check_outputs<Real>(*impl_, outputs);
  check_layout<Real>(*impl_, layout);
  const std::int64_t count = layout.steps * layout.batch;
  if (count > 0) require_pointer(ids, "ids");
  const std::vector<Real> x = embedded<Real>(*impl_, count, ids, "ids");
  predict_features<Real>(*impl_, layout, x.data(), out, outputs);
}

template <typename Real>
void Model<Real>::step(std::int64_t batch, const Real* x_t, Real* state, Real* out, Outputs outputs) const {
  check_outputs<Real>(*impl_, outputs);
  require(impl_->config.vocab_size == 0, "x_t: this is a token model (an embedding of vocab_size " +
                                             std::to_string(impl_->config.vocab_size) + "): give ids to step_ids");
  require_pointer(x_t, "x_t");
  step_features<Real>(*impl_, batch, x_t, state, out, outputs);
}

template <typename Real>
void Model<Real>::step_ids(std::int64_t batch, const std::int64_t* ids, Real* state, Real* out, Outputs outputs) const {
  check_outputs<Real>(*impl_, outputs);
  require(batch >= 1 && batch <= (std::int64_t(1) << 60) / impl_->network.config().input,
          "batch: expected >= 1 with buffers of at most 2^60 values, got " + std::to_string(batch));
  require_pointer(ids, "ids");
  const std::vector<Real> x = embedded<Real>(*impl_, batch, ids, "ids");
  step_features<Real>(*impl_, batch, x.data(), state, out, outputs);
}

template class Model<float>;
template class Model<double>;

}  // namespace fastgru
