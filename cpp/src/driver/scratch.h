// Uninitialised, 64-byte aligned scratch memory, allocated once per call.
#pragma once

#include <cstddef>
#include <cstdint>
#include <new>

namespace fastgru::driver {

template <typename Real>
class Scratch {
 public:
  explicit Scratch(std::int64_t count)
      : data_(static_cast<Real*>(::operator new(
            static_cast<std::size_t>(count > 0 ? count : 1) * sizeof(Real), kAlignment))) {}
  ~Scratch() { ::operator delete(data_, kAlignment); }
  Scratch(const Scratch&) = delete;
  Scratch& operator=(const Scratch&) = delete;

  Real* data() const { return data_; }

 private:
  static constexpr std::align_val_t kAlignment{64};
  Real* data_;
};

}  // namespace fastgru::driver
