// Reads the model files that python/fastgru/model_file.py writes (safetensors + fastgru metadata),
// enforcing the format README.md specifies ("The model file") exactly as the Python reader does:
// the two readers accept and refuse the same files (tests/test_model_file.py). Reading costs
// memory and time bounded by a small multiple of the file's size.
#include "fastgru/model_file.h"

#include "api/model_impl.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <functional>
#include <limits>
#include <map>
#include <set>
#include <stdexcept>
#include <type_traits>
#include <vector>

#include "api/checks.h"
#include "api/json.h"
#include "cells/cell_table.h"
#include "kernels/quantized/conversions.h"

namespace fastgru {
namespace {

constexpr const char* kFormatVersion = "1";  // the only version this reader understands
constexpr std::uint64_t kMaxHeaderBytes = 100000000;  // safetensors' own readers cap it there
constexpr double kMaxSize = 2147483648.0;             // configured sizes: 1..2^31
constexpr double kMaxOffset = 9007199254740992.0;     // shape entries and byte offsets: 0..2^53

using api::JsonValue;

struct Tensor {
  std::string dtype;  // "F32", "F64", "BF16" (bfloat16 bit patterns) or "I8"
  std::vector<std::int64_t> shape;
  std::uint64_t begin = 0, end = 0;  // byte range in the data section
};

class Refusal {
 public:
  explicit Refusal(const std::string& path) {
    for (const char c : path) path_ += c == '\0' ? std::string("\\0") : std::string(1, c);  // C strings end at NUL
  }
  std::invalid_argument operator()(const std::string& reason) const {
    return std::invalid_argument("fastgru: " + path_ + ": not a readable fastgru model file: " + reason);
  }
  // A readable file that cannot be served as asked.
  std::invalid_argument unservable(const std::string& reason) const {
    return std::invalid_argument("fastgru: " + path_ + ": " + reason);
  }

