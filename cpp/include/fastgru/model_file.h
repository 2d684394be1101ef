// Loading models saved from Python (`layer.save(path)`: the safetensors format, the weights under
// PyTorch's names, the configuration in the metadata; see python/fastgru/model_file.py).
// Standard library only.
#pragma once

#include <string>
#include <string_view>

#include "fastgru/network.h"

namespace fastgru {

// Reads the model file of a recurrent layer (any cell of fastgru::Cell) into a network computing
// in Real (float64 weights are rounded to float32 for Network<float>, and the reverse).
// Training-only settings (dropout rates) are kept. A bf16 or int8 layer's file (its weights stored
// as BF16, or I8 with per-row scales: config.precision) loads as Network<float> only; the
// Network<double> of one is refused.
// Enforces the format of README.md ("The model file") exactly as the Python reader does: only
// regular files are opened, the header is capped, and every configured size is checked against
// the tensors present before any network is built, so that reading costs memory and time bounded
// by a small multiple of the file's size. Throws std::invalid_argument naming the file and the
// problem for a missing, non-regular, truncated, corrupt, foreign or malformed file, one from a
// newer format version, or a class that is not a recurrent layer's.
template <typename Real>
Network<Real> load_network(const std::string& path);

// The format's bounds on JSON text in a model file, which keep what parsing allocates to a small
// multiple of the text's size: nesting at most 64 deep and, but for `user_data` (a Model file's
// user metadata, read by Python only), at most one ',', '[' or '{' outside strings per 6 bytes
// (plus one). Throws std::invalid_argument past them. The Python reader checks them through this
// function, so that both readers count alike.
void check_model_json(std::string_view json, bool user_data);

extern template Network<float> load_network<float>(const std::string&);
extern template Network<double> load_network<double>(const std::string&);

}  // namespace fastgru
