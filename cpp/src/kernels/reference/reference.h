// The scalar reference kernels (see kernels.h for what each computes).
#pragma once

#include "kernels/kernels.h"

namespace fastgru::kernels {

template <typename Real>
void gemm_reference(Index m, Index n, Index k, const Real* a, Index lda, bool transpose_a,
                    const Real* b, Index ldb, bool transpose_b, Real* c, Index ldc,
                    bool accumulate);

template <typename Real>
void column_sum_reference(Index m, Index n, const Real* a, Index lda, Real* sums);

template <typename Real>
void gates_reset_after_reference(Index batch, Index hidden, const Real* gi, Index ld_gi,
                                 const Real* gh, const Real* bias_hh, const Real* h_prev,
                                 Real* h_next, Index ld_h_next, Real* record);

template <typename Real>
void gates_reset_before_rz_reference(Index batch, Index hidden, const Real* gi, Index ld_gi,
                                     const Real* gh_rz, const Real* bias_hh, const Real* h_prev,
                                     Real* record);

template <typename Real>
void gates_reset_before_n_reference(Index batch, Index hidden, const Real* gi, Index ld_gi,
                                    const Real* gh_n, const Real* bias_hh, const Real* h_prev,
                                    Real* h_next, Index ld_h_next, Real* record);

template <typename Real>
void gates_reset_after_backward_reference(Index batch, Index hidden, const Real* record,
                                          const Real* h_prev, const Real* dy,
                                          const Real* dh_carry, Real* dgi, Real* dgh,
                                          Real* dh_prev);

template <typename Real>
void gates_reset_before_backward_zn_reference(Index batch, Index hidden, const Real* record,
                                              const Real* h_prev, const Real* dy,
                                              const Real* dh_carry, Real* dgi, Real* dh_prev);

template <typename Real>
void gates_reset_before_backward_r_reference(Index batch, Index hidden, const Real* record,
                                             const Real* h_prev, const Real* d_rh, Real* dgi,
                                             Real* dh_prev);

}  // namespace fastgru::kernels
