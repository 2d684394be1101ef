// Packs a layer's weights once, in the panel layouts described in kernels/kernels.h.
#include <algorithm>
#include <cmath>

#include "driver/layer.h"

namespace fastgru::driver {
namespace {

// panels[p][k][c] = value(k, p, c), for `panel_count` panels of `panel_width` columns.
template <typename Real, class Value>
std::vector<Real> pack_panels(Index depth, Index panel_count, Index panel_width, Value value) {
  std::vector<Real> panels(static_cast<size_t>(depth * panel_count * panel_width));
  Real* out = panels.data();
  for (Index p = 0; p < panel_count; ++p)
    for (Index k = 0; k < depth; ++k)
      for (Index c = 0; c < panel_width; ++c) *out++ = value(k, p, c);
  return panels;
}

// Natural panels of the depth × n matrix m(k, col), 3W columns each, zero past n.
template <typename Real, class Matrix>
std::vector<Real> pack_natural(Index depth, Index n, Index panel_width, Matrix m) {
  const Index panel_count = (n + panel_width - 1) / panel_width;
  return pack_panels<Real>(depth, panel_count, panel_width, [&](Index k, Index p, Index c) {
    const Index col = p * panel_width + c;
    return col < n ? m(k, col) : Real(0);
  });
}

}  // namespace

template <typename Real>
void pack_layer(const kernels::KernelTable<Real>& kernels, PackedLayer<Real>& layer) {
  layer.kernels = &kernels;
  const Index I = layer.input, H = layer.hidden, W = kernels.vector_width, PW = 3 * W;
  const Index G = layer.gates() * H;
  const Real* w_ih = layer.weight_ih.data();
  const Real* w_hh = layer.weight_hh.data();
  layer.input_panels = pack_natural<Real>(I, G, PW, [&](Index k, Index col) {
    return w_ih[col * I + k];
  });
  if (layer.cell == Cell::ligru) {
    // Inference normalises with the running statistics: BN(W x) = scale ⊙ (W x) + shift, with
    // scale = γ / √(σ² + ε) folded into the rows of W and shift = β − scale ⊙ μ. The folding
    // holds only where scale ⊙ W is finite: an infinite γ would make the product sum inf − inf
    // and the shift inf · 0 where γ ⊙ (W x − μ) / √(σ² + ε) + β itself is finite (a saturated
    // gate), so such a layer normalises its projections explicitly instead.
    std::vector<double> scale(static_cast<size_t>(G));
    for (Index c = 0; c < G; ++c)
      scale[c] = layer.bn_weight[c] / std::sqrt(double(layer.bn_running_var[c]) + layer.bn_eps);
    std::vector<Real> folded = pack_natural<Real>(I, G, PW, [&](Index k, Index col) {
      return static_cast<Real>(scale[col] * w_ih[col * I + k]);
    });
    layer.batch_norm_folded =
        std::all_of(folded.begin(), folded.end(), [](Real v) { return std::isfinite(v); });
    layer.training_input_panels = std::move(layer.input_panels);
    layer.input_panels.clear();
    layer.inference_shift.clear();
    if (layer.batch_norm_folded) {
      layer.input_panels = std::move(folded);
      for (Index c = 0; c < G; ++c)
        layer.inference_shift.push_back(static_cast<Real>(layer.bn_bias[c] - scale[c] * layer.bn_running_mean[c]));
    }
  }
  // Gate panels: block u of W units holds W_hh^T columns g·H + u·W + c for each gate g.
  const Index gates = layer.cell == Cell::gru && layer.mode == ResetMode::after ? 3 : 2;
  const Index blocks = (H + W - 1) / W;
  layer.step_panels = pack_panels<Real>(H, blocks, gates * W, [&](Index k, Index block, Index c) {
    const Index unit = block * W + c % W;
    return unit < H ? w_hh[((c / W) * H + unit) * H + k] : Real(0);
  });
  if (layer.cell == Cell::gru && layer.mode == ResetMode::before) {
    layer.candidate_panels = pack_natural<Real>(H, H, PW, [&](Index k, Index col) {
      return w_hh[(2 * H + col) * H + k];
    });
  } else {
    layer.candidate_panels.clear();
  }
  layer.backward_panels = pack_natural<Real>(G, H, PW, [&](Index k, Index col) {
    return w_hh[k * H + col];
  });
  layer.input_backward_panels = pack_natural<Real>(G, I, PW, [&](Index k, Index col) {
    return w_ih[k * I + col];
  });
}

template void pack_layer<float>(const kernels::KernelTable<float>&, PackedLayer<float>&);
template void pack_layer<double>(const kernels::KernelTable<double>&, PackedLayer<double>&);

}  // namespace fastgru::driver
