// A small JSON reader for model-file headers: objects, arrays, strings, numbers, true, false,
// null. Malformed input throws std::invalid_argument with the offset of the problem.
#pragma once

#include <map>
#include <memory>
#include <string>
#include <vector>

namespace fastgru::api {

struct JsonValue {
  enum class Kind { null, boolean, number, string, array, object } kind = Kind::null;
  bool boolean = false;
  double number = 0;
  std::string string;
  std::vector<JsonValue> array;
  std::map<std::string, JsonValue> object;

  const JsonValue* find(const std::string& key) const {
    if (kind != Kind::object) return nullptr;
    auto it = object.find(key);
    return it == object.end() ? nullptr : &it->second;
  }
};

JsonValue parse_json(const std::string& text);

}  // namespace fastgru::api
