// The light Bayesian recurrent unit (EQUATIONS.md §8): its description. It runs in the
// batch-normalised layer (cells/batch_norm/batch_norm_layer.h) with its own step kernels.
#pragma once

#include "cells/cell_table.h"

namespace fastgru::cells {

const CellDescription& libru_description();

}  // namespace fastgru::cells
