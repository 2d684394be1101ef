// fastgru._core: a thin pybind11 client of the C++ core. It checks dtype, shape and
// contiguity, allocates outputs and releases the GIL around compute; it does no maths.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <dlfcn.h>
#include <omp.h>

#include <algorithm>
#include <functional>
#include <initializer_list>
#include <limits>
#include <optional>
#include <tuple>
#include <sstream>
#include <string>
#include <vector>

#include "fastgru/network.h"
#include "fastgru/model.h"
#include "fastgru/model_file.h"
#include "fastgru/optimizers.h"
#include "fastgru/runtime.h"
// Private headers: the table of cells, and the hooks of the thread tests and of bench/threads.py.
#include "cells/cell_table.h"
#include "driver/work_split.h"
#include "threads/contention.h"
#include "threads/pool.h"

namespace py = pybind11;

namespace {

using Shape = std::vector<py::ssize_t>;

std::string shape_text(const Shape& shape) {
  std::ostringstream out;
  out << "(";
  for (size_t i = 0; i < shape.size(); ++i) out << (i ? ", " : "") << shape[i];
  out << (shape.size() == 1 ? ",)" : ")");
  return out.str();
}

// Whether an array of this dtype holds native Reals. By type number and byte order, not by
// identity: NumPy can hand out equal dtype objects that are distinct ones (e.g. after pickling).
template <typename Real>
bool holds(const py::dtype& dtype) {
  return dtype.num() == py::dtype::of<Real>().num() && dtype.byteorder() != '>';
}

// Returns the array's data after checking that it is exactly what the core will read or write.
template <typename Real>
Real* checked_data(const py::array& array, const char* name, const Shape& expected,
                   bool writable = false) {
  if (!holds<Real>(array.dtype())) {
    throw py::type_error(std::string(name) + ": expected dtype " +
                         std::string(py::str(py::dtype::of<Real>())) + ", got " +
                         std::string(py::str(array.dtype())));
  }
  const Shape actual(array.shape(), array.shape() + array.ndim());
  if (actual != expected) {
    throw py::value_error(std::string(name) + ": expected shape " + shape_text(expected) +
                          ", got " + shape_text(actual));
  }
  if (!(array.flags() & py::array::c_style)) {
    throw py::value_error(std::string(name) + ": expected a C-contiguous array");
  }
  if (writable && !array.writeable()) {
    throw py::value_error(std::string(name) + ": expected a writable array");
  }
  return static_cast<Real*>(const_cast<void*>(array.data()));
}

template <typename Real>
const Real* optional_data(const std::optional<py::array>& array, const char* name,
                          const Shape& expected) {
  return array ? checked_data<Real>(*array, name, expected) : nullptr;
}

// One layer and direction's weights as Python hands them over: (weight_ih, weight_hh,
// bias_ih or None, bias_hh or None).
using LayerArrays = std::tuple<py::array, py::array, std::optional<py::array>, std::optional<py::array>>;
// The batch normalisation of one layer and direction, for a cell that normalises its input
// projections: (bn_weight, bn_bias, bn_running_mean, bn_running_var), and its gradients
// (bn_weight, bn_bias).
using BatchNormArrays = std::tuple<py::array, py::array, py::array, py::array>;
using BatchNormGradients = std::tuple<py::array, py::array>;

const fastgru::cells::CellDescription& parse_cell(const std::string& cell) {
  if (const fastgru::cells::CellDescription* description = fastgru::cells::find_cell(cell)) return *description;
  std::vector<std::string> names;
  for (const auto& description : fastgru::cells::cell_descriptions()) names.push_back(description.name);
  throw py::value_error("cell: expected " + fastgru::cells::name_list(names, "'") + ", got '" + cell + "'");
}

// The activation `activation` of a cell that has a choice of them ("" for a cell without one).
fastgru::Activation parse_activation(const fastgru::cells::CellDescription& cell, const std::string& activation) {
  const std::vector<std::string>& names = cell.activations();
  if (names.empty()) {
    if (!activation.empty()) {
      throw py::value_error("activation: cell '" + cell.name + "' has no choice of activation, got '" + activation + "'");
    }
    return fastgru::Activation::relu;
  }
  const auto chosen = std::find(names.begin(), names.end(), activation);
  if (chosen == names.end()) {
    throw py::value_error("activation: expected " + fastgru::cells::name_list(names, "'") + ", got '" + activation + "'");
  }
  return static_cast<fastgru::Activation>(chosen - names.begin());
}

// The form of the gates `gates` names: one of the cell's option "gates" choices, or "full".
fastgru::GateTerms parse_gates(const fastgru::cells::CellDescription& cell, const std::string& gates) {
  std::vector<std::string> names{"full"};
  for (const fastgru::cells::CellOption& option : cell.options)
    if (option.name == "gates") names = option.choices;
  const auto chosen = std::find(names.begin(), names.end(), gates);
  if (chosen == names.end()) {
    throw py::value_error("gates: expected " + fastgru::cells::name_list(names, "'") + " for cell '" + cell.name +
                          "', got '" + gates + "'");
  }
  return static_cast<fastgru::GateTerms>(chosen - names.begin());
}

// How a bidirectional network's outputs are merged: "concat", "sum", "mul" or "ave" (Keras's names).
fastgru::MergeMode parse_merge(const std::string& merge) {
  static const std::vector<std::string> names{"concat", "sum", "mul", "ave"};
  const auto chosen = std::find(names.begin(), names.end(), merge);
  if (chosen == names.end()) {
    throw py::value_error("merge: expected " + fastgru::cells::name_list(names, "'") + ", got '" + merge + "'");
  }
  return static_cast<fastgru::MergeMode>(chosen - names.begin());
}

// "full" (the network's own type), "bf16" or "int8" (fastgru::Precision's order).
fastgru::Precision parse_precision(const std::string& precision) {
  static const std::vector<std::string> names{"full", "bf16", "int8"};
  const auto chosen = std::find(names.begin(), names.end(), precision);
  if (chosen == names.end()) {
    throw py::value_error("precision: expected " + fastgru::cells::name_list(names, "'") + ", got '" +
                          precision + "'");
  }
  return static_cast<fastgru::Precision>(chosen - names.begin());
}

// Every cell's description (cells/cell_table.h), keyed by its Python class name.
py::dict cell_descriptions() {
  auto strings = [](const std::vector<std::string>& names) {
    py::tuple tuple(names.size());
    for (size_t i = 0; i < names.size(); ++i) tuple[i] = py::str(names[i]);
    return tuple;
  };
  py::dict table;
  for (const fastgru::cells::CellDescription& cell : fastgru::cells::cell_descriptions()) {
    py::dict entry;
    entry["cell"] = cell.name;
    entry["class_name"] = cell.class_name;
    entry["gate_blocks"] = strings(cell.gate_blocks);
    entry["gates"] = cell.gates();
    entry["parameters"] = strings(cell.parameters);
    entry["buffers"] = strings(cell.buffers);
    entry["has_bias_option"] = cell.has_bias_option;
    entry["has_reset_conventions"] = cell.has_reset_conventions;
    entry["normalises_inputs"] = cell.normalises_inputs;
    entry["activations"] = strings(cell.activations());
    std::vector<std::string> options;
    for (const fastgru::cells::CellOption& option : cell.options) options.push_back(option.name);
    entry["options"] = strings(options);
    // Row blocks of each array for each form of the gates ("full" alone for most cells).
    py::dict blocks;
    std::vector<std::string> forms{"full"};
    for (const fastgru::cells::CellOption& option : cell.options)
      if (option.name == "gates") forms = option.choices;
    for (const std::string& form : forms) {
      fastgru::NetworkConfig config;
      config.gates = parse_gates(cell, form);
      py::dict per_name;
      for (const auto* names : {&cell.parameters, &cell.buffers})
        for (const std::string& name : *names) per_name[py::str(name)] = cell.parameter_blocks(name, config);
      blocks[py::str(form)] = per_name;
    }
    entry["parameter_blocks"] = blocks;
    table[py::str(cell.class_name)] = entry;
  }
  return table;
}

template <typename Real>
class PyGru {
 public:
  PyGru(py::ssize_t input_size, py::ssize_t hidden_size, py::ssize_t num_layers,
        bool bidirectional, bool reset_after, bool bias, const std::vector<LayerArrays>& weights,
        double dropout, double recurrent_dropout, double zoneout, const std::string& cell,
        const std::vector<BatchNormArrays>& batch_norm, const std::string& activation,
        double negative_slope, double bn_eps, const std::string& gates, bool reverse,
        const std::string& merge, const std::string& precision, double clip)
      : gru_(make_gru(input_size, hidden_size, num_layers, bidirectional, reset_after, bias,
                      weights, dropout, recurrent_dropout, zoneout, cell, batch_norm, activation,
                      negative_slope, bn_eps, gates, reverse, merge, precision, clip)) {}
  // A network the C++ loader read from a model file.
  explicit PyGru(fastgru::Network<Real>&& gru) : gru_(std::move(gru)) {}

