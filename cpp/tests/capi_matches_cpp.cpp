// The C API gives exactly the C++ API's results (same files, inputs, lengths, initial states;
// networks and whole Models), and carries the C++ API's error messages.
// Usage: fastgru_capi_matches_cpp DATA_DIR (cpp/tests/data, model files saved from Python).
#include <cstdint>
#include <cstdio>
#include <random>
#include <stdexcept>
#include <string>
#include <vector>

#include "fastgru/fastgru.h"
#include "fastgru/model.h"
#include "fastgru/model_file.h"

namespace {

void check(bool condition, const std::string& what) {
  if (!condition) throw std::runtime_error(what);
}

template <typename Real>
std::vector<Real> random_vector(std::size_t count, unsigned seed) {
  std::mt19937 generator(seed);
  std::uniform_real_distribution<double> uniform(-1, 1);
  std::vector<Real> out(count);
  for (Real& v : out) v = static_cast<Real>(uniform(generator));
  return out;
}

fastgru_status forward_c(const fastgru_model* m, std::int64_t T, std::int64_t B, int batch_first, const float* x,
                         const std::int64_t* lengths, const float* h0, float* y, float* h_n) {
  return fastgru_model_forward_f32(m, T, B, batch_first, x, lengths, h0, y, h_n);
}
fastgru_status forward_c(const fastgru_model* m, std::int64_t T, std::int64_t B, int batch_first, const double* x,
                         const std::int64_t* lengths, const double* h0, double* y, double* h_n) {
  return fastgru_model_forward_f64(m, T, B, batch_first, x, lengths, h0, y, h_n);
}

template <typename Real>
void same_results(const std::string& path, fastgru_dtype dtype) {
  const fastgru::Network<Real> gru = fastgru::load_network<Real>(path);
  fastgru_model* model = nullptr;
  check(fastgru_model_load(path.c_str(), dtype, &model) == FASTGRU_OK, fastgru_last_error());
  const fastgru::NetworkConfig& c = gru.config();
  const std::int64_t T = 6, B = 4, D = gru.directions(), states = c.layers * D * B * c.hidden;
  const std::vector<std::int64_t> lengths = {6, 1, 4, 3};
  const std::vector<Real> x = random_vector<Real>(T * B * c.input, 11), h0 = random_vector<Real>(states, 12);
  for (int batch_first : {0, 1}) {
    std::vector<Real> y_cpp(T * B * D * c.hidden), h_cpp(states), y_c(y_cpp.size()), h_c(states);
    fastgru::SequenceLayout layout;
    layout.steps = T;
    layout.batch = B;
    layout.batch_first = batch_first == 1;
    layout.lengths = lengths.data();
    gru.forward(layout, x.data(), h0.data(), y_cpp.data(), h_cpp.data(), nullptr);
    check(forward_c(model, T, B, batch_first, x.data(), lengths.data(), h0.data(), y_c.data(), h_c.data()) ==
              FASTGRU_OK,
          fastgru_last_error());
    check(y_c == y_cpp && h_c == h_cpp, path + ": C and C++ results differ");
  }
  fastgru_model_free(model);
}

fastgru_status predict_c(const fastgru_predictor* p, std::int64_t T, std::int64_t B, int batch_first, const float* x,
                         const std::int64_t* ids, const std::int64_t* lengths, int outputs, float* out) {
  return ids ? fastgru_predictor_predict_ids_f32(p, T, B, batch_first, ids, lengths, outputs, out)
             : fastgru_predictor_predict_f32(p, T, B, batch_first, x, lengths, outputs, out);
}
fastgru_status predict_c(const fastgru_predictor* p, std::int64_t T, std::int64_t B, int batch_first, const double* x,
                         const std::int64_t* ids, const std::int64_t* lengths, int outputs, double* out) {
  return ids ? fastgru_predictor_predict_ids_f64(p, T, B, batch_first, ids, lengths, outputs, out)
             : fastgru_predictor_predict_f64(p, T, B, batch_first, x, lengths, outputs, out);
}

// A whole Model: fastgru_predictor gives exactly fastgru::Model's outputs.
template <typename Real>
void same_predictions(const std::string& path, fastgru_dtype dtype) {
  const fastgru::Model<Real> model = fastgru::load_model<Real>(path);
  fastgru_predictor* predictor = nullptr;
  check(fastgru_predictor_load(path.c_str(), dtype, &predictor) == FASTGRU_OK, fastgru_last_error());
  const fastgru::ModelConfig& c = model.config();
  const std::int64_t T = 6, B = 4, F = model.network().config().input;
  const std::vector<std::int64_t> lengths = {6, 1, 4, 3};
  const std::vector<Real> x = random_vector<Real>(T * B * F, 13);
  std::vector<std::int64_t> ids(T * B);
  for (std::size_t i = 0; i < ids.size(); ++i) ids[i] = static_cast<std::int64_t>(i * 7 % std::max<std::int64_t>(c.vocab_size, 1));
  const std::int64_t count = (c.head == fastgru::Head::sequence ? T : 1) * B * c.outputs;
  for (int batch_first : {0, 1}) {
    for (fastgru::Outputs outputs : {fastgru::Outputs::values, fastgru::Outputs::probabilities}) {
      if (outputs == fastgru::Outputs::probabilities && !c.classifier) continue;
      std::vector<Real> out_cpp(count), out_c(count);
      fastgru::SequenceLayout layout;
      layout.steps = T;
      layout.batch = B;
      layout.batch_first = batch_first == 1;
      layout.lengths = lengths.data();
      if (c.vocab_size) model.predict_ids(layout, ids.data(), out_cpp.data(), outputs);
      else model.predict(layout, x.data(), out_cpp.data(), outputs);
      check(predict_c(predictor, T, B, batch_first, x.data(), c.vocab_size ? ids.data() : nullptr, lengths.data(),
                      static_cast<int>(outputs), out_c.data()) == FASTGRU_OK,
            fastgru_last_error());
      check(out_c == out_cpp, path + ": C and C++ predictions differ");
    }
  }
  fastgru_predictor_free(predictor);
}

void same_error_messages(const std::string& data) {
  const std::string path = data + "/not_a_model.safetensors";
  std::string cpp_message;
  try {
    fastgru::load_network<float>(path);
  } catch (const std::invalid_argument& error) {
    cpp_message = error.what();
  }
  fastgru_model* model = nullptr;
  check(fastgru_model_load(path.c_str(), FASTGRU_FLOAT32, &model) == FASTGRU_ERROR_INVALID_ARGUMENT,
        "a foreign file is an invalid argument");
  check(!cpp_message.empty() && cpp_message == fastgru_last_error(),
        "C message '" + std::string(fastgru_last_error()) + "' is not C++'s '" + cpp_message + "'");
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: %s DATA_DIR\n", argv[0]);
    return 2;
  }
  const std::string data = argv[1];
  try {
    same_results<float>(data + "/gru2_f32.safetensors", FASTGRU_FLOAT32);
    same_results<float>(data + "/mgu2_f32.safetensors", FASTGRU_FLOAT32);
    same_results<float>(data + "/ligru2_f32.safetensors", FASTGRU_FLOAT32);
    same_results<float>(data + "/libru2_f32.safetensors", FASTGRU_FLOAT32);
    same_results<double>(data + "/libru2_f32.safetensors", FASTGRU_FLOAT64);
    same_results<float>(data + "/gru_hidden2_f32.safetensors", FASTGRU_FLOAT32);
    same_results<float>(data + "/gru_bias2_f32.safetensors", FASTGRU_FLOAT32);
    same_results<double>(data + "/bigru_f64.safetensors", FASTGRU_FLOAT64);
    same_results<double>(data + "/gru2_f32.safetensors", FASTGRU_FLOAT64);  // weights widened on load
    same_results<float>(data + "/gru2_int8.safetensors", FASTGRU_FLOAT32);
    same_results<float>(data + "/gru2_bf16.safetensors", FASTGRU_FLOAT32);
    for (const char* name : {"model_regression", "model_regression_tokens", "model_classifier", "model_classifier_tokens"}) {
      same_predictions<float>(data + "/" + name + ".safetensors", FASTGRU_FLOAT32);
      same_predictions<double>(data + "/" + name + ".safetensors", FASTGRU_FLOAT64);
    }
    for (const char* name : {"model_regression_int8", "model_classifier_tokens_bf16"}) {  // float32 only
      same_predictions<float>(data + "/" + name + ".safetensors", FASTGRU_FLOAT32);
    }
    same_error_messages(data);
  } catch (const std::exception& error) {
    std::fprintf(stderr, "FAILED: %s\n", error.what());
    return 1;
  }
  std::printf("capi_matches_cpp: all passed\n");
  return 0;
}