 private:
  std::string path_;
};

const char* file_type(mode_t mode) {
  if (S_ISDIR(mode)) return "a directory";
  if (S_ISCHR(mode)) return "a character device";
  if (S_ISBLK(mode)) return "a block device";
  if (S_ISFIFO(mode)) return "a FIFO";
  if (S_ISSOCK(mode)) return "a socket";
  return "not a regular file";
}

// An open regular file. Its type is checked before it is opened (opening a device can act on
// it) and again on what was opened; it is opened without blocking, so a FIFO swapped in between
// is refused, not waited on.
class RegularFile {
 public:
  RegularFile(const std::string& path, const Refusal& refuse) : refuse_(refuse) {
    if (path.find('\0') != std::string::npos) throw refuse("the path holds a NUL byte");
    struct stat info {};
    if (::stat(path.c_str(), &info) != 0) throw refuse(std::string("cannot open it (") + std::strerror(errno) + ")");
    if (!S_ISREG(info.st_mode)) throw refuse(std::string("expected a regular file, got ") + file_type(info.st_mode));
    descriptor_ = ::open(path.c_str(), O_RDONLY | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
    if (descriptor_ < 0) throw refuse(std::string("cannot open it (") + std::strerror(errno) + ")");
    if (::fstat(descriptor_, &info) != 0 || !S_ISREG(info.st_mode)) {
      ::close(descriptor_);
      throw refuse("expected a regular file, got " + std::string(file_type(info.st_mode)));
    }
    size_ = static_cast<std::uint64_t>(info.st_size);
  }
  ~RegularFile() { ::close(descriptor_); }
  RegularFile(const RegularFile&) = delete;
  RegularFile& operator=(const RegularFile&) = delete;

  std::uint64_t size() const { return size_; }

  // The next `count` bytes (which the caller has checked the file holds).
  std::string read(std::uint64_t count) {
    std::string bytes(static_cast<std::size_t>(count), '\0');
    std::size_t done = 0;
    while (done < bytes.size()) {
      const ssize_t got = ::read(descriptor_, bytes.data() + done, bytes.size() - done);
      if (got < 0 && errno == EINTR) continue;
      if (got < 0) throw refuse_(std::string("cannot read it (") + std::strerror(errno) + ")");
      if (got == 0) throw refuse_("it shrank while being read");
      done += static_cast<std::size_t>(got);
    }
    return bytes;
  }

 private:
  const Refusal& refuse_;
  int descriptor_ = -1;
  std::uint64_t size_ = 0;
};

std::string json_type(const JsonValue& value) {
  switch (value.kind) {
    case JsonValue::Kind::null: return "null";
    case JsonValue::Kind::boolean: return "a boolean";
    case JsonValue::Kind::number: return value.integer ? "an integer" : "a number";
    case JsonValue::Kind::string: return "a string";
    case JsonValue::Kind::array: return "an array";
    case JsonValue::Kind::object: return "an object";
  }
  return "?";
}

bool is_string_in(const JsonValue& v, std::initializer_list<const char*> allowed) {
  return v.kind == JsonValue::Kind::string &&
         std::any_of(allowed.begin(), allowed.end(), [&](const char* a) { return v.string == a; });
}

// Bytes of one value of a tensor dtype the format has.
std::uint64_t dtype_width(const std::string& dtype) {
  return dtype == "F64" ? 8 : dtype == "F32" ? 4 : dtype == "BF16" ? 2 : 1;
}

bool is_integer(const JsonValue& value, double low, double high) {
  return value.kind == JsonValue::Kind::number && value.integer && value.number >= low && value.number <= high;
}

JsonValue parse(const std::string& text, const std::string& what, const Refusal& refuse) {
  try {
    return api::parse_json(text);
  } catch (const std::invalid_argument& error) {
    throw refuse(what + " is not JSON of a model file (" + error.what() + ")");
  }
}

std::string foreign_format(const std::string& content) {
  const bool zip = content.compare(0, 4, "PK\x03\x04") == 0;
  // A pickle: PROTO 2..5, then an opcode, never a NUL (which a model file's header size of
  // 0x280..0x5ff bytes starts the same way with).
  const bool pickle = content.size() >= 3 && static_cast<unsigned char>(content[0]) == 0x80 &&
                      content[1] >= 2 && content[1] <= 5 && content[2] != '\0';
  if (zip || pickle) {
    return "this looks like a PyTorch file (torch.save's zip or pickle; or another zip archive such as a "
           "Keras .keras file): convert it in Python with fastgru.GRU.from_torch or from_keras, then save()";
  }
  if (content.compare(0, 4, "\x89HDF") == 0) return "this is an HDF5 file (a Keras .h5?): convert it in Python";
  return "";
}

// The tensors of the header, checked to tile the data section exactly (no gaps, no overlaps).
std::map<std::string, Tensor> tensor_entries(const JsonValue& header, std::uint64_t data_bytes, const Refusal& refuse) {
  std::map<std::string, Tensor> tensors;
  for (const auto& [name, entry] : header.members()) {
    if (name == "__metadata__") continue;
    const JsonValue* dtype = entry.find("dtype");
    const JsonValue* shape = entry.find("shape");
    const JsonValue* offsets = entry.find("data_offsets");
    if (!dtype || !shape || !offsets || entry.members().size() != 3) {
      throw refuse("tensor " + api::printable(name) + ": expected an object of dtype, shape and data_offsets");
    }
    if (!is_string_in(*dtype, {"F32", "F64", "BF16", "I8"})) {
      throw refuse("tensor " + api::printable(name) + ": dtype expected 'F32', 'F64', 'BF16' or 'I8'");
    }
    const std::uint64_t width = dtype_width(dtype->string);
    const std::vector<JsonValue>& dimensions = shape->elements();
    if (shape->kind != JsonValue::Kind::array ||
        !std::all_of(dimensions.begin(), dimensions.end(), [](const JsonValue& n) { return is_integer(n, 0, kMaxOffset); })) {
      throw refuse("tensor " + api::printable(name) + ": shape expected a list of integers in 0..2^53");
    }
    const std::vector<JsonValue>& range = offsets->elements();
    if (offsets->kind != JsonValue::Kind::array || range.size() != 2 || !is_integer(range[0], 0, kMaxOffset) ||
        !is_integer(range[1], 0, kMaxOffset)) {
      throw refuse("tensor " + api::printable(name) + ": data_offsets expected two integers in 0..2^53");
    }
    Tensor tensor;
    tensor.dtype = dtype->string;
    tensor.begin = static_cast<std::uint64_t>(range[0].number);
    tensor.end = static_cast<std::uint64_t>(range[1].number);
    // Bytes of the shape, or past 2^53 (and so past any file) once a factor takes it there.
    std::uint64_t bytes = width;
    for (const JsonValue& n : dimensions) {
      const auto dimension = static_cast<std::uint64_t>(n.number);
      tensor.shape.push_back(static_cast<std::int64_t>(dimension));
      bytes = dimension != 0 && bytes > (std::uint64_t(1) << 53) / dimension ? (std::uint64_t(1) << 54) : bytes * dimension;
    }
    if (tensor.end < tensor.begin || tensor.end - tensor.begin != bytes) {
      throw refuse("tensor " + api::printable(name) + ": its byte range does not hold its shape");
    }
    tensors.emplace(name, std::move(tensor));
  }
  std::vector<std::pair<std::string, const Tensor*>> by_offset;
  for (const auto& [name, tensor] : tensors) by_offset.emplace_back(name, &tensor);
  std::sort(by_offset.begin(), by_offset.end(), [](const auto& a, const auto& b) {
    return std::make_pair(a.second->begin, a.second->end) < std::make_pair(b.second->begin, b.second->end);
  });
  std::uint64_t covered = 0;
  for (const auto& [name, tensor] : by_offset) {
    if (tensor->begin != covered) {
      throw refuse("tensor " + api::printable(name) + ": starts at data byte " + std::to_string(tensor->begin) + ", expected " +
                   std::to_string(covered) + " (tensors must tile the data without gaps or overlaps)");
    }
    covered = tensor->end;
  }
  if (covered != data_bytes) {
    throw refuse("the tensors hold " + std::to_string(covered) + " data bytes, the file has " +
                 std::to_string(data_bytes) + " after its header (truncated?)");
  }
  return tensors;
}

// The `__metadata__` object: strings only, fastgru's format, the version this reads.
const JsonValue& checked_metadata(const JsonValue& header, const Refusal& refuse) {
  const JsonValue* metadata = header.find("__metadata__");
  const JsonValue* format = metadata ? metadata->find("format") : nullptr;
  if (!format || format->kind != JsonValue::Kind::string || format->string != "fastgru") {
    throw refuse("no fastgru metadata (a safetensors file from another library?)");
  }
  for (const auto& [key, value] : metadata->members()) {
    if (value.kind != JsonValue::Kind::string) throw refuse("metadata " + api::printable(key) + ": expected a JSON string, got " + json_type(value));
  }
  const JsonValue* version = metadata->find("format_version");
  if (!version || version->string != kFormatVersion) {
    const std::string text = version ? version->string : "";
    const bool newer = !text.empty() && text.size() <= 9 && text[0] >= '1' && text[0] <= '9' &&
                       std::all_of(text.begin(), text.end(), [](char c) { return c >= '0' && c <= '9'; });
    if (newer) {
      throw refuse("format version " + text + " is newer than this fastgru reads (" + kFormatVersion + "): upgrade fastgru");
    }
    throw refuse(std::string("format_version: expected the string '") + kFormatVersion + "'");
  }
  if (!metadata->find("class") || !metadata->find("config")) throw refuse("metadata lacks 'class' or 'config'");
  return *metadata;
}

// One configuration field: what it must be and the test.
struct Field {
  std::string expected;
  std::function<bool(const JsonValue&)> valid;
  bool optional = false;  // older files leave it out (CellOption::absent_means)
};

bool is_number(const JsonValue& v) { return v.kind == JsonValue::Kind::number; }

// The configuration fields of each layer class (README.md, "The model file"): the common ones,
// then those of the cell's options (cells/cell_table.h).
std::map<std::string, Field> config_fields(const cells::CellDescription& cell) {
  const Field size{"an integer in 1..2^31", [](const JsonValue& v) { return is_integer(v, 1, kMaxSize); }};
  const Field boolean{"a boolean", [](const JsonValue& v) { return v.kind == JsonValue::Kind::boolean; }};
  const Field rate{"a number in [0, 1)", [](const JsonValue& v) { return is_number(v) && v.number >= 0 && v.number < 1; }};
  std::map<std::string, Field> fields{
      {"input_size", size}, {"hidden_size", size}, {"num_layers", size}, {"batch_first", boolean},
      {"dropout", rate}, {"bidirectional", boolean}, {"recurrent_dropout", rate}, {"zoneout", rate},
      {"dtype", {"'float32' or 'float64'", [](const JsonValue& v) { return is_string_in(v, {"float32", "float64"}); }}},
  };
  if (cell.has_bias_option) fields.emplace("bias", boolean);
  // Files written before reverse networks existed leave it out: forward in time.
  fields.emplace("reverse", Field{boolean.expected, boolean.valid, true});
  // Whether Python's layer carries its states between calls: how Python calls it, not what it
  // computes (C and C++ callers carry states with h0 / h_n or the C stream).
  fields.emplace("stateful", Field{boolean.expected, boolean.valid, true});
  // Keras's merge modes; null (the directions apart, which Python shapes) and absent: concat.
  fields.emplace("merge_mode", Field{"'concat', 'sum', 'mul', 'ave' or null", [](const JsonValue& v) {
                                       return v.kind == JsonValue::Kind::null || is_string_in(v, {"concat", "sum", "mul", "ave"});
                                     }, true});
  // The products' arithmetic (Python's GRU.quantize); absent: full, the dtype's.
  fields.emplace("precision", Field{"'full', 'bf16' or 'int8'", [](const JsonValue& v) {
                                      return is_string_in(v, {"full", "bf16", "int8"});
                                    }, true});
  for (const cells::CellOption& option : cell.options) {
    switch (option.kind) {
      case cells::CellOption::Kind::boolean:
        fields.emplace(option.name, boolean);
        break;
      case cells::CellOption::Kind::choice:
        fields.emplace(option.name, Field{option.expected, [choices = option.choices](const JsonValue& v) {
                                            return v.kind == JsonValue::Kind::string &&
                                                   std::find(choices.begin(), choices.end(), v.string) != choices.end();
                                          }, !option.absent_means.empty()});
        break;
      case cells::CellOption::Kind::number:
        fields.emplace(option.name, Field{option.expected, [valid = option.valid](const JsonValue& v) {
                                            return is_number(v) && valid(v.number);
                                          }});
        break;
      case cells::CellOption::Kind::bound:
        fields.emplace(option.name, Field{option.expected, [valid = option.valid](const JsonValue& v) {
                                            return v.kind == JsonValue::Kind::null || (is_number(v) && valid(v.number));
                                          }, true});
        break;
    }
  }
  return fields;
}

// The configuration (JSON `text`, the metadata field `what`) of a layer of `cell`.
JsonValue checked_config(const cells::CellDescription& cell, const std::string& text, const std::string& what,
                         const Refusal& refuse) {
  JsonValue config = parse(text, what, refuse);
  if (config.kind != JsonValue::Kind::object) throw refuse(what + ": expected a JSON object, got " + json_type(config));
  const std::map<std::string, Field> fields = config_fields(cell);
  for (const auto& [key, value] : config.members()) {
    if (!fields.count(key)) throw refuse(what + ": unknown field " + api::printable(key));
  }
  for (const auto& [key, field] : fields) {
    const JsonValue* value = config.find(key);
    if (!value && field.optional) continue;
    if (!value) throw refuse(what + ": missing field '" + key + "'");
    if (!field.valid(*value)) throw refuse(what + " " + key + ": expected " + field.expected + ", got " + json_type(*value));
  }
  return config;
}

// The values of an F32 or F64 `tensor`, converted to Real (the format is little-endian, as is
// every x86-64 and arm64 host this builds for).
template <typename Real>
std::vector<Real> tensor_values(const std::string& data, const Tensor& tensor) {
  const std::size_t width = tensor.dtype == "F32" ? 4 : 8, count = (tensor.end - tensor.begin) / width;
  std::vector<Real> values(count);
  const char* bytes = data.data() + tensor.begin;
  for (std::size_t i = 0; i < count; ++i) {
    if (width == 4) {
      float v;
      std::memcpy(&v, bytes + 4 * i, 4);
      values[i] = static_cast<Real>(v);
    } else {
      double v;
      std::memcpy(&v, bytes + 8 * i, 8);
      values[i] = static_cast<Real>(v);
    }
  }
  return values;
}


// A model file's checked header, tensor table and data section.
struct Contents {
  JsonValue header;
  std::map<std::string, Tensor> tensors;
  std::string data;
  const JsonValue& metadata() const { return *header.find("__metadata__"); }
  const std::string& field(const char* key) const { return metadata().find(key)->string; }
};

Contents read_contents(const std::string& path, const Refusal& refuse) {
  RegularFile file(path, refuse);
  if (file.size() < 8) throw refuse("expected at least 8 bytes, got " + std::to_string(file.size()));
  const std::string prefix = file.read(8);
  std::uint64_t header_bytes = 0;
  for (int i = 7; i >= 0; --i) header_bytes = (header_bytes << 8) | static_cast<unsigned char>(prefix[i]);
  if (header_bytes > kMaxHeaderBytes || header_bytes > file.size() - 8) {
    const std::string foreign = foreign_format(prefix);
    if (!foreign.empty()) throw refuse(foreign);
    if (header_bytes > kMaxHeaderBytes) throw refuse("header of " + std::to_string(header_bytes) + " bytes is over the format's cap");
    throw refuse("header of " + std::to_string(header_bytes) + " bytes does not fit in the file (truncated?)");
  }
  Contents contents;
  contents.header = parse(file.read(header_bytes), "header", refuse);
  if (contents.header.kind != JsonValue::Kind::object) throw refuse("header is not a JSON object");
  checked_metadata(contents.header, refuse);
  // Checked against the file's size before its data is read: a file that claims more than its
  // header describes (a sparse file, say) costs nothing.
  contents.tensors = tensor_entries(contents.header, file.size() - 8 - header_bytes, refuse);
  contents.data = file.read(file.size() - 8 - header_bytes);
  return contents;
}

std::string layer_classes() {
  std::vector<std::string> classes;
  for (const cells::CellDescription& description : cells::cell_descriptions()) classes.push_back(description.class_name);
  return cells::name_list(classes);
}

using api::printed;

// The batch-normalised cells, whose bf16 and int8 layers quantize W_ih with the batch
// normalisation folded in: their files hold that W_ih, its shift as bn_bias and the identity
// statistics (Python's model_file.folds_batch_norm).
bool folds_batch_norm(Cell cell) { return cells::describe(cell).normalises_inputs; }

// The running variance of those identity statistics: v + ε = 1 to within 2^-25, so that the fold's
// scale 1 / √(v + ε) rounds every float32 weight back to itself (Python's identity_running_var).
float identity_running_var(double bn_eps) { return static_cast<float>(1.0 - double(static_cast<float>(bn_eps))); }

// A tensor a configuration needs: its name in the file, shape and dtype.
struct PlannedTensor {
  std::string name;
  std::vector<std::int64_t> shape;
  std::string dtype;
};

// The tensors of one network: its configuration, where each tensor goes and its expected shape.
struct NetworkPlan {
  NetworkConfig config;
  bool directions_apart = false;  // merge_mode null: Python shapes the directions apart
  std::string dtype;  // "F32" or "F64", the configuration's
  std::vector<PlannedTensor> expected;                         // the network's arrays
  std::vector<std::pair<std::int64_t, std::string>> members;  // of each: (view, member name)
  std::vector<PlannedTensor> scales;  // int8: the rows' scales of each weight, `<weight>.scale`
  // Every tensor of the file's layer.
  std::vector<PlannedTensor> tensors() const {
    std::vector<PlannedTensor> all = expected;
    all.insert(all.end(), scales.begin(), scales.end());
    return all;
  }
};

// The network a layer configuration (JSON `text`, the metadata field `what`) of `layer_class`
// describes, its tensors named `prefix` + PyTorch's names; checked, nothing read yet.
NetworkPlan network_plan(const std::string& layer_class, const std::string& text, const std::string& what,
                         const std::string& prefix, std::size_t tensor_count, const Refusal& refuse) {
  const cells::CellDescription* cell = cells::find_class(layer_class);
  if (!cell) throw refuse("expected a " + layer_classes() + " model, got class " + api::printable(layer_class));
  NetworkPlan plan;
  NetworkConfig& config = plan.config;
  config.cell = cell->cell;
  const JsonValue fields = checked_config(*cell, text, what, refuse);
  auto number = [&](const char* key) { return fields.find(key)->number; };
  auto boolean = [&](const char* key) { return fields.find(key)->boolean; };
  config.input = static_cast<std::int64_t>(number("input_size"));
  config.hidden = static_cast<std::int64_t>(number("hidden_size"));
  config.layers = static_cast<std::int64_t>(number("num_layers"));
  config.bidirectional = boolean("bidirectional");
  config.reverse = fields.find("reverse") && boolean("reverse");
  const JsonValue* merge_mode = fields.find("merge_mode");
  plan.directions_apart = merge_mode && merge_mode->kind == JsonValue::Kind::null;
  if (!config.bidirectional && merge_mode && !is_string_in(*merge_mode, {"concat"})) {
    // null too: Python's layer refuses it, though a network would ignore it.
    throw refuse("merge_mode: only a bidirectional layer has two directions to merge; expected 'concat' with "
                 "bidirectional=False, got " + (merge_mode->kind == JsonValue::Kind::null ? "null" : "'" + merge_mode->string + "'"));
  }
  if (const JsonValue* merge = merge_mode; merge && merge->kind == JsonValue::Kind::string) {
    config.merge = merge->string == "sum"   ? MergeMode::sum
                   : merge->string == "mul" ? MergeMode::mul
                   : merge->string == "ave" ? MergeMode::average
                                            : MergeMode::concat;
  }
  config.bias = cell->has_bias_option && boolean("bias");
  config.dropout = number("dropout");
  config.recurrent_dropout = number("recurrent_dropout");
  config.zoneout = number("zoneout");
  for (const cells::CellOption& option : cell->options) {
    if (!option.apply) continue;
    const JsonValue* found = fields.find(option.name);
    JsonValue absent;
    if (!found) {
      absent.kind = JsonValue::Kind::string;
      absent.string = option.absent_means;
    }
    const JsonValue& value = found ? *found : absent;
    switch (option.kind) {
      case cells::CellOption::Kind::boolean:
        option.apply(config, value.boolean ? 1 : 0);
        break;
      case cells::CellOption::Kind::choice:
        option.apply(config, static_cast<double>(std::find(option.choices.begin(), option.choices.end(), value.string) -
                                                 option.choices.begin()));
        break;
      case cells::CellOption::Kind::number:
        option.apply(config, value.number);
        break;
      case cells::CellOption::Kind::bound:
        option.apply(config, found && is_number(*found) ? found->number : std::numeric_limits<double>::infinity());
        break;
    }
  }
  plan.dtype = fields.find("dtype")->string == "float32" ? "F32" : "F64";
  const JsonValue* precision = fields.find("precision");
  const std::string precision_name = precision ? precision->string : "full";
  config.precision = precision_name == "bf16" ? Precision::bf16 : precision_name == "int8" ? Precision::int8 : Precision::full;
  if (config.precision != Precision::full && plan.dtype != "F32") {
    throw refuse(what + " precision: bf16 and int8 layers compute in float32; expected 'full' for a float64 " + layer_class +
                 ", got '" + precision_name + "'");
  }
  // ε as the fold reads it, a float32 (capped first: a double beyond float32's range does not convert).
  if (config.precision != Precision::full && folds_batch_norm(config.cell) &&
      static_cast<float>(std::min(config.bn_eps, 2.0)) > 1.0f) {
    throw refuse(what + " bn_eps: the file of a " + layer_class + " in " + precision_name + " holds identity statistics "
                 "with bn_running_var 1 - bn_eps; expected bn_eps <= 1, got " + printed(static_cast<float>(std::min(config.bn_eps, 2.0))));
  }

  // The tensors the configuration needs, in the order the network takes them.
  const std::int64_t D = config.bidirectional ? 2 : 1;
  for (std::int64_t l = 0; l < config.layers; ++l) {
    for (std::int64_t d = 0; d < D; ++d) {
      const std::string suffix = "_l" + std::to_string(l) + (d ? "_reverse" : "");
      const std::int64_t input = l == 0 ? config.input : D * config.hidden;
      for (const std::vector<std::string>* names : {&cell->parameters, &cell->buffers}) {
        for (const std::string& name : *names) {
          if (!config.bias && name.compare(0, 5, "bias_") == 0) continue;
          const std::int64_t rows = cell->parameter_blocks(name, config) * config.hidden;
          const bool weight = name == "weight_ih" || name == "weight_hh";
          const std::vector<std::int64_t> shape = name == "weight_ih"   ? std::vector<std::int64_t>{rows, input}
                                                  : name == "weight_hh" ? std::vector<std::int64_t>{rows, config.hidden}
                                                                        : std::vector<std::int64_t>{rows};
          // bf16 and int8 layers' files hold their weights quantized; biases stay in float32.
          const std::string dtype = !weight || config.precision == Precision::full ? plan.dtype
                                    : config.precision == Precision::bf16          ? "BF16"
                                                                                   : "I8";
          plan.expected.push_back({prefix + name + suffix, shape, dtype});
          plan.members.push_back({l * D + d, name});
          if (dtype == "I8") plan.scales.push_back({prefix + name + suffix + ".scale", {rows}, "F32"});
        }
      }
    }
    // A file cannot name more tensors than it has: stop before listing a huge configuration.
    if (plan.expected.size() > tensor_count) break;
  }
  return plan;
}

// Every tensor the file has is one of `expected` (name, shape, dtype), and the reverse.
void check_tensors(const std::map<std::string, Tensor>& tensors, const std::vector<PlannedTensor>& expected,
                   const Refusal& refuse) {
  std::set<std::string> expected_names;
  for (const PlannedTensor& planned : expected) {
    const std::string& name = planned.name;
    auto it = tensors.find(name);
    if (it == tensors.end()) throw refuse("the configuration needs the tensor " + name + ", which the file lacks");
    if (it->second.shape != planned.shape) throw refuse("tensor " + name + ": the configuration needs another shape");
    if (it->second.dtype != planned.dtype) {
      throw refuse("tensor " + name + ": the configuration needs dtype " + planned.dtype + ", the file has " + it->second.dtype);
    }
    expected_names.insert(name);
  }
  for (const auto& [name, tensor] : tensors) {
    if (!expected_names.count(name)) throw refuse("unexpected tensor " + api::printable(name) + " for this configuration");
  }
}

// The float32 values of a checked BF16 or I8 weight (with its `.scale`), checked as Python's
// model_file.dequantized checks them: bf16 values widened; int8 values times their rows' scales,
// in float32, which the network quantizes back to the same bf16 values, and to the same int8
// values (checked here; but for rows of scale 0, which compute 0 either way) with their scales to
// within a float32 rounding.
std::vector<float> dequantized_values(const Contents& contents, const std::string& name, const Refusal& refuse) {
  const Tensor& tensor = contents.tensors.at(name);
  const char* bytes = contents.data.data() + tensor.begin;
  std::vector<float> values(static_cast<std::size_t>((tensor.end - tensor.begin) / dtype_width(tensor.dtype)));
  if (tensor.dtype == "BF16") {
    for (std::size_t i = 0; i < values.size(); ++i) {
      kernels::Bf16 bits;
      std::memcpy(&bits, bytes + 2 * i, 2);
      values[i] = kernels::float_from_bf16(bits);
      if (!std::isfinite(values[i])) throw refuse("tensor '" + name + "': expected finite bf16 weights, got NaN or inf");
    }
    return values;
  }
  const std::vector<float> scale = tensor_values<float>(contents.data, contents.tensors.at(name + ".scale"));
  const auto* q = reinterpret_cast<const std::int8_t*>(bytes);
  if (std::find(q, q + values.size(), std::int8_t(-128)) != q + values.size()) {
    throw refuse("tensor '" + name + "': expected int8 values in -127..127, got -128");
  }
  for (const float s : scale) {
    if (!std::isfinite(s) || s < 0) throw refuse("tensor '" + name + ".scale': expected finite scales >= 0, got " + printed(s));
  }
  const std::size_t rows = scale.size(), columns = rows ? values.size() / rows : 0;
  for (std::size_t i = 0; i < values.size(); ++i) {
    values[i] = static_cast<float>(q[i]) * scale[i / columns];
    if (!std::isfinite(values[i])) throw refuse("tensor '" + name + "': its values times their scales overflow float32");
  }
  for (std::size_t r = 0; r < rows; ++r) {
    if (scale[r] == 0) continue;  // computes 0 whatever its q (the scale of a row of tiny values underflows)
    const float* row = values.data() + r * columns;
    const kernels::Int8RowScaling scaling = kernels::int8_row_scaling(
        kernels::float_from_bits(kernels::largest_magnitude_bits(static_cast<kernels::Index>(columns), row)));
    for (std::size_t c = 0; c < columns; ++c) {
      if (kernels::quantize_int8(row[c], scaling.inverse) != q[r * columns + c]) {
        throw refuse("tensor '" + name + "' row " + std::to_string(r) + ": q * scale does not quantize back to q (a "
                     "row's largest |q| is 127 and its scale max|row| / 127, or the row is all 0)");
      }
    }
  }
  return values;
}

// A bf16 or int8 batch-normalised layer's file holds the identity statistics (see folds_batch_norm).
void check_identity_statistics(const NetworkPlan& plan, const Contents& contents, const Refusal& refuse) {
  if (plan.config.precision == Precision::full || !folds_batch_norm(plan.config.cell)) return;
  const float variance = identity_running_var(plan.config.bn_eps);
  const std::map<std::string, float> identity{{"bn_weight", 1.0f}, {"bn_running_mean", 0.0f}, {"bn_running_var", variance}};
  for (std::size_t i = 0; i < plan.expected.size(); ++i) {
    const auto wanted = identity.find(plan.members[i].second);
    if (wanted == identity.end()) continue;
    for (const float value : tensor_values<float>(contents.data, contents.tensors.at(plan.expected[i].name))) {
      if (value != wanted->second) {
        throw refuse("tensor '" + plan.expected[i].name + "': a bf16 or int8 layer's file holds W_ih with its batch "
                     "normalisation folded in and the identity statistics: "
                     "expected bn_weight 1, bn_running_mean 0, bn_running_var 1 - bn_eps as a float32 (" + printed(variance) + ")");
      }
    }
  }
}

// The network of a plan whose tensors check_tensors has checked.
template <typename Real>
Network<Real> build_network(const NetworkPlan& plan, const Contents& contents, const Refusal& refuse) {
  check_identity_statistics(plan, contents, refuse);
  std::vector<std::vector<Real>> arrays;
  arrays.reserve(plan.expected.size());  // every array is in place before the first view is taken
  for (const PlannedTensor& planned : plan.expected) {
    if (planned.dtype == "BF16" || planned.dtype == "I8") {
      const std::vector<float> values = dequantized_values(contents, planned.name, refuse);
      arrays.emplace_back(values.begin(), values.end());
    } else {
      arrays.push_back(tensor_values<Real>(contents.data, contents.tensors.at(planned.name)));
    }
  }
  if (!std::is_same_v<Real, float> && plan.config.precision != Precision::full) {
    throw refuse.unservable(std::string(plan.config.precision == Precision::bf16 ? "a bf16" : "an int8") +
                            " model computes in float32: load it as float32 (load_network<float>, load_model<float>; "
                            "C: FASTGRU_FLOAT32)");
  }
  const std::int64_t D = plan.config.bidirectional ? 2 : 1;
  std::vector<WeightsView<Real>> views(static_cast<std::size_t>(plan.config.layers * D));
  for (std::size_t i = 0; i < plan.expected.size(); ++i)
    *cells::weight_member(views[plan.members[i].first], plan.members[i].second) = arrays[i].data();
  try {
    return Network<Real>(plan.config, views);
  } catch (const std::invalid_argument& error) {  // values the network refuses (a negative running variance)
    throw refuse(error.what());
  }
}

// A Model file's user metadata (JSON text, "{}" when absent), as Python reads it: a JSON object
// of at most kMaxUserMetadataBytes, nested at most 64 deep.
constexpr std::size_t kMaxUserMetadataBytes = 1000000;

void check_user_metadata(const JsonValue& metadata, const Refusal& refuse) {
  const JsonValue* field = metadata.find("user_metadata");
  const std::string text = field ? field->string : "{}";
  if (text.size() > kMaxUserMetadataBytes) {
    throw refuse("user_metadata: " + std::to_string(text.size()) + " bytes of JSON, more than the format's " +
                 std::to_string(kMaxUserMetadataBytes));
  }
  JsonValue value;
  try {
    value = api::parse_json(text, 0);
  } catch (const std::invalid_argument& error) {
    throw refuse(std::string("user_metadata is not JSON of a model file (") + error.what() + ")");
  }
  if (value.kind != JsonValue::Kind::object) throw refuse("user_metadata: expected a JSON object, got " + json_type(value));
}

// The values of a checked tensor as the file holds them (widened to double), each finite.
std::vector<double> finite_values(const Contents& contents, const std::string& name, const Refusal& refuse) {
  std::vector<double> values = tensor_values<double>(contents.data, contents.tensors.at(name));
  for (const double v : values) {
    if (!std::isfinite(v)) throw refuse("tensor " + name + ": expected finite values, got NaN or inf");
  }
  return values;
}

template <typename Real>
std::vector<Real> converted(const std::vector<double>& values) {
  return std::vector<Real>(values.begin(), values.end());
}

}  // namespace

template <typename Real>
Network<Real> load_network(const std::string& path) {
  const Refusal refuse(path);
  const Contents contents = read_contents(path, refuse);
  const std::string& layer_class = contents.field("class");
  if (layer_class == "Model") {
    throw refuse("a fastgru.Model file (a recurrent layer with a dense head): load_network reads recurrent "
                 "layers; read it with fastgru::load_model (C: fastgru_predictor_load)");
  }
  if (!cells::find_class(layer_class)) {
    throw refuse("expected a " + layer_classes() + " model, got class " + api::printable(layer_class));
  }
  const NetworkPlan plan = network_plan(layer_class, contents.field("config"), "config", "", contents.tensors.size(), refuse);
  check_tensors(contents.tensors, plan.tensors(), refuse);
  return build_network<Real>(plan, contents, refuse);
}

template <typename Real>
Model<Real> load_model(const std::string& path) {
  const Refusal refuse(path);
  const Contents contents = read_contents(path, refuse);
  const JsonValue& metadata = contents.metadata();
  const std::string& model_class = contents.field("class");
  if (model_class != "Model") {
    throw refuse("expected a fastgru.Model file, got class " + api::printable(model_class) +
                 (cells::find_class(model_class) ? " (a recurrent layer: read it with fastgru::load_network)" : ""));
  }
  const JsonValue* recurrent_class = metadata.find("recurrent_class");
  const std::string layer_class = recurrent_class ? recurrent_class->string : "";
  if (!cells::find_class(layer_class)) {
    throw refuse("recurrent_class: expected one of " + layer_classes() + ", got " + api::printable(layer_class));
  }
  const JsonValue* recurrent_config = metadata.find("recurrent_config");
  const NetworkPlan plan = network_plan(layer_class, recurrent_config ? recurrent_config->string : "", "recurrent_config",
                                        "recurrent.", contents.tensors.size(), refuse);

  // The Model's own fields (Python's Model._from_file checks the same).
  const JsonValue config = parse(contents.field("config"), "config", refuse);
  const std::set<std::string> required{"outputs", "head", "loss", "clip_grad_norm"}, optional{"embedding", "output_scaling"};
  bool fields_fit = config.kind == JsonValue::Kind::object;
  for (const auto& [key, value] : config.members()) fields_fit = fields_fit && (required.count(key) || optional.count(key));
  for (const std::string& key : required) fields_fit = fields_fit && config.find(key);
  if (!fields_fit) {
    throw refuse("config: expected an object of the fields ['clip_grad_norm', 'head', 'loss', 'outputs'] (and "
                 "embedding for a token model, output_scaling for scaled outputs)");
  }
  ModelConfig model;
  const JsonValue* embedding = config.find("embedding");
  if (embedding && embedding->kind != JsonValue::Kind::null) {
    const JsonValue* vocab_size = embedding->find("vocab_size");
    const JsonValue* padding_id = embedding->find("padding_id");
    if (embedding->kind != JsonValue::Kind::object || !vocab_size || !padding_id || embedding->members().size() != 2) {
      throw refuse("config embedding: expected an object of the fields ['padding_id', 'vocab_size']");
    }
    if (!is_integer(*vocab_size, 1, kMaxSize)) {
      throw refuse("config embedding vocab_size: expected an integer in 1..2^31, got " + json_type(*vocab_size));
    }
    model.vocab_size = static_cast<std::int64_t>(vocab_size->number);
    if (padding_id->kind != JsonValue::Kind::null) {
      if (!is_integer(*padding_id, 0, static_cast<double>(model.vocab_size - 1))) {
        throw refuse("config embedding padding_id: expected null or an integer in 0.." + std::to_string(model.vocab_size - 1));
      }
      model.padding_id = static_cast<std::int64_t>(padding_id->number);
    }
  }
  const JsonValue* scaling = config.find("output_scaling");
  if (scaling && !(scaling->kind == JsonValue::Kind::boolean && scaling->boolean)) {
    throw refuse("config output_scaling: expected true (or no field), got " + json_type(*scaling));
  }
  model.output_scaling = scaling != nullptr;
  const JsonValue& outputs = *config.find("outputs");
  if (!is_integer(outputs, 1, kMaxSize)) throw refuse("config outputs: expected an integer in 1..2^31, got " + json_type(outputs));
  model.outputs = static_cast<std::int64_t>(outputs.number);
  const JsonValue& head = *config.find("head");
  if (!is_string_in(head, {"last", "sequence"})) throw refuse("config head: expected 'last' or 'sequence'");
  model.head = head.string == "last" ? Head::last : Head::sequence;
  const JsonValue& loss = *config.find("loss");
  const JsonValue* loss_name = loss.find("name");
  const JsonValue* delta = loss.find("delta");
  const bool named = loss.kind == JsonValue::Kind::object && loss_name && loss.members().size() == 1 &&
                     is_string_in(*loss_name, {"mse", "mae", "cross_entropy"});
  const bool huber = loss.kind == JsonValue::Kind::object && loss_name && delta && loss.members().size() == 2 &&
                     is_string_in(*loss_name, {"huber"}) && is_number(*delta) && delta->number > 0;
  if (!named && !huber) {
    throw refuse("config loss: expected {'name': one of ('mse', 'mae', 'cross_entropy')} or {'name': 'huber', "
                 "'delta': a number > 0}");
  }
  model.classifier = named && loss_name->string == "cross_entropy";
  const JsonValue& clip = *config.find("clip_grad_norm");
  if (clip.kind != JsonValue::Kind::null && !(is_number(clip) && clip.number > 0)) {
    throw refuse("config clip_grad_norm: expected a number > 0 or null");
  }

  std::vector<PlannedTensor> expected = plan.tensors();
  // The head reads every direction's final state ("last") or each step's outputs, whose
  // directions a bidirectional network may merge into H features.
  const bool merged = model.head == Head::sequence && plan.config.merge != MergeMode::concat;
  const std::int64_t features = (plan.config.bidirectional && !merged ? 2 : 1) * plan.config.hidden;
  expected.push_back({"head.weight", {model.outputs, features}, plan.dtype});
  expected.push_back({"head.bias", {model.outputs}, plan.dtype});
  if (model.vocab_size) expected.push_back({"embedding.weight", {model.vocab_size, plan.config.input}, plan.dtype});
  if (model.output_scaling) {
    expected.push_back({"output.scale", {model.outputs}, plan.dtype});
    expected.push_back({"output.offset", {model.outputs}, plan.dtype});
  }
  check_tensors(contents.tensors, expected, refuse);
  check_user_metadata(metadata, refuse);
  if (plan.directions_apart) {
    throw refuse("recurrent_config merge_mode: null gives the directions apart, which a dense head does not read; "
                 "expected 'concat', 'sum', 'mul' or 'ave'");
  }
  if (model.classifier && model.outputs < 2) {
    throw refuse("outputs: cross-entropy needs at least 2 classes, got " + std::to_string(model.outputs));
  }
  if (model.classifier && model.output_scaling) {
    throw refuse("output scaling: the outputs of a cross_entropy model are logits; output scaling is for regression");
  }
  auto impl = std::make_unique<typename Model<Real>::Impl>(build_network<Real>(plan, contents, refuse));
  impl->config = model;
  impl->head_weight = converted<Real>(finite_values(contents, "head.weight", refuse));
  impl->head_bias = converted<Real>(finite_values(contents, "head.bias", refuse));
  if (model.vocab_size) impl->embedding = converted<Real>(finite_values(contents, "embedding.weight", refuse));
  if (model.output_scaling) {
    const std::vector<double> scale = finite_values(contents, "output.scale", refuse);
    if (std::find(scale.begin(), scale.end(), 0.0) != scale.end()) throw refuse("tensor output.scale: expected non-zero numbers, got a 0");
    impl->scale = converted<Real>(scale);
    impl->offset = converted<Real>(finite_values(contents, "output.offset", refuse));
  }
  return Model<Real>(std::move(impl));
}

void check_model_json(std::string_view json, bool user_data) {
  api::check_json_bounds(json, user_data ? 0 : api::kBytesPerValue);
}

template Network<float> load_network<float>(const std::string&);
template Network<double> load_network<double>(const std::string&);
template Model<float> load_model<float>(const std::string&);
template Model<double> load_model<double>(const std::string&);

}  // namespace fastgru