  // x (T, B, I) or (B, T, I); h0 (L·D, B, H) or None; lengths (B,) int64 or None;
  // cache: a TrainingCache to fill, or None for inference; mask (T, B) or (B, T) uint8 or None.
  // Returns (y, h_n).
  py::tuple forward(const py::array& x, const std::optional<py::array>& h0,
                    const std::optional<py::array>& lengths, bool batch_first,
                    std::optional<std::reference_wrapper<fastgru::TrainingCache<Real>>> cache,
                    std::uint64_t seed, const std::optional<py::array>& mask) const {
    const fastgru::NetworkConfig& c = gru_.config();
    if (x.ndim() != 3) {
      throw py::value_error("x: expected 3 dimensions, got " + std::to_string(x.ndim()));
    }
    const py::ssize_t T = x.shape(batch_first ? 1 : 0), B = x.shape(batch_first ? 0 : 1);
    const py::ssize_t H = c.hidden, LD = c.layers * gru_.directions(), DH = gru_.output_width();
    fastgru::SequenceLayout layout;
    layout.steps = T;
    layout.batch = B;
    layout.batch_first = batch_first;
    const Real* x_data = checked_data<Real>(
        x, "x", batch_first ? Shape{B, T, c.input} : Shape{T, B, c.input});
    const Real* h0_data = optional_data<Real>(h0, "h0", {LD, B, H});
    if (lengths) {
      if (!lengths->dtype().is(py::dtype::of<std::int64_t>())) {
        throw py::type_error("lengths: expected dtype int64, got " + std::string(py::str(lengths->dtype())));
      }
      layout.lengths = checked_data<std::int64_t>(*lengths, "lengths", {B});
    }
    if (mask) {
      if (!mask->dtype().is(py::dtype::of<std::uint8_t>())) {
        throw py::type_error("mask: expected dtype uint8, got " + std::string(py::str(mask->dtype())));
      }
      layout.mask = checked_data<std::uint8_t>(*mask, "mask", batch_first ? Shape{B, T} : Shape{T, B});
    }
    py::array_t<Real> y(batch_first ? Shape{B, T, DH} : Shape{T, B, DH});
    py::array_t<Real> h_n({LD, B, H});
    Real* y_data = y.mutable_data();
    Real* h_n_data = h_n.mutable_data();
    fastgru::TrainingCache<Real>* cache_ptr = cache ? &cache->get() : nullptr;
    {
      py::gil_scoped_release release;
      gru_.forward(layout, x_data, h0_data, y_data, h_n_data, cache_ptr, seed);
    }
    return py::make_tuple(y, h_n);
  }

