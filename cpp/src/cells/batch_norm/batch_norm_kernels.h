// The step kernel signatures of the cells with batch-normalised input projections and two row
// blocks, an update gate z and a candidate (EQUATIONS.md §5, §8), which BatchNormCellLayer
// calls; each such cell fills them with its own kernels, one table per ISA.
//
// Packed weight layout (built by BatchNormCellLayer): gate panels, W_hh^T (K = H) in one panel
// per block of W hidden units holding that block's z and candidate columns side by side (2W
// wide). A record row (4H) holds two blocks of the cell's own, then the two normalised input
// projections x̂ that batch normalisation's backward reads.
#pragma once

#include "kernels/kernels.h"

namespace fastgru::cells {

using kernels::Index;

// A step for unit blocks [block_begin, block_end): the recurrent products [g_z, g_c] =
// h_product · [W_hz; W_hc]^T from gate panels, then the cell's update of h_prev into h_next
// (rows, H, ld_h_next). a (rows, 2H, ld_a) holds the normalised input projections; record
// (rows, 4H) receives the cell's two blocks, or is nullptr (inference); negative_slope is the
// cell's option (leaky ReLU's), ignored by the others.
template <typename Real>
using BatchNormStepFn = void (*)(Index rows, Index hidden, Index block_begin, Index block_end,
                                 const Real* gate_panels, const Real* h_prev,
                                 const Real* h_product, const Real* a, Index ld_a,
                                 Real negative_slope, Real* h_next, Index ld_h_next,
                                 Real* record);

// Backward of a step for units [unit_begin, unit_end): with dh = dy + dh_carry, da (rows, 2H) =
// dL/d(a_z + g_z), dL/d(a_c + g_c), which is also dL/d(g) for the recurrent product, and
// dh_prev = dL/dh_prev through the update alone (the caller adds the recurrent product).
template <typename Real>
using BatchNormBackwardFn = void (*)(Index rows, Index hidden, Index unit_begin, Index unit_end,
                                     const Real* record, const Real* h_prev, const Real* dy,
                                     const Real* dh_carry, Real negative_slope, Real* da,
                                     Real* dh_prev);

// A bf16 or int8 step's update after its product (cells/quantized_gate_vectors.h gives the
// layout of gh = [g_z, g_c] per panel of 3W units): as BatchNormStepFn, for unit panels.
using QuantizedBatchNormGatesFn = void (*)(Index rows, Index hidden, Index panel_begin,
                                           Index panel_end, const float* gh, Index ld_gh,
                                           const float* a, Index ld_a, float negative_slope,
                                           const float* h_prev, float* h_next, Index ld_h_next);

}  // namespace fastgru::cells
