// The C API gives exactly the C++ API's results (same files, inputs, lengths, initial states),
// and carries the C++ API's error messages.
// Usage: fastgru_capi_matches_cpp DATA_DIR (cpp/tests/data, model files saved from Python).
#include <cstdint>
#include <cstdio>
#include <random>
#include <stdexcept>
#include <string>
#include <vector>

#include "fastgru/fastgru.h"
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
    same_error_messages(data);
  } catch (const std::exception& error) {
    std::fprintf(stderr, "FAILED: %s\n", error.what());
    return 1;
  }
  std::printf("capi_matches_cpp: all passed\n");
  return 0;
}