  // Inference's fast path (GRU.__call__, forward(train=False) without lengths): x (T, B, I) or
  // (B, T, I) and h0 (L·D, B, H) or None, exactly what the core reads (see try_step), T, B >= 1.
  // Returns (y, h_n), or None for the caller's general path.
  py::object try_forward(py::handle x_object, py::handle h0, bool batch_first) const {
    const fastgru::NetworkConfig& c = gru_.config();
    const Real* x_data = exact_data(x_object);
    if (!x_data) return py::none();
    const auto x = py::reinterpret_borrow<py::array>(x_object);
    if (x.ndim() != 3 || x.shape(2) != c.input) return py::none();
    const py::ssize_t T = x.shape(batch_first ? 1 : 0), B = x.shape(batch_first ? 0 : 1);
    if (T < 1 || B < 1) return py::none();
    const py::ssize_t H = c.hidden, LD = c.layers * gru_.directions(), DH = gru_.output_width();
    const Real* h0_data = nullptr;
    if (!h0.is_none()) {
      h0_data = exact_data(h0);
      if (!h0_data) return py::none();
      if (!has_shape(h0, {LD, B, H})) return py::none();
    }
    fastgru::SequenceLayout layout;
    layout.steps = T;
    layout.batch = B;
    layout.batch_first = batch_first;
    py::array_t<Real> y(batch_first ? Shape{B, T, DH} : Shape{T, B, DH});
    py::array_t<Real> h_n({LD, B, H});
    Real* y_data = y.mutable_data();
    Real* h_n_data = h_n.mutable_data();
    {
      py::gil_scoped_release release;
      gru_.forward(layout, x_data, h0_data, y_data, h_n_data, nullptr, 0);
    }
    return py::make_tuple(std::move(y), std::move(h_n));
  }

