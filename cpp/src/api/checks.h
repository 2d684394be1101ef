// Argument checks shared by the API classes: each failure is a std::invalid_argument naming
// the argument, what was expected and what came.
#pragma once

#include <cstdint>
#include <cstdio>
#include <stdexcept>
#include <string>


namespace fastgru::api {

inline void require(bool condition, const std::string& message) {
  if (!condition) throw std::invalid_argument("fastgru: " + message);
}

// These build their messages only when they fail: every forward call runs them, and a message
// built anyway cost heap allocations on every streaming step.
inline void require_pointer(const void* pointer, const char* name) {
  if (!pointer) require(false, std::string(name) + " must not be null");
}

inline void require_pointer(const void* pointer, const std::string& name) {
  if (!pointer) require(false, name + " must not be null");
}

// A number as a message shows it: 9 significant digits (std::to_string prints 1e-9 as 0.000000).
inline std::string printed(double value) {
  char text[32];
  std::snprintf(text, sizeof text, "%.9g", value);
  return text;
}

inline void require_at_least(std::int64_t value, std::int64_t minimum, const char* name) {
  if (value < minimum) {
    require(false, std::string(name) + " must be >= " + std::to_string(minimum) + ", got " +
                       std::to_string(value));
  }
}

}  // namespace fastgru::api
