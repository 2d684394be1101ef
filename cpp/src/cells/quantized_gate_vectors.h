// The layout of a quantized cell's recurrent products (QuantizedCellLayer::pack_gates): per panel
// of 3W hidden units (W = S::kWidth, the float32 kernels' width), gate by gate, so that unit u of
// product gate g sits at column (u / 3W) · NG · 3W + g · 3W + u mod 3W of a row, for NG gates.
#pragma once

#include <algorithm>

#include "kernels/kernels.h"

namespace fastgru::kernels {

// f(row, u, count, column): the vectors of unit panels [panel_begin, panel_end), u their first
// unit and column the offset of gate 0's values in gh's row.
template <class S, int kGates, class F>
inline void for_each_gate_vector(Index rows, Index hidden, Index panel_begin, Index panel_end,
                                 F f) {
  constexpr Index W = S::kWidth;
  for (Index row = 0; row < rows; ++row)
    for (Index p = panel_begin; p < panel_end; ++p)
      for (Index j = 0; j < 3; ++j) {
        const Index u = p * 3 * W + j * W;
        if (u >= hidden) break;
        f(row, u, static_cast<int>(std::min<Index>(W, hidden - u)), p * kGates * 3 * W + j * W);
      }
}

}  // namespace fastgru::kernels
