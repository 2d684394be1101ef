#include "cells/batch_norm/batch_norm.h"

#include <algorithm>
#include <cmath>
#include <vector>

#include "driver/work_split.h"

namespace fastgru::cells {
namespace {

using driver::Range;
using driver::split_evenly;
using driver::threads_for;

// Threads take disjoint column ranges (whole cache lines) and walk every row: no shared sums.
template <class Body>
void for_column_ranges(Index rows, Index columns, Body body) {
  constexpr Index kColumnsPerLine = 16;
  const int threads = threads_for(8.0 * rows * columns);
  threads::parallel(threads, [&](const threads::Worker& worker) {
    const Range lines = split_evenly((columns + kColumnsPerLine - 1) / kColumnsPerLine,
                                     worker.count(), worker.index());
    const Index c0 = std::min(lines.begin * kColumnsPerLine, columns);
    const Index c1 = std::min(lines.end * kColumnsPerLine, columns);
    if (c1 > c0) body(c0, c1);
  });
}

}  // namespace

template <typename Real>
void batch_norm_forward(Index rows, Index columns, const Real* gamma, const Real* beta, Real eps,
                        Real* projection, Real* normalised, Index ld_normalised, Real* statistics) {
  for_column_ranges(rows, columns, [&](Index c0, Index c1) {
    // Sums in double: float32 batches of many thousand rows keep full accuracy.
    std::vector<double> sum(static_cast<size_t>(c1 - c0), 0.0), squares(sum.size(), 0.0);
    for (Index i = 0; i < rows; ++i)
      for (Index c = c0; c < c1; ++c) sum[c - c0] += projection[i * columns + c];
    for (Index c = c0; c < c1; ++c) sum[c - c0] /= static_cast<double>(rows);
    // Two passes: the variance of values far from zero keeps its digits.
    for (Index i = 0; i < rows; ++i)
      for (Index c = c0; c < c1; ++c) {
        const double centred = projection[i * columns + c] - sum[c - c0];
        squares[c - c0] += centred * centred;
      }
    std::vector<Real> mean(sum.size()), inv_std(sum.size());
    for (Index c = c0; c < c1; ++c) {
      const double variance = squares[c - c0] / static_cast<double>(rows);
      statistics[c] = static_cast<Real>(sum[c - c0]);
      statistics[columns + c] = static_cast<Real>(variance);
      mean[c - c0] = static_cast<Real>(sum[c - c0]);
      inv_std[c - c0] = static_cast<Real>(1.0 / std::sqrt(variance + eps));
    }
    for (Index i = 0; i < rows; ++i)
      for (Index c = c0; c < c1; ++c) {
        Real& p = projection[i * columns + c];
        const Real x_hat = (p - mean[c - c0]) * inv_std[c - c0];
        normalised[i * ld_normalised + c] = x_hat;
        p = gamma[c] * x_hat + beta[c];
      }
  });
}

template <typename Real>
void batch_norm_inference(Index rows, Index columns, const Real* gamma, const Real* beta,
                          const Real* mean, const Real* variance, Real eps, Real* projection) {
  for_column_ranges(rows, columns, [&](Index c0, Index c1) {
    std::vector<Real> deviation(static_cast<size_t>(c1 - c0));
    for (Index c = c0; c < c1; ++c) deviation[c - c0] = std::sqrt(variance[c] + eps);
    for (Index i = 0; i < rows; ++i)
      for (Index c = c0; c < c1; ++c) {
        Real& p = projection[i * columns + c];
        p = gamma[c] * ((p - mean[c]) / deviation[c - c0]) + beta[c];
      }
  });
}

template <typename Real>
void batch_norm_backward(Index rows, Index columns, const Real* gamma, Real eps,
                         const Real* normalised, Index ld_normalised, const Real* statistics,
                         Real* d, Real* d_gamma, Real* d_beta) {
  for_column_ranges(rows, columns, [&](Index c0, Index c1) {
    std::vector<double> sum_d(static_cast<size_t>(c1 - c0), 0.0), sum_d_x_hat(sum_d.size(), 0.0);
    for (Index i = 0; i < rows; ++i)
      for (Index c = c0; c < c1; ++c) {
        const double g = d[i * columns + c];
        sum_d[c - c0] += g;
        sum_d_x_hat[c - c0] += g * normalised[i * ld_normalised + c];
      }
    // dL/dp = γ / √(σ² + ε) · (dL/da − mean(dL/da) − x̂ · mean(dL/da ⊙ x̂)), the batch's
    // statistics depending on every row.
    std::vector<Real> scale(sum_d.size()), mean_d(sum_d.size()), mean_d_x_hat(sum_d.size());
    for (Index c = c0; c < c1; ++c) {
      d_gamma[c] += static_cast<Real>(sum_d_x_hat[c - c0]);
      d_beta[c] += static_cast<Real>(sum_d[c - c0]);
      scale[c - c0] = static_cast<Real>(gamma[c] / std::sqrt(double(statistics[columns + c]) + eps));
      mean_d[c - c0] = static_cast<Real>(sum_d[c - c0] / static_cast<double>(rows));
      mean_d_x_hat[c - c0] = static_cast<Real>(sum_d_x_hat[c - c0] / static_cast<double>(rows));
    }
    for (Index i = 0; i < rows; ++i)
      for (Index c = c0; c < c1; ++c) {
        Real& g = d[i * columns + c];
        const Real x_hat = normalised[i * ld_normalised + c];
        g = scale[c - c0] * (g - mean_d[c - c0] - x_hat * mean_d_x_hat[c - c0]);
      }
  });
}

template void batch_norm_forward<float>(Index, Index, const float*, const float*, float, float*,
                                        float*, Index, float*);
template void batch_norm_forward<double>(Index, Index, const double*, const double*, double,
                                         double*, double*, Index, double*);
template void batch_norm_inference<float>(Index, Index, const float*, const float*, const float*,
                                          const float*, float, float*);
template void batch_norm_inference<double>(Index, Index, const double*, const double*,
                                           const double*, const double*, double, double*);
template void batch_norm_backward<float>(Index, Index, const float*, float, const float*, Index,
                                         const float*, float*, float*, float*);
template void batch_norm_backward<double>(Index, Index, const double*, double, const double*,
                                          Index, const double*, double*, double*, double*);

}  // namespace fastgru::cells