  // The streaming step's fast path (GRU.step): x_t (B, I) or (I,) and h (L, B, H), (L, H) or
  // None, each exactly what the core reads: an ndarray (not a subclass) of Real, native byte
  // order, C-contiguous, of the right shape; a unidirectional network; B >= 1. Returns
  // (y_t, h_n) shaped as GRU.step returns them, or None when anything differs: the caller then
  // takes its general path, which converts what it can and names what it cannot.
  py::object try_step(py::handle x_t, py::handle h) const {
    const fastgru::NetworkConfig& c = gru_.config();
    if (gru_.directions() != 1 || c.reverse) return py::none();
    const Real* x_data = exact_data(x_t);
    if (!x_data) return py::none();
    const auto x = py::reinterpret_borrow<py::array>(x_t);
    const py::ssize_t ndim = x.ndim();
    if ((ndim != 1 && ndim != 2) || x.shape(ndim - 1) != c.input) return py::none();
    const bool unbatched = ndim == 1;
    const py::ssize_t B = unbatched ? 1 : x.shape(0), H = c.hidden, L = c.layers;
    if (B < 1) return py::none();
    const Real* h_data = nullptr;
    if (!h.is_none()) {
      h_data = exact_data(h);
      if (!h_data) return py::none();
      if (!(unbatched ? has_shape(h, {L, H}) : has_shape(h, {L, B, H}))) return py::none();
    }
    py::array_t<Real> y(unbatched ? Shape{H} : Shape{B, H});
    py::array_t<Real> h_n(unbatched ? Shape{L, H} : Shape{L, B, H});
    Real* y_data = y.mutable_data();
    Real* h_n_data = h_n.mutable_data();
    fastgru::SequenceLayout layout;
    layout.steps = 1;
    layout.batch = B;
    {
      py::gil_scoped_release release;
      gru_.forward(layout, x_data, h_data, y_data, h_n_data, nullptr, 0);
    }
    return py::make_tuple(std::move(y), std::move(h_n));
  }

  // dy like y, dh_n (L·D, B, H) or None, grads: per layer and direction (grad_weight_ih,
  // grad_weight_hh, grad_bias_ih or None, grad_bias_hh or None), accumulated. Returns (dx, dh0).
  // batch_norm_grads: (grad_bn_weight, grad_bn_bias) per layer and direction where the cell
  // normalises its input projections.
  py::tuple backward(fastgru::TrainingCache<Real>& cache, const py::array& dy,
                     const std::optional<py::array>& dh_n, const std::vector<LayerArrays>& grads,
                     const std::vector<BatchNormGradients>& batch_norm_grads) const {
    if (!cache.filled()) {
      throw py::value_error("cache: expected one filled by a training forward and not yet used by backward");
    }
    const fastgru::NetworkConfig& c = gru_.config();
    const py::ssize_t D = gru_.directions(), H = c.hidden, LD = c.layers * D;
    const py::ssize_t T = cache.steps(), B = cache.batch();
    const bool batch_first = cache.batch_first();
    const py::ssize_t W = gru_.output_width();
    const Real* dy_data = checked_data<Real>(dy, "dy", batch_first ? Shape{B, T, W} : Shape{T, B, W});
    const Real* dh_n_data = optional_data<Real>(dh_n, "dh_n", {LD, B, H});
    if (static_cast<py::ssize_t>(grads.size()) != LD) {
      throw py::value_error("grads: expected " + std::to_string(LD) + " entries, got " + std::to_string(grads.size()));
    }
    std::vector<fastgru::GradientsView<Real>> views(LD);
    const fastgru::cells::CellDescription& cell = fastgru::cells::describe(c.cell);
    const py::ssize_t G = cell.gates() * H;
    auto rows = [&](const char* name) -> py::ssize_t { return cell.parameter_blocks(name, c) * H; };
    const bool batch_norm = cell.normalises_inputs;
    if (static_cast<py::ssize_t>(batch_norm_grads.size()) != (batch_norm ? LD : 0)) {
      throw py::value_error("batch_norm_grads: expected " + std::to_string(batch_norm ? LD : 0) +
                            " entries, got " + std::to_string(batch_norm_grads.size()));
    }
    for (py::ssize_t s = 0; s < LD; ++s) {
      const py::ssize_t I = s < D ? c.input : D * H;
      const auto& [w_ih, w_hh, b_ih, b_hh] = grads[s];
      views[s].weight_ih = checked_data<Real>(w_ih, "grad weight_ih", {rows("weight_ih"), I}, true);
      views[s].weight_hh = checked_data<Real>(w_hh, "grad weight_hh", {rows("weight_hh"), H}, true);
      if (c.bias != (b_ih.has_value() && b_hh.has_value())) {
        throw py::value_error("grad biases: expected them exactly when the network has biases");
      }
      if (c.bias) {
        views[s].bias_ih = checked_data<Real>(*b_ih, "grad bias_ih", {rows("bias_ih")}, true);
        views[s].bias_hh = checked_data<Real>(*b_hh, "grad bias_hh", {rows("bias_hh")}, true);
      }
      if (batch_norm) {
        const auto& [bn_weight, bn_bias] = batch_norm_grads[s];
        views[s].bn_weight = checked_data<Real>(bn_weight, "grad bn_weight", {G}, true);
        views[s].bn_bias = checked_data<Real>(bn_bias, "grad bn_bias", {G}, true);
      }
    }
    py::array_t<Real> dx(batch_first ? Shape{B, T, c.input} : Shape{T, B, c.input});
    py::array_t<Real> dh0({LD, B, H});
    Real* dx_data = dx.mutable_data();
    Real* dh0_data = dh0.mutable_data();
    {
      py::gil_scoped_release release;
      gru_.backward(cache, dy_data, dh_n_data, dx_data, dh0_data, views);
    }
    return py::make_tuple(dx, dh0);
  }

