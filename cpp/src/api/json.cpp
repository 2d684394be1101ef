#include "api/json.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdint>
#include <stdexcept>

namespace fastgru::api {
namespace {

[[noreturn]] void fail_at(const std::string& what, std::size_t at) {
  throw std::invalid_argument("JSON: " + what + " at offset " + std::to_string(at));
}

// Strict UTF-8: no overlong forms, no surrogates, nothing above U+10FFFF.
void check_utf8(const std::string& text) {
  const auto* bytes = reinterpret_cast<const unsigned char*>(text.data());
  const std::size_t size = text.size();
  for (std::size_t i = 0; i < size;) {
    const unsigned char lead = bytes[i];
    if (lead < 0x80) {
      ++i;
      continue;
    }
    int length = 0;
    unsigned low = 0x80, high = 0xBF;  // the range of the second byte
    if (lead >= 0xC2 && lead <= 0xDF) {
      length = 2;
    } else if (lead >= 0xE0 && lead <= 0xEF) {
      length = 3;
      if (lead == 0xE0) low = 0xA0;
      if (lead == 0xED) high = 0x9F;
    } else if (lead >= 0xF0 && lead <= 0xF4) {
      length = 4;
      if (lead == 0xF0) low = 0x90;
      if (lead == 0xF4) high = 0x8F;
    } else {
      fail_at("invalid UTF-8", i);
    }
    if (i + length > size || bytes[i + 1] < low || bytes[i + 1] > high) fail_at("invalid UTF-8", i);
    for (int k = 2; k < length; ++k) {
      if (bytes[i + k] < 0x80 || bytes[i + k] > 0xBF) fail_at("invalid UTF-8", i);
    }
    i += length;
  }
}

}  // namespace

void check_json_bounds(std::string_view text, std::size_t bytes_per_value) {
  std::size_t values = 0;
  int depth = 0;
  bool in_string = false;
  for (std::size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if (in_string) {
      if (c == '\\') ++i;
      else if (c == '"') in_string = false;
    } else if (c == '"') {
      in_string = true;
    } else if (c == ',' || c == '[' || c == '{') {
      ++values;
      if (c != ',' && ++depth > kMaxDepth) fail_at("nesting deeper than " + std::to_string(kMaxDepth), i);
    } else if (c == ']' || c == '}') {
      --depth;
    }
  }
  if (bytes_per_value != 0 && values > text.size() / bytes_per_value + 1) {
    throw std::invalid_argument("JSON: holds " + std::to_string(values) + " values in " + std::to_string(text.size()) +
                                " bytes: more than one per " + std::to_string(bytes_per_value) +
                                " bytes, which no model file has");
  }
}

namespace {

void append_utf8(std::string& out, std::uint32_t code) {
  if (code < 0x80) {
    out += static_cast<char>(code);
  } else if (code < 0x800) {
    out += static_cast<char>(0xC0 | (code >> 6));
    out += static_cast<char>(0x80 | (code & 0x3F));
  } else if (code < 0x10000) {
    out += static_cast<char>(0xE0 | (code >> 12));
    out += static_cast<char>(0x80 | ((code >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (code & 0x3F));
  } else {
    out += static_cast<char>(0xF0 | (code >> 18));
    out += static_cast<char>(0x80 | ((code >> 12) & 0x3F));
    out += static_cast<char>(0x80 | ((code >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (code & 0x3F));
  }
}

// Whether a number literal that std::from_chars found out of range is too large (rather than
// too small, which reads as zero, as Python's float() does): its first nonzero digit's place.
bool overflows(const std::string& literal) {
  std::size_t i = literal[0] == '-' ? 1 : 0;
  long long place = 0;  // decimal exponent of the first nonzero digit, plus one
  bool seen_point = false, seen_digit = false;
  for (; i < literal.size() && literal[i] != 'e' && literal[i] != 'E'; ++i) {
    if (literal[i] == '.') {
      seen_point = true;
    } else if (!seen_digit && literal[i] == '0') {
      if (seen_point) --place;
    } else {
      seen_digit = true;
      if (!seen_point) ++place;
    }
  }
  long long exponent = 0;
  if (i < literal.size()) {
    const char* first = literal.data() + i + 1 + (literal[i + 1] == '+' ? 1 : 0);
    if (std::from_chars(first, literal.data() + literal.size(), exponent).ec != std::errc()) {
      return literal[i + 1] != '-';  // an exponent beyond long long: its sign decides
    }
  }
  return place + exponent > 0;
}

class Parser {
 public:
  explicit Parser(const std::string& text) : text_(text) {}

  JsonValue document() {
    JsonValue value = parse_value(1);
    skip_space();
    if (at_ < text_.size()) fail("unexpected text after the value");
    return value;
  }

 private:
  [[noreturn]] void fail(const std::string& what) const { fail_at(what, at_); }
  void skip_space() {
    while (at_ < text_.size() && (text_[at_] == ' ' || text_[at_] == '\n' || text_[at_] == '\r' ||
                                  text_[at_] == '\t'))
      ++at_;
  }
  char peek() {
    skip_space();
    if (at_ >= text_.size()) fail("unexpected end");
    return text_[at_];
  }
  void expect(char c) {
    if (peek() != c) fail(std::string("expected '") + c + "'");
    ++at_;
  }
  bool consume_word(const char* word) {
    const std::string w(word);
    if (text_.compare(at_, w.size(), w) != 0) return false;
    at_ += w.size();
    return true;
  }
  bool is_digit(std::size_t i) const { return i < text_.size() && text_[i] >= '0' && text_[i] <= '9'; }

  JsonValue parse_value(int depth) {
    JsonValue value;
    const char c = peek();
    if ((c == '{' || c == '[') && depth > kMaxDepth) fail("nesting deeper than " + std::to_string(kMaxDepth));
    if (c == '{') {
      value.kind = JsonValue::Kind::object;
      value.object = std::make_unique<JsonValue::Members>();
      ++at_;
      if (peek() == '}') {
        ++at_;
        return value;
      }
      while (true) {
        if (peek() != '"') fail("expected a string key");
        std::string key = parse_string();
        expect(':');
        value.object->emplace_back(std::move(key), parse_value(depth + 1));
        if (peek() == ',') {
          ++at_;
          continue;
        }
        expect('}');
        refuse_duplicate_keys(*value.object);
        return value;
      }
    }
    if (c == '[') {
      value.kind = JsonValue::Kind::array;
      value.array = std::make_unique<std::vector<JsonValue>>();
      ++at_;
      if (peek() == ']') {
        ++at_;
        return value;
      }
      while (true) {
        value.array->push_back(parse_value(depth + 1));
        if (peek() == ',') {
          ++at_;
          continue;
        }
        expect(']');
        return value;
      }
    }
    if (c == '"') {
      value.kind = JsonValue::Kind::string;
      value.string = parse_string();
      return value;
    }
    if (consume_word("true")) {
      value.kind = JsonValue::Kind::boolean;
      value.boolean = true;
      return value;
    }
    if (consume_word("false")) {
      value.kind = JsonValue::Kind::boolean;
      return value;
    }
    if (consume_word("null")) return value;
    return parse_number();
  }

  // -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?, read independently of the C locale.
  JsonValue parse_number() {
    const std::size_t begin = at_;
    if (at_ < text_.size() && text_[at_] == '-') ++at_;
    if (!is_digit(at_)) fail("expected a value");
    if (text_[at_] == '0') {
      ++at_;
    } else {
      while (is_digit(at_)) ++at_;
    }
    JsonValue value;
    value.kind = JsonValue::Kind::number;
    value.integer = true;
    if (at_ < text_.size() && text_[at_] == '.') {
      ++at_;
      if (!is_digit(at_)) fail("expected a digit after '.'");
      while (is_digit(at_)) ++at_;
      value.integer = false;
    }
    if (at_ < text_.size() && (text_[at_] == 'e' || text_[at_] == 'E')) {
      ++at_;
      if (at_ < text_.size() && (text_[at_] == '+' || text_[at_] == '-')) ++at_;
      if (!is_digit(at_)) fail("expected a digit in the exponent");
      while (is_digit(at_)) ++at_;
      value.integer = false;
    }
    const std::string literal = text_.substr(begin, at_ - begin);
    const auto result = std::from_chars(literal.data(), literal.data() + literal.size(), value.number);
    if (result.ec == std::errc::result_out_of_range) {
      if (overflows(literal)) fail_at("number " + literal.substr(0, 40) + " is out of range", begin);
      value.number = literal[0] == '-' ? -0.0 : 0.0;
    } else if (result.ec != std::errc() || result.ptr != literal.data() + literal.size()) {
      fail_at("malformed number", begin);
    }
    return value;
  }

  void refuse_duplicate_keys(const JsonValue::Members& members) const {
    std::vector<const std::string*> keys;
    keys.reserve(members.size());
    for (const auto& member : members) keys.push_back(&member.first);
    std::sort(keys.begin(), keys.end(), [](const std::string* a, const std::string* b) { return *a < *b; });
    for (std::size_t i = 1; i < keys.size(); ++i) {
      if (*keys[i] == *keys[i - 1]) fail("duplicate key " + printable(*keys[i]) + " in the object ending");
    }
  }

  std::uint32_t parse_hex4() {
    if (at_ + 4 > text_.size()) fail("short \\u escape");
    std::uint32_t code = 0;
    for (int k = 0; k < 4; ++k) {
      const char h = text_[at_++];
      const int digit = h >= '0' && h <= '9' ? h - '0' : h >= 'a' && h <= 'f' ? h - 'a' + 10
                        : h >= 'A' && h <= 'F' ? h - 'A' + 10 : -1;
      if (digit < 0) fail("bad \\u escape");
      code = code * 16 + static_cast<std::uint32_t>(digit);
    }
    return code;
  }

  std::string parse_string() {
    expect('"');
    std::string out;
    while (true) {
      if (at_ >= text_.size()) fail("unterminated string");
      const char c = text_[at_++];
      if (c == '"') return out;
      if (static_cast<unsigned char>(c) < 0x20) fail("control character in a string");
      if (c != '\\') {
        out += c;
        continue;
      }
      if (at_ >= text_.size()) fail("unterminated escape");
      const char e = text_[at_++];
      switch (e) {
        case '"': out += '"'; break;
        case '\\': out += '\\'; break;
        case '/': out += '/'; break;
        case 'b': out += '\b'; break;
        case 'f': out += '\f'; break;
        case 'n': out += '\n'; break;
        case 'r': out += '\r'; break;
        case 't': out += '\t'; break;
        case 'u': {
          std::uint32_t code = parse_hex4();
          // A high surrogate followed by a low one is one code point (as Python reads it); a lone
          // surrogate is kept as its three bytes, which match no name the format uses.
          if (code >= 0xD800 && code <= 0xDBFF && text_.compare(at_, 2, "\\u") == 0) {
            const std::size_t back = at_;
            at_ += 2;
            const std::uint32_t low = parse_hex4();
            if (low >= 0xDC00 && low <= 0xDFFF) code = 0x10000 + ((code - 0xD800) << 10) + (low - 0xDC00);
            else at_ = back;
          }
          append_utf8(out, code);
          break;
        }
        default: fail("bad escape");
      }
    }
  }

  const std::string& text_;
  std::size_t at_ = 0;
};

}  // namespace

std::string printable(const std::string& text) {
  constexpr std::size_t kShown = 60;
  static const char* const kHex = "0123456789abcdef";
  std::string out = "'";
  for (std::size_t i = 0; i < text.size() && i < kShown; ++i) {
    const auto byte = static_cast<unsigned char>(text[i]);
    if (byte >= 0x20 && byte < 0x7F) {
      out += static_cast<char>(byte);
    } else {
      out += "\\x";
      out += kHex[byte >> 4];
      out += kHex[byte & 15];
    }
  }
  return out + (text.size() > kShown ? "...'" : "'");
}

JsonValue parse_json(const std::string& text, std::size_t bytes_per_value) {
  check_utf8(text);
  check_json_bounds(text, bytes_per_value);
  return Parser(text).document();
}

const std::vector<JsonValue>& JsonValue::elements() const {
  static const std::vector<JsonValue> none;
  return array ? *array : none;
}

const JsonValue::Members& JsonValue::members() const {
  static const Members none;
  return object ? *object : none;
}

const JsonValue* JsonValue::find(const std::string& key) const {
  for (const auto& [name, value] : members()) {
    if (name == key) return &value;
  }
  return nullptr;
}

}  // namespace fastgru::api
