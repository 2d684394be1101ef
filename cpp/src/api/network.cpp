// Network (the network of any cell): argument checks and weight ownership; the cells live in
// cells/, the stacking in driver/.
#include <algorithm>
#include <atomic>
#include <cmath>
#include <numeric>
#include <optional>
#include <string>
#include <type_traits>
#include <vector>

#include "api/checks.h"
#include "cells/cell_table.h"
#include "dispatch/kernel_table.h"
#include "driver/stack.h"
#include "fastgru/network.h"

namespace fastgru {

namespace {

// Identifies a Network for the lifetime of the process (an address could be reused).
std::atomic<std::uint64_t> next_network_id{1};

}  // namespace

template <typename Real>
struct TrainingCache<Real>::Impl {
  driver::StackCache<Real> stack;
  // A merging bidirectional network's outputs before the merge, (rows, 2H): what the product's
  // gradient reads.
  std::vector<Real> unmerged;
  // The caller's batch, and the rows of it that had steps when some had none (empty: all had):
  // the stack ran on those rows alone.
  std::int64_t batch = 0;
  std::vector<std::int64_t> rows_with_steps;
  std::int64_t steps = 0;   // T of that forward (an empty batch packs no steps)
  std::uint64_t owner = 0;  // the id of the Network whose forward filled it
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
TrainingCache<Real>::TrainingCache() : impl_(std::make_unique<Impl>()) {}
template <typename Real>
TrainingCache<Real>::~TrainingCache() = default;
template <typename Real>
TrainingCache<Real>::TrainingCache(TrainingCache&&) noexcept = default;
template <typename Real>
TrainingCache<Real>& TrainingCache<Real>::operator=(TrainingCache&&) noexcept = default;
template <typename Real>
bool TrainingCache<Real>::filled() const {
  return impl_ && impl_->filled;
}

template <typename Real>
std::int64_t TrainingCache<Real>::steps() const {
  return filled() ? impl_->steps : 0;
}
template <typename Real>
std::int64_t TrainingCache<Real>::batch() const {
  return filled() ? impl_->batch : 0;
}
template <typename Real>
bool TrainingCache<Real>::batch_first() const {
  return filled() && impl_->stack.batch_first;
}

template <typename Real>
std::int64_t TrainingCache<Real>::normalised_rows() const {
  return filled() ? impl_->stack.packing.total_rows() : 0;
}

template <typename Real>
void TrainingCache<Real>::batch_statistics(std::int64_t index, Real* mean, Real* variance) const {
  api::require(filled() && !impl_->stack.batch_statistics.empty(),
               "cache: expected one filled by the training forward of a cell that normalises its "
               "input projections");
  const auto count = static_cast<std::int64_t>(impl_->stack.batch_statistics.size());
  api::require(index >= 0 && index < count, "batch_statistics: index expected in 0.." +
                                                std::to_string(count - 1) + ", got " +
                                                std::to_string(index));
  const std::int64_t G = impl_->stack.statistics_columns;
  const Real* statistics = impl_->stack.batch_statistics[index].data();
  std::copy(statistics, statistics + G, mean);
  std::copy(statistics + G, statistics + 2 * G, variance);
}

template <typename Real>
struct Network<Real>::Impl {
  NetworkConfig config;
  const cells::CellDescription* cell = nullptr;
  cells::CellLayers<Real> layers;
  std::uint64_t id = next_network_id.fetch_add(1);
};

template <typename Real>
Network<Real>::Network(const NetworkConfig& config, const std::vector<WeightsView<Real>>& weights)
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
  const int merge = static_cast<int>(config.merge);
  api::require(merge >= 0 && merge <= static_cast<int>(MergeMode::average),
               "config.merge: expected MergeMode::concat, sum, mul or average, got " + std::to_string(merge));
  api::require(config.merge == MergeMode::concat || config.bidirectional,
               "config.merge: only a bidirectional network has two directions to merge; expected "
               "MergeMode::concat with bidirectional = false");
  api::require(!(config.reverse && config.bidirectional),
               "config.reverse: a bidirectional network runs both directions already; expected "
               "reverse = false with bidirectional = true");
  const cells::CellDescription& cell = cells::describe(config.cell);
  if (cell.check_config) cell.check_config(config);
  api::require(config.gates == GateTerms::full || cell.has_option("gates"),
               "config.gates: the " + cell.class_name + " has no other form of its gates than " +
                   "GateTerms::full, got " + std::to_string(static_cast<int>(config.gates)));
  api::require(config.clip == std::numeric_limits<double>::infinity() || cell.has_option("clip"),
               "config.clip: the " + cell.class_name + " clips nothing; expected infinity (none), got " +
                   api::printed(config.clip));
  const int precision = static_cast<int>(config.precision);
  api::require(precision >= 0 && precision <= static_cast<int>(Precision::int8),
               "config.precision: expected Precision::full, bf16 or int8, got " + std::to_string(precision));
  if (config.precision != Precision::full) {
    api::require(std::is_same_v<Real, float>,
                 "config.precision: bf16 and int8 networks compute in float32; expected Precision::full "
                 "for a float64 network");
  }
  impl_->config = config;
  impl_->cell = &cell;
  for (std::int64_t l = 0; l < config.layers; ++l) {
    for (std::int64_t d = 0; d < D; ++d) {
      const WeightsView<Real>& w = weights[l * D + d];
      const std::string name = "weights[" + std::to_string(l * D + d) + "]";
      for (auto [bias, member] : {std::pair<const Real*, const char*>{w.bias_ih, ".bias_ih"},
                                  {w.bias_hh, ".bias_hh"}}) {
        api::require((bias != nullptr) == config.bias,
                     name + member + ": expected " + (config.bias ? "an array" : "null") +
                         " as config.bias is " + (config.bias ? "true" : "false") + ", got " +
                         (bias ? "an array" : "null"));
      }
      api::require_pointer(w.weight_ih, name + ".weight_ih");
      api::require_pointer(w.weight_hh, name + ".weight_hh");
      const std::int64_t input = l == 0 ? config.input : D * config.hidden;
      impl_->layers.push_back(
          cell.factory<Real>()(dispatch::active_kernels<Real>(), input, config, w, name));
    }
  }
}

template <typename Real>
Network<Real>::~Network() = default;
template <typename Real>
Network<Real>::Network(Network&&) noexcept = default;
template <typename Real>
Network<Real>& Network<Real>::operator=(Network&&) noexcept = default;

template <typename Real>
const NetworkConfig& Network<Real>::config() const {
  return impl_->config;
}

template <typename Real>
std::int64_t Network<Real>::directions() const {
  return impl_->config.bidirectional ? 2 : 1;
}

template <typename Real>
std::int64_t Network<Real>::output_width() const {
  const NetworkConfig& c = impl_->config;
  return c.merge == MergeMode::concat ? directions() * c.hidden : c.hidden;
}

namespace {

// y (rows, H) from the two directions' outputs side by side, (rows, 2H).
template <typename Real>
void merge_directions(MergeMode merge, std::int64_t rows, std::int64_t hidden, const Real* both,
                      Real* y) {
  for (std::int64_t r = 0; r < rows; ++r) {
    const Real* forward = both + r * 2 * hidden;
    const Real* backward = forward + hidden;
    Real* out = y + r * hidden;
    for (std::int64_t u = 0; u < hidden; ++u) {
      out[u] = merge == MergeMode::sum   ? forward[u] + backward[u]
               : merge == MergeMode::mul ? forward[u] * backward[u]
                                         : (forward[u] + backward[u]) * Real(0.5);
    }
  }
}

// dL/d(both directions' outputs), (rows, 2H), from dL/dy (rows, H).
template <typename Real>
void unmerge_gradient(MergeMode merge, std::int64_t rows, std::int64_t hidden, const Real* both,
                      const Real* dy, Real* d_both) {
  for (std::int64_t r = 0; r < rows; ++r) {
    const Real* d = dy + r * hidden;
    Real* d_forward = d_both + r * 2 * hidden;
    Real* d_backward = d_forward + hidden;
    for (std::int64_t u = 0; u < hidden; ++u) {
      if (merge == MergeMode::mul) {
        d_forward[u] = d[u] * both[r * 2 * hidden + hidden + u];
        d_backward[u] = d[u] * both[r * 2 * hidden + u];
      } else {
        d_forward[u] = d_backward[u] = merge == MergeMode::sum ? d[u] : d[u] * Real(0.5);
      }
    }
  }
}


// Rows of a batch that have no steps (length 0, which ONNX Runtime accepts): the network runs on
// the other rows alone; those get zero outputs, their final states are their initial ones, and
// in backward dL/dh0 = dL/dh_n and dL/dx = 0 for them.
template <typename Real>
struct RowSubset {
  const std::vector<std::int64_t>& rows;  // the caller's rows kept, in order
  std::int64_t steps, batch, width;       // T, the caller's B, features per step
  bool batch_first;