  // The training forward that filled `cache`, of a cell that normalises its input projections:
  // (rows normalised over, [(mean, biased variance) of the input projections, (G,) each, per
  // layer and direction]).
  py::tuple batch_statistics(const fastgru::TrainingCache<Real>& cache) const {
    const py::ssize_t LD = gru_.config().layers * gru_.directions();
    const py::ssize_t G = fastgru::cells::describe(gru_.config().cell).gates() * gru_.config().hidden;
    py::list statistics;
    for (py::ssize_t s = 0; s < LD; ++s) {
      py::array_t<Real> mean(G), variance(G);
      cache.batch_statistics(s, mean.mutable_data(), variance.mutable_data());
      statistics.append(py::make_tuple(mean, variance));
    }
    return py::make_tuple(cache.normalised_rows(), statistics);
  }

 private:
  // The data of `object` when it is an ndarray (exactly, not a subclass) of native Reals,
  // C-contiguous; else nullptr.
  static const Real* exact_data(py::handle object) {
    const auto& api = py::detail::npy_api::get();
    if (Py_TYPE(object.ptr()) != api.PyArray_Type_) return nullptr;
    const auto array = py::reinterpret_borrow<py::array>(object);
    if (!(array.flags() & py::array::c_style) || !holds<Real>(array.dtype())) return nullptr;
    return static_cast<const Real*>(array.data());
  }

  // Whether the ndarray `array` has exactly this shape (without building a shape vector).
  static bool has_shape(py::handle array, std::initializer_list<py::ssize_t> shape) {
    const auto a = py::reinterpret_borrow<py::array>(array);
    if (a.ndim() != static_cast<py::ssize_t>(shape.size())) return false;
    py::ssize_t axis = 0;
    for (const py::ssize_t extent : shape)
      if (a.shape(axis++) != extent) return false;
    return true;
  }

