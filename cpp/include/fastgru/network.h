// fastgru public C++ API: networks of any cell (Network: layers, directions, lengths,
// regularisation) and one GRU layer and direction (GruLayer), forward and backpropagation through
// time.
//
// Shape letters used in every comment below:
//   T  steps of the sequence          B  batch rows
//   I  input features                 H  hidden units
//   G  gates (3 for the GRU: r, z, n, in that order, PyTorch's)
//   L  stacked layers                 D  directions (2 when bidirectional)
// Arrays are dense and row-major, the last index fastest: "(T, B, I)" means element
// [t][b][i] lives at offset (t * B + b) * I + i. The equations are those of EQUATIONS.md (in the source tree).
//
// This header includes only the standard library.
#pragma once

#include <cstdint>
#include <limits>
#include <memory>
#include <vector>

namespace fastgru {

// Where the reset gate acts on the candidate (EQUATIONS.md §1 and §2).
enum class ResetMode : int {
  // n = tanh(W_in x + b_in + r ⊙ (W_hn h + b_hn)): PyTorch, cuDNN, Keras reset_after=True,
  // ONNX linear_before_reset=1.
  after = 0,
  // n = tanh(W_in x + b_in + W_hn (r ⊙ h) + b_hn): Cho et al. 2014, Keras reset_after=False,
  // ONNX linear_before_reset=0.
  before = 1,
};

// Sizes of one layer.
struct GruLayerSizes {
  std::int64_t input;   // I >= 1
  std::int64_t hidden;  // H >= 1
};

// Borrowed weights in PyTorch's layout (EQUATIONS.md §3). Read only during the call that takes them.
template <typename Real>
struct WeightsView {
  const Real* weight_ih = nullptr;  // (3H, I), row blocks r, z, n
  const Real* weight_hh = nullptr;  // (3H, H), row blocks r, z, n
  const Real* bias_ih = nullptr;    // (3H), or nullptr for a layer without bias
  const Real* bias_hh = nullptr;    // (3H), or nullptr for a layer without bias
  // LiGRU and LiBRU only (EQUATIONS.md §5, §8), each (2H), row blocks z, n (LiBRU: z, c): batch
  // normalisation's scale γ and shift β, and the running mean and (unbiased) variance that
  // inference normalises with.
  const Real* bn_weight = nullptr;
  const Real* bn_bias = nullptr;
  const Real* bn_running_mean = nullptr;
  const Real* bn_running_var = nullptr;
};

// Borrowed gradient accumulators, same shapes as WeightsView. Backward adds (+=) into them.
// The two bias pointers may be both nullptr (then those gradients are not computed).
template <typename Real>
struct GradientsView {
  Real* weight_ih = nullptr;
  Real* weight_hh = nullptr;
  Real* bias_ih = nullptr;
  Real* bias_hh = nullptr;
  Real* bn_weight = nullptr;  // LiGRU, LiBRU: dL/dγ and dL/dβ (2H)
  Real* bn_bias = nullptr;
};

// The training cache written by a training-mode forward and read by backward.
// Layout (T, B, 4H): for each step and row, the blocks
//   r, z, n                  the gate activations of that step, then
//   W_hn h_{t-1} + b_hn      (ResetMode::after: the recurrent candidate term before the reset) or
//   r ⊙ h_{t-1}              (ResetMode::before: the reset state fed to W_hn).
// Backward also reads x, h0 and y, so the caller keeps those alive and unchanged.
std::int64_t training_cache_size(std::int64_t steps, std::int64_t batch, std::int64_t hidden);

// One GRU layer in one direction. It owns a copy of its weights (packed for its kernels).
// Thread safety: after construction every method is const and may run from many threads at
// once; each call allocates its own scratch memory (once per call, never per step).
template <typename Real>
class GruLayer {
 public:
  // Copies the weights. Throws std::invalid_argument on sizes < 1 or a null weight pointer;
  // the two bias pointers must be both null (no bias) or both set.
  GruLayer(GruLayerSizes sizes, ResetMode mode, const WeightsView<Real>& weights);
  ~GruLayer();
  GruLayer(GruLayer&&) noexcept;
  GruLayer& operator=(GruLayer&&) noexcept;
  GruLayer(const GruLayer&) = delete;
  GruLayer& operator=(const GruLayer&) = delete;

