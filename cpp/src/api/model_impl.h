// What a loaded fastgru::Model holds: shared by the loader (model_file.cpp) and the methods
// (model.cpp).
#pragma once

#include <utility>
#include <vector>

#include "fastgru/model.h"

namespace fastgru {

template <typename Real>
struct Model<Real>::Impl {
  explicit Impl(Network<Real> loaded) : network(std::move(loaded)) {}
  ModelConfig config;
  Network<Real> network;
  std::vector<Real> embedding;    // (V, F), empty without one
  std::vector<Real> head_weight;  // (K, D·H)
  std::vector<Real> head_bias;    // (K)
  std::vector<Real> scale, offset;  // (K) each, empty without output scaling
};

}  // namespace fastgru
