// The one table of cell descriptions: the names, shapes and options of every cell, which the
// network, the bindings, the model-file reader and the C API read instead of restating them.
// Each cell defines its own entry (cells/<cell>/<cell>_cell.cpp); cell_table.cpp lists them.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "cells/cell_layer.h"
#include "fastgru/network.h"

namespace fastgru::cells {

// Builds one layer and direction of a cell: input I, config's hidden size and cell settings
// (checked by check_config), weights checked for presence by the caller but for the cell's own
// arrays (a missing one throws std::invalid_argument naming `name` + its member).
template <typename Real>
using LayerFactory = std::unique_ptr<const CellLayer<Real>> (*)(
    const kernels::KernelTable<Real>& kernels, Index input, const NetworkConfig& config,
    const WeightsView<Real>& weights, const std::string& name);

// A setting of one cell beyond those every cell has (sizes, layers, directions, bias,
// regularisation): its model-file field and Python keyword, the values it takes, and where it
// goes in NetworkConfig.
struct CellOption {
  // bound: a number, or null for none (which a file may also say by leaving it out): apply
  // gets +∞ for none.
  enum class Kind { boolean, number, choice, bound };
  std::string name;
  Kind kind;
  std::string expected;              // the values it takes, for messages: "a number >= 0"
  std::vector<std::string> choices;  // Kind::choice: the names, in the order apply numbers them
  bool (*valid)(double value);       // Kind::number, bound: its range; else nullptr
  // Puts a value into config (a boolean as 0 or 1, a choice as its index, a number as itself);
  // nullptr for a setting that only the Python layer uses.
  void (*apply)(NetworkConfig& config, double value);
  // The value a model file written before the option existed means by leaving it out (a choice's
  // name); empty: every file names it.
  std::string absent_means = {};
};

struct CellDescription {
  Cell cell;
  std::string name;        // "gru": the bindings' and C API's name
  std::string class_name;  // "GRU": the Python class, and the model file's "class"
  // Row blocks of weight_ih and weight_hh, in order (EQUATIONS.md §3): G = gates() · H rows
  // (unless parameter_blocks says otherwise).
  std::vector<std::string> gate_blocks;
  // Names of one layer and direction's parameters and buffers, in the model file's order, without
  // the "_l{k}" / "_l{k}_reverse" suffix; each is (G, I_k) (weight_ih), (G, H) (weight_hh) or (G).
  std::vector<std::string> parameters;
  std::vector<std::string> buffers;
  bool has_bias_option;        // bias_ih, bias_hh exist when config.bias; else never
  bool has_reset_conventions;  // config.mode selects §1 or §2
  bool normalises_inputs;      // batch normalisation of the input projections (bn_* arrays)
  std::vector<CellOption> options;
  // Throws std::invalid_argument naming the config field this cell cannot take; nullptr for a
  // cell without settings of its own.
  void (*check_config)(const NetworkConfig& config);
  LayerFactory<float> make_f32;
  LayerFactory<double> make_f64;
  // Row blocks of parameter `name` where a setting of the cell decides them (the GRU's gates,
  // EQUATIONS.md §7); nullptr: gates() for every array.
  Index (*setting_blocks)(const std::string& name, const NetworkConfig& config) = nullptr;

  Index gates() const { return static_cast<Index>(gate_blocks.size()); }
  // Rows of parameter or buffer `name` under `config`, in blocks of H (weight_* (rows, ·),
  // the others (rows)).
  Index parameter_blocks(const std::string& name, const NetworkConfig& config) const {
    return setting_blocks ? setting_blocks(name, config) : gates();
  }
  // The candidate's activations in fastgru::Activation's order: the choices of the option
  // "activation" (none: tanh, fixed).
  const std::vector<std::string>& activations() const;
  bool has_option(const std::string& option_name) const;
  template <typename Real>
  LayerFactory<Real> factory() const;
};

template <>
inline LayerFactory<float> CellDescription::factory<float>() const {
  return make_f32;
}
template <>
inline LayerFactory<double> CellDescription::factory<double>() const {
  return make_f64;
}

// Every cell, in fastgru::Cell's order.
const std::vector<CellDescription>& cell_descriptions();

// The description of `cell`; throws std::invalid_argument naming `what` for an unknown value.
const CellDescription& describe(Cell cell, const std::string& what = "config.cell");

// The description named `name` (CellDescription::name), or nullptr.
const CellDescription* find_cell(const std::string& name);
// The description of Python class / model-file class `class_name`, or nullptr.
const CellDescription* find_class(const std::string& class_name);

// "a, b or c" from names.
std::string name_list(const std::vector<std::string>& names, const char* quote = "");

// The weights view's member for a parameter or buffer name of the table (nullptr for another).
template <typename Real>
const Real** weight_member(WeightsView<Real>& view, const std::string& name) {
  if (name == "weight_ih") return &view.weight_ih;
  if (name == "weight_hh") return &view.weight_hh;
  if (name == "bias_ih") return &view.bias_ih;
  if (name == "bias_hh") return &view.bias_hh;
  if (name == "bn_weight") return &view.bn_weight;
  if (name == "bn_bias") return &view.bn_bias;
  if (name == "bn_running_mean") return &view.bn_running_mean;
  if (name == "bn_running_var") return &view.bn_running_var;
  return nullptr;
}

}  // namespace fastgru::cells
