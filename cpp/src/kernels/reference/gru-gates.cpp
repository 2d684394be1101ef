// Scalar fused gate updates of the GRU (gru-math.md §1, §2) and their derivatives.
// A step record row holds the blocks r, z, n and the fourth term (see fastgru/gru.h).
#include <cmath>

#include "kernels/reference/reference.h"

namespace fastgru::kernels {
namespace {

template <typename Real>
Real sigmoid(Real v) {
  return Real(1) / (Real(1) + std::exp(-v));
}

template <typename Real>
Real bias_at(const Real* bias, Index j) {
  return bias ? bias[j] : Real(0);
}

}  // namespace

template <typename Real>
void gates_reset_after_reference(Index batch, Index hidden, const Real* gi, Index ld_gi,
                                 const Real* gh, const Real* bias_hh, const Real* h_prev,
                                 Real* h_next, Index ld_h_next, Real* record) {
  const Index H = hidden;
  for (Index b = 0; b < batch; ++b) {
    const Real* gi_row = gi + b * ld_gi;
    const Real* gh_row = gh + b * 3 * H;
    const Real* h_row = h_prev + b * H;
    Real* out = h_next + b * ld_h_next;
    Real* rec = record ? record + b * 4 * H : nullptr;
    for (Index j = 0; j < H; ++j) {
      const Real r = sigmoid(gi_row[j] + gh_row[j] + bias_at(bias_hh, j));
      const Real z = sigmoid(gi_row[H + j] + gh_row[H + j] + bias_at(bias_hh, H + j));
      const Real hn = gh_row[2 * H + j] + bias_at(bias_hh, 2 * H + j);
      const Real n = std::tanh(gi_row[2 * H + j] + r * hn);
      const Real h = h_row[j];
      out[j] = n + z * (h - n);
      if (rec) {
        rec[j] = r;
        rec[H + j] = z;
        rec[2 * H + j] = n;
        rec[3 * H + j] = hn;
      }
    }
  }
}

template <typename Real>
void gates_reset_before_rz_reference(Index batch, Index hidden, const Real* gi, Index ld_gi,
                                     const Real* gh_rz, const Real* bias_hh, const Real* h_prev,
                                     Real* record) {
  const Index H = hidden;
  for (Index b = 0; b < batch; ++b) {
    const Real* gi_row = gi + b * ld_gi;
    const Real* gh_row = gh_rz + b * 2 * H;
    const Real* h_row = h_prev + b * H;
    Real* rec = record + b * 4 * H;
    for (Index j = 0; j < H; ++j) {
      const Real r = sigmoid(gi_row[j] + gh_row[j] + bias_at(bias_hh, j));
      rec[j] = r;
      rec[H + j] = sigmoid(gi_row[H + j] + gh_row[H + j] + bias_at(bias_hh, H + j));
      rec[3 * H + j] = r * h_row[j];
    }
  }
}

template <typename Real>
void gates_reset_before_n_reference(Index batch, Index hidden, const Real* gi, Index ld_gi,
                                    const Real* gh_n, const Real* bias_hh, const Real* h_prev,
                                    Real* h_next, Index ld_h_next, Real* record) {
  const Index H = hidden;
  for (Index b = 0; b < batch; ++b) {
    const Real* gi_row = gi + b * ld_gi;
    const Real* gh_row = gh_n + b * H;
    const Real* h_row = h_prev + b * H;
    Real* out = h_next + b * ld_h_next;
    Real* rec = record + b * 4 * H;
    for (Index j = 0; j < H; ++j) {
      const Real n = std::tanh(gi_row[2 * H + j] + gh_row[j] + bias_at(bias_hh, 2 * H + j));
      const Real z = rec[H + j];
      rec[2 * H + j] = n;
      out[j] = n + z * (h_row[j] - n);
    }
  }
}

template <typename Real>
void gates_reset_after_backward_reference(Index batch, Index hidden, const Real* record,
                                          const Real* h_prev, const Real* dy,
                                          const Real* dh_carry, Real* dgi, Real* dgh,
                                          Real* dh_prev) {
  const Index H = hidden;
  for (Index b = 0; b < batch; ++b) {
    const Real* rec = record + b * 4 * H;
    const Real* h_row = h_prev + b * H;
    Real* dgi_row = dgi + b * 3 * H;
    Real* dgh_row = dgh + b * 3 * H;
    for (Index j = 0; j < H; ++j) {
      const Real r = rec[j], z = rec[H + j], n = rec[2 * H + j], hn = rec[3 * H + j];
      const Real dh = dy[b * H + j] + dh_carry[b * H + j];
      const Real dn_pre = dh * (Real(1) - z) * (Real(1) - n * n);
      const Real dz_pre = dh * (h_row[j] - n) * z * (Real(1) - z);
      const Real dr_pre = dn_pre * hn * r * (Real(1) - r);
      dgi_row[j] = dgh_row[j] = dr_pre;
      dgi_row[H + j] = dgh_row[H + j] = dz_pre;
      dgi_row[2 * H + j] = dn_pre;
      dgh_row[2 * H + j] = dn_pre * r;
      dh_prev[b * H + j] = dh * z;
    }
  }
}

template <typename Real>
void gates_reset_before_backward_zn_reference(Index batch, Index hidden, const Real* record,
                                              const Real* h_prev, const Real* dy,
                                              const Real* dh_carry, Real* dgi, Real* dh_prev) {
  const Index H = hidden;
  for (Index b = 0; b < batch; ++b) {
    const Real* rec = record + b * 4 * H;
    const Real* h_row = h_prev + b * H;
    Real* dgi_row = dgi + b * 3 * H;
    for (Index j = 0; j < H; ++j) {
      const Real z = rec[H + j], n = rec[2 * H + j];
      const Real dh = dy[b * H + j] + dh_carry[b * H + j];
      dgi_row[H + j] = dh * (h_row[j] - n) * z * (Real(1) - z);
      dgi_row[2 * H + j] = dh * (Real(1) - z) * (Real(1) - n * n);
      dh_prev[b * H + j] = dh * z;
    }
  }
}

template <typename Real>
void gates_reset_before_backward_r_reference(Index batch, Index hidden, const Real* record,
                                             const Real* h_prev, const Real* d_rh, Real* dgi,
                                             Real* dh_prev) {
  const Index H = hidden;
  for (Index b = 0; b < batch; ++b) {
    const Real* rec = record + b * 4 * H;
    const Real* h_row = h_prev + b * H;
    for (Index j = 0; j < H; ++j) {
      const Real r = rec[j];
      const Real d = d_rh[b * H + j];
      dgi[b * 3 * H + j] = d * h_row[j] * r * (Real(1) - r);
      dh_prev[b * H + j] += d * r;
    }
  }
}

// Explicit instantiations for float and double.
#define FASTGRU_INSTANTIATE_GATES(Real)                                                        \
  template void gates_reset_after_reference<Real>(Index, Index, const Real*, Index,            \
                                                  const Real*, const Real*, const Real*, Real*, \
                                                  Index, Real*);                                \
  template void gates_reset_before_rz_reference<Real>(Index, Index, const Real*, Index,        \
                                                      const Real*, const Real*, const Real*,   \
                                                      Real*);                                   \
  template void gates_reset_before_n_reference<Real>(Index, Index, const Real*, Index,         \
                                                     const Real*, const Real*, const Real*,    \
                                                     Real*, Index, Real*);                      \
  template void gates_reset_after_backward_reference<Real>(Index, Index, const Real*,          \
                                                           const Real*, const Real*,           \
                                                           const Real*, Real*, Real*, Real*);   \
  template void gates_reset_before_backward_zn_reference<Real>(Index, Index, const Real*,      \
                                                               const Real*, const Real*,       \
                                                               const Real*, Real*, Real*);      \
  template void gates_reset_before_backward_r_reference<Real>(Index, Index, const Real*,       \
                                                              const Real*, const Real*, Real*, \
                                                              Real*);
FASTGRU_INSTANTIATE_GATES(float)
FASTGRU_INSTANTIATE_GATES(double)
#undef FASTGRU_INSTANTIATE_GATES

}  // namespace fastgru::kernels
