// The kernel table in use, chosen once for this CPU.
#pragma once

#include "kernels/kernels.h"

namespace fastgru::kernels {

template <typename Real>
const KernelTable<Real>& active_kernels();

}  // namespace fastgru::kernels
