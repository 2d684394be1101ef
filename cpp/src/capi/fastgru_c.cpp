// The C API (fastgru/fastgru.h) over the C++ API: handles own shared networks, every entry point
// turns exceptions into a status and a thread-local message.
#include "fastgru/fastgru.h"

#include <algorithm>
#include <exception>
#include <memory>
#include <new>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <vector>

#include "cells/cell_table.h"
#include "fastgru/model.h"
#include "fastgru/model_file.h"
#include "fastgru/network.h"
#include "fastgru/runtime.h"

struct fastgru_model {
  fastgru_dtype dtype;
  // shared: a stream keeps the network alive after the model handle is freed
  std::shared_ptr<const fastgru::Network<float>> f32;
  std::shared_ptr<const fastgru::Network<double>> f64;
};

struct fastgru_predictor {
  fastgru_dtype dtype;
  // shared: a stream keeps the model alive after the predictor handle is freed
  std::shared_ptr<const fastgru::Model<float>> f32;
  std::shared_ptr<const fastgru::Model<double>> f64;
};

struct fastgru_stream {
  fastgru_dtype dtype;
  // a network's stream: the network; a predictor's: its model's network (sharing the model)
  std::shared_ptr<const fastgru::Network<float>> f32;
  std::shared_ptr<const fastgru::Network<double>> f64;
  // a predictor's stream: its model, whose head gives each step's `outputs`
  std::shared_ptr<const fastgru::Model<float>> model_f32;
  std::shared_ptr<const fastgru::Model<double>> model_f64;
  fastgru::Outputs outputs = fastgru::Outputs::values;
  std::int64_t batch;
  // (L, B, H) in the model's precision; `next` receives h_n and is swapped in after each step
  std::vector<float> state_f32, next_f32;
  std::vector<double> state_f64, next_f64;
};

