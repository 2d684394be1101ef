// Fused optimiser updates for training loops (fastgru.Model.fit runs them): one pass over a
// parameter array instead of a chain of temporaries.
#pragma once

#include <cstddef>

namespace fastgru {

// One Adam/AdamW step, PyTorch's update, for every element i:
//   p *= decay_factor                 (AdamW's decoupled decay: 1 - lr * weight_decay; else 1)
//   g = grad + l2 * p                 (Adam's L2 weight decay; else l2 = 0)
//   m = beta1 m + (1 - beta1) g;  v = beta2 v + (1 - beta2) g²
//   p -= step_size * m / (sqrt(v) / root_correction + epsilon)
// with step_size = lr / (1 - beta1^t) and root_correction = sqrt(1 - beta2^t) at step t.
struct AdamStep {
  double step_size, beta1, beta2, epsilon, root_correction, decay_factor, l2;
};

template <typename Real>
void adam_update(Real* param, const Real* grad, Real* m, Real* v, std::size_t count, const AdamStep& step);

}  // namespace fastgru
