// The reduced-precision products (cpp/src/kernels/quantized/, driver/quantized_matmul.h) on every
// kernel table this CPU runs, against a plain model of the scheme written here from EQUATIONS.md
// §9: int8 bit for bit (exact integer sums, the same float32 dequantisation), bf16 within a
// bound on float32 summation derived below.
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <limits>
#include <random>
#include <stdexcept>
#include <string>
#include <vector>

#include "dispatch/cpu_features.h"
#include "driver/quantized_matmul.h"
#include "driver/work_split.h"
#include "fastgru/runtime.h"
#include "kernels/quantized/quantized_kernels.h"
#include "kernels/quantized/quantized_panels.h"
#include "kernels/quantized/quantized_product.h"

namespace {

using fastgru::kernels::Bf16;
using fastgru::kernels::Index;
using fastgru::kernels::QuantizedKernels;

void check(bool condition, const std::string& what) {
  if (!condition) throw std::runtime_error(what);
}

std::uint32_t bits_of(float value) {
  std::uint32_t bits;
  std::memcpy(&bits, &value, sizeof bits);
  return bits;
}

float from_bits(std::uint32_t bits) {
  float value;
  std::memcpy(&value, &bits, sizeof value);
  return value;
}

std::string hex(std::uint32_t bits) {
  char text[16];
  std::snprintf(text, sizeof text, "0x%08x", bits);
  return text;
}

// ---- The model: the scheme as reference_quantized.py states it, one value at a time. ----

// Round to nearest even on the top 16 bits, in 64 bits so that nothing wraps; NaN kept quiet.
std::uint16_t model_bf16(float value) {
  const std::uint64_t bits = bits_of(value);
  if (std::isnan(value)) return static_cast<std::uint16_t>((bits >> 16) | 0x40);
  return static_cast<std::uint16_t>((bits + 0x7FFF + ((bits >> 16) & 1)) >> 16);
}

float model_bf16_value(float value) { return from_bits(std::uint32_t(model_bf16(value)) << 16); }

struct ModelRow {
  std::vector<int> q;
  float scale = 0;
  bool finite = true;
};

// scale = max|row| / 127; q = rint(row · (127 / max|row|)) clamped to ±127, the reciprocal a
// float32; a zero stays 0 even where the reciprocal overflowed (0 · inf is not a number).
ModelRow model_quantize(const float* row, Index n) {
  ModelRow out;
  out.q.assign(static_cast<std::size_t>(n), 0);
  float largest = 0;
  for (Index k = 0; k < n; ++k) {
    if (!std::isfinite(row[k])) out.finite = false;
    largest = std::max(largest, std::fabs(row[k]));
  }
  if (!out.finite || largest == 0) return out;
  out.scale = largest / 127.0f;
  const float inverse = 127.0f / largest;
  for (Index k = 0; k < n; ++k) {
    if (row[k] == 0) continue;
    const float scaled = std::nearbyint(row[k] * inverse);
    out.q[k] = static_cast<int>(std::max(-127.0f, std::min(127.0f, scaled)));
  }
  return out;
}

// ---- Data ----

enum class Magnitude { unit, huge, tiny, subnormal, mixed };
const Magnitude kMagnitudes[] = {Magnitude::unit, Magnitude::huge, Magnitude::tiny,
                                 Magnitude::subnormal, Magnitude::mixed};

std::vector<float> random_values(std::size_t count, std::mt19937& generator, Magnitude magnitude) {
  std::uniform_real_distribution<float> uniform(-1, 1);
  std::uniform_int_distribution<int> exponent(-60, 60);
  std::vector<float> out(count);
  for (float& v : out) {
    v = uniform(generator);
    if (magnitude == Magnitude::huge) v *= 1e18f;
    if (magnitude == Magnitude::tiny) v *= 1e-18f;
    if (magnitude == Magnitude::subnormal) v *= 1e-41f;
    if (magnitude == Magnitude::mixed) v = std::ldexp(v, exponent(generator));
  }
  return out;
}

// Every table this CPU can run: the portable one, AVX2, AVX-512 (F and BW) and AVX512-BF16 where
// it has them.
std::vector<const QuantizedKernels*> tables_to_test() {
  const fastgru::dispatch::CpuFeatures features = fastgru::dispatch::detect_cpu_features();
  std::vector<const QuantizedKernels*> tables = {&fastgru::kernels::quantized_kernels__scalar()};
  if (features.avx2_fma)
    tables.push_back(&fastgru::kernels::quantized_kernels_for(fastgru::kernels::Isa::avx2));
  if (features.avx512bw) tables.push_back(&fastgru::kernels::quantized_kernels__avx512bw());
  if (features.avx512bf16) tables.push_back(&fastgru::kernels::quantized_kernels__avx512bf16());
  if (features.avx512bf16 && features.avx512vnni)
    tables.push_back(&fastgru::kernels::quantized_kernels__avx512vnni());
  return tables;
}

std::string shape_name(const QuantizedKernels& k, Index rows, Index depth, Index n) {
  return std::string(k.isa) + " rows " + std::to_string(rows) + " depth " + std::to_string(depth) +
         " columns " + std::to_string(n);
}

// Awkward sizes around the scalar (4), AVX2 (8) and AVX-512 (16) vector widths and their 3W
// panels, and every row tile up to 8 and beyond.
const Index kRows[] = {0, 1, 2, 3, 4, 5, 6, 7, 8, 9};
const Index kDepths[] = {0, 1, 2, 3, 7, 8, 9, 16, 17, 31, 64};
const Index kColumns[] = {1, 2, 3, 4, 5, 7, 8, 9, 12, 13, 15, 16, 17, 23, 24, 25, 33, 48, 49, 73, 97};

// ---- Conversions ----

void bf16_rounding_follows_the_definition() {
  struct Case {
    std::uint32_t in;
    std::uint16_t out;
    const char* what;
  };
  const Case cases[] = {
      {0x3F800000, 0x3F80, "exact"},
      {0x3F808000, 0x3F80, "tie to even (down)"},
      {0x3F818000, 0x3F82, "tie to even (up)"},
      {0x3F808001, 0x3F81, "above the tie"},
      {0xBF807FFF, 0xBF80, "below the tie, negative"},
      {0x7F7FFFFF, 0x7F80, "the largest float overflows to inf"},
      {0xFF800000, 0xFF80, "-inf"},
      {0x7F800001, 0x7FC0, "a signalling NaN with its payload in the dropped bits stays NaN"},
      {0xFFFFFFFF, 0xFFFF, "a NaN with every bit set (no carry out)"},
      {0x00000001, 0x0000, "the smallest subnormal rounds to zero"},
      {0x80018000, 0x8002, "a negative subnormal tie rounds to even"},
  };
  for (const Case& c : cases) {
    check(model_bf16(from_bits(c.in)) == c.out, std::string("model: ") + c.what);
    check(fastgru::kernels::bf16_from_float(from_bits(c.in)) == c.out,
          std::string("bf16_from_float: ") + c.what + ", input " + hex(c.in));
  }
  std::mt19937 generator(1);
  std::uniform_int_distribution<std::uint32_t> any_bits;
  for (const QuantizedKernels* k : tables_to_test()) {
    for (Index depth = 0; depth <= 37; ++depth) {
      const Index rows = 3, ld_in = depth + 5, ld_out = fastgru::kernels::padded_depth(depth) + 2;
      std::vector<float> in(rows * ld_in);
      for (float& v : in) v = from_bits(any_bits(generator));  // every class: NaN, inf, subnormal
      for (std::size_t i = 0; i < sizeof cases / sizeof cases[0] && i < in.size(); ++i)
        in[i] = from_bits(cases[i].in);
      std::vector<float> out(rows * ld_out, 1.0f);
      k->round_rows_to_bf16(rows, depth, in.data(), ld_in, out.data(), ld_out);
      for (Index r = 0; r < rows; ++r) {
        for (Index j = 0; j < ld_out; ++j) {
          const std::uint32_t got = bits_of(out[r * ld_out + j]);
          auto model_at = [&](Index i) {
            return i < depth ? std::uint32_t(model_bf16(in[r * ld_in + i])) : 0u;
          };
          // Pair tables pack the values at 2j and 2j + 1 into slot j; the others widen each.
          const Index used = k->bf16_rows_as_pairs ? fastgru::kernels::padded_depth(depth) / 2
                                                   : fastgru::kernels::padded_depth(depth);
          const std::uint32_t expected =
              j >= used ? bits_of(1.0f)
              : k->bf16_rows_as_pairs ? model_at(2 * j) | model_at(2 * j + 1) << 16
                                      : model_at(j) << 16;
          check(got == expected, std::string(k->isa) + " round_rows_to_bf16 depth " +
                                     std::to_string(depth) + " [" + std::to_string(r) + ", " +
                                     std::to_string(j) + "]: " + hex(got) + ", expected " + hex(expected));
        }
      }
    }
  }
}

void int8_quantization_follows_the_definition() {
  // Hand-checked cases: max|row| = 127 makes the reciprocal 1, so the values round as they are.
  {
    const float row[] = {2.5f, 3.5f, -2.5f, -0.5f, 0.5f, 1.5f, 127.0f, -126.5f, 0.0f};
    const int expected[] = {2, 4, -2, 0, 0, 2, 127, -126, 0};
    const ModelRow model = model_quantize(row, 9);
    for (int j = 0; j < 9; ++j) check(model.q[j] == expected[j], "model: ties to even");
    check(model.scale == 1.0f, "model: scale of a row whose largest value is 127");
  }
  std::mt19937 generator(2);
  for (const QuantizedKernels* k : tables_to_test()) {
    for (Index depth = 0; depth <= 37; ++depth) {
      for (Magnitude magnitude : kMagnitudes) {
        const Index rows = 6, ld_in = depth + 3, ld_out = fastgru::kernels::padded_depth(depth) + 4;
        std::vector<float> in = random_values(rows * ld_in, generator, magnitude);
        // Row 1: all zero; row 2: ties (largest 127, so the reciprocal is 1); row 3: so tiny
        // that 127 / max|row| overflows, with zeros in it; row 4: the largest float.
        std::fill(in.begin() + ld_in, in.begin() + 2 * ld_in, 0.0f);
        for (Index j = 0; j < depth; ++j) {
          in[2 * ld_in + j] = j == 0 ? -127.0f : float(j % 50) - 24.5f;
          in[3 * ld_in + j] = j % 3 == 0 ? 0.0f : from_bits(0x00000001u + std::uint32_t(j));
          in[4 * ld_in + j] = j == depth / 2 ? -std::numeric_limits<float>::max() : in[4 * ld_in + j];
        }
        std::vector<std::int16_t> out(rows * ld_out, 99);
        std::vector<float> scales(rows, -1.0f);
        const Index refused = k->quantize_rows_int8(rows, depth, in.data(), ld_in, out.data(),
                                                    ld_out, scales.data());
        check(refused == fastgru::kernels::kAllRowsFinite, std::string(k->isa) + ": a finite row refused");
        for (Index r = 0; r < rows; ++r) {
          const ModelRow model = model_quantize(in.data() + r * ld_in, depth);
          const std::string where = std::string(k->isa) + " quantize_rows_int8 depth " +
                                    std::to_string(depth) + " row " + std::to_string(r);
          check(bits_of(scales[r]) == bits_of(model.scale), where + ": scale");
          for (Index j = 0; j < ld_out; ++j) {
            const int expected = j < depth ? model.q[j] : (j < fastgru::kernels::padded_depth(depth) ? 0 : 99);
            check(out[r * ld_out + j] == expected,
                  where + " [" + std::to_string(j) + "]: " + std::to_string(out[r * ld_out + j]) +
                      ", expected " + std::to_string(expected));
          }
        }
        if (k->int8_depth_group != 4) continue;
        // The quad kernels' rows: the same values as q + 128, zero in their padding.
        const Index ld_quads = fastgru::kernels::padded_depth(depth, 4) + 3;
        std::vector<std::uint8_t> bytes(rows * ld_quads, 99);
        std::vector<float> byte_scales(rows, -1.0f);
        check(k->quantize_rows_unsigned(rows, depth, in.data(), ld_in, bytes.data(), ld_quads,
                                        byte_scales.data()) == fastgru::kernels::kAllRowsFinite,
              std::string(k->isa) + ": a finite row refused (unsigned)");
        for (Index r = 0; r < rows; ++r) {
          const ModelRow model = model_quantize(in.data() + r * ld_in, depth);
          check(bits_of(byte_scales[r]) == bits_of(model.scale), std::string(k->isa) + ": unsigned scale");
          for (Index j = 0; j < ld_quads; ++j) {
            const int expected =
                j < depth ? model.q[j] + 128 : (j < fastgru::kernels::padded_depth(depth, 4) ? 0 : 99);
            check(bytes[r * ld_quads + j] == expected,
                  std::string(k->isa) + " quantize_rows_unsigned depth " + std::to_string(depth) +
                      " [" + std::to_string(r) + ", " + std::to_string(j) + "]");
          }
        }
      }
    }
  }
}

void int8_quantization_refuses_rows_that_are_not_finite() {
  const float specials[] = {std::numeric_limits<float>::quiet_NaN(),
                            std::numeric_limits<float>::infinity(),
                            -std::numeric_limits<float>::infinity()};
  for (const QuantizedKernels* k : tables_to_test()) {
    for (Index depth : {1, 8, 19}) {
      for (float special : specials) {
        for (Index position : {Index(0), depth - 1}) {
          const Index rows = 4;
          std::vector<float> in(rows * depth, 0.25f);
          in[2 * depth + position] = special;
          in[3 * depth] = special;
          std::vector<std::int16_t> out(rows * (depth + 1));
          std::vector<float> scales(rows);
          const Index refused = k->quantize_rows_int8(rows, depth, in.data(), depth, out.data(),
                                                      depth + 1, scales.data());
          const std::string where = std::string(k->isa) + " depth " + std::to_string(depth) +
                                    " value " + std::to_string(special);
          check(refused == 2, where + ": first refused row " + std::to_string(refused) + ", expected 2");
          check(scales[2] == 0 && scales[3] == 0 && scales[1] > 0, where + ": scales");
          for (Index j = 0; j < depth; ++j) check(out[2 * (depth + 1) + j] == 0, where + ": refused row zeroed");
        }
      }
    }
  }
}

// ---- Packing ----

void panels_hold_the_weights_where_the_kernels_read_them() {
  std::mt19937 generator(3);
  for (Index panel_width : {12, 24, 48}) {
    for (Index depth : {1, 2, 5}) {
      for (Index n : {1, 13, 25}) {
        const std::vector<float> weight = random_values(n * depth, generator, Magnitude::mixed);
        const auto bf16 = fastgru::kernels::pack_bf16_natural(weight.data(), n, depth, panel_width);
        const auto int8 = fastgru::kernels::pack_int8_natural(weight.data(), n, depth, panel_width, "w");
        const Index panels = (n + panel_width - 1) / panel_width, stride = bf16.panel_stride();
        check(bf16.panel_count == panels && int8.panel_count == panels && stride == int8.panel_stride() &&
                  stride == fastgru::kernels::padded_depth(depth) * panel_width &&
                  Index(bf16.values.size()) == panels * stride && Index(int8.scales.size()) == panels * panel_width,
              "packed sizes");
        for (Index p = 0; p < panels; ++p) {
          for (Index c = 0; c < panel_width; ++c) {
            const Index j = p * panel_width + c;
            const ModelRow row = j < n ? model_quantize(weight.data() + j * depth, depth) : ModelRow{};
            check(bits_of(int8.scales[p * panel_width + c]) == bits_of(row.scale), "int8 scale in panel order");
            for (Index k = 0; k < fastgru::kernels::padded_depth(depth); ++k) {
              const Index at = p * stride + (k / 2) * 2 * panel_width + 2 * c + k % 2;
              const bool inside = j < n && k < depth;
              check(bf16.values[at] == (inside ? model_bf16(weight[j * depth + k]) : 0), "bf16 panel element");
              check(int8.values[at] == (inside ? row.q[k] : 0), "int8 panel element");
            }
          }
        }
      }
    }
  }
  // A custom column map (a cell's gate panels): column c of the single panel holds row 2 − c.
  const float weight[] = {1, 2, 3, 4, 5, 6};  // (3, 2)
  const auto gate = fastgru::kernels::pack_bf16_panels(2, 1, 4, [&](Index, Index c) -> const float* {
    return c < 3 ? weight + (2 - c) * 2 : nullptr;
  });
  const Bf16 expected[] = {model_bf16(5), model_bf16(6), model_bf16(3), model_bf16(4),
                           model_bf16(1), model_bf16(2), 0, 0};
  for (int i = 0; i < 8; ++i) check(gate.values[i] == expected[i], "column map: element " + std::to_string(i));
}

void packing_refuses_what_int8_cannot_hold() {
  auto expect_error = [](auto pack, const std::string& expected_text) {
    try {
      pack();
    } catch (const std::invalid_argument& error) {
      const std::string message = error.what();
      check(message.find(expected_text) != std::string::npos,
            "message '" + message + "' lacks '" + expected_text + "'");
      return;
    }
    throw std::runtime_error("no error for: " + expected_text);
  };
  std::vector<float> weight(6, 1.0f);
  weight[4] = std::numeric_limits<float>::infinity();
  expect_error([&] { fastgru::kernels::pack_int8_natural(weight.data(), 2, 3, 12, "weight_hh"); },
               "weight_hh: int8 quantization needs finite weights, got inf at input 1 of panel column 1");
  const Index too_deep = fastgru::kernels::kMaxInt8Depth + 1;
  std::vector<float> deep(static_cast<std::size_t>(too_deep), 1.0f);
  expect_error([&] { fastgru::kernels::pack_int8_natural(deep.data(), 1, too_deep, 12, "weight_ih"); },
               "weight_ih: int8 products take at most 133144 inputs (int32 sums), got 133145");
}

// ---- Products ----

// The model's int8 product of one (row, column): exact integer sum, float32 dequantisation as the
// kernels do it: float(acc) · (s_x · s_w) + bias with one rounding (a fused multiply-add).
float model_int8_entry(const ModelRow& x, const ModelRow& w, float bias) {
  std::int64_t sum = 0;
  for (std::size_t k = 0; k < x.q.size(); ++k) sum += std::int64_t(x.q[k]) * w.q[k];
  check(sum >= INT32_MIN && sum <= INT32_MAX, "model: int32 range");
  return std::fma(static_cast<float>(static_cast<std::int32_t>(sum)), x.scale * w.scale, bias);
}

struct ProductCase {
  Index rows, depth, n;
  std::vector<float> x, weight, bias;
};

// c (rows, n) through the kernels one call per panel range, as a fused kernel or the
// whole-matrix product would make them; c's padding columns must stay untouched. Tables that
// multiply quads run their quad panels and unsigned rows (checked against the int16 rows).
std::vector<float> run_int8(const QuantizedKernels& k, const ProductCase& t, const float* bias,
                            Index ldc) {
  if (k.int8_depth_group == 4) {
    const auto panels = fastgru::kernels::pack_int8_natural(t.weight.data(), t.n, t.depth,
                                                            3 * k.vector_width, "w", 4);
    const Index ld = fastgru::kernels::padded_depth(t.depth, 4) + 4;
    std::vector<std::uint8_t> u(t.rows * ld + 1);
    std::vector<float> scales(t.rows + 1), c(t.rows * ldc + 1, 7.0f);
    check(k.quantize_rows_unsigned(t.rows, t.depth, t.x.data(), t.depth, u.data(), ld,
                                   scales.data()) == fastgru::kernels::kAllRowsFinite, "finite rows");
    for (Index p = 0; p < panels.panel_count; ++p)
      k.multiply_panels_unsigned(t.rows, t.n, t.depth, u.data(), ld, scales.data(),
                                 panels.values.data(), panels.scales.data(),
                                 panels.offset_sums.data(), panels.panel_stride(), p, p + 1,
                                 c.data(), ldc, bias);
    return c;
  }
  const auto panels = fastgru::kernels::pack_int8_natural(t.weight.data(), t.n, t.depth, 3 * k.vector_width, "w");
  const Index ld = fastgru::kernels::padded_depth(t.depth) + 2;
  std::vector<std::int16_t> q(t.rows * ld + 1);
  std::vector<float> scales(t.rows + 1), c(t.rows * ldc + 1, 7.0f);
  check(k.quantize_rows_int8(t.rows, t.depth, t.x.data(), t.depth, q.data(), ld, scales.data()) ==
            fastgru::kernels::kAllRowsFinite, "finite rows");
  for (Index p = 0; p < panels.panel_count; ++p)  // one panel per call: panel_begin > 0 too
    k.multiply_panels_int8(t.rows, t.n, t.depth, q.data(), ld, scales.data(), panels.values.data(),
                           panels.scales.data(), panels.panel_stride(), p, p + 1, c.data(), ldc, bias);
  return c;
}

std::vector<float> run_bf16(const QuantizedKernels& k, const ProductCase& t, const float* bias,
                            Index ldc) {
  const auto panels = fastgru::kernels::pack_bf16_natural(t.weight.data(), t.n, t.depth, 3 * k.vector_width);
  const Index ld = fastgru::kernels::padded_depth(t.depth) + 2;
  std::vector<float> rounded(t.rows * ld + 1), c(t.rows * ldc + 1, 7.0f);
  k.round_rows_to_bf16(t.rows, t.depth, t.x.data(), t.depth, rounded.data(), ld);
  k.multiply_panels_bf16(t.rows, t.n, t.depth, rounded.data(), ld, panels.values.data(),
                         panels.panel_stride(), 0, panels.panel_count, c.data(), ldc, bias);
  return c;
}

void check_padding_untouched(const std::vector<float>& c, const ProductCase& t, Index ldc,
                             const std::string& where) {
  for (Index i = 0; i < t.rows; ++i)
    for (Index j = t.n; j < ldc; ++j) check(c[i * ldc + j] == 7.0f, where + ": wrote past column n");
  check(c.back() == 7.0f, where + ": wrote past the last row");
}

void int8_products_equal_the_model_bit_for_bit() {
  std::mt19937 generator(4);
  int cases = 0;
  for (const QuantizedKernels* k : tables_to_test()) {
    for (Index rows : kRows) {
      for (Index depth : kDepths) {
        for (Index n : kColumns) {
          const Magnitude magnitude = kMagnitudes[cases++ % 5];
          ProductCase t{rows, depth, n, random_values(rows * depth, generator, magnitude),
                        random_values(n * depth, generator, kMagnitudes[cases % 5]),
                        random_values(n, generator, Magnitude::unit)};
          if (rows > 2)  // an all-zero row: scale 0
            std::fill(t.x.begin() + 2 * depth, t.x.begin() + 3 * depth, 0.0f);
          const Index ldc = n + 3;
          for (const float* bias : {static_cast<const float*>(nullptr), static_cast<const float*>(t.bias.data())}) {
            const std::vector<float> c = run_int8(*k, t, bias, ldc);
            const std::string where = shape_name(*k, rows, depth, n) + (bias ? " with bias" : "");
            for (Index i = 0; i < rows; ++i) {
              const ModelRow x = model_quantize(t.x.data() + i * depth, depth);
              for (Index j = 0; j < n; ++j) {
                const float expected =
                    model_int8_entry(x, model_quantize(t.weight.data() + j * depth, depth), bias ? bias[j] : 0.0f);
                check(bits_of(c[i * ldc + j]) == bits_of(expected),
                      where + " [" + std::to_string(i) + ", " + std::to_string(j) + "]: " +
                          std::to_string(c[i * ldc + j]) + ", expected " + std::to_string(expected));
              }
            }
            check_padding_untouched(c, t, ldc, where);
          }
        }
      }
    }
  }
}

// At the largest quantized values the sums reach 127² per term: deep products stay exact past
// float32's 2^24 and int16's range.
void int8_products_are_exact_at_full_scale() {
  for (const QuantizedKernels* k : tables_to_test()) {
    for (Index depth : {4099, 20001}) {
      ProductCase t{5, depth, 9, std::vector<float>(5 * depth, 1.0f),
                    std::vector<float>(9 * depth, -2.0f), {}};
      for (Index j = 0; j < depth; ++j) t.x[4 * depth + j] = j % 2 ? 3.0f : -3.0f;
      const std::vector<float> c = run_int8(*k, t, nullptr, 9);
      for (Index i = 0; i < 5; ++i) {
        const ModelRow x = model_quantize(t.x.data() + i * depth, depth);
        const float expected = model_int8_entry(x, model_quantize(t.weight.data(), depth), 0.0f);
        for (Index j = 0; j < 9; ++j)
          check(bits_of(c[i * 9 + j]) == bits_of(expected), shape_name(*k, 5, depth, 9) + ": full scale");
      }
      // Row 0: every term is 127 · −127 (x = 1 has scale 1/127, w = −2 has 2/127), summed
      // exactly, then rounded once to float32 and dequantised.
      const float row0 = std::fma(static_cast<float>(-127 * 127 * depth), (1.0f / 127.0f) * (2.0f / 127.0f), 0.0f);
      check(bits_of(c[0]) == bits_of(row0), shape_name(*k, 5, depth, 9) + ": full-scale sum " +
                                                std::to_string(c[0]) + ", expected " + std::to_string(row0));
    }
  }
}

// A float32 sum of n terms in any order, each addition rounding once, is within
// γ_n · Σ|terms| of the exact sum, γ_n = n·u / (1 − n·u) with u = 2^−24 (Higham, Accuracy and
// Stability of Numerical Algorithms, §4.2); a bf16 product is exact in float32 unless it is
// subnormal, and every operation whose result is subnormal may lose up to 2^−150 more. Here the
// sum has depth products and the bias (n = depth + 1 terms, at most depth + 2 additions
// including the final sum of two chains), and the double model's own error (depth·2^−53 relative)
// is added. A table whose products treat subnormals as zero (vdpbf16ps) loses every term with a
// subnormal factor (flushed_sum: their magnitudes) and up to 2^−126 at each operation instead.
double bf16_error_bound(Index depth, double magnitude_sum, bool flushes_subnormals,
                        double flushed_sum) {
  const double u = std::ldexp(1.0, -24), n = static_cast<double>(depth + 2);
  const double gamma = n * u / (1 - n * u);
  const double per_operation = std::ldexp(1.0, flushes_subnormals ? -126 : -150);
  return (gamma + depth * std::ldexp(1.0, -53)) * magnitude_sum + 2 * n * per_operation +
         (flushes_subnormals ? flushed_sum : 0.0);
}

void bf16_products_are_within_the_summation_bound() {
  std::vector<std::vector<float>> unit_results;  // unit-magnitude results, per table, in order
  for (const QuantizedKernels* k : tables_to_test()) {
    unit_results.emplace_back();
    int cases = 0;  // the same data for every table
    for (Index rows : kRows) {
      for (Index depth : kDepths) {
        for (Index n : kColumns) {
          const Magnitude magnitude = kMagnitudes[cases++ % 5];
          std::mt19937 data(static_cast<unsigned>(cases));
          ProductCase t{rows, depth, n, random_values(rows * depth, data, magnitude),
                        random_values(n * depth, data, magnitude), random_values(n, data, magnitude)};
          const Index ldc = n + 1;
          const std::vector<float> c = run_bf16(*k, t, t.bias.data(), ldc);
          const std::string where = shape_name(*k, rows, depth, n);
          for (Index i = 0; i < rows; ++i) {
            for (Index j = 0; j < n; ++j) {
              double exact = t.bias[j], magnitude_sum = std::fabs(t.bias[j]), flushed_sum = 0;
              for (Index d = 0; d < depth; ++d) {
                const float x = model_bf16_value(t.x[i * depth + d]);
                const float w = model_bf16_value(t.weight[j * depth + d]);
                const double term = double(x) * double(w);
                exact += term;
                magnitude_sum += std::fabs(term);
                if (std::fpclassify(x) == FP_SUBNORMAL || std::fpclassify(w) == FP_SUBNORMAL)
                  flushed_sum += std::fabs(term);
              }
              const double error = std::fabs(double(c[i * ldc + j]) - exact);
              const double bound = bf16_error_bound(depth, magnitude_sum,
                                                    k->bf16_flushes_subnormals, flushed_sum);
              check(error <= bound, where + " [" + std::to_string(i) + ", " + std::to_string(j) +
                                        "]: " + std::to_string(c[i * ldc + j]) + " is " +
                                        std::to_string(error) + " from " + std::to_string(exact) +
                                        ", bound " + std::to_string(bound));
              if (magnitude == Magnitude::unit) unit_results.back().push_back(c[i * ldc + j]);
            }
          }
          check_padding_untouched(c, t, ldc, where);
        }
      }
    }
  }
  // Products of normal bf16 values are exact, so a fused and an unfused multiply-add round the
  // same: tables with the same row tiles that widen bf16 sum in the same order and must agree to
  // the bit.
  const std::vector<const QuantizedKernels*> tables = tables_to_test();
  for (std::size_t t = 1; t < unit_results.size(); ++t)
    if (tables[t]->tile_rows == tables[0]->tile_rows && !tables[t]->bf16_flushes_subnormals)
      for (std::size_t i = 0; i < unit_results[0].size(); ++i)
        check(bits_of(unit_results[t][i]) == bits_of(unit_results[0][i]),
              std::string("bf16 products differ between ") + tables[0]->isa + " and " +
                  tables[t]->isa + " at result " + std::to_string(i));
}

void bf16_products_carry_non_finite_inputs() {
  for (const QuantizedKernels* k : tables_to_test()) {
    ProductCase t{3, 5, 7, std::vector<float>(15, 0.5f), std::vector<float>(35, 0.25f), {}};
    t.x[1] = std::numeric_limits<float>::quiet_NaN();
    t.x[5 + 4] = std::numeric_limits<float>::infinity();
    const std::vector<float> c = run_bf16(*k, t, nullptr, 7);
    for (Index j = 0; j < 7; ++j) {
      check(std::isnan(c[j]), std::string(k->isa) + ": NaN input gives NaN");
      check(std::isinf(c[7 + j]) && c[7 + j] > 0, std::string(k->isa) + ": inf input gives inf");
      check(bits_of(c[14 + j]) == bits_of(5 * 0.125f), std::string(k->isa) + ": finite row unaffected");
    }
  }
}

// ---- Whole-matrix products ----

void whole_matrix_products_equal_the_kernels_on_threads() {
  fastgru::set_num_threads(2);
  fastgru::driver::force_threads(true);
  std::mt19937 generator(6);
  for (const QuantizedKernels* k : tables_to_test()) {
    for (Index m : {0, 1, 7, 600}) {
      for (Index depth : {0, 1, 33}) {  // depth 0: the bias alone
        const Index n = 53, lda = depth + 1, ldc = n + 2;
        ProductCase t{m, depth, n, random_values(m * depth, generator, Magnitude::unit),
                      random_values(n * depth, generator, Magnitude::unit),
                      random_values(n, generator, Magnitude::unit)};
        std::vector<float> a(m * lda + 1, 3.0f);  // strided rows: the gap must not be read
        for (Index i = 0; i < m; ++i) std::copy(t.x.begin() + i * depth, t.x.begin() + (i + 1) * depth, a.begin() + i * lda);
        const std::string where = shape_name(*k, m, depth, n);
        const auto int8 = fastgru::kernels::pack_int8_natural(t.weight.data(), n, depth, 3 * k->vector_width, "w",
                                                              k->int8_depth_group);
        std::vector<float> c(m * ldc + 1, 7.0f);
        fastgru::driver::matmul_int8(*k, m, n, a.data(), lda, int8, c.data(), ldc, t.bias.data(), "x");
        const std::vector<float> expected_int8 = run_int8(*k, t, t.bias.data(), ldc);
        check(c == expected_int8, where + ": matmul_int8 differs from the kernels");
        const auto bf16 = fastgru::kernels::pack_bf16_natural(t.weight.data(), n, depth, 3 * k->vector_width);
        std::fill(c.begin(), c.end(), 7.0f);
        fastgru::driver::matmul_bf16(*k, m, n, a.data(), lda, bf16, c.data(), ldc, t.bias.data());
        check(c == run_bf16(*k, t, t.bias.data(), ldc), where + ": matmul_bf16 differs from the kernels");
        // The same rows gathered from a buffer twice as tall, in reverse order.
        std::vector<float> tall(2 * m * lda + 1, 5.0f);
        std::vector<Index> rows(m);
        for (Index i = 0; i < m; ++i) {
          rows[i] = 2 * (m - 1 - i) + 1;
          std::copy(a.begin() + i * lda, a.begin() + (i + 1) * lda, tall.begin() + rows[i] * lda);
        }
        std::fill(c.begin(), c.end(), 7.0f);
        fastgru::driver::matmul_int8(*k, m, n, tall.data(), lda, int8, c.data(), ldc, t.bias.data(), "x", rows.data());
        check(c == expected_int8, where + ": matmul_int8 of gathered rows differs");
        std::fill(c.begin(), c.end(), 7.0f);
        fastgru::driver::matmul_bf16(*k, m, n, tall.data(), lda, bf16, c.data(), ldc, t.bias.data(), rows.data());
        check(c == run_bf16(*k, t, t.bias.data(), ldc), where + ": matmul_bf16 of gathered rows differs");
      }
    }
  }
  fastgru::driver::force_threads(false);
}

void whole_matrix_products_refuse_clearly() {
  const QuantizedKernels& k = fastgru::kernels::quantized_kernels__scalar();
  const Index m = 40, depth = 6, n = 5;
  std::vector<float> a(m * depth, 1.0f), weight(n * depth, 0.5f), c(m * n);
  a[37 * depth + 4] = -std::numeric_limits<float>::infinity();
  a[39 * depth] = std::numeric_limits<float>::quiet_NaN();
  const auto int8 = fastgru::kernels::pack_int8_natural(weight.data(), n, depth, 12, "w");
  auto message_of = [](auto call) -> std::string {
    try {
      call();
    } catch (const std::invalid_argument& error) {
      return error.what();
    }
    return "no error";
  };
  fastgru::set_num_threads(2);
  fastgru::driver::force_threads(true);
  const std::string refused = message_of([&] {
    fastgru::driver::matmul_int8(k, m, n, a.data(), depth, int8, c.data(), n, nullptr, "input x");
  });
  fastgru::driver::force_threads(false);
  check(refused == "fastgru: input x: int8 quantization needs finite values, got -inf in row 37 at 4",
        "non-finite row: " + refused);
  const std::vector<Index> gathered = {0, 39, 37};  // the refused row named as the caller numbers it
  const std::string refused_gathered = message_of([&] {
    fastgru::driver::matmul_int8(k, 3, n, a.data(), depth, int8, c.data(), n, nullptr, "x", gathered.data());
  });
  check(refused_gathered == "fastgru: x: int8 quantization needs finite values, got nan in row 39 at 0",
        "non-finite gathered row: " + refused_gathered);
  const auto wide = fastgru::kernels::pack_int8_natural(weight.data(), n, depth, 24, "w");
  const std::string width = message_of([&] {
    fastgru::driver::matmul_int8(k, 1, n, a.data(), depth, wide, c.data(), n, nullptr, "x");
  });
  check(width == "fastgru: quantized product (scalar): expected panels 12 columns wide, got 24",
        "panel width: " + width);
  const std::string columns = message_of([&] {
    fastgru::driver::matmul_int8(k, 1, 13, a.data(), depth, int8, c.data(), 13, nullptr, "x");
  });
  check(columns == "fastgru: quantized product (scalar): expected 0 <= rows and 0 <= columns <= 12, "
                   "got rows 1, columns 13", "columns: " + columns);
  const auto bf16 = fastgru::kernels::pack_bf16_natural(weight.data(), n, depth, 12);
  const std::string strides = message_of([&] {
    fastgru::driver::matmul_bf16(k, 2, n, a.data(), depth - 1, bf16, c.data(), n, nullptr);
  });
  check(strides == "fastgru: quantized product (scalar): expected lda >= 6 and ldc >= 5, got 5 and 5",
        "strides: " + strides);
}

void quantized_tables_follow_the_float_tables_isa() {
  using fastgru::kernels::Isa;
  check(std::string(fastgru::kernels::quantized_kernels_for(Isa::scalar).isa) == "scalar", "scalar level");
  if (fastgru::dispatch::detect_cpu_features().avx2_fma) {
    check(std::string(fastgru::kernels::quantized_kernels_for(Isa::avx2).isa) == "avx2", "avx2 level");
    const fastgru::dispatch::CpuFeatures features = fastgru::dispatch::detect_cpu_features();
    const char* expected = features.avx512bf16 && features.avx512vnni ? "avx512vnni"
                           : features.avx512bf16                      ? "avx512bf16"
                           : features.avx512bw                        ? "avx512bw"
                                                                      : "avx2";
    check(std::string(fastgru::kernels::quantized_kernels_for(Isa::avx512).isa) == expected,
          "avx512 level: the AVX-512 quantized kernels the CPU has, else the AVX2 ones");
  }
}

}  // namespace

