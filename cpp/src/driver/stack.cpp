#include "driver/stack.h"

#include <cstring>
#include <utility>

#include "driver/scratch.h"

namespace fastgru::driver {
namespace {

// Copies a (rows, cols) block between arrays of different row widths.
template <typename Real>
void copy_columns(Index rows, Index cols, const Real* in, Index in_width, Real* out,
                  Index out_width) {
  for (Index i = 0; i < rows; ++i)
    std::memcpy(out + i * out_width, in + i * in_width, sizeof(Real) * cols);
}

// Uniform in [0, 1) from a counter: splitmix64's finaliser over the key's parts.
std::uint64_t mix(std::uint64_t x) {
  x += 0x9E3779B97F4A7C15ull;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
  return x ^ (x >> 31);
}

double uniform(std::uint64_t seed, std::uint64_t stream, std::uint64_t step, std::uint64_t row,
               std::uint64_t unit) {
  const std::uint64_t bits = mix(mix(mix(mix(seed ^ stream) ^ step) ^ row) ^ unit);
  return static_cast<double>(bits >> 11) * (1.0 / 9007199254740992.0);
}

enum MaskStream : std::uint64_t { kDropout = 1, kRecurrentDropout = 2, kZoneout = 3 };

// keep[packed (t, j), f] = 1/(1 − p) with probability 1 − p, else 0 (scale = 1/(1 − p)); or
// 1 with probability p, else 0 (scale = 1, zoneout's "keep the previous state").
template <typename Real>
void fill_step_mask(const SequencePacking& p, std::uint64_t seed, std::uint64_t stream,
                    Index width, double rate, bool dropout, Real* keep) {
  const Real scale = dropout ? Real(1 / (1 - rate)) : Real(1);
  for (Index t = 0; t < p.steps; ++t)
    for (Index j = 0; j < p.batch_sizes[t]; ++j) {
      Real* row = keep + (p.offsets[t] + j) * width;
      for (Index f = 0; f < width; ++f) {
        const bool hit = uniform(seed, stream, t, p.order[j], f) < rate;
        row[f] = dropout ? (hit ? Real(0) : scale) : (hit ? Real(1) : Real(0));
      }
    }
}

}  // namespace

template <typename Real>
void run_stack_forward(const cells::CellLayers<Real>& layers, Directions directions,
                       const RegularisationRates& rates, SequencePacking p, bool batch_first,
                       const Real* x, const Real* h0, Real* y, Real* h_n, StackCache<Real>* cache) {
  const Index D = directions.count;
  const Index L = static_cast<Index>(layers.size()) / D, H = layers[0]->hidden(), B = p.batch;
  const Index total = p.total_rows(), I0 = layers[0]->input();
  const StepRows rows = p.step_rows();
  // A dense time-major batch is already packed: inference reads x and (one direction) writes y
  // in place, so it holds no copy of the sequence.
  const bool in_place = p.dense && !batch_first;
  if (cache) {
    cache->inputs.resize(L);
    cache->outputs.resize(L * D);
    cache->records.resize(L * D);
    cache->batch_statistics.resize(layers[0]->batch_statistics_size() > 0 ? L * D : 0);
    cache->statistics_columns = layers[0]->batch_statistics_size() / 2;
    cache->dropout_keep.resize(rates.dropout > 0 ? L - 1 : 0);
    cache->recurrent_keep.resize(rates.recurrent_dropout > 0 ? L * D : 0);
    cache->masked_states.resize(rates.recurrent_dropout > 0 ? L * D : 0);
    cache->zoneout_keep.resize(rates.zoneout > 0 ? L * D : 0);
    cache->has_h0 = h0 != nullptr;
    cache->hidden = H;
  }

  Buffer<Real> local_h0, local_input, local_next, local_states, mirrored_input;
  Real* h0_packed = nullptr;
  if (h0) {
    h0_packed = (cache ? cache->h0 : local_h0).ensure(L * D * B * H);
    for (Index s = 0; s < L * D; ++s) gather_states(p, h0 + s * B * H, H, h0_packed + s * B * H);
  }
  std::vector<Real> h_n_packed(static_cast<size_t>(B * H));
  const bool y_in_place = L > 0 && D == 1 && !directions.reverse && in_place && !cache;
  // Otherwise inference reads x's rows where they are (unless x is packed already) and writes
  // the last layer's states to y's rows as it goes: no packed copy of either. caller_rows[d]:
  // the caller's row of each packed row in direction d's step order.
  const bool y_direct = L > 0 && !cache && !y_in_place;
  std::vector<Index> caller_rows[2], pad_rows;
  if (y_direct) {
    for (Index d = 0; d < D; ++d) caller_rows[d] = packed_source_rows(p, batch_first, directions.backward_in_time(d));
    pad_rows = padded_rows(p, batch_first);
  }
  const Real* layer_input = x;
  if (cache) {
    Real* packed = cache->inputs[0].ensure(total * I0);
    gather_packed(p, batch_first, x, I0, Index(0), I0, packed);
    layer_input = packed;
  }
  const bool x_direct = y_direct && !in_place;
  for (Index l = 0; l < L; ++l) {
    const Index I = layers[l * D]->input();
    const bool last = l == L - 1;
    // The next layer's input: cached for backward, or a scratch buffer (two alternate).
    Real* next = nullptr;
    if (!(last && (y_in_place || y_direct))) {
      next = cache && !last ? cache->inputs[l + 1].ensure(total * D * H)
                            : (l % 2 == 0 ? local_next : local_input).ensure(total * D * H);
    }
    for (Index d = 0; d < D; ++d) {
      const Index s = l * D + d;
      CallerRows<Real> in_caller;
      if (l == 0 && x_direct) in_caller.x_rows = caller_rows[d].data();
      if (last && y_direct) {
        in_caller.y = y + d * H;
        in_caller.y_rows = caller_rows[d].data();
        in_caller.pad_rows = pad_rows.data();
        in_caller.y_row_width = D * H;
      }
      const Real* direction_input = layer_input;
      if (directions.backward_in_time(d) && !in_caller.x_rows) {
        Real* mirrored = mirrored_input.ensure(total * I);
        mirror_packed(p, layer_input, I, I, mirrored, I);
        direction_input = mirrored;
      }
      // One direction's inference states are the next layer's input as they stand.
      const bool out_is_next = !cache && D == 1 && !directions.reverse && next;
      // The states of a last layer that writes y's rows itself are not kept (run_forward).
      Real* out = last && y_in_place ? y
                  : cache          ? cache->outputs[s].ensure(total * H)
                  : out_is_next    ? next
                  : last && y_direct ? nullptr
                                   : local_states.ensure(total * H);
      Real* record = cache ? cache->records[s].ensure(total * 4 * H) : nullptr;
      Regularisation<Real> reg;
      if (cache && rates.recurrent_dropout > 0) {
        // One mask per sequence: the "step" of every unit's draw is fixed.
        Real* keep = cache->recurrent_keep[s].ensure(B * H);
        const Real scale = Real(1 / (1 - rates.recurrent_dropout));
        for (Index j = 0; j < B; ++j)
          for (Index u = 0; u < H; ++u)
            keep[j * H + u] = uniform(rates.seed, kRecurrentDropout + 8 * s, 0, p.order[j], u) <
                                      rates.recurrent_dropout ? Real(0) : scale;
        reg.recurrent_keep = keep;
        reg.masked_states = cache->masked_states[s].ensure(total * H);
      }
      if (cache && rates.zoneout > 0) {
        Real* keep = cache->zoneout_keep[s].ensure(total * H);
        fill_step_mask(p, rates.seed, kZoneout + 8 * s, H, rates.zoneout, false, keep);
        reg.zoneout_keep = keep;
      } else if (!cache) {
        reg.zoneout_rate = static_cast<Real>(rates.zoneout);
      }
      Real* statistics = cache && !cache->batch_statistics.empty()
                             ? cache->batch_statistics[s].ensure(layers[s]->batch_statistics_size())
                             : nullptr;
      run_forward(*layers[s], rows, direction_input, h0_packed ? h0_packed + s * B * H : nullptr,
                  out, h_n_packed.data(), record, &reg, statistics, &in_caller);
      scatter_states(p, h_n_packed.data(), H, h_n + s * B * H);
      if (!next || out_is_next) continue;
      if (directions.backward_in_time(d)) {
        mirror_packed(p, out, H, H, next + d * H, D * H);
      } else {
        copy_columns(total, H, out, H, next + d * H, D * H);
      }
    }
    if (cache && rates.dropout > 0 && !last) {
      Real* keep = cache->dropout_keep[l].ensure(total * D * H);
      fill_step_mask(p, rates.seed, kDropout + 8 * l, D * H, rates.dropout, true, keep);
      for (Index i = 0; i < total * D * H; ++i) next[i] *= keep[i];
    }
    layer_input = next;
  }
  if (!y_in_place && !y_direct) {
    scatter_packed(p, batch_first, layer_input, D * H, y, D * H, Index(0));
  }
  if (cache) {
    cache->batch_first = batch_first;
    cache->packing = std::move(p);
  }
}

template <typename Real>
void run_stack_step(const cells::CellLayers<Real>& layers, double zoneout, Index batch,
                    const Real* x, const Real* h0, Real* y, Real* h_n) {
  const Index L = static_cast<Index>(layers.size()), H = layers[0]->hidden(), B = batch;
  StepRows rows;
  rows.steps = 1;
  rows.batch = B;
  Regularisation<Real> reg;
  reg.zoneout_rate = static_cast<Real>(zoneout);
  // Layer l's output is layer l + 1's input: two alternating scratch rows (the last layer
  // writes y directly).
  Scratch<Real> states(L > 1 ? 2 * B * H : 1);
  const Real* input = x;
  for (Index l = 0; l < L; ++l) {
    Real* out = l == L - 1 ? y : states.data() + (l % 2) * B * H;
    const Real* layer_h0 = h0 ? h0 + l * B * H : nullptr;
    Real* layer_h_n = h_n + l * B * H;
    run_forward(*layers[l], rows, input, layer_h0, out, layer_h_n, static_cast<Real*>(nullptr),
                &reg);
    input = out;
  }
}

template <typename Real>
void run_stack_backward(const cells::CellLayers<Real>& layers, Directions directions,
                        const StackCache<Real>& cache, const Real* dy, const Real* dh_n, Real* dx,
                        Real* dh0, const std::vector<GradientsView<Real>>& grads) {
  const Index D = directions.count;
  const SequencePacking& p = cache.packing;
  const Index L = static_cast<Index>(layers.size()) / D, H = layers[0]->hidden(), B = p.batch;
  const Index total = p.total_rows();
  const StepRows rows = p.step_rows();

  // dL/d(output of layer l), then of its input, in alternating buffers.
  Buffer<Real> d_a, d_b, d_states, d_part, mirrored, state_in, state_out;
  Real* d_output = d_a.ensure(total * D * H);
  gather_packed(p, cache.batch_first, dy, D * H, Index(0), D * H, d_output);
  Real* dh_n_rows = state_in.ensure(B * H);
  Real* dh0_rows = state_out.ensure(B * H);
  for (Index l = L - 1; l >= 0; --l) {
    const Index I = layers[l * D]->input();
    const Real* input = cache.inputs[l].data();
    Real* d_input = (l % 2 == (L - 1) % 2 ? d_b : d_a).ensure(total * I);
    for (Index d = 0; d < D; ++d) {
      const Index s = l * D + d;
      const Real* direction_input = input;
      Real* d_direction_states = d_states.ensure(total * H);
      const bool backward_in_time = directions.backward_in_time(d);
      if (backward_in_time) {
        mirror_packed(p, d_output + d * H, D * H, H, d_direction_states, H);
        Real* mirrored_input = mirrored.ensure(total * I);
        mirror_packed(p, input, I, I, mirrored_input, I);
        direction_input = mirrored_input;
      } else {
        copy_columns(total, H, d_output + d * H, D * H, d_direction_states, H);
      }
      if (dh_n) gather_states(p, dh_n + s * B * H, H, dh_n_rows);
      // A forward direction writes dL/dx directly; one backward in time writes it in its own
      // step order, put back into the input's (added to the forward direction's, if any).
      Real* d_x = backward_in_time ? d_part.ensure(total * I) : d_input;
      Regularisation<Real> reg;
      if (!cache.recurrent_keep.empty()) {
        reg.recurrent_keep = cache.recurrent_keep[s].data();
        reg.masked_states = cache.masked_states[s].data();
      }
      if (!cache.zoneout_keep.empty()) reg.zoneout_keep = cache.zoneout_keep[s].data();
      run_backward(*layers[s], rows, direction_input, cache.has_h0 ? cache.h0.data() + s * B * H : nullptr,
                   cache.outputs[s].data(), cache.records[s].data(), d_direction_states,
                   dh_n ? dh_n_rows : nullptr, d_x, dh0_rows, grads[s], &reg,
                   cache.batch_statistics.empty() ? nullptr : cache.batch_statistics[s].data());
      if (dh0) scatter_states(p, dh0_rows, H, dh0 + s * B * H);
      if (backward_in_time && d == 0) {
        mirror_packed(p, d_x, I, I, d_input, I);
      } else if (backward_in_time) {
        Real* back = mirrored.ensure(total * I);
        mirror_packed(p, d_x, I, I, back, I);
        for (Index i = 0; i < total * I; ++i) d_input[i] += back[i];
      }
    }
    if (l > 0 && !cache.dropout_keep.empty()) {
      // This layer's input was the layer below's output times its dropout mask.
      const Real* keep = cache.dropout_keep[l - 1].data();
      for (Index i = 0; i < total * I; ++i) d_input[i] *= keep[i];
    }
    d_output = d_input;
  }
  scatter_packed(p, cache.batch_first, d_output, layers[0]->input(), dx, layers[0]->input(), Index(0));
}

template void run_stack_forward<float>(const cells::CellLayers<float>&, Directions,
                                       const RegularisationRates&, SequencePacking, bool,
                                       const float*, const float*, float*, float*,
                                       StackCache<float>*);
template void run_stack_forward<double>(const cells::CellLayers<double>&, Directions,
                                        const RegularisationRates&, SequencePacking, bool,
                                        const double*, const double*, double*, double*,
                                        StackCache<double>*);
template void run_stack_step<float>(const cells::CellLayers<float>&, double, Index,
                                    const float*, const float*, float*, float*);
template void run_stack_step<double>(const cells::CellLayers<double>&, double, Index,
                                     const double*, const double*, double*, double*);
template void run_stack_backward<float>(const cells::CellLayers<float>&, Directions,
                                        const StackCache<float>&, const float*, const float*,
                                        float*, float*, const std::vector<GradientsView<float>>&);
template void run_stack_backward<double>(const cells::CellLayers<double>&, Directions,
                                         const StackCache<double>&, const double*, const double*,
                                         double*, double*,
                                         const std::vector<GradientsView<double>>&);

}  // namespace fastgru::driver
