// Packing weights into the panel layouts the kernels read, once per layer.
#pragma once

#include <cstddef>
#include <new>
#include <vector>

#include "kernels/kernels.h"

namespace fastgru::cells {

using kernels::Index;

// Packed weights start on a cache line, so that the kernels' vector loads of a panel row never
// straddle two lines wherever the allocator put them (16 bytes past a line, every other 32-byte
// load of a row splits: LiGRU inference at T = 100, B = 32, H = 256 ran 12% slower).
template <typename T>
struct LineAlignedAllocator {
  using value_type = T;
  static constexpr std::align_val_t kAlignment{64};
  LineAlignedAllocator() = default;
  template <class U>
  LineAlignedAllocator(const LineAlignedAllocator<U>&) noexcept {}
  T* allocate(std::size_t n) { return static_cast<T*>(::operator new[](n * sizeof(T), kAlignment)); }
  void deallocate(T* p, std::size_t) noexcept { ::operator delete[](p, kAlignment); }
  template <class U>
  bool operator==(const LineAlignedAllocator<U>&) const noexcept { return true; }
  template <class U>
  bool operator!=(const LineAlignedAllocator<U>&) const noexcept { return false; }
};

template <typename Real>
using Panels = std::vector<Real, LineAlignedAllocator<Real>>;

// panels[p][k][c] = value(k, p, c), for `panel_count` panels of `panel_width` columns.
template <typename Real, class Value>
Panels<Real> pack_panels(Index depth, Index panel_count, Index panel_width, Value value) {
  Panels<Real> panels(static_cast<size_t>(depth * panel_count * panel_width));
  Real* out = panels.data();
  for (Index p = 0; p < panel_count; ++p)
    for (Index k = 0; k < depth; ++k)
      for (Index c = 0; c < panel_width; ++c) *out++ = value(k, p, c);
  return panels;
}

// Natural panels (kernels/kernels.h) of the depth × n matrix m(k, col), panel_width = 3W
// columns each, zero past n.
template <typename Real, class Matrix>
Panels<Real> pack_natural(Index depth, Index n, Index panel_width, Matrix m) {
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
Panels<Real> pack_gate_panels(const Real* w_hh, Index hidden, Index width,
                                   Index first_block, Index blocks) {
  const Index H = hidden, W = width, unit_blocks = (H + W - 1) / W;
  return pack_panels<Real>(H, unit_blocks, blocks * W, [&](Index k, Index block, Index c) {
    const Index unit = block * W + c % W;
    return unit < H ? w_hh[((first_block + c / W) * H + unit) * H + k] : Real(0);
  });
}

}  // namespace fastgru::cells
