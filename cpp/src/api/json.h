// A strict JSON reader for model-file headers (RFC 8259: UTF-8, no NaN or Infinity, no
// duplicate keys) whose cost is bounded by its input (see check_json_bounds). Malformed input
// throws std::invalid_argument with the offset of the problem. The Python reader
// (python/fastgru/model_file.py, parse_json) applies the same rules, the bounds through
// fastgru::check_model_json.
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace fastgru::api {

// One value. Arrays and objects keep their children behind a pointer, so that a value costs
// 64 bytes whatever its kind: parsing allocates at most a small multiple of the text's size.
struct JsonValue {
  using Members = std::vector<std::pair<std::string, JsonValue>>;  // in the text's order

  enum class Kind { null, boolean, number, string, array, object } kind = Kind::null;
  bool boolean = false;
  bool integer = false;  // a number written without fraction or exponent
  double number = 0;
  std::string string;
  std::unique_ptr<std::vector<JsonValue>> array;  // set for Kind::array
  std::unique_ptr<Members> object;                // set for Kind::object (keys unique)

  const std::vector<JsonValue>& elements() const;  // an array's values (none for other kinds)
  const Members& members() const;                  // an object's members (none for other kinds)
  const JsonValue* find(const std::string& key) const;
};

// Bounds that make a text's parse cost a small multiple of its size: at most one ',', '[' or '{'
// outside strings per kBytesPerValue bytes (plus one), nesting at most kMaxDepth deep.
constexpr std::size_t kBytesPerValue = 6;
constexpr int kMaxDepth = 64;

// `bytes_per_value`: the bound check_json_bounds applies (0 for user data: the depth only).
JsonValue parse_json(const std::string& text, std::size_t bytes_per_value = kBytesPerValue);

// The bounds alone (parse_json checks them first, in one linear pass without allocating): throws
// std::invalid_argument past them. `bytes_per_value` 0 checks the depth only.
void check_json_bounds(std::string_view text, std::size_t bytes_per_value);

// `text` from a file, fit for an error message: quoted, at most 60 bytes, bytes outside
// printable ASCII written as \xNN (a message must be valid UTF-8 for every client).
std::string printable(const std::string& text);

}  // namespace fastgru::api
