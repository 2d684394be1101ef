// The list of cells. Adding a cell adds its folder and one line here.
#include "cells/cell_table.h"

#include <stdexcept>

#include "cells/gru/gru_cell.h"
#include "cells/libru/libru_cell.h"
#include "cells/ligru/ligru_cell.h"
#include "cells/mgu/mgu_cell.h"

namespace fastgru::cells {

const std::vector<CellDescription>& cell_descriptions() {
  static const std::vector<CellDescription> table{gru_description(), mgu_description(),
                                                  ligru_description(), libru_description()};
  return table;
}

std::string name_list(const std::vector<std::string>& names, const char* quote) {
  std::string text;
  for (size_t i = 0; i < names.size(); ++i) {
    if (i > 0) text += i + 1 == names.size() ? " or " : ", ";
    text += quote + names[i] + quote;
  }
  return text;
}

const std::vector<std::string>& CellDescription::activations() const {
  static const std::vector<std::string> none;
  for (const CellOption& option : options)
    if (option.name == "activation") return option.choices;
  return none;
}

bool CellDescription::has_option(const std::string& option_name) const {
  for (const CellOption& option : options)
    if (option.name == option_name) return true;
  return false;
}

const CellDescription& describe(Cell cell, const std::string& what) {
  for (const CellDescription& description : cell_descriptions())
    if (description.cell == cell) return description;
  std::vector<std::string> names;
  for (const CellDescription& description : cell_descriptions()) names.push_back(description.name);
  throw std::invalid_argument("fastgru: " + what + ": expected " + name_list(names) + ", got " +
                              std::to_string(static_cast<int>(cell)));
}

const CellDescription* find_cell(const std::string& name) {
  for (const CellDescription& description : cell_descriptions())
    if (description.name == name) return &description;
  return nullptr;
}

const CellDescription* find_class(const std::string& class_name) {
  for (const CellDescription& description : cell_descriptions())
    if (description.class_name == class_name) return &description;
  return nullptr;
}

}  // namespace fastgru::cells
