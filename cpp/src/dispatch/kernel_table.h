// The kernel table new layers use, chosen once for this CPU (see fastgru/runtime.h).
#pragma once

#include "kernels/kernels.h"

namespace fastgru::dispatch {

template <typename Real>
const kernels::KernelTable<Real>& active_kernels();

}  // namespace fastgru::dispatch
