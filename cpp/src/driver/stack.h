// A stacked, bidirectional network of any cell over a packed batch: runs each layer's
// directions with the single-layer time loops and moves activations between them. Layer l direction d is
// layers[l · D + d]; the reverse direction runs the forward loop over mirrored rows.
#pragma once

#include <algorithm>
#include <cstdint>
#include <memory>
#include <new>
#include <vector>

#include "cells/cell_layer.h"
#include "driver/sequence_packing.h"
#include "driver/time_loops.h"

namespace fastgru::driver {

// Uninitialised, 64-byte aligned memory that keeps its allocation when reused for a size that
// fits, so a cache filled at every training step neither zeroes nor page-faults its memory
// again. Aligned rows let the step kernels write records as whole cache lines.
template <typename Real>
class Buffer {
 public:
  Real* ensure(Index count) {
    if (count > capacity_ || !data_) {
      const size_t bytes = static_cast<size_t>(std::max<Index>(count, 1)) * sizeof(Real);
      data_.reset(static_cast<Real*>(::operator new[](bytes, kAlignment)));
      capacity_ = count;
    }
    return data_.get();
  }
  Real* data() const { return data_.get(); }

 private:
  static constexpr std::align_val_t kAlignment{64};
  struct AlignedDelete {
    void operator()(Real* p) const { ::operator delete[](p, kAlignment); }
  };
  std::unique_ptr<Real[], AlignedDelete> data_;
  Index capacity_ = 0;
};

// Regularisation rates (probabilities in [0, 1)) and the seed of the training masks. Masks are
// drawn from a counter-based hash of (seed, layer, direction, step, caller's row, unit): the
// same for any thread count or packing order, and independent of each other.
struct RegularisationRates {
  double dropout = 0;            // on each layer's output but the last's (training)
  double recurrent_dropout = 0;  // on the state fed to the recurrent products (training)
  double zoneout = 0;            // units keep their previous state (training: sampled; inference:
                                 // the expectation)
  std::uint64_t seed = 0;
};

// What backward needs from a training forward, all in packed row order.
template <typename Real>
struct StackCache {
  SequencePacking packing;
  Index hidden = 0;  // H
  bool batch_first = false;
  bool has_h0 = false;
  std::vector<Buffer<Real>> dropout_keep;    // per layer but the last: (total rows, D·H), 0 or 1/(1 − p)
  std::vector<Buffer<Real>> recurrent_keep;  // per layer and direction: (B, H), 0 or 1/(1 − p)
  std::vector<Buffer<Real>> masked_states;   // per layer and direction: (total rows, H)
  std::vector<Buffer<Real>> zoneout_keep;    // per layer and direction: (total rows, H), 0 or 1
  std::vector<Buffer<Real>> inputs;   // per layer: its input (total rows, I_l)
  std::vector<Buffer<Real>> outputs;  // per layer and direction: states in that direction's own
                                      // step order (total rows, H)
  std::vector<Buffer<Real>> records;  // per layer and direction: (total rows, 4H)
  // Per layer and direction where the cell normalises its input projections: (2, G) their mean
  // and biased variance over the batch.
  std::vector<Buffer<Real>> batch_statistics;
  Index statistics_columns = 0;  // G of those statistics
  Buffer<Real> h0;                    // (L·D, B, H) when has_h0
};

// The directions of every layer: `count` (D: 1 or 2) side by side; the second runs backward in
// time, and so does a single one when `reverse` (ONNX's direction="reverse"). Every direction's
// outputs stay aligned with the input steps.
struct Directions {
  Index count = 1;
  bool reverse = false;
  bool backward_in_time(Index d) const { return d == 1 || reverse; }
};

// x (T, B, I) or (B, T, I); h0 (L·D, B, H) or nullptr; y like x with D·H features, zero past
// each row's length; h_n (L·D, B, H); cache nullptr for inference.
template <typename Real>
void run_stack_forward(const cells::CellLayers<Real>& layers, Directions directions,
                       const RegularisationRates& rates, SequencePacking packing, bool batch_first,
                       const Real* x, const Real* h0, Real* y, Real* h_n, StackCache<Real>* cache);

// One step of a unidirectional stack at inference (streaming): x (B, I), h0 (L, B, H) or
// nullptr, y (B, H), h_n (L, B, H). The same computation as run_stack_forward over one dense
// step, without its packing and copies; intermediate layers' states go through per-thread
// scratch, so a call allocates nothing once that scratch is warm.
template <typename Real>
void run_stack_step(const cells::CellLayers<Real>& layers, double zoneout, Index batch,
                    const Real* x, const Real* h0, Real* y, Real* h_n);

// dy like y; dh_n (L·D, B, H) or nullptr; dx like x (zero past each row's length); dh0
// (L·D, B, H) or nullptr; grads[l · D + d] accumulated.
template <typename Real>
void run_stack_backward(const cells::CellLayers<Real>& layers, Directions directions,
                        const StackCache<Real>& cache, const Real* dy, const Real* dh_n, Real* dx,
                        Real* dh0, const std::vector<GradientsView<Real>>& grads);

}  // namespace fastgru::driver
