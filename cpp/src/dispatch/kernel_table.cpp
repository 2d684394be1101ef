// Chooses the kernel table: the best instruction set the CPU and OS support, unless
// FASTGRU_ISA or set_isa() asks for a lower one.
#include "dispatch/kernel_table.h"

#include <atomic>
#include <cstdlib>
#include <mutex>
#include <stdexcept>
#include <string>

#include "dispatch/cpu_features.h"
#include "fastgru/runtime.h"

namespace fastgru {
namespace {

const kernels::KernelTable<float>* f32_table_for(const std::string& isa) {
#if FASTGRU_HAVE_X86_KERNELS
  if (isa == "avx512") return &kernels::f32_kernels__avx512();
  if (isa == "avx2") return &kernels::f32_kernels__avx2();
#endif
  return &kernels::f32_kernels__scalar();
}

std::atomic<const kernels::KernelTable<float>*> selected_f32{nullptr};
std::once_flag initial_choice;

std::string join(const std::vector<std::string>& names) {
  std::string text;
  for (const auto& name : names) text += (text.empty() ? "" : ", ") + name;
  return text;
}

void require_available(const std::string& isa, const char* source) {
  for (const auto& name : available_isas())
    if (name == isa) return;
  throw std::invalid_argument(std::string("fastgru: ") + source + ": expected one of " +
                              join(available_isas()) + " (this CPU), got '" + isa + "'");
}

const kernels::KernelTable<float>& current_f32() {
  std::call_once(initial_choice, [] {
    std::string isa = available_isas().front();
    if (const char* forced = std::getenv("FASTGRU_ISA"); forced && *forced) {
      isa = forced;
      require_available(isa, "FASTGRU_ISA");
    }
    const kernels::KernelTable<float>* expected = nullptr;
    selected_f32.compare_exchange_strong(expected, f32_table_for(isa));
  });
  return *selected_f32.load();
}

}  // namespace

std::vector<std::string> available_isas() {
  static const dispatch::CpuFeatures features = dispatch::detect_cpu_features();
  std::vector<std::string> isas;
  if (features.avx512f) isas.push_back("avx512");
  if (features.avx2_fma) isas.push_back("avx2");
  isas.push_back("scalar");
  return isas;
}

std::string active_isa() { return current_f32().isa; }

void set_isa(const std::string& isa) {
  require_available(isa, "set_isa");
  std::call_once(initial_choice, [] {});
  selected_f32.store(f32_table_for(isa));
}

namespace dispatch {

template <>
const kernels::KernelTable<float>& active_kernels<float>() {
  return current_f32();
}

template <>
const kernels::KernelTable<double>& active_kernels<double>() {
  return kernels::f64_kernels__scalar();
}

}  // namespace dispatch
}  // namespace fastgru