  GruLayerSizes sizes() const;
  ResetMode reset_mode() const;
  bool has_bias() const;

  // Runs the layer over a sequence.
  //   x      (T, B, I)  input
  //   h0     (B, H)     initial state, or nullptr for zeros
  //   y      (T, B, H)  output: the state after every step
  //   h_n    (B, H)     final state (equal to y[T-1]; T may be 0, then h_n = h0)
  //   cache  (T, B, 4H) training cache (see training_cache_size), or nullptr for inference
  // Outputs must not alias inputs. Extra memory for inference is bounded independently of T.
  // Throws std::invalid_argument on negative sizes or a null required pointer.
  void forward(std::int64_t steps, std::int64_t batch, const Real* x, const Real* h0, Real* y,
               Real* h_n, Real* cache) const;

  // Backpropagation through time for the forward call that wrote `cache`.
  //   x, h0, y, cache   exactly as given to / written by that forward call (h0 may be nullptr)
  //   dy     (T, B, H)  dL/dy for every step
  //   dh_n   (B, H)     dL/dh_T, or nullptr for zeros
  //   dx     (T, B, I)  out: dL/dx (overwritten)
  //   dh0    (B, H)     out: dL/dh0 (overwritten), or nullptr if not wanted
  //   grads             parameter gradients, accumulated (+=), summed over steps and batch
  void backward(std::int64_t steps, std::int64_t batch, const Real* x, const Real* h0,
                const Real* y, const Real* cache, const Real* dy, const Real* dh_n, Real* dx,
                Real* dh0, const GradientsView<Real>& grads) const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

extern template class GruLayer<float>;
extern template class GruLayer<double>;

// The recurrent cell (EQUATIONS.md): the GRU (§1, §2), the minimal gated unit (§4), whose
// weights have the row blocks f, n ((2H, ·) instead of (3H, ·)) and which ignores `mode`, or
// the light GRU (§5): row blocks z, n, no biases, batch normalisation of the input projections
// (WeightsView's bn_* members), the candidate's activation chosen by NetworkConfig.activation,
// or the light Bayesian recurrent unit (§8): the LiGRU's structure (row blocks z, c), its state
// log-probabilities updated in log space.
enum class Cell : int { gru = 0, mgu = 1, ligru = 2, libru = 3 };

// The LiGRU candidate's activation: ReLU, tanh, leaky ReLU (max(a, 0) + slope · min(a, 0)), or
// softplus (log(1 + e^a): the LiBRU's "geometric mean" approximation, §8).
enum class Activation : int { relu = 0, tanh = 1, leaky_relu = 2, softplus = 3 };

// The terms the GRU's gates r and z see (EQUATIONS.md §7): the input, the state and the biases
// (full, the GRU); the state and the biases (hidden_bias, Dey & Salem's type 1); the state alone
// (hidden, type 2); the biases alone (bias, type 3: constant gates). Every form but full has an
// input product of H columns: weight_ih (H, I) and bias_ih (H) hold the candidate's block alone,
// weight_hh is (3H, H) (types 1, 2) or (H, H) = W_hn (type 3), bias_hh (3H) or (H) = b_hn (type 2).
enum class GateTerms : int { full = 0, hidden_bias = 1, hidden = 2, bias = 3 };

// What a bidirectional network's last layer outputs (Keras Bidirectional's merge_mode): its two
// directions side by side (D·H features), or their sum, product or mean (H features).
enum class MergeMode : int { concat = 0, sum = 1, mul = 2, average = 3 };

// The products' arithmetic (EQUATIONS.md §9). `full`: the network's own type. `bf16` and `int8`
// (float32 networks only, inference only): weights stored in bfloat16, or in int8 with one scale
// per row; each product's input rows rounded to bf16, or quantized to int8 with one scale per
// row at every step; sums in float32 (bf16) or int32 (int8); gates and state in float32.
enum class Precision : int { full = 0, bf16 = 1, int8 = 2 };

// A GRU network: `layers` stacked layers, each with one or two directions (D = 2 when
// bidirectional), PyTorch's semantics. Layer l > 0 takes the D·H outputs of layer l − 1.
struct NetworkConfig {
  Cell cell = Cell::gru;
  std::int64_t input = 0;   // I >= 1
  std::int64_t hidden = 0;  // H >= 1
  std::int64_t layers = 1;  // L >= 1
  bool bidirectional = false;
  // A unidirectional network whose layers run backward in time (ONNX's direction="reverse");
  // its outputs stay aligned with the input steps, as a bidirectional one's second half is.
  bool reverse = false;
  MergeMode merge = MergeMode::concat;  // bidirectional networks only
  ResetMode mode = ResetMode::after;
  GateTerms gates = GateTerms::full;  // GRU only
  // GRU only: ONNX's `clip` (EQUATIONS.md §1.1). The pre-activations of r, z and n are clipped
  // to [−clip, clip] before their activations; a clipped one passes no gradient. A number > 0,
  // or infinity (the default) for none.
  double clip = std::numeric_limits<double>::infinity();
  Precision precision = Precision::full;  // bf16, int8: float32 networks, inference
  bool bias = true;
  // Regularisation, probabilities in [0, 1). In training: `dropout` zeroes each layer's outputs
  // but the last's (PyTorch's meaning), `recurrent_dropout` zeroes the state fed to the
  // recurrent products with one mask per sequence (the variational kind), both scaling what
  // they keep by 1/(1 − p); with `zoneout` each unit keeps its previous state with that
  // probability at every step. At inference only zoneout acts, by its expectation:
  // h = p · h_prev + (1 − p) · h_new.
  double dropout = 0;
  double recurrent_dropout = 0;
  double zoneout = 0;
  // LiGRU and LiBRU (activation and negative_slope: LiGRU only). A training forward normalises
  // each input projection with the batch's mean and biased variance over its real steps and rows; inference with the running statistics, folded
  // into the input weights. negative_slope (>= 0, so the derivative can be read from the
  // output) is leaky ReLU's; bn_eps (> 0) is added to the variance.
  Activation activation = Activation::relu;
  double negative_slope = 0.01;
  double bn_eps = 1e-5;
};

// How a batch of sequences lies in memory.
struct SequenceLayout {
  std::int64_t steps = 0;    // T >= 0
  std::int64_t batch = 0;    // B >= 0
  bool batch_first = false;  // (B, T, ·) instead of (T, B, ·)
  // (B) real steps of each row, each in 0..T, any order; nullptr: every row has T steps. Steps
  // past a row's length are skipped: they cost nothing, their outputs are zero, the row's final
  // state is its state after its last real step, and the reverse direction starts there. A row
  // of no steps (as ONNX allows) outputs zeros and keeps its initial state.
  const std::int64_t* lengths = nullptr;
  // (T, B), or (B, T) with batch_first: 0 where a step is masked (Keras's masking): its row
  // keeps its state and outputs it, in every layer; each direction sees the same steps masked.
  // nullptr: no step is. Not with lengths (a mask that is 1 then 0 is what lengths say,
  // except that lengths skip the steps and output zeros).
  const std::uint8_t* mask = nullptr;
};

template <typename Real>
class Network;

// What a training forward keeps for backward (inputs, states and gate activations of every
// layer and direction, in the network's packed row order). Opaque; movable, not copyable.
template <typename Real>
class TrainingCache {
 public:
  TrainingCache();
  ~TrainingCache();
  TrainingCache(TrainingCache&&) noexcept;
  TrainingCache& operator=(TrainingCache&&) noexcept;
  // Whether it holds a forward pass that backward has not consumed yet.
  bool filled() const;
  // The layout of that forward pass's batch (what dy and dx of backward must match).
  std::int64_t steps() const;
  std::int64_t batch() const;
  bool batch_first() const;
  // LiGRU, LiBRU: the statistics the forward pass normalised the input projections of layer l,
  // direction d (index l·D + d) with: mean and biased variance, (2H) each, over
  // normalised_rows() rows (the real steps of all rows). Throws std::invalid_argument unless
  // filled by a LiGRU's or LiBRU's training forward.
  std::int64_t normalised_rows() const;
  void batch_statistics(std::int64_t index, Real* mean, Real* variance) const;

