// The light Bayesian recurrent unit (EQUATIONS.md §8): its description. It runs in the LiGRU's
// batch-normalised layer (cells/ligru/ligru_cell.h) with its own step kernels.
#pragma once

#include "cells/cell_table.h"

namespace fastgru::cells {

const CellDescription& libru_description();

}  // namespace fastgru::cells