  static fastgru::Network<Real> make_gru(py::ssize_t input_size, py::ssize_t hidden_size,
                                     py::ssize_t num_layers, bool bidirectional, bool reset_after,
                                     bool bias, const std::vector<LayerArrays>& weights,
                                     double dropout, double recurrent_dropout, double zoneout,
                                     const std::string& cell,
                                     const std::vector<BatchNormArrays>& batch_norm,
                                     const std::string& activation, double negative_slope,
                                     double bn_eps, const std::string& gates, bool reverse,
                                     const std::string& merge, const std::string& precision,
                                     double clip) {
    fastgru::NetworkConfig config;
    config.input = input_size;
    config.hidden = hidden_size;
    config.layers = num_layers;
    config.bidirectional = bidirectional;
    config.reverse = reverse;
    config.merge = parse_merge(merge);
    config.precision = parse_precision(precision);
    config.mode = reset_after ? fastgru::ResetMode::after : fastgru::ResetMode::before;
    config.bias = bias;
    config.dropout = dropout;
    config.recurrent_dropout = recurrent_dropout;
    config.zoneout = zoneout;
    const fastgru::cells::CellDescription& description = parse_cell(cell);
    config.cell = description.cell;
    config.activation = parse_activation(description, activation);
    config.gates = parse_gates(description, gates);
    config.clip = clip;
    config.negative_slope = negative_slope;
    config.bn_eps = bn_eps;
    const bool batch_norm_arrays = description.normalises_inputs;
    const py::ssize_t D = bidirectional ? 2 : 1, G = description.gates() * hidden_size;
    auto rows = [&](const char* name) -> py::ssize_t {
      return description.parameter_blocks(name, config) * hidden_size;
    };
    if (input_size < 1 || hidden_size < 1 || num_layers < 1) {
      throw py::value_error("input_size, hidden_size, num_layers: expected >= 1, got " +
                            std::to_string(input_size) + ", " + std::to_string(hidden_size) +
                            ", " + std::to_string(num_layers));
    }
    if (static_cast<py::ssize_t>(weights.size()) != num_layers * D) {
      throw py::value_error("weights: expected " + std::to_string(num_layers * D) + " entries, got " +
                            std::to_string(weights.size()));
    }
    if (static_cast<py::ssize_t>(batch_norm.size()) != (batch_norm_arrays ? num_layers * D : 0)) {
      throw py::value_error("batch_norm: expected " + std::to_string(batch_norm_arrays ? num_layers * D : 0) +
                            " entries, got " + std::to_string(batch_norm.size()));
    }
    std::vector<fastgru::WeightsView<Real>> views(weights.size());
    for (size_t s = 0; s < weights.size(); ++s) {
      const py::ssize_t I = static_cast<py::ssize_t>(s) < D ? input_size : D * hidden_size;
      const auto& [w_ih, w_hh, b_ih, b_hh] = weights[s];
      views[s].weight_ih = checked_data<Real>(w_ih, "weight_ih", {rows("weight_ih"), I});
      views[s].weight_hh = checked_data<Real>(w_hh, "weight_hh", {rows("weight_hh"), hidden_size});
      views[s].bias_ih = optional_data<Real>(b_ih, "bias_ih", {rows("bias_ih")});
      views[s].bias_hh = optional_data<Real>(b_hh, "bias_hh", {rows("bias_hh")});
      if (batch_norm_arrays) {
        const auto& [bn_weight, bn_bias, running_mean, running_var] = batch_norm[s];
        views[s].bn_weight = checked_data<Real>(bn_weight, "bn_weight", {G});
        views[s].bn_bias = checked_data<Real>(bn_bias, "bn_bias", {G});
        views[s].bn_running_mean = checked_data<Real>(running_mean, "bn_running_mean", {G});
        views[s].bn_running_var = checked_data<Real>(running_var, "bn_running_var", {G});
      }
    }
    return fastgru::Network<Real>(config, views);
  }

  fastgru::Network<Real> gru_;
};

template <typename Real>
void bind_gru(py::module_& m, const char* name, const char* cache_name) {
  py::class_<fastgru::TrainingCache<Real>>(m, cache_name)
      .def(py::init<>())
      .def_property_readonly("filled", &fastgru::TrainingCache<Real>::filled);
  py::class_<PyGru<Real>>(m, name)
      .def(py::init<py::ssize_t, py::ssize_t, py::ssize_t, bool, bool, bool,
                    const std::vector<LayerArrays>&, double, double, double, const std::string&,
                    const std::vector<BatchNormArrays>&, const std::string&, double, double,
                    const std::string&, bool, const std::string&, const std::string&, double>(),
           py::arg("input_size"), py::arg("hidden_size"), py::arg("num_layers"),
           py::arg("bidirectional"), py::arg("reset_after"), py::arg("bias"), py::arg("weights"),
           py::arg("dropout") = 0.0, py::arg("recurrent_dropout") = 0.0, py::arg("zoneout") = 0.0,
           py::arg("cell") = "gru", py::arg("batch_norm") = std::vector<BatchNormArrays>(),
           py::arg("activation") = "", py::arg("negative_slope") = 0.01,
           py::arg("bn_eps") = 1e-5, py::arg("gates") = "full", py::arg("reverse") = false,
           py::arg("merge") = "concat", py::arg("precision") = "full",
           py::arg("clip") = std::numeric_limits<double>::infinity())
      .def("forward", &PyGru<Real>::forward, py::arg("x"), py::arg("h0"), py::arg("lengths"),
           py::arg("batch_first"), py::arg("cache"), py::arg("seed") = 0,
           py::arg("mask") = py::none())
      .def("try_forward", &PyGru<Real>::try_forward, py::arg("x"), py::arg("h0"), py::arg("batch_first"))
      .def("try_step", &PyGru<Real>::try_step, py::arg("x_t"), py::arg("h"))
      .def("backward", &PyGru<Real>::backward, py::arg("cache"), py::arg("dy"), py::arg("dh_n"),
           py::arg("grads"), py::arg("batch_norm_grads") = std::vector<BatchNormGradients>())
      .def("batch_statistics", &PyGru<Real>::batch_statistics, py::arg("cache"));
}

// Adam/AdamW on one parameter array and its moments, all of the same dtype and shape.
template <typename Real>
void adam_update_typed(py::array& param, const py::array& grad, py::array& m, py::array& v,
                       const fastgru::AdamStep& step) {
  const Shape shape(param.shape(), param.shape() + param.ndim());
  Real* p = checked_data<Real>(param, "param", shape, true);
  const Real* g = checked_data<Real>(grad, "grad", shape);
  Real* first = checked_data<Real>(m, "m", shape, true);
  Real* second = checked_data<Real>(v, "v", shape, true);
  fastgru::adam_update<Real>(p, g, first, second, static_cast<std::size_t>(param.size()), step);
}

void adam_update(py::array param, py::array grad, py::array m, py::array v, double step_size, double beta1,
                 double beta2, double epsilon, double root_correction, double decay_factor, double l2) {
  const fastgru::AdamStep step{step_size, beta1, beta2, epsilon, root_correction, decay_factor, l2};
  if (holds<float>(param.dtype())) {
    adam_update_typed<float>(param, grad, m, v, step);
  } else {
    adam_update_typed<double>(param, grad, m, v, step);  // refuses any other dtype by name
  }
}

// The OpenMP runtime this module resolved (the file defining omp_get_max_threads: a wheel's own
// renamed libgomp, or one loaded earlier by another library) and the OpenMP version (_OPENMP,
// yyyymm) compiled against.
py::tuple openmp_runtime() {
  Dl_info library{};
  const bool found = dladdr(reinterpret_cast<void*>(&omp_get_max_threads), &library) != 0 &&
                     library.dli_fname != nullptr;
  return py::make_tuple(found ? std::string(library.dli_fname) : std::string("unknown"), _OPENMP);
}

// The C++ Model loader's model (computing in Real), for the tests that hold it to Python's Model: checks
// nothing itself, the C++ API checks what it is given.
template <typename Real>
class PyWholeModel {
 public:
  explicit PyWholeModel(fastgru::Model<Real> model) : model_(std::move(model)) {}

