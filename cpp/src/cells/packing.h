// Packing weights into the panel layouts the kernels read, once per layer.
#pragma once

#include <vector>

#include "kernels/kernels.h"

namespace fastgru::cells {

using kernels::Index;

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

// Natural panels (kernels/kernels.h) of the depth × n matrix m(k, col), panel_width = 3W
// columns each, zero past n.
template <typename Real, class Matrix>
std::vector<Real> pack_natural(Index depth, Index n, Index panel_width, Matrix m) {
  const Index panel_count = (n + panel_width - 1) / panel_width;
  return pack_panels<Real>(depth, panel_count, panel_width, [&](Index k, Index p, Index c) {
    const Index col = p * panel_width + c;
    return col < n ? m(k, col) : Real(0);
  });
}

// Gate panels of W_hh^T (K = H) for the row blocks first_block .. first_block + blocks − 1 of
// w_hh (G, H): one panel per block of W hidden units holding, for each of those row blocks,
// that block of units' columns side by side (blocks · W wide), zero past H.
template <typename Real>
std::vector<Real> pack_gate_panels(const Real* w_hh, Index hidden, Index width,
                                   Index first_block, Index blocks) {
  const Index H = hidden, W = width, unit_blocks = (H + W - 1) / W;
  return pack_panels<Real>(H, unit_blocks, blocks * W, [&](Index k, Index block, Index c) {
    const Index unit = block * W + c % W;
    return unit < H ? w_hh[((first_block + c / W) * H + unit) * H + k] : Real(0);
  });
}

}  // namespace fastgru::cells
