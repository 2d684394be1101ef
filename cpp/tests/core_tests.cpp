// Tests of the C++ API on its own (the Python suite checks the numbers against NumPy, PyTorch
// and ONNX Runtime): consistency, gradients by central differences, errors, threads.
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <functional>
#include <random>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include <sys/wait.h>
#include <unistd.h>

#include <type_traits>

#include "fastgru/gru.h"
#include "fastgru/network.h"
#include "fastgru/runtime.h"

// Programs written against fastgru 0.1's names still compile.
static_assert(std::is_same_v<fastgru::Gru<float>, fastgru::Network<float>> &&
              std::is_same_v<fastgru::GruConfig, fastgru::NetworkConfig> &&
              std::is_same_v<fastgru::GruWeightsView<double>, fastgru::WeightsView<double>> &&
              std::is_same_v<fastgru::GruTrainingCache<float>, fastgru::TrainingCache<float>>);

namespace {

using fastgru::Network;
using fastgru::NetworkConfig;
using fastgru::GradientsView;
using fastgru::WeightsView;
using fastgru::SequenceLayout;

void check(bool condition, const std::string& what) {
  if (!condition) throw std::runtime_error(what);
}

template <typename Real>
std::vector<Real> random_vector(std::size_t count, unsigned seed, double scale = 1.0) {
  std::mt19937 generator(seed);
  std::uniform_real_distribution<double> uniform(-scale, scale);
  std::vector<Real> out(count);
  for (Real& v : out) v = static_cast<Real>(uniform(generator));
  return out;
}

// Weights of every layer and direction of a config, owned, with views for the API.
template <typename Real>
struct Weights {
  std::vector<std::vector<Real>> arrays;
  std::vector<WeightsView<Real>> views;