 private:
  friend class Network<Real>;
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

template <typename Real>
class Network {
 public:
  // weights[l · D + d]: layer l, direction d (0 forward, 1 reverse), copied. Layer 0 takes
  // (G·H, I) input weights, later layers (G·H, D·H), with G = 3 gates (GRU) or 2 (MGU, LiGRU,
  // LiBRU). Throws std::invalid_argument on bad sizes, a null weight, biases that disagree with
  // config.bias (a LiGRU or LiBRU has none: config.bias must be false), or a LiGRU or LiBRU
  // without its bn_* arrays, with a negative running variance or bad activation settings.
  Network(const NetworkConfig& config, const std::vector<WeightsView<Real>>& weights);
  ~Network();
  Network(Network&&) noexcept;
  Network& operator=(Network&&) noexcept;
  Network(const Network&) = delete;
  Network& operator=(const Network&) = delete;

  const NetworkConfig& config() const;
  std::int64_t directions() const;  // D
  // Features of each output step: D·H, or H for a bidirectional network that merges them.
  std::int64_t output_width() const;

  // Runs the network.
  //   x    (T, B, I), or (B, T, I) with layout.batch_first
  //   h0   (L·D, B, H) initial states, or nullptr for zeros
  //   y    (T, B, W) or (B, T, W), W = output_width(): the last layer's outputs, directions
  //        side by side or merged (config.merge)
  //   h_n  (L·D, B, H): each layer's and direction's state after each row's last real step
  //   cache  filled for backward, or nullptr for inference
  // Outputs must not alias inputs. Safe to call from many threads at once.
  //   seed   the training masks' seed: masks are keyed by (seed, layer, direction, step, row,
  //          unit), so they do not depend on the thread count or on the other rows' lengths
  void forward(const SequenceLayout& layout, const Real* x, const Real* h0, Real* y, Real* h_n,
               TrainingCache<Real>* cache, std::uint64_t seed = 0) const;

