// Whole models saved from Python (`fastgru.Model(...).save(path)`): an optional embedding of
// token ids, the recurrent network, the dense head and the optional output scaling, run as
// Python's Model.predict, predict_proba and step run them.
//
// Shape letters as in fastgru/network.h, plus
//   N  sequences (the batch rows B)   K  the head's outputs (values, or classes' logits)
//   V  the embedding's vocabulary     F  the recurrent network's input features (I)
//
// This header includes only the standard library and fastgru/network.h.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "fastgru/network.h"

namespace fastgru {

// Where the head reads (Python's Model `head`).
enum class Head : int {
  // each sequence's final state: the last layer's state after the row's last real step, both
  // directions' final states side by side when bidirectional: outputs (N, K)
  last = 0,
  // every step's output: outputs (T, N, K), or (N, T, K) batch first
  sequence = 1,
};

struct ModelConfig {
  std::int64_t outputs = 0;        // K >= 1
  Head head = Head::last;
  bool classifier = false;         // a cross-entropy model: outputs are logits (K >= 2 classes)
  std::int64_t vocab_size = 0;     // V >= 1 for a token model (an embedding), 0 for real inputs
  std::int64_t padding_id = -1;    // the embedding's padding id, -1 for none (informative only)
  bool output_scaling = false;     // outputs are head(h) · scale + offset (regression only)
};

// What a prediction gives: the head's outputs (values in the targets' own units for a model
// with output scaling, logits for a classifier), or a classifier's class probabilities (the
// softmax of the logits over K, Python's predict_proba).
enum class Outputs : int { values = 0, probabilities = 1 };

template <typename Real>
class Model;
template <typename Real>
Model<Real> load_model(const std::string& path);

// A loaded Model. Read-only after loading: every method is const and may run from many threads
// at once. Movable, not copyable.
template <typename Real>
class Model {
 public:
  Model(Model&&) noexcept;
  Model& operator=(Model&&) noexcept;
  Model(const Model&) = delete;
  Model& operator=(const Model&) = delete;
  ~Model();

  const ModelConfig& config() const;
  const Network<Real>& network() const;
  // Per-step inputs: F real features, or 1 token id for a token model.
  std::int64_t input_width() const;

  // Predicts over whole sequences (inference).
  //   layout   steps T >= 1 (T >= 0 for an empty batch), batch N, batch_first, lengths (N) each
  //            in 1..T (a prediction needs one step at least) or nullptr (see SequenceLayout)
  //   x        (T, N, F) or (N, T, F) real inputs; a token model refuses it (use predict_ids)
  //   out      head last: (N, K); head sequence: (T, N, K) or (N, T, K), zero past each row's
  //            length
  //   outputs  Outputs::probabilities for a classifier only
  // Throws std::invalid_argument (naming the argument) on a bad size, null pointer or request.
  void predict(const SequenceLayout& layout, const Real* x, Real* out, Outputs outputs = Outputs::values) const;
  // The same for a token model: ids (T, N) or (N, T), every one in 0..V-1 (those past a row's
  // length too, as Python checks them); others are refused with the first one out of range.
  void predict_ids(const SequenceLayout& layout, const std::int64_t* ids, Real* out,
                   Outputs outputs = Outputs::values) const;

  // One step of N independent streams (forward-in-time networks only: not bidirectional or
  // reverse), equal to predict with
  // head sequence step by step (for head last: the prediction for each sequence so far).
  //   state  (L, N, H) in and out: the carried state (zeros to start a sequence)
  //   x_t    (N, F) real inputs; step_ids: ids (N)
  //   out    (N, K)
  void step(std::int64_t batch, const Real* x_t, Real* state, Real* out, Outputs outputs = Outputs::values) const;
  void step_ids(std::int64_t batch, const std::int64_t* ids, Real* state, Real* out,
                Outputs outputs = Outputs::values) const;

 private:
  friend Model<Real> load_model<Real>(const std::string& path);

 public:
  struct Impl;  // the loader's and the methods' (src/api/model_impl.h)

 private:
  explicit Model(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

// Reads a Model file written by Python's `model.save(path)` into a model computing in Real
// (weights converted as load_network converts them; a Model whose recurrent layer is bf16 or int8
// loads as Model<float> only). Makes every check Python's fastgru.load
// makes (README.md, "The model file"), so both refuse the same files: throws
// std::invalid_argument naming the file and the problem, e.g. for a recurrent layer's file (read
// it with load_network) or a non-finite head, embedding or scaling value.
template <typename Real>
Model<Real> load_model(const std::string& path);

extern template class Model<float>;
extern template class Model<double>;
extern template Model<float> load_model<float>(const std::string&);
extern template Model<double> load_model<double>(const std::string&);

}  // namespace fastgru
