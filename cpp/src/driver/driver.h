// The time loops of one GRU layer and direction: which products and gate kernels run when,
// and the scratch memory they use. Sizes are validated by the caller (the API layer).
#pragma once

#include "fastgru/gru.h"
#include "kernels/kernels.h"

namespace fastgru::driver {

using kernels::Index;

// The weights the driver reads, in PyTorch's layout (biases may be nullptr).
template <typename Real>
struct LayerWeights {
  Index input;
  Index hidden;
  ResetMode mode;
  const Real* weight_ih;  // (3H, I)
  const Real* weight_hh;  // (3H, H)
  const Real* bias_ih;    // (3H) or nullptr
  const Real* bias_hh;    // (3H) or nullptr
};

template <typename Real>
void run_forward(const kernels::KernelTable<Real>& kernels, const LayerWeights<Real>& weights,
                 Index steps, Index batch, const Real* x, const Real* h0, Real* y, Real* h_n,
                 Real* cache);

template <typename Real>
void run_backward(const kernels::KernelTable<Real>& kernels, const LayerWeights<Real>& weights,
                  Index steps, Index batch, const Real* x, const Real* h0, const Real* y,
                  const Real* cache, const Real* dy, const Real* dh_n, Real* dx, Real* dh0,
                  const GruGradientsView<Real>& grads);

}  // namespace fastgru::driver