  // The kept rows of a (T, B, width) or (B, T, width) array, laid out the same way.
  std::vector<Real> gather(const Real* all) const {
    const std::int64_t K = static_cast<std::int64_t>(rows.size());
    std::vector<Real> out(static_cast<std::size_t>(steps * K * width));
    for (std::int64_t k = 0; k < K; ++k)
      for (std::int64_t t = 0; t < steps; ++t)
        std::copy_n(all + offset(t, rows[k], batch), width, out.data() + offset(t, k, K));
    return out;
  }
  // `kept` (its rows) into `all`, zeros in the other rows.
  void scatter(const Real* kept, Real* all) const {
    std::fill(all, all + steps * batch * width, Real(0));
    const std::int64_t K = static_cast<std::int64_t>(rows.size());
    for (std::int64_t k = 0; k < K; ++k)
      for (std::int64_t t = 0; t < steps; ++t)
        std::copy_n(kept + offset(t, k, K), width, all + offset(t, rows[k], batch));
  }
  std::int64_t offset(std::int64_t t, std::int64_t b, std::int64_t rows_in) const {
    return (batch_first ? b * steps + t : t * rows_in + b) * width;
  }
};

// The kept rows of (L·D, B, H) states.
template <typename Real>
std::vector<Real> gather_state_rows(const std::vector<std::int64_t>& rows, std::int64_t states,
                                    std::int64_t batch, std::int64_t hidden, const Real* all) {
  const std::int64_t K = static_cast<std::int64_t>(rows.size());
  std::vector<Real> out(static_cast<std::size_t>(states * K * hidden));
  for (std::int64_t s = 0; s < states; ++s)
    for (std::int64_t k = 0; k < K; ++k)
      std::copy_n(all + (s * batch + rows[k]) * hidden, hidden, out.data() + (s * K + k) * hidden);
  return out;
}

// (L·D, B, H) states: the kept rows from `kept`, the others from `others` (or zeros).
template <typename Real>
void scatter_state_rows(const std::vector<std::int64_t>& rows, std::int64_t states,
                        std::int64_t batch, std::int64_t hidden, const Real* kept,
                        const Real* others, Real* all) {
  const std::int64_t K = static_cast<std::int64_t>(rows.size());
  if (others) {
    std::copy_n(others, states * batch * hidden, all);
  } else {
    std::fill(all, all + states * batch * hidden, Real(0));
  }
  for (std::int64_t s = 0; s < states; ++s)
    for (std::int64_t k = 0; k < K; ++k)
      std::copy_n(kept + (s * K + k) * hidden, hidden, all + (s * batch + rows[k]) * hidden);
}

}  // namespace

template <typename Real>
void Network<Real>::forward_rows_with_steps(const std::vector<std::int64_t>& rows,
                                            const SequenceLayout& layout, const Real* x,
                                            const Real* h0, Real* y, Real* h_n,
                                            TrainingCache<Real>* cache, std::uint64_t seed) const {
  const Network& network = *this;
  const NetworkConfig& c = network.config();
  const std::int64_t T = layout.steps, B = layout.batch, K = static_cast<std::int64_t>(rows.size());
  const std::int64_t states = c.layers * network.directions(), H = c.hidden, W = network.output_width();
  const RowSubset<Real> inputs{rows, T, B, c.input, layout.batch_first};
  const RowSubset<Real> outputs{rows, T, B, W, layout.batch_first};
  const std::vector<Real> x_kept = inputs.gather(x);
  const std::vector<Real> h0_kept = h0 ? gather_state_rows(rows, states, B, H, h0) : std::vector<Real>();
  std::vector<std::int64_t> lengths(static_cast<std::size_t>(K));
  for (std::int64_t k = 0; k < K; ++k) lengths[k] = layout.lengths[rows[k]];
  std::vector<Real> y_kept(static_cast<std::size_t>(T * K * W)), h_n_kept(static_cast<std::size_t>(states * K * H));
  SequenceLayout kept = layout;
  kept.batch = K;
  kept.lengths = lengths.data();
  network.forward(kept, x_kept.data(), h0 ? h0_kept.data() : nullptr, y_kept.data(), h_n_kept.data(), cache,
                  seed);
  outputs.scatter(y_kept.data(), y);
  scatter_state_rows(rows, states, B, H, h_n_kept.data(), h0, h_n);
  if (cache) {
    cache->impl_->batch = B;
    cache->impl_->rows_with_steps = rows;
  }
}

template <typename Real>
void Network<Real>::backward_rows_with_steps(TrainingCache<Real>& cache, const Real* dy,
                                             const Real* dh_n, Real* dx, Real* dh0,
                                             const std::vector<GradientsView<Real>>& grads) const {
  const Network& network = *this;
  const NetworkConfig& c = network.config();
  typename TrainingCache<Real>::Impl& impl = *cache.impl_;
  const std::vector<std::int64_t> rows = impl.rows_with_steps;
  const std::int64_t T = impl.steps, B = impl.batch, K = static_cast<std::int64_t>(rows.size());
  const std::int64_t states = c.layers * network.directions(), H = c.hidden;
  const bool batch_first = impl.stack.batch_first;
  api::require_pointer(dy, "dy");
  api::require_pointer(dx, "dx");
  const RowSubset<Real> inputs{rows, T, B, c.input, batch_first};
  const RowSubset<Real> outputs{rows, T, B, network.output_width(), batch_first};
  const std::vector<Real> dy_kept = outputs.gather(dy);
  const std::vector<Real> dh_n_kept = dh_n ? gather_state_rows(rows, states, B, H, dh_n) : std::vector<Real>();
  std::vector<Real> dx_kept(static_cast<std::size_t>(T * K * c.input)), dh0_kept(static_cast<std::size_t>(states * K * H));
  // From here the cache holds the kept rows' forward, as a forward on them alone leaves it.
  impl.batch = K;
  impl.rows_with_steps.clear();
  network.backward(cache, dy_kept.data(), dh_n ? dh_n_kept.data() : nullptr, dx_kept.data(), dh0_kept.data(),
                   grads);
  inputs.scatter(dx_kept.data(), dx);
  if (dh0) scatter_state_rows(rows, states, B, H, dh0_kept.data(), dh_n, dh0);
}

namespace {
}  // namespace

template <typename Real>
void Network<Real>::forward(const SequenceLayout& layout, const Real* x, const Real* h0, Real* y,
                        Real* h_n, TrainingCache<Real>* cache, std::uint64_t seed) const {
  const std::int64_t T = layout.steps, B = layout.batch;
  api::require_at_least(T, 0, "layout.steps");
  api::require_at_least(B, 0, "layout.batch");
  if (T * B > 0) {
    api::require_pointer(x, "x");
    api::require_pointer(y, "y");
  }
  if (B > 0) api::require_pointer(h_n, "h_n");
  api::require(!(layout.mask && cache && impl_->cell->normalises_inputs),
               "layout.mask: a " + impl_->cell->class_name + "'s training forward normalises over the "
               "batch's real steps, which a mask does not say; give lengths instead");
  api::require(!cache || impl_->config.precision == Precision::full,
               "cache: a bf16 or int8 network runs inference only; train the float32 network, then "
               "quantize it");
  api::require(!(layout.mask && layout.lengths),
               "layout.mask: expected lengths or a mask, not both (a mask covers what lengths say)");
  std::vector<std::int64_t> rows_with_steps;
  if (layout.lengths) {
    for (std::int64_t b = 0; b < B; ++b) {
      const std::int64_t n = layout.lengths[b];
      api::require(n >= 0 && n <= T, "lengths[" + std::to_string(b) + "]: expected 0.." +
                                         std::to_string(T) + ", got " + std::to_string(n));
      if (n > 0) rows_with_steps.push_back(b);
    }
  }
  if (layout.lengths && static_cast<std::int64_t>(rows_with_steps.size()) < B) {
    forward_rows_with_steps(rows_with_steps, layout, x, h0, y, h_n, cache, seed);
    return;
  }
  if (cache && impl_->cell->normalises_inputs) {
    std::int64_t real_steps = T * B;
    if (layout.lengths) real_steps = std::accumulate(layout.lengths, layout.lengths + B, std::int64_t(0));
    api::require(real_steps >= 2, "x: a " + impl_->cell->class_name +
                                      "'s training forward normalises over the batch's real steps "
                                      "and needs at least 2 of them, got " +
                                      std::to_string(real_steps));
  }
  const NetworkConfig& c = impl_->config;
  // (A reverse network's one step is the same step.)
  if (!cache && T == 1 && B > 0 && !c.bidirectional && !layout.mask) {
    // One step of a unidirectional network (streaming): its rows need no packing, lengths
    // being 1 everywhere (and checked above), and y, h_n have the same layout batch-first or not.
    driver::run_stack_step(impl_->layers, c.zoneout, B, x, h0, y, h_n);
    return;
  }
  driver::StackCache<Real>* stack = nullptr;
  std::optional<CacheUse<Real>> use;
  if (cache) {
    if (!cache->impl_) cache->impl_ = std::make_unique<typename TrainingCache<Real>::Impl>();
    use.emplace(cache->impl_->in_use);
    cache->impl_->filled = false;
    stack = &cache->impl_->stack;
  }
  driver::RegularisationRates rates;
  rates.dropout = c.dropout;
  rates.recurrent_dropout = c.recurrent_dropout;
  rates.zoneout = c.zoneout;
  rates.seed = seed;
  rates.mask = B > 0 && T > 0 ? layout.mask : nullptr;
  // A merging network's stack writes both directions, merged into y after it.
  const bool merged = c.merge != MergeMode::concat;
  std::vector<Real> local_unmerged;
  std::vector<Real>& unmerged = cache ? cache->impl_->unmerged : local_unmerged;
  if (merged) unmerged.resize(static_cast<std::size_t>(T * B * 2 * c.hidden));
  // An empty batch has nothing to compute at any step: packed as no steps, it costs nothing
  // however many steps it has.
  driver::run_stack_forward(impl_->layers, driver::Directions{directions(), c.reverse}, rates,
                            driver::pack_sequences(B > 0 ? T : 0, B, layout.lengths),
                            layout.batch_first, x, h0, merged ? unmerged.data() : y, h_n, stack);
  if (merged) merge_directions(c.merge, T * B, c.hidden, unmerged.data(), y);
  if (cache) {
    cache->impl_->steps = T;
    cache->impl_->batch = B;
    cache->impl_->rows_with_steps.clear();
    cache->impl_->owner = impl_->id;
    cache->impl_->filled = true;
  }
}

template <typename Real>
void Network<Real>::backward(TrainingCache<Real>& cache, const Real* dy, const Real* dh_n,
                         Real* dx, Real* dh0,
                         const std::vector<GradientsView<Real>>& grads) const {
  api::require(cache.filled(),
               "cache: expected one filled by a training forward and not yet used by backward");
  if (!cache.impl_->rows_with_steps.empty() || cache.impl_->batch != cache.impl_->stack.packing.batch) {
    backward_rows_with_steps(cache, dy, dh_n, dx, dh0, grads);
    return;
  }
  CacheUse<Real> use(cache.impl_->in_use);
  api::require(cache.filled(), "cache: emptied by another call");
  api::require(cache.impl_->owner == impl_->id, "cache: filled by another Network");
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
    if (impl_->cell->normalises_inputs) {
      api::require_pointer(grads[s].bn_weight, name + ".bn_weight");
      api::require_pointer(grads[s].bn_bias, name + ".bn_bias");
    }
    if (!impl_->cell->has_bias_option) {
      api::require(grads[s].bias_ih == nullptr,
                   name + ": a " + impl_->cell->class_name + " has no bias gradients, expected null");
    }
  }
  const NetworkConfig& c = impl_->config;
  std::vector<Real> d_unmerged;
  if (c.merge != MergeMode::concat) {
    const std::int64_t rows = cache.impl_->steps * cache.impl_->stack.packing.batch;
    d_unmerged.resize(static_cast<std::size_t>(rows * 2 * c.hidden));
    if (rows > 0) unmerge_gradient(c.merge, rows, c.hidden, cache.impl_->unmerged.data(), dy, d_unmerged.data());
    dy = d_unmerged.data();
  }
  driver::run_stack_backward(impl_->layers, driver::Directions{D, c.reverse}, cache.impl_->stack,
                             dy, dh_n, dx, dh0, grads);
  // Its buffers stay allocated for the next training forward.
  cache.impl_->filled = false;
}

template class TrainingCache<float>;
template class TrainingCache<double>;
template class Network<float>;
template class Network<double>;

}  // namespace fastgru