  // Backpropagation through time for the forward call that filled `cache` (which it empties).
  //   dy    like y: dL/dy (ignored past each row's length)
  //   dh_n  (L·D, B, H) dL/dh_n, or nullptr for zeros
  //   dx    like x, out: dL/dx, zero past each row's length
  //   dh0   (L·D, B, H) out: dL/dh0, or nullptr if not wanted
  //   grads[l · D + d]  parameter gradients of that layer and direction, accumulated (+=);
  //                     a LiGRU or LiBRU needs bn_weight and bn_bias there (and no bias
  //                     pointers)
  void backward(TrainingCache<Real>& cache, const Real* dy, const Real* dh_n, Real* dx,
                Real* dh0, const std::vector<GradientsView<Real>>& grads) const;

 private:
  // A batch some of whose rows have no steps runs on the others alone.
  void forward_rows_with_steps(const std::vector<std::int64_t>& rows, const SequenceLayout& layout,
                               const Real* x, const Real* h0, Real* y, Real* h_n,
                               TrainingCache<Real>* cache, std::uint64_t seed) const;
  void backward_rows_with_steps(TrainingCache<Real>& cache, const Real* dy, const Real* dh_n,
                                Real* dx, Real* dh0,
                                const std::vector<GradientsView<Real>>& grads) const;

  struct Impl;
  std::unique_ptr<Impl> impl_;
};

extern template class TrainingCache<float>;
extern template class TrainingCache<double>;
extern template class Network<float>;
extern template class Network<double>;

}  // namespace fastgru
