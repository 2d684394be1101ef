// The light GRU (EQUATIONS.md §5): its description; it runs in the batch-normalised layer
// (cells/batch_norm/batch_norm_layer.h) with its kernels for each candidate activation.
#pragma once

#include "cells/cell_table.h"

namespace fastgru::cells {

const CellDescription& ligru_description();

}  // namespace fastgru::cells