  // x: (N, T, F) Real or (N, T) int64 ids, batch first; lengths (N) or None. Returns (N, K) or (N, T, K).
  py::array_t<Real> predict(const py::array& x, const std::optional<py::array_t<std::int64_t>>& lengths,
                              bool probabilities) const {
    const bool ids = model_.config().vocab_size > 0;
    const py::ssize_t N = x.shape(0), T = x.ndim() > 1 ? x.shape(1) : 0, K = model_.config().outputs;
    fastgru::SequenceLayout layout;
    layout.steps = T;
    layout.batch = N;
    layout.batch_first = true;
    if (lengths) layout.lengths = checked_data<std::int64_t>(*lengths, "lengths", {N});
    const auto outputs = probabilities ? fastgru::Outputs::probabilities : fastgru::Outputs::values;
    py::array_t<Real> out(model_.config().head == fastgru::Head::last ? Shape{N, K} : Shape{N, T, K});
    Real* out_data = out.mutable_data();
    if (ids) {
      const auto* data = checked_data<std::int64_t>(x, "x", {N, T});
      py::gil_scoped_release release;
      model_.predict_ids(layout, data, out_data, outputs);
    } else {
      const auto* data = checked_data<Real>(x, "x", {N, T, model_.network().config().input});
      py::gil_scoped_release release;
      model_.predict(layout, data, out_data, outputs);
    }
    return out;
  }

  // One step: x_t (B, F) Real or (B,) int64 ids, state (L, B, H) updated in place. Returns (B, K).
  py::array_t<Real> step(const py::array& x_t, py::array_t<Real>& state, bool probabilities) const {
    const fastgru::NetworkConfig& c = model_.network().config();
    const py::ssize_t B = x_t.shape(0);
    Real* state_data = checked_data<Real>(state, "state", {c.layers, B, c.hidden}, true);
    const auto outputs = probabilities ? fastgru::Outputs::probabilities : fastgru::Outputs::values;
    py::array_t<Real> out(Shape{B, model_.config().outputs});
    if (model_.config().vocab_size > 0) {
      model_.step_ids(B, checked_data<std::int64_t>(x_t, "x_t", {B}), state_data, out.mutable_data(), outputs);
    } else {
      model_.step(B, checked_data<Real>(x_t, "x_t", {B, c.input}), state_data, out.mutable_data(), outputs);
    }
    return out;
  }

  py::dict config() const {
    const fastgru::ModelConfig& c = model_.config();
    py::dict d;
    d["outputs"] = c.outputs;
    d["head"] = c.head == fastgru::Head::last ? "last" : "sequence";
    d["classifier"] = c.classifier;
    d["vocab_size"] = c.vocab_size;
    d["padding_id"] = c.padding_id;
    d["output_scaling"] = c.output_scaling;
    return d;
  }

