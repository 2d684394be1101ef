// A strict JSON reader for model-file headers (RFC 8259: UTF-8, no NaN or Infinity, no
// duplicate keys) whose cost is bounded by its input: at most one ',', '[' or '{' outside strings
// per kBytesPerValue bytes and kMaxDepth levels of nesting. Malformed input throws
// std::invalid_argument with the offset of the problem. The Python reader
// (python/fastgru/model_file.py, parse_json) applies the same rules.
#pragma once

#include <map>
#include <string>
#include <string_view>
#include <vector>

namespace fastgru::api {

struct JsonValue {
  enum class Kind { null, boolean, number, string, array, object } kind = Kind::null;
  bool boolean = false;
  double number = 0;
  bool integer = false;  // a number written without fraction or exponent
  std::string string;
  std::vector<JsonValue> array;
  std::map<std::string, JsonValue> object;

  const JsonValue* find(const std::string& key) const {
    if (kind != Kind::object) return nullptr;
    auto it = object.find(key);
    return it == object.end() ? nullptr : &it->second;
  }
};

constexpr std::size_t kBytesPerValue = 4;
constexpr int kMaxDepth = 64;

JsonValue parse_json(const std::string& text);

// The size rule alone (parse_json applies it first): throws std::invalid_argument when `text`
// holds more ',', '[' and '{' outside strings than one per kBytesPerValue bytes. The Python reader
// calls it before its own parser (fastgru._core.check_json_size), so both count alike.
void check_value_count(std::string_view text);

// `text` from a file, fit for an error message: quoted, at most 60 bytes, bytes outside
// printable ASCII written as \xNN (a message must be valid UTF-8 for every client).
std::string printable(const std::string& text);

}  // namespace fastgru::api
