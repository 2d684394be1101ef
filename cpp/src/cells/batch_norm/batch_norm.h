// Batch normalisation of a cell's input projections (EQUATIONS.md §5) in training: over all
// rows of a packed sequence, i.e. over the batch and the real steps. Per column c of (rows, G):
//   x̂ = (p − μ_c) / √(σ²_c + ε),  a = γ_c x̂ + β_c,  μ, σ² the batch's mean and biased variance.
#pragma once

#include "kernels/kernels.h"

namespace fastgru::cells {

using kernels::Index;

// projection (rows, G) in, a out (in place); x̂ to normalised (rows, G, ld_normalised);
// statistics (2, G) out: μ then σ². rows >= 1.
template <typename Real>
void batch_norm_forward(Index rows, Index columns, const Real* gamma, const Real* beta, Real eps,
                        Real* projection, Real* normalised, Index ld_normalised, Real* statistics);

// Inference: projection (rows, G) in, a = γ ⊙ (p − μ) / √(σ² + ε) + β out (in place), with the
// running statistics μ and σ² (G each).
template <typename Real>
void batch_norm_inference(Index rows, Index columns, const Real* gamma, const Real* beta,
                          const Real* mean, const Real* variance, Real eps, Real* projection);

// d (rows, G) in: dL/da; out (in place): dL/d(projection). d_gamma += Σ dL/da ⊙ x̂,
// d_beta += Σ dL/da. normalised and statistics as written by batch_norm_forward.
template <typename Real>
void batch_norm_backward(Index rows, Index columns, const Real* gamma, Real eps,
                         const Real* normalised, Index ld_normalised, const Real* statistics,
                         Real* d, Real* d_gamma, Real* d_beta);

}  // namespace fastgru::cells