  Weights(const NetworkConfig& c, unsigned seed) {
    const std::int64_t D = c.bidirectional ? 2 : 1, G = 3 * c.hidden;
    const double bound = 1.0 / std::sqrt(static_cast<double>(c.hidden));
    for (std::int64_t l = 0; l < c.layers; ++l) {
      for (std::int64_t d = 0; d < D; ++d) {
        const std::int64_t input = l == 0 ? c.input : D * c.hidden;
        for (std::int64_t count : {G * input, G * c.hidden, G, G})
          arrays.push_back(random_vector<Real>(count, seed++, bound));
      }
    }
    for (std::size_t s = 0; s < arrays.size(); s += 4)
      views.push_back({arrays[s].data(), arrays[s + 1].data(), arrays[s + 2].data(), arrays[s + 3].data()});
  }
};

void gru_network_of_one_layer_equals_gru_layer() {
  NetworkConfig c;
  c.input = 5;
  c.hidden = 7;
  Weights<float> w(c, 1);
  const fastgru::GruLayer<float> layer({c.input, c.hidden}, c.mode, w.views[0]);
  const Network<float> network(c, w.views);
  const std::int64_t T = 6, B = 3;
  const auto x = random_vector<float>(T * B * c.input, 9);
  std::vector<float> y1(T * B * c.hidden), y2(y1.size()), h1(B * c.hidden), h2(h1.size());
  layer.forward(T, B, x.data(), nullptr, y1.data(), h1.data(), nullptr);
  SequenceLayout layout;
  layout.steps = T;
  layout.batch = B;
  network.forward(layout, x.data(), nullptr, y2.data(), h2.data(), nullptr);
  check(y1 == y2 && h1 == h2, "Network with one layer differs from GruLayer");
}

void backward_matches_central_differences() {
  NetworkConfig c;
  c.input = 3;
  c.hidden = 4;
  c.layers = 2;
  c.bidirectional = true;
  c.mode = fastgru::ResetMode::before;
  Weights<double> w(c, 20);
  const Network<double> network(c, w.views);
  const std::int64_t T = 4, B = 2, out = 2 * c.hidden;
  const std::int64_t lengths[] = {4, 3};
  SequenceLayout layout;
  layout.steps = T;
  layout.batch = B;
  layout.batch_first = true;
  layout.lengths = lengths;
  auto x = random_vector<double>(B * T * c.input, 30);
  const auto dy = random_vector<double>(B * T * out, 31);
  std::vector<double> y(B * T * out), h_n(4 * B * c.hidden), dx(x.size());
  auto loss = [&] {
    network.forward(layout, x.data(), nullptr, y.data(), h_n.data(), nullptr);
    double sum = 0;
    for (std::size_t i = 0; i < y.size(); ++i) sum += y[i] * dy[i];
    return sum;
  };
  fastgru::TrainingCache<double> cache;
  network.forward(layout, x.data(), nullptr, y.data(), h_n.data(), &cache);
  std::vector<std::vector<double>> grads;
  std::vector<GradientsView<double>> views;
  for (std::size_t s = 0; s < w.arrays.size(); ++s) grads.emplace_back(w.arrays[s].size(), 0.0);
  for (std::size_t s = 0; s < grads.size(); s += 4)
    views.push_back({grads[s].data(), grads[s + 1].data(), grads[s + 2].data(), grads[s + 3].data()});
  network.backward(cache, dy.data(), nullptr, dx.data(), nullptr, views);
  for (std::size_t i = 0; i < x.size(); ++i) {
    const double saved = x[i], eps = 1e-6;
    x[i] = saved + eps;
    const double plus = loss();
    x[i] = saved - eps;
    const double minus = loss();
    x[i] = saved;
    const double numeric = (plus - minus) / (2 * eps);
    check(std::fabs(numeric - dx[i]) <= 1e-7 * (1 + std::fabs(numeric)),
          "dx[" + std::to_string(i) + "] = " + std::to_string(dx[i]) + ", central difference " +
              std::to_string(numeric));
  }
}

void expect_invalid_argument(const std::function<void()>& call, const std::string& fragment) {
  try {
    call();
  } catch (const std::invalid_argument& error) {
    check(std::string(error.what()).find(fragment) != std::string::npos,
          "message '" + std::string(error.what()) + "' does not name '" + fragment + "'");
    return;
  }
  throw std::runtime_error("expected std::invalid_argument naming '" + fragment + "'");
}

void bad_arguments_are_clear_exceptions() {
  NetworkConfig c;
  c.input = 2;
  c.hidden = 3;
  Weights<float> w(c, 40);
  expect_invalid_argument([&] {
    NetworkConfig bad = c;
    bad.hidden = 0;
    Network<float> network(bad, w.views);
  }, "config.hidden");
  expect_invalid_argument([&] {
    NetworkConfig bad = c;
    bad.layers = 2;
    Network<float> network(bad, w.views);
  }, "weights: expected 2 entries");
  for (const double clip : {0.0, -1.0, std::nan("")}) {
    expect_invalid_argument([&] {
      NetworkConfig bad = c;
      bad.clip = clip;
      Network<float> network(bad, w.views);
    }, "config.clip: expected a number > 0");
  }
  expect_invalid_argument([&] {
    NetworkConfig bad = c;
    bad.cell = fastgru::Cell::mgu;
    bad.clip = 1.0;
    Network<float> network(bad, w.views);
  }, "config.clip: the MGU clips nothing");
  const Network<float> network(c, w.views), other(c, w.views);
  std::vector<float> x(4 * 2 * 2), y(4 * 2 * 3), h(2 * 3), dx(x.size());
  SequenceLayout layout;
  layout.steps = 4;
  layout.batch = 2;
  const std::int64_t lengths[] = {4, 5};
  layout.lengths = lengths;
  expect_invalid_argument([&] { network.forward(layout, x.data(), nullptr, y.data(), h.data(), nullptr); },
                          "lengths[1]: expected 0..4, got 5");
  layout.lengths = nullptr;
  std::vector<float> g_ih(9 * 2), g_hh(9 * 3), g_b1(9), g_b2(9);
  const std::vector<GradientsView<float>> grads = {{g_ih.data(), g_hh.data(), g_b1.data(), g_b2.data()}};
  fastgru::TrainingCache<float> cache;
  expect_invalid_argument([&] { network.backward(cache, y.data(), nullptr, dx.data(), nullptr, grads); },
                          "cache: expected one filled");
  network.forward(layout, x.data(), nullptr, y.data(), h.data(), &cache);
  expect_invalid_argument([&] { other.backward(cache, y.data(), nullptr, dx.data(), nullptr, grads); },
                          "another Network");
}

// Every cell given one bias without the other, or one it should not have: a clear exception
// naming that bias, never a read through the null pointer.
void partial_biases_are_clear_exceptions() {
  const std::int64_t I = 2, H = 3;
  for (fastgru::Cell cell :
       {fastgru::Cell::gru, fastgru::Cell::mgu, fastgru::Cell::ligru, fastgru::Cell::libru}) {
    const std::int64_t G = (cell == fastgru::Cell::gru ? 3 : 2) * H;
    const auto w_ih = random_vector<float>(G * I, 80), w_hh = random_vector<float>(G * H, 81);
    const auto bias = random_vector<float>(G, 82);
    const std::vector<float> ones(G, 1.0f), zeros(G, 0.0f);
    const bool cell_has_biases = cell != fastgru::Cell::ligru && cell != fastgru::Cell::libru;
    for (bool with_bias : {true, false}) {
      if (with_bias && !cell_has_biases) continue;
      NetworkConfig c;
      c.cell = cell;
      c.input = I;
      c.hidden = H;
      c.bias = with_bias;
      WeightsView<float> valid{w_ih.data(), w_hh.data()};
      if (with_bias) valid.bias_ih = valid.bias_hh = bias.data();
      valid.bn_weight = valid.bn_running_var = ones.data();
      valid.bn_bias = valid.bn_running_mean = zeros.data();
      Network<float> accepted(c, {valid});
      for (const float* WeightsView<float>::*member :
           {&WeightsView<float>::bias_ih, &WeightsView<float>::bias_hh}) {
        WeightsView<float> w = valid;
        w.*member = with_bias ? nullptr : bias.data();
        const char* name = member == &WeightsView<float>::bias_ih ? "bias_ih" : "bias_hh";
        expect_invalid_argument([&] { Network<float> network(c, {w}); }, std::string("weights[0].") + name);
      }
    }
  }
}

// A child forked after its parent computed on 2 threads computes too (the parent's workers are
// not copied into it: it starts a pool of its own) and agrees with the parent.
void forked_child_computes_like_its_parent() {
  NetworkConfig c;
  c.input = 32;
  c.hidden = 64;
  Weights<float> w(c, 70);
  const Network<float> network(c, w.views);
  SequenceLayout layout;
  layout.steps = 10;
  layout.batch = 16;  // enough work for 2 threads
  const auto x = random_vector<float>(layout.steps * layout.batch * c.input, 71);
  std::vector<float> expected(layout.steps * layout.batch * c.hidden), h(layout.batch * c.hidden);
  fastgru::set_num_threads(2);
  network.forward(layout, x.data(), nullptr, expected.data(), h.data(), nullptr);
  const pid_t child = fork();
  if (child == 0) {
    alarm(30);  // a hang ends the child with SIGALRM
    std::vector<float> y(expected.size());
    network.forward(layout, x.data(), nullptr, y.data(), h.data(), nullptr);
    _exit(y == expected ? 0 : 1);
  }
  int status = 0;
  const bool waited = child > 0 && waitpid(child, &status, 0) == child;
  fastgru::set_num_threads(0);
  check(waited, "fork or waitpid failed");
  check(!WIFSIGNALED(status), "the child hung or crashed: signal " + std::to_string(WTERMSIG(status)));
  check(WIFEXITED(status) && WEXITSTATUS(status) == 0, "the child's result differs from the parent's");
}

void one_network_serves_many_threads_at_once() {
  NetworkConfig c;
  c.input = 16;
  c.hidden = 48;
  c.layers = 2;
  Weights<float> w(c, 50);
  const Network<float> network(c, w.views);
  const std::int64_t T = 12, B = 5;
  SequenceLayout layout;
  layout.steps = T;
  layout.batch = B;
  const int workers = 8;
  std::vector<std::vector<float>> inputs, expected;
  for (int i = 0; i < workers; ++i) {
    inputs.push_back(random_vector<float>(T * B * c.input, 60 + i));
    expected.emplace_back(T * B * c.hidden);
    std::vector<float> h(2 * B * c.hidden);
    network.forward(layout, inputs[i].data(), nullptr, expected[i].data(), h.data(), nullptr);
  }
  std::vector<int> mismatches(workers, 0);
  std::vector<std::thread> threads;
  for (int i = 0; i < workers; ++i) {
    threads.emplace_back([&, i] {
      std::vector<float> y(T * B * c.hidden), h(2 * B * c.hidden);
      for (int repeat = 0; repeat < 20; ++repeat) {
        network.forward(layout, inputs[i].data(), nullptr, y.data(), h.data(), nullptr);
        mismatches[i] += y != expected[i];
      }
    });
  }
  for (auto& thread : threads) thread.join();
  for (int i = 0; i < workers; ++i)
    check(mismatches[i] == 0, "thread " + std::to_string(i) + " saw results differ from the serial run");
}


// Every cell's backward, in float64, against central differences of a training forward: dx and
// every parameter's gradient, through two bidirectional layers of uneven lengths, with and
// without recurrent dropout (its masks depend only on the seed).
void every_cell_matches_central_differences() {
  struct Case {
    fastgru::Cell cell;
    fastgru::ResetMode mode;
    double recurrent_dropout;
    // The LiGRU's: smooth ones, no kink for the differences to straddle.
    fastgru::Activation activation = fastgru::Activation::tanh;
    fastgru::GateTerms gates = fastgru::GateTerms::full;
    double clip = NetworkConfig().clip;  // the GRU's (EQUATIONS.md §1.1): no kink sits near a sample
  };
  const Case cases[] = {{fastgru::Cell::gru, fastgru::ResetMode::after, 0.0},
                        {fastgru::Cell::gru, fastgru::ResetMode::before, 0.3},
                        {fastgru::Cell::mgu, fastgru::ResetMode::after, 0.0},
                        {fastgru::Cell::mgu, fastgru::ResetMode::after, 0.3},
                        {fastgru::Cell::ligru, fastgru::ResetMode::after, 0.3},
                        {fastgru::Cell::ligru, fastgru::ResetMode::after, 0.0, fastgru::Activation::softplus},
                        {fastgru::Cell::libru, fastgru::ResetMode::after, 0.0},
                        {fastgru::Cell::libru, fastgru::ResetMode::after, 0.3},
                        {fastgru::Cell::gru, fastgru::ResetMode::before, 0.3, fastgru::Activation::tanh,
                         fastgru::GateTerms::hidden_bias},
                        {fastgru::Cell::gru, fastgru::ResetMode::after, 0.3, fastgru::Activation::tanh,
                         fastgru::GateTerms::hidden},
                        {fastgru::Cell::gru, fastgru::ResetMode::after, 0.0, fastgru::Activation::tanh,
                         fastgru::GateTerms::bias},
                        {fastgru::Cell::gru, fastgru::ResetMode::before, 0.0, fastgru::Activation::tanh,
                         fastgru::GateTerms::bias},
                        {fastgru::Cell::gru, fastgru::ResetMode::after, 0.3, fastgru::Activation::tanh,
                         fastgru::GateTerms::full, 0.3},
                        {fastgru::Cell::gru, fastgru::ResetMode::before, 0.0, fastgru::Activation::tanh,
                         fastgru::GateTerms::hidden, 0.3}};
  for (const Case& test : cases) {
    NetworkConfig c;
    c.cell = test.cell;
    c.mode = test.mode;
    c.input = 3;
    c.hidden = 5;
    c.layers = 2;
    c.bidirectional = true;
    c.recurrent_dropout = test.recurrent_dropout;
    // The cells with batch-normalised input projections and no biases.
    const bool normalised = test.cell == fastgru::Cell::ligru || test.cell == fastgru::Cell::libru;
    c.bias = !normalised;
    c.activation = test.activation;
    c.gates = test.gates;
    c.clip = test.clip;
    const std::int64_t D = 2, H = c.hidden, G = (test.cell == fastgru::Cell::gru ? 3 : 2) * H;
    // Rows of weight_ih, weight_hh, bias_ih, bias_hh (EQUATIONS.md §7 for the gate forms).
    const bool full = test.gates == fastgru::GateTerms::full;
    const std::int64_t rows[] = {full ? G : H, test.gates == fastgru::GateTerms::bias ? H : G, full ? G : H,
                                 test.gates == fastgru::GateTerms::hidden ? H : G};
    // Per layer and direction: weight_ih, weight_hh, then the biases or batch normalisation's
    // γ, β, running mean and running variance (kept positive).
    std::vector<std::vector<double>> arrays;
    unsigned seed = 40;
    for (std::int64_t s = 0; s < c.layers * D; ++s) {
      const std::int64_t input = s < D ? c.input : D * H;
      arrays.push_back(random_vector<double>(rows[0] * input, seed++, 0.6));
      arrays.push_back(random_vector<double>(rows[1] * H, seed++, 0.6));
      for (int extra = 0; extra < (normalised ? 4 : 2); ++extra) {
        arrays.push_back(random_vector<double>(normalised ? G : rows[2 + extra], seed++, 0.5));
        if (normalised && extra == 0) for (double& v : arrays.back()) v += 1.0;
        if (normalised && extra == 3) for (double& v : arrays.back()) v = 0.5 + v * v;
      }
    }
    const std::size_t per_layer = normalised ? 6 : 4;
    auto views_of = [&](std::vector<std::vector<double>>& a) {
      std::vector<WeightsView<double>> views;
      for (std::size_t s = 0; s < a.size(); s += per_layer) {
        WeightsView<double> v{a[s].data(), a[s + 1].data()};
        if (normalised) {
          v.bn_weight = a[s + 2].data();
          v.bn_bias = a[s + 3].data();
          v.bn_running_mean = a[s + 4].data();
          v.bn_running_var = a[s + 5].data();
        } else {
          v.bias_ih = a[s + 2].data();
          v.bias_hh = a[s + 3].data();
        }
        views.push_back(v);
      }
      return views;
    };
    const std::int64_t T = 4, B = 2, out = D * H;
    const std::int64_t lengths[] = {4, 3};
    SequenceLayout layout;
    layout.steps = T;
    layout.batch = B;
    layout.lengths = lengths;
    auto x = random_vector<double>(T * B * c.input, 30);
    const auto dy = random_vector<double>(T * B * out, 31);
    std::vector<double> y(T * B * out), h_n(c.layers * D * B * H), dx(x.size());
    auto loss = [&] {
      const Network<double> network(c, views_of(arrays));
      fastgru::TrainingCache<double> cache;
      network.forward(layout, x.data(), nullptr, y.data(), h_n.data(), &cache, 7);
      double sum = 0;
      for (std::size_t i = 0; i < y.size(); ++i) sum += y[i] * dy[i];
      return sum;
    };
    std::vector<std::vector<double>> grads;
    for (const auto& a : arrays) grads.emplace_back(a.size(), 0.0);
    std::vector<GradientsView<double>> grad_views;
    for (std::size_t s = 0; s < grads.size(); s += per_layer) {
      GradientsView<double> v{grads[s].data(), grads[s + 1].data()};
      if (normalised) {
        v.bn_weight = grads[s + 2].data();
        v.bn_bias = grads[s + 3].data();
      } else {
        v.bias_ih = grads[s + 2].data();
        v.bias_hh = grads[s + 3].data();
      }
      grad_views.push_back(v);
    }
    {
      const Network<double> network(c, views_of(arrays));
      fastgru::TrainingCache<double> cache;
      network.forward(layout, x.data(), nullptr, y.data(), h_n.data(), &cache, 7);
      network.backward(cache, dy.data(), nullptr, dx.data(), nullptr, grad_views);
    }
    const std::string name = "cell " + std::to_string(static_cast<int>(test.cell)) + ", mode " +
                             std::to_string(static_cast<int>(test.mode)) + ", activation " +
                             std::to_string(static_cast<int>(test.activation)) + ", gates " +
                             std::to_string(static_cast<int>(test.gates)) + ", recurrent dropout " +
                             std::to_string(test.recurrent_dropout) + ": ";
    auto compare = [&](double& value, double analytic, const std::string& what) {
      const double saved = value, eps = 1e-6;
      value = saved + eps;
      const double plus = loss();
      value = saved - eps;
      const double minus = loss();
      value = saved;
      const double numeric = (plus - minus) / (2 * eps);
      check(std::fabs(numeric - analytic) <= 1e-6 * (1 + std::fabs(numeric)),
            name + what + " = " + std::to_string(analytic) + ", central difference " +
                std::to_string(numeric));
    };
    for (std::size_t i = 0; i < x.size(); ++i) compare(x[i], dx[i], "dx[" + std::to_string(i) + "]");
    for (std::size_t s = 0; s < arrays.size(); ++s) {
      if (normalised && s % per_layer >= 4) continue;  // running statistics: no gradient in training
      for (std::size_t i = 0; i < arrays[s].size(); ++i)
        compare(arrays[s][i], grads[s][i], "gradient " + std::to_string(s) + "[" + std::to_string(i) + "]");
    }
  }
}

}  // namespace

int main() {
  const std::pair<const char*, void (*)()> tests[] = {
      {"gru_network_of_one_layer_equals_gru_layer", gru_network_of_one_layer_equals_gru_layer},
      {"backward_matches_central_differences", backward_matches_central_differences},
      {"every_cell_matches_central_differences", every_cell_matches_central_differences},
      {"bad_arguments_are_clear_exceptions", bad_arguments_are_clear_exceptions},
      {"one_network_serves_many_threads_at_once", one_network_serves_many_threads_at_once},
      {"partial_biases_are_clear_exceptions", partial_biases_are_clear_exceptions},
      {"forked_child_computes_like_its_parent", forked_child_computes_like_its_parent},
  };
  int passed = 0, failed = 0;
  std::printf("fastgru core tests, ISA %s\n", fastgru::active_isa().c_str());
  for (const auto& [name, test] : tests) {
    try {
      test();
      ++passed;
      std::printf("PASS %s\n", name);
    } catch (const std::exception& error) {
      ++failed;
      std::printf("FAIL %s: %s\n", name, error.what());
    }
  }
  std::printf("%d passed, %d failed\n", passed, failed);
  return failed == 0 ? 0 : 1;
}
