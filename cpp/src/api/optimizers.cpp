#include "fastgru/optimizers.h"

#include <cmath>

namespace fastgru {

template <typename Real>
void adam_update(Real* param, const Real* grad, Real* m, Real* v, std::size_t count, const AdamStep& step) {
  const Real beta1 = Real(step.beta1), beta2 = Real(step.beta2);
  const Real one_minus_beta1 = Real(1 - step.beta1), one_minus_beta2 = Real(1 - step.beta2);
  const Real step_size = Real(step.step_size), epsilon = Real(step.epsilon);
  const Real root_correction = Real(step.root_correction), decay = Real(step.decay_factor), l2 = Real(step.l2);
  for (std::size_t i = 0; i < count; ++i) {
    const Real p = param[i] * decay;
    const Real g = grad[i] + l2 * p;
    m[i] = beta1 * m[i] + one_minus_beta1 * g;
    v[i] = beta2 * v[i] + one_minus_beta2 * (g * g);
    param[i] = p - step_size * m[i] / (std::sqrt(v[i]) / root_correction + epsilon);
  }
}

template void adam_update<float>(float*, const float*, float*, float*, std::size_t, const AdamStep&);
template void adam_update<double>(double*, const double*, double*, double*, std::size_t, const AdamStep&);

}  // namespace fastgru