namespace {

// fastgru_cell numbers the cells as fastgru::Cell does.
static_assert(static_cast<int>(fastgru::Cell::gru) == FASTGRU_CELL_GRU &&
                  static_cast<int>(fastgru::Cell::mgu) == FASTGRU_CELL_MGU &&
                  static_cast<int>(fastgru::Cell::ligru) == FASTGRU_CELL_LIGRU &&
                  static_cast<int>(fastgru::Cell::libru) == FASTGRU_CELL_LIBRU,
              "fastgru_cell and fastgru::Cell disagree");
static_assert(static_cast<int>(fastgru::Precision::full) == FASTGRU_PRECISION_FULL &&
                  static_cast<int>(fastgru::Precision::bf16) == FASTGRU_PRECISION_BF16 &&
                  static_cast<int>(fastgru::Precision::int8) == FASTGRU_PRECISION_INT8,
              "fastgru_precision and fastgru::Precision disagree");

thread_local std::string last_error;

const char* dtype_name(fastgru_dtype dtype) { return dtype == FASTGRU_FLOAT32 ? "float32" : "float64"; }

void require(bool condition, const std::string& message) {
  if (!condition) throw std::invalid_argument("fastgru: " + message);
}

void require_pointer(const void* pointer, const char* name) {
  require(pointer != nullptr, std::string(name) + " must not be null");
}

// Refuses a size whose buffers could not exist: `name`'s value times the model's per-item
// element count must stay below 2^60 elements (so no byte count overflows either).
void require_addressable(std::int64_t value, std::int64_t elements_per_item, const char* name) {
  constexpr std::int64_t kMaxElements = std::int64_t(1) << 60;
  require(value >= 0, std::string(name) + ": expected >= 0, got " + std::to_string(value));
  require(elements_per_item <= 0 || value <= kMaxElements / elements_per_item,
          std::string(name) + ": " + std::to_string(value) + " is too large: its buffers would hold more than 2^60 values");
}

// Runs `body`, mapping what it throws to a status and the thread's last error message.
template <typename Body>
fastgru_status guarded(Body&& body) noexcept {
  try {
    body();
    return FASTGRU_OK;
  } catch (const std::invalid_argument& error) {
    last_error = error.what();
    return FASTGRU_ERROR_INVALID_ARGUMENT;
  } catch (const std::length_error& error) {  // a size no container can hold: the caller's
    last_error = std::string("fastgru: a size is too large (") + error.what() + ")";
    return FASTGRU_ERROR_INVALID_ARGUMENT;
  } catch (const std::bad_alloc&) {
    last_error = "fastgru: out of memory";
    return FASTGRU_ERROR_OUT_OF_MEMORY;
  } catch (const std::exception& error) {
    last_error = std::string("fastgru: internal error: ") + error.what();
    return FASTGRU_ERROR_INTERNAL;
  } catch (...) {
    last_error = "fastgru: internal error of an unknown kind";
    return FASTGRU_ERROR_INTERNAL;
  }
}

void require_dtype(fastgru_dtype actual, fastgru_dtype wanted, const char* name) {
  require(actual == wanted, std::string(name) + ": expected a " + dtype_name(wanted) + " handle (this is the _" +
                                (wanted == FASTGRU_FLOAT32 ? "f32" : "f64") + " function), got a " +
                                dtype_name(actual) + " one");
}

// The network (model or stream) or the state vector (stream) of precision Real.
template <typename Real, typename Handle>
const fastgru::Network<Real>& network_of(const Handle& handle) {
  if constexpr (std::is_same_v<Real, float>) return *handle.f32;
  else return *handle.f64;
}

template <typename Real, typename Handle>
const fastgru::Model<Real>* model_of(const Handle& handle) {
  if constexpr (std::is_same_v<Real, float>) return handle.model_f32.get();
  else return handle.model_f64.get();
}

template <typename Real>
const fastgru::Model<Real>& predictor_model(const fastgru_predictor& predictor) {
  if constexpr (std::is_same_v<Real, float>) return *predictor.f32;
  else return *predictor.f64;
}

fastgru::Outputs checked_outputs(int outputs) {
  require(outputs == FASTGRU_OUTPUT_VALUES || outputs == FASTGRU_OUTPUT_PROBABILITIES,
          "outputs: expected FASTGRU_OUTPUT_VALUES (0) or FASTGRU_OUTPUT_PROBABILITIES (1), got " +
              std::to_string(outputs));
  return static_cast<fastgru::Outputs>(outputs);
}

template <typename Real, typename Stream>
auto& state_of(Stream& stream, bool next) {
  if constexpr (std::is_same_v<Real, float>) return next ? stream.next_f32 : stream.state_f32;
  else return next ? stream.next_f64 : stream.state_f64;
}

template <typename Real>
constexpr fastgru_dtype dtype_of() { return sizeof(Real) == 4 ? FASTGRU_FLOAT32 : FASTGRU_FLOAT64; }

template <typename Real>
fastgru_status forward(const fastgru_model* model, std::int64_t steps, std::int64_t batch, int batch_first,
                       const Real* x, const std::int64_t* lengths, const Real* h0, Real* y, Real* h_n) {
  return guarded([&] {
    require_pointer(model, "model");
    require_dtype(model->dtype, dtype_of<Real>(), "model");
    require(batch_first == 0 || batch_first == 1, "batch_first: expected 0 or 1, got " + std::to_string(batch_first));
    const fastgru::Network<Real>& gru = network_of<Real>(*model);
    const fastgru::NetworkConfig& config = gru.config();
    const std::int64_t widest = std::max({config.input, gru.directions() * config.hidden,
                                          config.layers * gru.directions() * config.hidden});
    require_addressable(batch, widest, "batch");
    // Per-step bookkeeping exists even for an empty batch: steps alone are bounded too.
    require_addressable(steps, std::max<std::int64_t>(1, batch * widest), "steps");
    fastgru::SequenceLayout layout;
    layout.steps = steps;
    layout.batch = batch;
    layout.batch_first = batch_first == 1;
    layout.lengths = lengths;
    // h_n is optional here (not in the C++ API): a scratch buffer takes it when not wanted
    std::vector<Real> unwanted_h_n;
    if (h_n == nullptr && batch > 0) {
      const fastgru::NetworkConfig& c = gru.config();
      unwanted_h_n.resize(static_cast<std::size_t>(c.layers * gru.directions() * batch * c.hidden));
      h_n = unwanted_h_n.data();
    }
    gru.forward(layout, x, h0, y, h_n, nullptr);
  });
}

// Predictions of a predictor; `Input` is Real (x) or std::int64_t (ids).
template <typename Real, typename Input>
fastgru_status predict(const fastgru_predictor* predictor, std::int64_t steps, std::int64_t batch, int batch_first,
                       const Input* x, const std::int64_t* lengths, int outputs, Real* out) {
  return guarded([&] {
    require_pointer(predictor, "predictor");
    require_dtype(predictor->dtype, dtype_of<Real>(), "predictor");
    require(batch_first == 0 || batch_first == 1, "batch_first: expected 0 or 1, got " + std::to_string(batch_first));
    const fastgru::Outputs wanted = checked_outputs(outputs);
    const fastgru::Model<Real>& model = predictor_model<Real>(*predictor);
    const fastgru::NetworkConfig& config = model.network().config();
    const std::int64_t D = model.network().directions();
    const std::int64_t widest = std::max({config.input, D * config.hidden, config.layers * D * config.hidden,
                                          model.config().outputs});
    require_addressable(batch, widest, "batch");
    require_addressable(steps, std::max<std::int64_t>(1, batch * widest), "steps");
    fastgru::SequenceLayout layout;
    layout.steps = steps;
    layout.batch = batch;
    layout.batch_first = batch_first == 1;
    layout.lengths = lengths;
    if constexpr (std::is_same_v<Input, std::int64_t>) model.predict_ids(layout, x, out, wanted);
    else model.predict(layout, x, out, wanted);
  });
}

template <typename Real, typename Input>
fastgru_status stream_step(fastgru_stream* stream, const Input* x_t, Real* y_t) {
  constexpr bool ids = std::is_same_v<Input, std::int64_t>;
  return guarded([&] {
    require_pointer(stream, "stream");
    require_dtype(stream->dtype, dtype_of<Real>(), "stream");
    require_pointer(x_t, ids ? "ids" : "x_t");
    require_pointer(y_t, ids ? "out" : "y_t");
    const fastgru::Model<Real>* model = model_of<Real>(*stream);
    if (model != nullptr) {  // a predictor's stream: the model's step (it checks ids or real inputs)
      std::vector<Real>& state = state_of<Real>(*stream, false);
      if constexpr (ids) model->step_ids(stream->batch, x_t, state.data(), y_t, stream->outputs);
      else model->step(stream->batch, x_t, state.data(), y_t, stream->outputs);
      return;
    }
    if constexpr (ids) {
      require(false, "stream: token ids go to a predictor's stream (fastgru_predictor_stream_create) of a model with "
                     "an embedding; this is a network's stream: use fastgru_stream_step_f32/_f64");
    } else {
      fastgru::SequenceLayout one_step;
      one_step.steps = 1;
      one_step.batch = stream->batch;
      std::vector<Real>& state = state_of<Real>(*stream, false);
      std::vector<Real>& next = state_of<Real>(*stream, true);
      network_of<Real>(*stream).forward(one_step, x_t, state.data(), y_t, next.data(), nullptr);
      state.swap(next);
    }
  });
}

template <typename Real>
fastgru_status stream_get_state(const fastgru_stream* stream, Real* h) {
  return guarded([&] {
    require_pointer(stream, "stream");
    require_dtype(stream->dtype, dtype_of<Real>(), "stream");
    require_pointer(h, "h");
    const std::vector<Real>& state = state_of<Real>(*stream, false);
    std::copy(state.begin(), state.end(), h);
  });
}

template <typename Real>
fastgru_model_info network_info(fastgru_dtype dtype, const fastgru::Network<Real>& network) {
  const fastgru::NetworkConfig& c = network.config();
  fastgru_model_info info;
  info.dtype = dtype;
  info.cell = static_cast<fastgru_cell>(static_cast<int>(c.cell));
  info.input = c.input;
  info.hidden = c.hidden;
  info.layers = c.layers;
  info.directions = c.bidirectional ? 2 : 1;
  info.reset_after =
      fastgru::cells::describe(c.cell).has_reset_conventions && c.mode == fastgru::ResetMode::after ? 1 : 0;
  info.bias = c.bias ? 1 : 0;
  info.gates = static_cast<int>(c.gates);
  info.reverse = c.reverse ? 1 : 0;
  info.outputs = network.output_width();
  return info;
}

template <typename Real>
const fastgru::NetworkConfig& network_config(const fastgru::Network<Real>& network) { return network.config(); }
template <typename Real>
const fastgru::NetworkConfig& network_config(const fastgru::Model<Real>& model) { return model.network().config(); }

// The precision and the clip a handle's network computes with (a float32 one's clip is a float32).
template <class Handle>
fastgru_status network_setting(const Handle* handle, const char* handle_name, int* precision, double* clip) {
  return guarded([&] {
    require_pointer(handle, handle_name);
    require_pointer(precision ? static_cast<const void*>(precision) : clip, precision ? "precision" : "clip");
    const fastgru::NetworkConfig& config = handle->f32 ? network_config(*handle->f32) : network_config(*handle->f64);
    if (precision) *precision = static_cast<int>(config.precision);
    if (clip) *clip = handle->f32 ? static_cast<double>(static_cast<float>(config.clip)) : config.clip;
  });
}

// A handle (fastgru_model, fastgru_predictor) of `path` in dtype: its f32 or f64 member set by
// load(float{}) or load(double{}); *out, named `out_name`, is null unless it succeeds.
template <class Handle, class Load>
fastgru_status load_handle(const char* path, int dtype, Handle** out, const char* out_name, Load load) {
  return guarded([&] {
    require_pointer(out, out_name);
    *out = nullptr;
    require_pointer(path, "path");
    require(dtype == FASTGRU_FLOAT32 || dtype == FASTGRU_FLOAT64,
            "dtype: expected FASTGRU_FLOAT32 (0) or FASTGRU_FLOAT64 (1), got " + std::to_string(dtype));
    auto loaded = std::make_unique<Handle>();
    loaded->dtype = static_cast<fastgru_dtype>(dtype);
    if (dtype == FASTGRU_FLOAT32) {
      loaded->f32 = load(float{});
    } else {
      loaded->f64 = load(double{});
    }
    *out = loaded.release();
  });
}

}  // namespace

