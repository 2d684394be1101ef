// Picks a cell's kernel table for the ISA of the shared kernel table in use, so that a layer's
// products and its cell's step kernels run on the same instruction set.
#pragma once

#include "kernels/kernels.h"

// The per-ISA x86 tables are compiled only on x86-64 (CMakeLists.txt): elsewhere they are absent.
#if FASTGRU_HAVE_X86_KERNELS
#define FASTGRU_X86_TABLE(table) (&table)
#else
#define FASTGRU_X86_TABLE(table) nullptr
#endif

namespace fastgru::cells {

template <class Table>
const Table& table_for_isa(kernels::Isa level, const Table& (*scalar)(),
                           const Table& (*avx2)(), const Table& (*avx512)()) {
  if (level == kernels::Isa::avx512 && avx512) return avx512();
  if (level == kernels::Isa::avx2 && avx2) return avx2();
  return scalar();
}

}  // namespace fastgru::cells
