// Reads the model files that python/fastgru/model_file.py writes (safetensors + fastgru metadata).
#include "fastgru/model_file.h"

#include <cstdint>
#include <cstring>
#include <fstream>
#include <map>
#include <sstream>
#include <stdexcept>
#include <vector>

#include "api/json.h"

namespace fastgru {
namespace {

constexpr int kFormatVersion = 1;  // the newest version this reader understands

struct Tensor {
  std::vector<std::int64_t> shape;
  std::vector<double> values;  // widened; narrowed to the network's Real when copied out
};

struct ModelFile {
  std::map<std::string, Tensor> tensors;
  api::JsonValue config;
  std::string layer_class;
};

ModelFile read(const std::string& path) {
  auto refuse = [&](const std::string& reason) {
    return std::invalid_argument("fastgru: " + path + ": not a readable fastgru model file: " + reason);
  };
  std::ifstream in(path, std::ios::binary);
  if (!in) throw refuse("cannot open it");
  const std::string content((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  if (content.size() < 8) throw refuse("expected at least 8 bytes, got " + std::to_string(content.size()));
  std::uint64_t header_bytes = 0;
  for (int i = 7; i >= 0; --i) header_bytes = (header_bytes << 8) | static_cast<unsigned char>(content[i]);
  if (header_bytes > content.size() - 8) throw refuse("header does not fit in the file (truncated?)");
  api::JsonValue header;
  try {
    header = api::parse_json(content.substr(8, header_bytes));
  } catch (const std::exception& error) {
    throw refuse(std::string("header is not JSON (") + error.what() + ")");
  }
  const api::JsonValue* metadata = header.find("__metadata__");
  const api::JsonValue* format = metadata ? metadata->find("format") : nullptr;
  if (!format || format->string != "fastgru") throw refuse("no fastgru metadata (a file from another library?)");
  const api::JsonValue* version = metadata->find("format_version");
  int format_version = 0;
  try {
    format_version = version ? std::stoi(version->string) : 0;
  } catch (const std::exception&) {
    throw refuse("format_version is not an integer");
  }
  if (format_version < 1) throw refuse("format_version is missing");
  if (format_version > kFormatVersion) {
    throw refuse("format version " + std::to_string(format_version) + " is newer than this fastgru reads (" +
                 std::to_string(kFormatVersion) + ")");
  }
  ModelFile model;
  const api::JsonValue* cls = metadata->find("class");
  const api::JsonValue* config = metadata->find("config");
  if (!cls || !config) throw refuse("class or config metadata is missing");
  model.layer_class = cls->string;
  try {
    model.config = api::parse_json(config->string);
  } catch (const std::exception& error) {
    throw refuse(std::string("config is not JSON (") + error.what() + ")");
  }
  const std::size_t data_begin = 8 + header_bytes, data_size = content.size() - data_begin;
  for (const auto& [name, entry] : header.object) {
    if (name == "__metadata__") continue;
    const api::JsonValue* dtype = entry.find("dtype");
    const api::JsonValue* shape = entry.find("shape");
    const api::JsonValue* offsets = entry.find("data_offsets");
    if (!dtype || !shape || !offsets || offsets->array.size() != 2) throw refuse("tensor " + name + " is malformed");
    const std::size_t width = dtype->string == "F32" ? 4 : dtype->string == "F64" ? 8 : 0;
    if (!width) throw refuse("tensor " + name + " has dtype " + dtype->string + ", expected F32 or F64");
    Tensor tensor;
    std::uint64_t count = 1;
    for (const auto& n : shape->array) {
      if (n.number < 0) throw refuse("tensor " + name + " has a negative dimension");
      tensor.shape.push_back(static_cast<std::int64_t>(n.number));
      // No tensor holds more values than the file has bytes: checked at each factor, so that
      // a crafted shape cannot wrap the product around.
      const auto dimension = static_cast<std::uint64_t>(n.number);
      if (dimension != 0 && count > data_size / width / dimension) {
        throw refuse("tensor " + name + ": its shape holds more values than the file has bytes (truncated?)");
      }
      count *= dimension;
    }
    const auto begin = static_cast<std::uint64_t>(offsets->array[0].number);
    const auto end = static_cast<std::uint64_t>(offsets->array[1].number);
    if (begin > end || end > data_size || end - begin != count * width) {
      throw refuse("tensor " + name + ": its bytes do not fit its shape within the file (truncated?)");
    }
    tensor.values.resize(count);
    const char* bytes = content.data() + data_begin + begin;
    for (std::uint64_t i = 0; i < count; ++i) {
      // The format is little-endian, as is every x86-64 and arm64 host this builds for.
      if (width == 4) {
        float v;
        std::memcpy(&v, bytes + 4 * i, 4);
        tensor.values[i] = v;
      } else {
        std::memcpy(&tensor.values[i], bytes + 8 * i, 8);
      }
    }
    model.tensors[name] = std::move(tensor);
  }
  return model;
}

double number(const api::JsonValue& config, const char* key, const std::string& path) {
  const api::JsonValue* value = config.find(key);
  if (!value || value->kind != api::JsonValue::Kind::number) {
    throw std::invalid_argument("fastgru: " + path + ": config lacks the number " + key);
  }
  return value->number;
}

// A size from the config: a whole number in 1..2^31, which no real layer exceeds and which keeps
// every product of sizes below 2^63.
std::int64_t size(const api::JsonValue& config, const char* key, const std::string& path) {
  const double value = number(config, key, path);
  if (!(value >= 1 && value <= 2147483648.0) || value != static_cast<double>(static_cast<std::int64_t>(value))) {
    throw std::invalid_argument("fastgru: " + path + ": config " + key + " expected a whole number in 1..2^31, got " +
                                std::to_string(value));
  }
  return static_cast<std::int64_t>(value);
}

bool flag(const api::JsonValue& config, const char* key, bool otherwise) {
  const api::JsonValue* value = config.find(key);
  return value && value->kind == api::JsonValue::Kind::boolean ? value->boolean : otherwise;
}

Activation activation(const api::JsonValue& config, const std::string& path) {
  const api::JsonValue* value = config.find("activation");
  const std::string name = value && value->kind == api::JsonValue::Kind::string ? value->string : "";
  if (name == "relu") return Activation::relu;
  if (name == "tanh") return Activation::tanh;
  if (name == "leaky_relu") return Activation::leaky_relu;
  throw std::invalid_argument("fastgru: " + path +
                              ": config activation: expected relu, tanh or leaky_relu, got '" + name + "'");
}

}  // namespace

template <typename Real>
Gru<Real> load_gru(const std::string& path) {
  const ModelFile model = read(path);
  if (model.layer_class != "GRU" && model.layer_class != "MGU" && model.layer_class != "LiGRU") {
    throw std::invalid_argument("fastgru: " + path + ": expected a GRU, MGU or LiGRU model, got class '" +
                                model.layer_class + "'");
  }
  GruConfig config;
  config.cell = model.layer_class == "GRU" ? Cell::gru : model.layer_class == "MGU" ? Cell::mgu : Cell::ligru;
  const bool ligru = config.cell == Cell::ligru;
  config.input = size(model.config, "input_size", path);
  config.hidden = size(model.config, "hidden_size", path);
  config.layers = size(model.config, "num_layers", path);
  config.bidirectional = flag(model.config, "bidirectional", false);
  config.bias = !ligru && flag(model.config, "bias", true);
  config.mode = flag(model.config, "reset_after", true) ? ResetMode::after : ResetMode::before;
  config.dropout = number(model.config, "dropout", path);
  config.recurrent_dropout = number(model.config, "recurrent_dropout", path);
  config.zoneout = number(model.config, "zoneout", path);
  if (ligru) {
    config.activation = activation(model.config, path);
    config.negative_slope = number(model.config, "negative_slope", path);
    config.bn_eps = number(model.config, "bn_eps", path);
  }

  const std::int64_t D = config.bidirectional ? 2 : 1;
  const std::int64_t G = (config.cell == Cell::gru ? 3 : 2) * config.hidden;
  std::vector<std::vector<Real>> arrays;
  std::vector<GruWeightsView<Real>> views;
  // Every array is in place before the first view is taken: reserve for all of them.
  arrays.reserve(static_cast<size_t>(6 * config.layers * D));
  for (std::int64_t l = 0; l < config.layers; ++l) {
    for (std::int64_t d = 0; d < D; ++d) {
      const std::string suffix = "_l" + std::to_string(l) + (d ? "_reverse" : "");
      const std::int64_t input = l == 0 ? config.input : D * config.hidden;
      auto take = [&](const std::string& name, std::vector<std::int64_t> shape) -> const Real* {
        auto it = model.tensors.find(name);
        if (it == model.tensors.end()) throw std::invalid_argument("fastgru: " + path + ": no tensor " + name);
        if (it->second.shape != shape) throw std::invalid_argument("fastgru: " + path + ": tensor " + name + " has the wrong shape");
        arrays.emplace_back(it->second.values.begin(), it->second.values.end());
        return arrays.back().data();
      };
      GruWeightsView<Real> view;
      view.weight_ih = take("weight_ih" + suffix, {G, input});
      view.weight_hh = take("weight_hh" + suffix, {G, config.hidden});
      if (config.bias) {
        view.bias_ih = take("bias_ih" + suffix, {G});
        view.bias_hh = take("bias_hh" + suffix, {G});
      }
      if (ligru) {
        view.bn_weight = take("bn_weight" + suffix, {G});
        view.bn_bias = take("bn_bias" + suffix, {G});
        view.bn_running_mean = take("bn_running_mean" + suffix, {G});
        view.bn_running_var = take("bn_running_var" + suffix, {G});
      }
      views.push_back(view);
    }
  }
  return Gru<Real>(config, views);
}

template Gru<float> load_gru<float>(const std::string&);
template Gru<double> load_gru<double>(const std::string&);

}  // namespace fastgru
