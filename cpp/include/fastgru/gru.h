// The names of fastgru 0.1's C++ API, from when its network ran the GRU alone: include
// fastgru/network.h and use its names in new code. These aliases stay for existing programs.
#pragma once

#include "fastgru/model_file.h"
#include "fastgru/network.h"

namespace fastgru {

using GruConfig = NetworkConfig;
template <typename Real>
using Gru = Network<Real>;
template <typename Real>
using GruWeightsView = WeightsView<Real>;
template <typename Real>
using GruGradientsView = GradientsView<Real>;
template <typename Real>
using GruTrainingCache = TrainingCache<Real>;

template <typename Real>
Network<Real> load_gru(const std::string& path) {
  return load_network<Real>(path);
}

}  // namespace fastgru
