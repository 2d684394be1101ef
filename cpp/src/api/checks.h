// Argument checks shared by the API classes: each failure is a std::invalid_argument naming
// the argument, what was expected and what came.
#pragma once

#include <cstdint>
#include <stdexcept>
#include <string>

#include "driver/layer.h"
#include "fastgru/gru.h"

namespace fastgru::api {

inline void require(bool condition, const std::string& message) {
  if (!condition) throw std::invalid_argument("fastgru: " + message);
}

inline void require_pointer(const void* pointer, const std::string& name) {
  require(pointer != nullptr, name + " must not be null");
}

inline void require_at_least(std::int64_t value, std::int64_t minimum, const std::string& name) {
  require(value >= minimum,
          name + " must be >= " + std::to_string(minimum) + ", got " + std::to_string(value));
}

// A layer's weights copied and packed for the kernels new layers use.
template <typename Real>
driver::PackedLayer<Real> make_packed_layer(GruLayerSizes sizes, ResetMode mode,
                                            const GruWeightsView<Real>& weights,
                                            const std::string& name);

}  // namespace fastgru::api