int main() {
  const std::pair<const char*, void (*)()> tests[] = {
      {"bf16_rounding_follows_the_definition", bf16_rounding_follows_the_definition},
      {"int8_quantization_follows_the_definition", int8_quantization_follows_the_definition},
      {"int8_quantization_refuses_rows_that_are_not_finite", int8_quantization_refuses_rows_that_are_not_finite},
      {"panels_hold_the_weights_where_the_kernels_read_them", panels_hold_the_weights_where_the_kernels_read_them},
      {"packing_refuses_what_int8_cannot_hold", packing_refuses_what_int8_cannot_hold},
      {"int8_products_equal_the_model_bit_for_bit", int8_products_equal_the_model_bit_for_bit},
      {"int8_products_are_exact_at_full_scale", int8_products_are_exact_at_full_scale},
      {"bf16_products_are_within_the_summation_bound", bf16_products_are_within_the_summation_bound},
      {"bf16_products_carry_non_finite_inputs", bf16_products_carry_non_finite_inputs},
      {"whole_matrix_products_equal_the_kernels_on_threads", whole_matrix_products_equal_the_kernels_on_threads},
      {"whole_matrix_products_refuse_clearly", whole_matrix_products_refuse_clearly},
      {"quantized_tables_follow_the_float_tables_isa", quantized_tables_follow_the_float_tables_isa},
  };
  int passed = 0, failed = 0;
  std::printf("fastgru quantized product tests, tables:");
  for (const QuantizedKernels* k : tables_to_test()) std::printf(" %s", k->isa);
  std::printf("\n");
  for (const auto& [name, test] : tests) {
    try {
      test();
      ++passed;
      std::printf("PASS %s\n", name);
    } catch (const std::exception& error) {
      ++failed;
      std::printf("FAIL %s: %s\n", name, error.what());
    }
  }
  std::printf("%d passed, %d failed\n", passed, failed);
  return failed == 0 ? 0 : 1;
}
