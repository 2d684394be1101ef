// ONNX's clip for the GRU (EQUATIONS.md §1.1), over a SIMD traits class S: the pre-activations
// of r, z and n bounded to [−clip, clip], and the gradient that passes back through the bound.
#pragma once

#include <cmath>

namespace fastgru::kernels {

// clip = ∞ (no clipping) leaves every value as it is, NaN included: S::min and S::max return
// their second operand where either is NaN.
template <class S>
struct PreActivationClip {
  using V = typename S::V;
  V low, high;
  explicit PreActivationClip(typename S::Real clip) : low(S::set1(-clip)), high(S::set1(clip)) {}
  V operator()(V a) const { return S::max(low, S::min(high, a)); }
};

// The derivative of f(clip(a)), read from the stored activation y = f(clip(a)) as the backward
// kernels have it: a clipped pre-activation gives exactly f(±clip), so d passes where
// f(−clip) < y < f(clip) and is 0 elsewhere. An unclipped a whose f(a) rounds to f(±clip) (|a|
// within about ulp(f(clip)) / f'(clip) of clip) loses its gradient f'(a) too: a band of a few
// 1e-7 at the usual bounds, wider only where f saturates (tanh beyond clip ≈ 8 in float32) or for
// a bound below ~1e-7. With clip = ∞, d passes untouched.
template <class S>
struct ClippedGradient {
  using V = typename S::V;
  bool active;
  V sigmoid_low, sigmoid_high, tanh_low, tanh_high;
  explicit ClippedGradient(typename S::Real clip)
      : active(std::isfinite(clip)),
        sigmoid_low(S::sigmoid(S::set1(-clip))),
        sigmoid_high(S::sigmoid(S::set1(clip))),
        tanh_low(S::tanh(S::set1(-clip))),
        tanh_high(S::tanh(S::set1(clip))) {}
  V through_sigmoid(V d, V y) const { return active ? S::mul(d, inside(y, sigmoid_low, sigmoid_high)) : d; }
  V through_tanh(V d, V y) const { return active ? S::mul(d, inside(y, tanh_low, tanh_high)) : d; }

 private:
  static V inside(V y, V low, V high) { return S::mul(S::positive(S::sub(high, y)), S::positive(S::sub(y, low))); }
};

}  // namespace fastgru::kernels
