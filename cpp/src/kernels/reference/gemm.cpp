// Portable matrix product, written so that the compiler vectorizes the innermost loop over a
// contiguous row wherever the operands allow it.
#include "kernels/reference/reference.h"

namespace fastgru::kernels {

template <typename Real>
void gemm_reference(Index m, Index n, Index k, const Real* a, Index lda, bool transpose_a,
                    const Real* b, Index ldb, bool transpose_b, Real* c, Index ldc,
                    bool accumulate) {
  if (!accumulate) {
    for (Index i = 0; i < m; ++i)
      for (Index j = 0; j < n; ++j) c[i * ldc + j] = Real(0);
  }
  if (!transpose_b) {
    // C[i, :] += A(i, p) * B[p, :], with B's rows contiguous.
    for (Index i = 0; i < m; ++i) {
      Real* c_row = c + i * ldc;
      for (Index p = 0; p < k; ++p) {
        const Real a_ip = transpose_a ? a[p * lda + i] : a[i * lda + p];
        const Real* b_row = b + p * ldb;
        for (Index j = 0; j < n; ++j) c_row[j] += a_ip * b_row[j];
      }
    }
    return;
  }
  // B is stored (N, K): each C element is a dot product of an A row (or column) and a B row.
  for (Index i = 0; i < m; ++i) {
    for (Index j = 0; j < n; ++j) {
      const Real* b_row = b + j * ldb;
      Real sum = Real(0);
      if (transpose_a) {
        for (Index p = 0; p < k; ++p) sum += a[p * lda + i] * b_row[p];
      } else {
        const Real* a_row = a + i * lda;
        for (Index p = 0; p < k; ++p) sum += a_row[p] * b_row[p];
      }
      c[i * ldc + j] += sum;
    }
  }
}

template <typename Real>
void column_sum_reference(Index m, Index n, const Real* a, Index lda, Real* sums) {
  for (Index i = 0; i < m; ++i)
    for (Index j = 0; j < n; ++j) sums[j] += a[i * lda + j];
}

template void gemm_reference<float>(Index, Index, Index, const float*, Index, bool, const float*,
                                    Index, bool, float*, Index, bool);
template void gemm_reference<double>(Index, Index, Index, const double*, Index, bool,
                                     const double*, Index, bool, double*, Index, bool);
template void column_sum_reference<float>(Index, Index, const float*, Index, float*);
template void column_sum_reference<double>(Index, Index, const double*, Index, double*);

}  // namespace fastgru::kernels