 private:
  fastgru::Model<Real> model_;
};

template <typename Real>
void bind_whole_model(py::module_& m, const char* name) {
  py::class_<PyWholeModel<Real>>(m, name)
      .def("predict", &PyWholeModel<Real>::predict, py::arg("x"), py::arg("lengths"), py::arg("probabilities"))
      .def("step", &PyWholeModel<Real>::step, py::arg("x_t"), py::arg("state"), py::arg("probabilities"))
      .def("config", &PyWholeModel<Real>::config);
}

}  // namespace

PYBIND11_MODULE(_core, m) {
  m.doc() = "fastgru's compiled core (private: use the fastgru package).";
  py::register_exception<std::invalid_argument>(m, "CoreArgumentError", PyExc_ValueError);
  m.def("available_isas", &fastgru::available_isas,
        "Instruction sets this CPU and OS can run, best first.");
  m.def("active_isa", &fastgru::active_isa, "The instruction set new float32 layers use.");
  m.def("set_isa", &fastgru::set_isa, py::arg("isa"),
        "Selects the instruction set for layers created from now on.");
  m.def("set_num_threads", &fastgru::set_num_threads, py::arg("n"),
        "The most threads for compute calls; 0 = the CPUs this process may use, capped by OpenMP's setting.");
  m.def("num_threads", &fastgru::num_threads, "The most threads compute calls use.");
  m.def("_force_threads", &fastgru::driver::force_threads, py::arg("force"),
        "For tests and bench/threads.py: every region and step loop uses num_threads() threads, "
        "whatever its work and the machine's load.");
  m.def("_regions_on_several_threads", &fastgru::threads::regions_on_several_threads,
        "For tests: how many regions have run on more than one thread in this process.");
  m.def("_collapse_step_loops_after", &fastgru::threads::collapse_step_loops_after, py::arg("step"),
        "For tests: every step loop on several threads continues on one after this step "
        "(-1: only when its threads wait for each other).");
  m.def("adam_update", &adam_update, py::arg("param"), py::arg("grad"), py::arg("m"), py::arg("v"),
        py::arg("step_size"), py::arg("beta1"), py::arg("beta2"), py::arg("epsilon"), py::arg("root_correction"),
        py::arg("decay_factor"), py::arg("l2"),
        "One fused Adam/AdamW step on param, m and v in place (see fastgru/optimizers.h).");
  m.def("cell_descriptions", &cell_descriptions,
        "Every cell's description, keyed by its Python class name: cell, class_name, gate_blocks, "
        "gates, parameters and buffers (names without _l{k}), has_bias_option, "
        "has_reset_conventions, normalises_inputs, activations, options (the cell's own settings), "
        "parameter_blocks (form of the gates -> array name -> row blocks of H).");
  m.def("openmp_runtime", &openmp_runtime,
        "(path of the OpenMP runtime library in use, _OPENMP version yyyymm compiled against).");
  bind_gru<float>(m, "GruF32", "TrainingCacheF32");
  bind_gru<double>(m, "GruF64", "TrainingCacheF64");
  // The C and C++ applications' reader, so that tests hold it to the Python one.
  m.def("load_model_file_f64", [](const std::string& path) {
          py::gil_scoped_release release;
          return PyGru<double>(fastgru::load_network<double>(path));
        }, py::arg("path"), "The network the C++ loader reads from a model file, computing in float64.");
  m.def("load_model_file_f32", [](const std::string& path) {
          py::gil_scoped_release release;
          return PyGru<float>(fastgru::load_network<float>(path));
        }, py::arg("path"), "The network the C++ loader reads from a model file, computing in float32 (bf16 and "
        "int8 files load only so).");
  bind_whole_model<double>(m, "WholeModelF64");
  bind_whole_model<float>(m, "WholeModelF32");
  m.def("load_whole_model_file_f64", [](const std::string& path) {
          py::gil_scoped_release release;
          return PyWholeModel<double>(fastgru::load_model<double>(path));
        }, py::arg("path"), "The Model the C++ loader (fastgru::load_model) reads from a model file, in float64.");
  m.def("load_whole_model_file_f32", [](const std::string& path) {
          py::gil_scoped_release release;
          return PyWholeModel<float>(fastgru::load_model<float>(path));
        }, py::arg("path"), "The Model the C++ loader (fastgru::load_model) reads from a model file, in float32.");
  m.def("check_model_json", [](const py::bytes& json, bool user_data) {
          char* data = nullptr;
          Py_ssize_t size = 0;
          PyBytes_AsStringAndSize(json.ptr(), &data, &size);
          fastgru::check_model_json(std::string_view(data, static_cast<std::size_t>(size)), user_data);
        }, py::arg("json"), py::arg("user_data"),
        "The model file's bounds on JSON text (fastgru/model_file.h); raises CoreArgumentError past them.");
}