extern "C" {

const char* fastgru_last_error(void) { return last_error.c_str(); }

const char* fastgru_version(void) { return FASTGRU_VERSION; }

fastgru_status fastgru_set_num_threads(int n) {
  return guarded([&] { fastgru::set_num_threads(n); });
}

fastgru_status fastgru_get_num_threads(int* n) {
  return guarded([&] {
    require_pointer(n, "n");
    *n = fastgru::num_threads();
  });
}

fastgru_status fastgru_model_load(const char* path, int dtype, fastgru_model** model) {
  return load_handle(path, dtype, model, "model", [&](auto real) {
    using Real = decltype(real);
    return std::make_shared<const fastgru::Network<Real>>(fastgru::load_network<Real>(path));
  });
}

void fastgru_model_free(fastgru_model* model) { delete model; }

fastgru_status fastgru_model_get_info(const fastgru_model* model, fastgru_model_info* info) {
  return guarded([&] {
    require_pointer(model, "model");
    require_pointer(info, "info");
    *info = model->f32 ? network_info(model->dtype, *model->f32) : network_info(model->dtype, *model->f64);
  });
}

fastgru_status fastgru_model_get_precision(const fastgru_model* model, int* precision) {
  return network_setting(model, "model", precision, nullptr);
}

fastgru_status fastgru_model_get_clip(const fastgru_model* model, double* clip) {
  return network_setting(model, "model", nullptr, clip);
}

fastgru_status fastgru_predictor_get_precision(const fastgru_predictor* predictor, int* precision) {
  return network_setting(predictor, "predictor", precision, nullptr);
}

fastgru_status fastgru_predictor_get_clip(const fastgru_predictor* predictor, double* clip) {
  return network_setting(predictor, "predictor", nullptr, clip);
}

fastgru_status fastgru_model_forward_f32(const fastgru_model* model, int64_t steps, int64_t batch, int batch_first,
                                         const float* x, const int64_t* lengths, const float* h0, float* y,
                                         float* h_n) {
  return forward<float>(model, steps, batch, batch_first, x, lengths, h0, y, h_n);
}

fastgru_status fastgru_model_forward_f64(const fastgru_model* model, int64_t steps, int64_t batch, int batch_first,
                                         const double* x, const int64_t* lengths, const double* h0, double* y,
                                         double* h_n) {
  return forward<double>(model, steps, batch, batch_first, x, lengths, h0, y, h_n);
}

fastgru_status fastgru_stream_create(const fastgru_model* model, int64_t batch, fastgru_stream** stream) {
  return guarded([&] {
    require_pointer(stream, "stream");
    *stream = nullptr;
    require_pointer(model, "model");
    require(batch >= 1, "batch: expected >= 1, got " + std::to_string(batch));
    const fastgru::NetworkConfig& c = model->f32 ? model->f32->config() : model->f64->config();
    require_addressable(batch, c.layers * c.hidden, "batch");
    require(!c.bidirectional, "model: expected a unidirectional model for streaming, got a bidirectional one "
                              "(it needs whole sequences: use fastgru_model_forward_*)");
    require(!c.reverse, "model: expected a forward-in-time model for streaming, got a reverse one "
                        "(it needs whole sequences: use fastgru_model_forward_*)");
    auto created = std::make_unique<fastgru_stream>();
    created->dtype = model->dtype;
    created->f32 = model->f32;
    created->f64 = model->f64;
    created->batch = batch;
    const auto size = static_cast<std::size_t>(c.layers * batch * c.hidden);
    if (model->dtype == FASTGRU_FLOAT32) {
      created->state_f32.assign(size, 0.0f);
      created->next_f32.assign(size, 0.0f);
    } else {
      created->state_f64.assign(size, 0.0);
      created->next_f64.assign(size, 0.0);
    }
    *stream = created.release();
  });
}

void fastgru_stream_free(fastgru_stream* stream) { delete stream; }

fastgru_status fastgru_stream_reset(fastgru_stream* stream, const unsigned char* rows) {
  return guarded([&] {
    require_pointer(stream, "stream");
    const std::int64_t hidden = stream->f32 ? stream->f32->config().hidden : stream->f64->config().hidden;
    const auto zero_rows = [&](auto& state) {
      const std::int64_t blocks = static_cast<std::int64_t>(state.size()) / (stream->batch * hidden);
      for (std::int64_t l = 0; l < blocks; ++l) {
        for (std::int64_t b = 0; b < stream->batch; ++b) {
          if (rows != nullptr && rows[b] == 0) continue;
          auto first = state.begin() + (l * stream->batch + b) * hidden;
          std::fill(first, first + hidden, 0);
        }
      }
    };
    zero_rows(stream->state_f32);
    zero_rows(stream->state_f64);
  });
}

fastgru_status fastgru_stream_step_f32(fastgru_stream* stream, const float* x_t, float* y_t) {
  return stream_step<float>(stream, x_t, y_t);
}

fastgru_status fastgru_stream_step_f64(fastgru_stream* stream, const double* x_t, double* y_t) {
  return stream_step<double>(stream, x_t, y_t);
}

fastgru_status fastgru_stream_step_ids_f32(fastgru_stream* stream, const int64_t* ids, float* out) {
  return stream_step<float>(stream, ids, out);
}

fastgru_status fastgru_stream_step_ids_f64(fastgru_stream* stream, const int64_t* ids, double* out) {
  return stream_step<double>(stream, ids, out);
}

fastgru_status fastgru_predictor_load(const char* path, int dtype, fastgru_predictor** predictor) {
  return load_handle(path, dtype, predictor, "predictor", [&](auto real) {
    using Real = decltype(real);
    return std::make_shared<const fastgru::Model<Real>>(fastgru::load_model<Real>(path));
  });
}

void fastgru_predictor_free(fastgru_predictor* predictor) { delete predictor; }

fastgru_status fastgru_predictor_get_info(const fastgru_predictor* predictor, fastgru_predictor_info* info) {
  return guarded([&] {
    require_pointer(predictor, "predictor");
    require_pointer(info, "info");
    const fastgru::ModelConfig& c = predictor->f32 ? predictor->f32->config() : predictor->f64->config();
    info->network = predictor->f32 ? network_info(predictor->dtype, predictor->f32->network())
                                   : network_info(predictor->dtype, predictor->f64->network());
    info->outputs = c.outputs;
    info->head = c.head == fastgru::Head::last ? FASTGRU_HEAD_LAST : FASTGRU_HEAD_SEQUENCE;
    info->classifier = c.classifier ? 1 : 0;
    info->vocab_size = c.vocab_size;
    info->padding_id = c.padding_id;
    info->output_scaling = c.output_scaling ? 1 : 0;
  });
}

fastgru_status fastgru_predictor_predict_f32(const fastgru_predictor* predictor, int64_t steps, int64_t batch,
                                             int batch_first, const float* x, const int64_t* lengths, int outputs,
                                             float* out) {
  return predict<float>(predictor, steps, batch, batch_first, x, lengths, outputs, out);
}

fastgru_status fastgru_predictor_predict_f64(const fastgru_predictor* predictor, int64_t steps, int64_t batch,
                                             int batch_first, const double* x, const int64_t* lengths, int outputs,
                                             double* out) {
  return predict<double>(predictor, steps, batch, batch_first, x, lengths, outputs, out);
}

fastgru_status fastgru_predictor_predict_ids_f32(const fastgru_predictor* predictor, int64_t steps, int64_t batch,
                                                 int batch_first, const int64_t* ids, const int64_t* lengths,
                                                 int outputs, float* out) {
  return predict<float>(predictor, steps, batch, batch_first, ids, lengths, outputs, out);
}

fastgru_status fastgru_predictor_predict_ids_f64(const fastgru_predictor* predictor, int64_t steps, int64_t batch,
                                                 int batch_first, const int64_t* ids, const int64_t* lengths,
                                                 int outputs, double* out) {
  return predict<double>(predictor, steps, batch, batch_first, ids, lengths, outputs, out);
}

fastgru_status fastgru_predictor_stream_create(const fastgru_predictor* predictor, int64_t batch, int outputs,
                                               fastgru_stream** stream) {
  return guarded([&] {
    require_pointer(stream, "stream");
    *stream = nullptr;
    require_pointer(predictor, "predictor");
    const fastgru::Outputs wanted = checked_outputs(outputs);
    require(batch >= 1, "batch: expected >= 1, got " + std::to_string(batch));
    const fastgru::ModelConfig& m = predictor->f32 ? predictor->f32->config() : predictor->f64->config();
    require(wanted == fastgru::Outputs::values || m.classifier,
            "outputs: probabilities are a classifier's (a cross_entropy model); this model is a regression");
    const fastgru::NetworkConfig& c = predictor->f32 ? predictor->f32->network().config()
                                                     : predictor->f64->network().config();
    require_addressable(batch, std::max(c.layers * c.hidden, m.outputs), "batch");
    require(!c.bidirectional && !c.reverse, std::string("predictor: expected a forward-in-time model for streaming, "
                                                        "got a ") + (c.reverse ? "reverse" : "bidirectional") +
                                                " one (it needs whole sequences: use fastgru_predictor_predict_*)");
    auto created = std::make_unique<fastgru_stream>();
    created->dtype = predictor->dtype;
    created->model_f32 = predictor->f32;
    created->model_f64 = predictor->f64;
    // the networks share their model's ownership (an aliasing shared_ptr)
    if (predictor->f32) created->f32 = {predictor->f32, &predictor->f32->network()};
    if (predictor->f64) created->f64 = {predictor->f64, &predictor->f64->network()};
    created->outputs = wanted;
    created->batch = batch;
    const auto size = static_cast<std::size_t>(c.layers * batch * c.hidden);
    if (predictor->dtype == FASTGRU_FLOAT32) created->state_f32.assign(size, 0.0f);
    else created->state_f64.assign(size, 0.0);
    *stream = created.release();
  });
}

fastgru_status fastgru_stream_get_state_f32(const fastgru_stream* stream, float* h) {
  return stream_get_state<float>(stream, h);
}

fastgru_status fastgru_stream_get_state_f64(const fastgru_stream* stream, double* h) {
  return stream_get_state<double>(stream, h);
}

}  // extern "C"
