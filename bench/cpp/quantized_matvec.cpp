// The B = 1 matrix-vector product of a GRU step with 3H × H weights (the recurrent product of
// one streaming step) in float32, bf16 and int8 on the kernel tables dispatch chose, one thread
// (the kernels called directly, no pool), the same weights and input in one run. Each round
// times `reps` calls of each precision in turn; medians over the rounds, in microseconds per
// call, with the weight bytes read per second and the speed-up over float32. The quantized times
// include rounding or quantizing the input row, as a step must. Built with
// -DFASTGRU_BUILD_TESTS=ON.
//   build/dev/fastgru_quantized_matvec [rounds]
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <random>
#include <vector>

#include "cells/packing.h"
#include "dispatch/kernel_table.h"
#include "fastgru/runtime.h"
#include "kernels/quantized/quantized_kernels.h"
#include "kernels/quantized/quantized_panels.h"
#include "kernels/quantized/quantized_product.h"

namespace {

using Clock = std::chrono::steady_clock;
using fastgru::kernels::Index;

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

template <class Call>
double microseconds_per_call(int reps, Call call) {
  const auto start = Clock::now();
  for (int r = 0; r < reps; ++r) call();
  return std::chrono::duration<double, std::micro>(Clock::now() - start).count() / reps;
}

}  // namespace

int main(int argc, char** argv) {
  const int rounds = argc > 1 ? std::max(1, std::atoi(argv[1])) : 31;
  const auto& f32 = fastgru::dispatch::active_kernels<float>();
  const auto& q = fastgru::kernels::quantized_kernels_for(f32.level);
  std::printf("B = 1 matvec, 3H x H weights, 1 thread, float32 kernels %s, quantized kernels %s, "
              "median of %d rounds\n", f32.isa, q.isa, rounds);
  std::printf("%6s %-8s %10s %10s %12s %8s\n", "H", "weights", "us/call", "MB", "weight GB/s",
              "vs fp32");
  std::mt19937 generator(0);
  std::uniform_real_distribution<float> uniform(-0.06f, 0.06f);
  for (Index H : {256, 512, 1024}) {
    const Index K = H, N = 3 * H, PW = 3 * f32.vector_width, panel_count = (N + PW - 1) / PW;
    std::vector<float> weight(N * K), x(K), bias(N), c(N);
    for (float& v : weight) v = uniform(generator);
    for (float& v : x) v = uniform(generator) * 10;
    for (float& v : bias) v = uniform(generator);
    const auto f32_panels = fastgru::cells::pack_natural<float>(
        K, N, PW, [&](Index k, Index col) { return weight[col * K + k]; });
    const auto bf16_panels = fastgru::kernels::pack_bf16_natural(weight.data(), N, K, PW);
    const auto int8_panels = fastgru::kernels::pack_int8_natural(weight.data(), N, K, PW, "weight");
    const Index ld = fastgru::kernels::padded_depth(K);
    std::vector<float> rounded(ld), row_scale(1);
    std::vector<std::int16_t> quantized(ld);
    auto run_f32 = [&] {
      f32.multiply_panels(1, N, K, x.data(), K, 1, f32_panels.data(), K * PW, 0, panel_count,
                          c.data(), N, false, bias.data());
    };
    auto run_bf16 = [&] {
      q.round_rows_to_bf16(1, K, x.data(), K, rounded.data(), ld);
      q.multiply_panels_bf16(1, N, K, rounded.data(), ld, bf16_panels.values.data(),
                             bf16_panels.panel_stride(), 0, panel_count, c.data(), N, bias.data());
    };
    auto run_int8 = [&] {
      q.quantize_rows_int8(1, K, x.data(), K, quantized.data(), ld, row_scale.data());
      q.multiply_panels_int8(1, N, K, quantized.data(), ld, row_scale.data(),
                             int8_panels.values.data(), int8_panels.scales.data(),
                             int8_panels.panel_stride(), 0, panel_count, c.data(), N, bias.data());
    };
    // About a millisecond of calls per timing.
    const int reps = static_cast<int>(std::max<Index>(1, 64 * 256 * 256 / (H * H)));
    std::vector<double> times[3];
    for (int r = 0; r < rounds + 1; ++r) {
      const double t0 = microseconds_per_call(reps, run_f32);
      const double t1 = microseconds_per_call(reps, run_bf16);
      const double t2 = microseconds_per_call(reps, run_int8);
      if (r == 0) continue;  // warm-up: packing left the caches in another state
      times[0].push_back(t0);
      times[1].push_back(t1);
      times[2].push_back(t2);
    }
    const char* names[] = {"fp32", "bf16", "int8"};
    const double bytes[] = {4.0 * N * K, 2.0 * N * K, 1.0 * N * K + 4.0 * N};
    const double fp32 = median(times[0]);
    for (int p = 0; p < 3; ++p) {
      const double us = median(times[p]);
      std::printf("%6lld %-8s %10.2f %10.2f %12.1f %7.2fx\n", static_cast<long long>(H), names[p],
                  us, bytes[p] / 1e6, bytes[p] / us / 1e3, fp32 / us);
    }
  }
}
