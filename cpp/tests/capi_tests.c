/* Tests of the C API, compiled as C: loading, whole sequences, lengths, layouts, streaming,
 * errors, and one model used from several threads at once; whole Model files (predictors) against
 * what Python's Model predicts.
 * Usage: fastgru_capi_tests DATA_DIR (cpp/tests/data, model files saved from Python). */
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "fastgru/fastgru.h"

static int failures = 0;

#define CHECK(condition)                                                          \
  do {                                                                            \
    if (!(condition)) {                                                           \
      fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #condition); \
      ++failures;                                                                 \
    }                                                                             \
  } while (0)

/* A call that must succeed; prints the library's message if it does not. */
#define OK(call)                                                                              \
  do {                                                                                        \
    fastgru_status status_ = (call);                                                          \
    if (status_ != FASTGRU_OK) {                                                              \
      fprintf(stderr, "%s:%d: %s failed: %s\n", __FILE__, __LINE__, #call, fastgru_last_error()); \
      exit(1);                                                                                \
    }                                                                                         \
  } while (0)

/* A call that must fail with `status` and a message containing `text`. */
static void expect_error(fastgru_status got, fastgru_status status, const char* text, int line) {
  if (got != status || strstr(fastgru_last_error(), text) == NULL) {
    fprintf(stderr, "line %d: expected status %d and a message with '%s', got %d: '%s'\n", line, (int)status,
            text, (int)got, fastgru_last_error());
    ++failures;
  }
}
#define EXPECT_ERROR(call, status, text) expect_error((call), (status), (text), __LINE__)

static char data_dir[4096];

static const char* data_file(const char* name) {
  static char path[8192];
  snprintf(path, sizeof path, "%s/%s", data_dir, name);
  return path;
}

static void fill(float* values, size_t count, unsigned seed) {
  size_t i;
  for (i = 0; i < count; ++i) {
    seed = seed * 1103515245u + 12345u;
    values[i] = (float)((seed >> 8) % 2001) / 1000.0f - 1.0f;
  }
}

static float max_difference(const float* a, const float* b, size_t count) {
  float worst = 0;
  size_t i;
  for (i = 0; i < count; ++i) worst = fmaxf(worst, fabsf(a[i] - b[i]));
  return worst;
}

enum { T = 7, B = 3, I = 3, H = 5, L = 2 };

static void loads_and_reports_the_configuration(const fastgru_model* model) {
  fastgru_model_info info;
  OK(fastgru_model_get_info(model, &info));
  CHECK(info.dtype == FASTGRU_FLOAT32 && info.cell == FASTGRU_CELL_GRU);
  CHECK(info.input == I && info.hidden == H && info.layers == L && info.directions == 1);
  CHECK(info.reset_after == 1 && info.bias == 1 && info.gates == 0);
}

static void streaming_equals_whole_sequence(const fastgru_model* model) {
  float x[T * B * I], y[T * B * H], h_n[L * B * H], y_t[B * H], state[L * B * H];
  fastgru_stream* stream = NULL;
  int t;
  fill(x, T * B * I, 1);
  OK(fastgru_model_forward_f32(model, T, B, 0, x, NULL, NULL, y, h_n));
  OK(fastgru_stream_create(model, B, &stream));
  for (t = 0; t < T; ++t) {
    OK(fastgru_stream_step_f32(stream, x + t * B * I, y_t));
    CHECK(max_difference(y_t, y + t * B * H, B * H) < 1e-6f);
  }
  OK(fastgru_stream_get_state_f32(stream, state));
  CHECK(max_difference(state, h_n, L * B * H) < 1e-6f);

  /* Resetting row 1 zeroes its state in every layer and leaves the others. */
  {
    const unsigned char rows[B] = {0, 1, 0};
    int l, u;
    OK(fastgru_stream_reset(stream, rows));
    OK(fastgru_stream_get_state_f32(stream, state));
    for (l = 0; l < L; ++l) {
      for (u = 0; u < H; ++u) {
        CHECK(state[(l * B + 1) * H + u] == 0.0f);
        CHECK(state[(l * B + 0) * H + u] == h_n[(l * B + 0) * H + u]);
      }
    }
    OK(fastgru_stream_reset(stream, NULL));
    OK(fastgru_stream_get_state_f32(stream, state));
    for (u = 0; u < L * B * H; ++u) CHECK(state[u] == 0.0f);
  }
  fastgru_stream_free(stream);
}

static void lengths_and_batch_first(const fastgru_model* model) {
  float x[T * B * I], x_bf[B * T * I], y[T * B * H], y_bf[B * T * H], h_n[L * B * H], h_n_bf[L * B * H];
  float h0[L * B * H], y_short[T * H], h_short[L * H], x_short[T * I], h0_short[L * H];
  const int64_t lengths[B] = {7, 2, 5};
  int t, b, i, l;
  fill(x, T * B * I, 2);
  fill(h0, L * B * H, 3);
  for (t = 0; t < T; ++t)
    for (b = 0; b < B; ++b)
      for (i = 0; i < I; ++i) x_bf[(b * T + t) * I + i] = x[(t * B + b) * I + i];
  OK(fastgru_model_forward_f32(model, T, B, 0, x, lengths, h0, y, h_n));
  OK(fastgru_model_forward_f32(model, T, B, 1, x_bf, lengths, h0, y_bf, h_n_bf));
  for (t = 0; t < T; ++t)
    for (b = 0; b < B; ++b)
      for (i = 0; i < H; ++i) {
        CHECK(y[(t * B + b) * H + i] == y_bf[(b * T + t) * H + i]);
        if (t >= lengths[b]) CHECK(y[(t * B + b) * H + i] == 0.0f);
      }
  CHECK(max_difference(h_n, h_n_bf, L * B * H) == 0.0f);

  /* Row 1 alone, cut to its length, ends in the same state. */
  for (t = 0; t < lengths[1]; ++t)
    for (i = 0; i < I; ++i) x_short[t * I + i] = x[(t * B + 1) * I + i];
  for (l = 0; l < L; ++l)
    for (i = 0; i < H; ++i) h0_short[l * H + i] = h0[(l * B + 1) * H + i];
  OK(fastgru_model_forward_f32(model, lengths[1], 1, 0, x_short, NULL, h0_short, y_short, h_short));
  for (l = 0; l < L; ++l) CHECK(max_difference(h_short + l * H, h_n + (l * B + 1) * H, H) < 1e-6f);

  /* h_n may be left out. */
  OK(fastgru_model_forward_f32(model, T, B, 0, x, lengths, h0, y_bf, NULL));
  CHECK(max_difference(y, y_bf, T * B * H) == 0.0f);
}

/* Empty shapes need no buffers, and an empty batch costs nothing however many steps it has
 * (10^7 steps took seconds). */
static void empty_shapes(const fastgru_model* model) {
  float x[T * B * I], y[T * B * H];
  clock_t start;
  fill(x, T * B * I, 6);
  OK(fastgru_model_forward_f32(model, 0, 0, 0, NULL, NULL, NULL, NULL, NULL));
  OK(fastgru_model_forward_f32(model, 0, 0, 1, NULL, NULL, NULL, NULL, NULL));
  OK(fastgru_model_forward_f32(model, T, 0, 0, x, NULL, NULL, y, NULL));
  start = clock();
  OK(fastgru_model_forward_f32(model, 10000000, 0, 0, NULL, NULL, NULL, NULL, NULL));
  CHECK(clock() - start < CLOCKS_PER_SEC / 2);
}

static void float64_bidirectional_model(void) {
  fastgru_model* model = NULL;
  fastgru_model_info info;
  fastgru_stream* stream = NULL;
  double x[4 * 2 * 4], y[4 * 2 * 6], h_n[2 * 2 * 3];
  float x32[4 * 2 * 4];
  int i;
  OK(fastgru_model_load(data_file("bigru_f64.safetensors"), FASTGRU_FLOAT64, &model));
  OK(fastgru_model_get_info(model, &info));
  CHECK(info.dtype == FASTGRU_FLOAT64 && info.directions == 2 && info.reset_after == 0);
  CHECK(info.input == 4 && info.hidden == 3 && info.layers == 1);
  fill(x32, 32, 4);
  for (i = 0; i < 32; ++i) x[i] = x32[i];
  OK(fastgru_model_forward_f64(model, 4, 2, 0, x, NULL, NULL, y, h_n));
  /* The reverse direction's output at step 0 is its final state. */
  for (i = 0; i < 3; ++i) CHECK(y[0 * 6 + 3 + i] == h_n[(1 * 2 + 0) * 3 + i]);
  EXPECT_ERROR(fastgru_stream_create(model, 2, &stream), FASTGRU_ERROR_INVALID_ARGUMENT, "bidirectional");
  CHECK(stream == NULL);
  EXPECT_ERROR(fastgru_model_forward_f32(model, 4, 2, 0, x32, NULL, NULL, (float*)y, NULL),
               FASTGRU_ERROR_INVALID_ARGUMENT, "model: expected a float32 handle");
  fastgru_model_free(model);
}

static void errors_are_reported_clearly(const fastgru_model* model) {
  fastgru_model* missing = (fastgru_model*)1;
  fastgru_stream* stream = NULL;
  float x[T * B * I], y[T * B * H], y_t[B * H];
  const int64_t bad_lengths[B] = {7, 8, 5};
  int threads = 0;
  fill(x, T * B * I, 5);
  EXPECT_ERROR(fastgru_model_load(data_file("no-such-file.safetensors"), FASTGRU_FLOAT32, &missing),
               FASTGRU_ERROR_INVALID_ARGUMENT, "no-such-file.safetensors");
  CHECK(missing == NULL);
  EXPECT_ERROR(fastgru_model_load(data_file("not_a_model.safetensors"), FASTGRU_FLOAT32, &missing),
               FASTGRU_ERROR_INVALID_ARGUMENT, "not a readable fastgru model file");
  EXPECT_ERROR(fastgru_model_load(NULL, FASTGRU_FLOAT32, &missing), FASTGRU_ERROR_INVALID_ARGUMENT,
               "path must not be null");
  EXPECT_ERROR(fastgru_model_load(data_file("gru2_f32.safetensors"), 7, &missing),
               FASTGRU_ERROR_INVALID_ARGUMENT, "dtype: expected FASTGRU_FLOAT32 (0) or FASTGRU_FLOAT64 (1), got 7");
  EXPECT_ERROR(fastgru_model_load(data_file("gru2_f32.safetensors"), -1, &missing),
               FASTGRU_ERROR_INVALID_ARGUMENT, "dtype: expected FASTGRU_FLOAT32 (0) or FASTGRU_FLOAT64 (1), got -1");
  EXPECT_ERROR(fastgru_model_load(data_file("gru2_f32.safetensors"), FASTGRU_FLOAT32, NULL),
               FASTGRU_ERROR_INVALID_ARGUMENT, "model must not be null");
  EXPECT_ERROR(fastgru_model_get_info(NULL, NULL), FASTGRU_ERROR_INVALID_ARGUMENT, "model must not be null");
  EXPECT_ERROR(fastgru_model_forward_f32(model, T, B, 0, NULL, NULL, NULL, y, NULL), FASTGRU_ERROR_INVALID_ARGUMENT,
               "x must not be null");
  EXPECT_ERROR(fastgru_model_forward_f32(model, T, -1, 0, x, NULL, NULL, y, NULL), FASTGRU_ERROR_INVALID_ARGUMENT,
               "batch: expected >= 0, got -1");
  /* Sizes whose buffers could not exist are refused, naming the C argument, before any use. */
  EXPECT_ERROR(fastgru_model_forward_f32(model, INT64_MAX, B, 0, NULL, NULL, NULL, y, NULL),
               FASTGRU_ERROR_INVALID_ARGUMENT, "steps: 9223372036854775807 is too large");
  EXPECT_ERROR(fastgru_model_forward_f32(model, T, B, 2, x, NULL, NULL, y, NULL), FASTGRU_ERROR_INVALID_ARGUMENT,
               "batch_first: expected 0 or 1, got 2");
  EXPECT_ERROR(fastgru_model_forward_f32(model, T, B, 0, x, bad_lengths, NULL, y, NULL),
               FASTGRU_ERROR_INVALID_ARGUMENT, "lengths[1]: expected 0..7");
  EXPECT_ERROR(fastgru_model_forward_f64(model, T, B, 0, (const double*)x, NULL, NULL, (double*)y, NULL),
               FASTGRU_ERROR_INVALID_ARGUMENT, "model: expected a float64 handle (this is the _f64 function), got a float32 one");
  EXPECT_ERROR(fastgru_stream_create(model, 0, &stream), FASTGRU_ERROR_INVALID_ARGUMENT, "batch: expected >= 1, got 0");
  EXPECT_ERROR(fastgru_stream_create(model, (int64_t)1 << 61, &stream), FASTGRU_ERROR_INVALID_ARGUMENT,
               "batch: 2305843009213693952 is too large");
  EXPECT_ERROR(fastgru_stream_step_f32(NULL, x, y_t), FASTGRU_ERROR_INVALID_ARGUMENT, "stream must not be null");
  OK(fastgru_stream_create(model, B, &stream));
  EXPECT_ERROR(fastgru_stream_step_f32(stream, x, NULL), FASTGRU_ERROR_INVALID_ARGUMENT, "y_t must not be null");
  EXPECT_ERROR(fastgru_stream_get_state_f64(stream, (double*)y), FASTGRU_ERROR_INVALID_ARGUMENT,
               "stream: expected a float64 handle");
  fastgru_stream_free(stream);
  EXPECT_ERROR(fastgru_set_num_threads(-1), FASTGRU_ERROR_INVALID_ARGUMENT, "-1");
  EXPECT_ERROR(fastgru_get_num_threads(NULL), FASTGRU_ERROR_INVALID_ARGUMENT, "n must not be null");
  OK(fastgru_get_num_threads(&threads));
  CHECK(threads >= 1);
  fastgru_model_free(NULL);
  fastgru_stream_free(NULL);
}

/* A stream keeps its network: it steps on, unchanged, after its model handle is freed. */
static void stream_outlives_its_model(void) {
  fastgru_model* model = NULL;
  fastgru_stream* stream = NULL;
  float x[T * B * I], y[T * B * H], y_t[B * H];
  int t;
  fill(x, T * B * I, 4);
  OK(fastgru_model_load(data_file("gru2_f32.safetensors"), FASTGRU_FLOAT32, &model));
  OK(fastgru_model_forward_f32(model, T, B, 0, x, NULL, NULL, y, NULL));
  OK(fastgru_stream_create(model, B, &stream));
  fastgru_model_free(model);
  for (t = 0; t < T; ++t) {
    OK(fastgru_stream_step_f32(stream, x + t * B * I, y_t));
    CHECK(max_difference(y_t, y + t * B * H, B * H) < 1e-6f);
  }
  fastgru_stream_free(stream);
}

/* A LiGRU file (batch normalisation's running statistics moved by training in Python). */
static void ligru_model(void) {
  fastgru_model* model = NULL;
  fastgru_model_info info;
  float x[T * B * I], y[T * B * H];
  int i, nonzero = 0;
  fill(x, T * B * I, 5);
  OK(fastgru_model_load(data_file("ligru2_f32.safetensors"), FASTGRU_FLOAT32, &model));
  OK(fastgru_model_get_info(model, &info));
  CHECK(info.cell == FASTGRU_CELL_LIGRU && info.reset_after == 0 && info.bias == 0);
  CHECK(info.input == I && info.hidden == H && info.layers == L);
  streaming_equals_whole_sequence(model);
  OK(fastgru_model_forward_f32(model, T, B, 0, x, NULL, NULL, y, NULL));
  for (i = 0; i < T * B * H; ++i) nonzero += y[i] != 0.0f;
  CHECK(nonzero > 0);
  fastgru_model_free(model);
}

/* A LiBRU file (trained in Python: running statistics and γ, β away from their initial values);
 * tests/test_libru.py checks its outputs against the NumPy reference. */
static void libru_model(void) {
  fastgru_model* model = NULL;
  fastgru_model_info info;
  float x[T * B * I], y[T * B * H];
  int i, finite = 0, nonzero = 0;
  fill(x, T * B * I, 6);
  OK(fastgru_model_load(data_file("libru2_f32.safetensors"), FASTGRU_FLOAT32, &model));
  OK(fastgru_model_get_info(model, &info));
  CHECK(info.cell == FASTGRU_CELL_LIBRU && info.reset_after == 0 && info.bias == 0);
  CHECK(info.input == I && info.hidden == H && info.layers == L && info.directions == 1);
  streaming_equals_whole_sequence(model);
  OK(fastgru_model_forward_f32(model, T, B, 0, x, NULL, NULL, y, NULL));
  for (i = 0; i < T * B * H; ++i) {
    finite += y[i] == y[i] && y[i] - y[i] == 0.0f;
    nonzero += y[i] != 0.0f;
  }
  CHECK(finite == T * B * H && nonzero > 0);
  fastgru_model_free(model);
}

/* GRUs of the other forms of the gates (EQUATIONS.md §7): a "hidden" one (type 2) with reset
 * before, a "bias" one (type 3) with reset after; tests/test_gate_variants.py checks their
 * outputs against the NumPy reference. */
static void gate_form_models(void) {
  const char* files[] = {"gru_hidden2_f32.safetensors", "gru_bias2_f32.safetensors"};
  const int forms[] = {2, 3}, reset_after[] = {0, 1};
  int f;
  for (f = 0; f < 2; ++f) {
    fastgru_model* model = NULL;
    fastgru_model_info info;
    float x[T * B * I], y[T * B * H];
    int i, nonzero = 0;
    fill(x, T * B * I, 7 + f);
    OK(fastgru_model_load(data_file(files[f]), FASTGRU_FLOAT32, &model));
    OK(fastgru_model_get_info(model, &info));
    CHECK(info.cell == FASTGRU_CELL_GRU && info.gates == forms[f] && info.reset_after == reset_after[f]);
    CHECK(info.input == I && info.hidden == H && info.layers == L && info.bias == 1);
    streaming_equals_whole_sequence(model);
    OK(fastgru_model_forward_f32(model, T, B, 0, x, NULL, NULL, y, NULL));
    for (i = 0; i < T * B * H; ++i) nonzero += y[i] != 0.0f;
    CHECK(nonzero > 0);
    fastgru_model_free(model);
  }
}

/* A GRU that clips its pre-activations (ONNX's clip, EQUATIONS.md §1.1) at 0.5, reset before
 * (tests/test_clip.py checks its outputs against the NumPy reference): the bound is reported, and
 * streaming it equals the whole sequence; an unclipped file reports INFINITY. */
static void clipped_model(void) {
  fastgru_model* model = NULL;
  double clip = 0;
  int precision = -1;
  OK(fastgru_model_load(data_file("gru_clip2_f32.safetensors"), FASTGRU_FLOAT32, &model));
  OK(fastgru_model_get_clip(model, &clip));
  OK(fastgru_model_get_precision(model, &precision));
  CHECK(clip == 0.5 && precision == FASTGRU_PRECISION_FULL);
  streaming_equals_whole_sequence(model);
  EXPECT_ERROR(fastgru_model_get_clip(model, NULL), FASTGRU_ERROR_INVALID_ARGUMENT, "clip must not be null");
  EXPECT_ERROR(fastgru_model_get_precision(NULL, &precision), FASTGRU_ERROR_INVALID_ARGUMENT,
               "model must not be null");
  fastgru_model_free(model);
  OK(fastgru_model_load(data_file("gru2_f32.safetensors"), FASTGRU_FLOAT64, &model));
  OK(fastgru_model_get_clip(model, &clip));
  CHECK(isinf(clip) && clip > 0);
  fastgru_model_free(model);
}

/* The bf16 and int8 layer files (gru2_f32.safetensors quantized, tests/model_deploy_data.py):
 * float32 only; they report their configuration, stream as they run whole sequences, and stay
 * near the float32 network they were quantized from (tests/test_model_deploy.py holds them to
 * Python's outputs). */
static void quantized_models(void) {
  const char* files[] = {"gru2_int8.safetensors", "gru2_bf16.safetensors"};
  fastgru_model* full = NULL;
  float x[T * B * I], y_full[T * B * H], y[T * B * H];
  int f;
  fill(x, T * B * I, 9);
  OK(fastgru_model_load(data_file("gru2_f32.safetensors"), FASTGRU_FLOAT32, &full));
  OK(fastgru_model_forward_f32(full, T, B, 0, x, NULL, NULL, y_full, NULL));
  fastgru_model_free(full);
  for (f = 0; f < 2; ++f) {
    fastgru_model* model = (fastgru_model*)1;
    fastgru_model_info info;
    int precision = -1;
    EXPECT_ERROR(fastgru_model_load(data_file(files[f]), FASTGRU_FLOAT64, &model), FASTGRU_ERROR_INVALID_ARGUMENT,
                 f == 0 ? "an int8 model computes in float32: load it as float32"
                        : "a bf16 model computes in float32: load it as float32");
    CHECK(model == NULL);
    OK(fastgru_model_load(data_file(files[f]), FASTGRU_FLOAT32, &model));
    OK(fastgru_model_get_info(model, &info));
    CHECK(info.dtype == FASTGRU_FLOAT32 && info.cell == FASTGRU_CELL_GRU && info.gates == 0);
    CHECK(info.input == I && info.hidden == H && info.layers == L && info.directions == 1);
    OK(fastgru_model_get_precision(model, &precision));
    CHECK(precision == (f == 0 ? FASTGRU_PRECISION_INT8 : FASTGRU_PRECISION_BF16));
    streaming_equals_whole_sequence(model);
    OK(fastgru_model_forward_f32(model, T, B, 0, x, NULL, NULL, y, NULL));
    CHECK(max_difference(y, y_full, T * B * H) < 0.05f);
    CHECK(max_difference(y, y_full, T * B * H) > 0.0f); /* computed in reduced precision */
    fastgru_model_free(model);
  }
}

/* Many threads run one model at once; each must get exactly the single-threaded result. */
enum { WORKERS = 6, ROUNDS = 20 };

typedef struct {
  const fastgru_model* model;
  const float* x;
  const float* expected;
  int mismatches;
  int fresh_error_was_empty;
} worker_args;

/* Files and sizes that cannot be served are the caller's error, never an internal one. */
static void impossible_requests_are_invalid_arguments(const fastgru_model* model) {
  fastgru_model* missing = NULL;
  float x[16] = {0}, y[16];
  EXPECT_ERROR(fastgru_model_load(data_dir, FASTGRU_FLOAT32, &missing), FASTGRU_ERROR_INVALID_ARGUMENT,
               "expected a regular file, got a directory");
  CHECK(missing == NULL);
  EXPECT_ERROR(fastgru_model_forward_f32(model, (int64_t)1 << 62, 0, 0, x, NULL, NULL, y, NULL),
               FASTGRU_ERROR_INVALID_ARGUMENT, "steps: 4611686018427387904 is too large");
  EXPECT_ERROR(fastgru_model_forward_f32(model, (int64_t)1 << 62, 4, 0, x, NULL, NULL, y, NULL),
               FASTGRU_ERROR_INVALID_ARGUMENT, "steps: 4611686018427387904 is too large");
}

static void* worker(void* argument) {
  worker_args* args = (worker_args*)argument;
  float y[T * B * H];
  int round;
  /* The main thread's last error is not this thread's. */
  args->fresh_error_was_empty = fastgru_last_error()[0] == '\0';
  for (round = 0; round < ROUNDS; ++round) {
    if (fastgru_model_forward_f32(args->model, T, B, 0, args->x, NULL, NULL, y, NULL) != FASTGRU_OK ||
        memcmp(y, args->expected, sizeof y) != 0)
      ++args->mismatches;
  }
  return NULL;
}

static void one_model_from_many_threads(const fastgru_model* model) {
  float x[T * B * I], expected[T * B * H];
  pthread_t threads[WORKERS];
  worker_args args[WORKERS];
  int w;
  fill(x, T * B * I, 6);
  OK(fastgru_model_forward_f32(model, T, B, 0, x, NULL, NULL, expected, NULL));
  EXPECT_ERROR(fastgru_set_num_threads(-2), FASTGRU_ERROR_INVALID_ARGUMENT, "-2");  /* leaves a message here */
  for (w = 0; w < WORKERS; ++w) {
    args[w].model = model;
    args[w].x = x;
    args[w].expected = expected;
    args[w].mismatches = 0;
    CHECK(pthread_create(&threads[w], NULL, worker, &args[w]) == 0);
  }
  for (w = 0; w < WORKERS; ++w) {
    CHECK(pthread_join(threads[w], NULL) == 0);
    CHECK(args[w].mismatches == 0);
    CHECK(args[w].fresh_error_was_empty);
  }
}

/* ------------------------------------------------------------------ whole models (predictors) */

/* One of cpp/tests/data/model_*.expected.txt (tests/model_deploy_data.py writes them): inputs,
 * lengths and what Python's Model.predict (and predict_proba) gives on them, batch first. */
typedef struct expected_outputs {
  int ids, sequence, classifier;
  int64_t rows, steps, features, outputs;
  int64_t lengths[16];
  double* inputs;       /* (N, T, F), or ids (N, T) as doubles */
  int64_t* id_inputs;   /* ids (N, T) for a token model */
  double* values;       /* (N, K) or (N, T, K) */
  double* probabilities;
} expected_outputs;

static void read_expected(const char* name, expected_outputs* e) {
  FILE* file = fopen(data_file(name), "r");
  int64_t i, inputs, outputs;
  int ok = file != NULL;
  memset(e, 0, sizeof *e);
  ok = ok && fscanf(file, "%d %lld %lld %lld %lld %d %d", &e->ids, (long long*)&e->rows, (long long*)&e->steps,
                    (long long*)&e->features, (long long*)&e->outputs, &e->sequence, &e->classifier) == 7;
  ok = ok && e->rows <= 16;
  for (i = 0; ok && i < e->rows; ++i) ok = fscanf(file, "%lld", (long long*)&e->lengths[i]) == 1;
  inputs = e->rows * e->steps * e->features;
  outputs = e->rows * (e->sequence ? e->steps : 1) * e->outputs;
  e->inputs = calloc((size_t)inputs, sizeof(double));
  e->id_inputs = calloc((size_t)inputs, sizeof(int64_t));
  e->values = calloc((size_t)outputs, sizeof(double));
  e->probabilities = calloc((size_t)outputs, sizeof(double));
  for (i = 0; ok && i < inputs; ++i) {
    ok = fscanf(file, "%lf", &e->inputs[i]) == 1;
    e->id_inputs[i] = (int64_t)e->inputs[i];
  }
  for (i = 0; ok && i < outputs; ++i) ok = fscanf(file, "%lf", &e->values[i]) == 1;
  for (i = 0; ok && e->classifier && i < outputs; ++i) ok = fscanf(file, "%lf", &e->probabilities[i]) == 1;
  if (!ok) {
    fprintf(stderr, "cannot read %s\n", data_file(name));
    exit(1);
  }
  fclose(file);
}

static void free_expected(expected_outputs* e) {
  free(e->inputs);
  free(e->id_inputs);
  free(e->values);
  free(e->probabilities);
}

/* The largest |a - b| / max(1, |b|). */
static double relative_difference(const double* a, const double* b, int64_t count) {
  double worst = 0;
  int64_t i;
  for (i = 0; i < count; ++i) worst = fmax(worst, fabs(a[i] - b[i]) / fmax(1.0, fabs(b[i])));
  return worst;
}

/* The predictor's outputs (float64, batch first) on the expected file's inputs. */
static void predict_expected(const fastgru_predictor* predictor, const expected_outputs* e, int outputs, double* out) {
  if (e->ids) {
    OK(fastgru_predictor_predict_ids_f64(predictor, e->steps, e->rows, 1, e->id_inputs, e->lengths, outputs, out));
  } else {
    OK(fastgru_predictor_predict_f64(predictor, e->steps, e->rows, 1, e->inputs, e->lengths, outputs, out));
  }
}

/* Every Model file of cpp/tests/data: info, predictions equal to Python's to 1e-6 (float64), in
 * float32 to 1e-4, time-major like batch-first, and streams equal to head sequence's outputs. */
static void predictor_matches_python(const char* model_name, const char* expected_name) {
  expected_outputs e;
  fastgru_predictor* predictor = NULL;
  fastgru_predictor* single = NULL;
  fastgru_predictor_info info;
  int64_t count, b, t, k;
  double *out, *time_major;
  float *out32, *inputs32;
  read_expected(expected_name, &e);
  count = e.rows * (e.sequence ? e.steps : 1) * e.outputs;
  out = calloc((size_t)count, sizeof(double));
  time_major = calloc((size_t)count, sizeof(double));
  out32 = calloc((size_t)count, sizeof(float));
  inputs32 = calloc((size_t)(e.rows * e.steps * e.features), sizeof(float));
  OK(fastgru_predictor_load(data_file(model_name), FASTGRU_FLOAT64, &predictor));
  OK(fastgru_predictor_get_info(predictor, &info));
  CHECK(info.outputs == e.outputs && info.head == (e.sequence ? FASTGRU_HEAD_SEQUENCE : FASTGRU_HEAD_LAST));
  CHECK(info.classifier == e.classifier && (info.vocab_size > 0) == e.ids && info.network.dtype == FASTGRU_FLOAT64);
  CHECK(info.output_scaling == !e.classifier);

  predict_expected(predictor, &e, FASTGRU_OUTPUT_VALUES, out);
  CHECK(relative_difference(out, e.values, count) < 1e-6);
  if (e.classifier) {
    predict_expected(predictor, &e, FASTGRU_OUTPUT_PROBABILITIES, out);
    CHECK(relative_difference(out, e.probabilities, count) < 1e-6);
  } else {
    EXPECT_ERROR(fastgru_predictor_predict_f64(predictor, e.steps, e.rows, 1, e.inputs, e.lengths,
                                               FASTGRU_OUTPUT_PROBABILITIES, out),
                 FASTGRU_ERROR_INVALID_ARGUMENT, "probabilities are a classifier's");
  }

  /* Time-major inputs give the same outputs, time-major for head sequence. */
  if (!e.ids) {
    double* x = calloc((size_t)(e.rows * e.steps * e.features), sizeof(double));
    for (b = 0; b < e.rows; ++b)
      for (t = 0; t < e.steps; ++t)
        for (k = 0; k < e.features; ++k)
          x[(t * e.rows + b) * e.features + k] = e.inputs[(b * e.steps + t) * e.features + k];
    OK(fastgru_predictor_predict_f64(predictor, e.steps, e.rows, 0, x, e.lengths, FASTGRU_OUTPUT_VALUES, time_major));
    free(x);
    for (b = 0; b < e.rows; ++b)
      for (t = 0; t < (e.sequence ? e.steps : 1); ++t)
        for (k = 0; k < e.outputs; ++k) {
          const int64_t row_major = ((e.sequence ? b * e.steps + t : b)) * e.outputs + k;
          const int64_t step_major = ((e.sequence ? t * e.rows + b : b)) * e.outputs + k;
          CHECK(fabs(time_major[step_major] - e.values[row_major]) <= 1e-6 * fmax(1.0, fabs(e.values[row_major])));
        }
  }

  /* float32: the same to float32's rounding. */
  OK(fastgru_predictor_load(data_file(model_name), FASTGRU_FLOAT32, &single));
  if (e.ids) {
    OK(fastgru_predictor_predict_ids_f32(single, e.steps, e.rows, 1, e.id_inputs, e.lengths, FASTGRU_OUTPUT_VALUES, out32));
  } else {
    for (k = 0; k < e.rows * e.steps * e.features; ++k) inputs32[k] = (float)e.inputs[k];
    OK(fastgru_predictor_predict_f32(single, e.steps, e.rows, 1, inputs32, e.lengths, FASTGRU_OUTPUT_VALUES, out32));
  }
  for (k = 0; k < count; ++k) CHECK(fabs(out32[k] - e.values[k]) <= 1e-4 * fmax(1.0, fabs(e.values[k])));
  EXPECT_ERROR(fastgru_predictor_predict_f32(predictor, e.steps, e.rows, 1, inputs32, e.lengths,
                                             FASTGRU_OUTPUT_VALUES, out32),
               FASTGRU_ERROR_INVALID_ARGUMENT, "expected a float32 handle");
  fastgru_predictor_free(single);

  /* Streaming, with the stream outliving its predictor: each step's outputs are head sequence's. */
  if (info.network.directions == 1) {
    fastgru_stream* stream = NULL;
    const int outputs = e.classifier ? FASTGRU_OUTPUT_PROBABILITIES : FASTGRU_OUTPUT_VALUES;
    const double* wanted = e.classifier ? e.probabilities : e.values;
    double* step_out = calloc((size_t)(e.rows * e.outputs), sizeof(double));
    double* x_t = calloc((size_t)(e.rows * e.features), sizeof(double));
    int64_t ids_t[16];
    OK(fastgru_predictor_stream_create(predictor, e.rows, outputs, &stream));
    fastgru_predictor_free(predictor);
    predictor = NULL;
    for (t = 0; t < e.steps; ++t) {
      for (b = 0; b < e.rows; ++b) {
        ids_t[b] = e.id_inputs[b * e.steps + t];
        for (k = 0; k < e.features; ++k) x_t[b * e.features + k] = e.inputs[(b * e.steps + t) * e.features + k];
      }
      if (e.ids) {
        OK(fastgru_stream_step_ids_f64(stream, ids_t, step_out));
        EXPECT_ERROR(fastgru_stream_step_f64(stream, x_t, step_out), FASTGRU_ERROR_INVALID_ARGUMENT, "token model");
      } else {
        OK(fastgru_stream_step_f64(stream, x_t, step_out));
        EXPECT_ERROR(fastgru_stream_step_ids_f64(stream, ids_t, step_out), FASTGRU_ERROR_INVALID_ARGUMENT,
                     "real inputs");
      }
      for (b = 0; b < e.rows; ++b) {
        if (!e.sequence || t >= e.lengths[b]) continue;
        CHECK(relative_difference(step_out + b * e.outputs, wanted + (b * e.steps + t) * e.outputs, e.outputs) < 1e-6);
      }
    }
    fastgru_stream_free(stream);
    free(step_out);
    free(x_t);
  }
  fastgru_predictor_free(predictor);
  free(out);
  free(time_major);
  free(out32);
  free(inputs32);
  free_expected(&e);
}

/* The bf16 and int8 Model files (tests/model_deploy_data.py): float32 only; predictions equal to
 * Python's quantized Model's to float32's rounding, streams equal to head sequence's outputs. */
static void quantized_predictor_matches_python(const char* model_name, const char* expected_name,
                                               int precision_wanted) {
  expected_outputs e;
  fastgru_predictor* predictor = (fastgru_predictor*)1;
  fastgru_predictor_info info;
  int precision = -1;
  double clip = 0;
  int64_t count, b, t, k;
  float *out, *inputs;
  read_expected(expected_name, &e);
  count = e.rows * (e.sequence ? e.steps : 1) * e.outputs;
  out = calloc((size_t)count, sizeof(float));
  inputs = calloc((size_t)(e.rows * e.steps * e.features), sizeof(float));
  for (k = 0; k < e.rows * e.steps * e.features; ++k) inputs[k] = (float)e.inputs[k];
  EXPECT_ERROR(fastgru_predictor_load(data_file(model_name), FASTGRU_FLOAT64, &predictor),
               FASTGRU_ERROR_INVALID_ARGUMENT, "model computes in float32: load it as float32");
  CHECK(predictor == NULL);
  OK(fastgru_predictor_load(data_file(model_name), FASTGRU_FLOAT32, &predictor));
  OK(fastgru_predictor_get_info(predictor, &info));
  CHECK(info.network.dtype == FASTGRU_FLOAT32 && info.outputs == e.outputs && info.classifier == e.classifier);
  OK(fastgru_predictor_get_precision(predictor, &precision));
  OK(fastgru_predictor_get_clip(predictor, &clip));
  CHECK(precision == precision_wanted && isinf(clip));
  EXPECT_ERROR(fastgru_predictor_get_clip(predictor, NULL), FASTGRU_ERROR_INVALID_ARGUMENT, "clip must not be null");
  for (k = 0; k < (e.classifier ? 2 : 1); ++k) {
    const int outputs = k ? FASTGRU_OUTPUT_PROBABILITIES : FASTGRU_OUTPUT_VALUES;
    const double* wanted = k ? e.probabilities : e.values;
    int64_t i;
    if (e.ids) {
      OK(fastgru_predictor_predict_ids_f32(predictor, e.steps, e.rows, 1, e.id_inputs, e.lengths, outputs, out));
    } else {
      OK(fastgru_predictor_predict_f32(predictor, e.steps, e.rows, 1, inputs, e.lengths, outputs, out));
    }
    for (i = 0; i < count; ++i) CHECK(fabs(out[i] - wanted[i]) <= 1e-5 * fmax(1.0, fabs(wanted[i])));
  }
  if (e.sequence) { /* the C stream, with the stream outliving its predictor */
    fastgru_stream* stream = NULL;
    const int outputs = e.classifier ? FASTGRU_OUTPUT_PROBABILITIES : FASTGRU_OUTPUT_VALUES;
    const double* wanted = e.classifier ? e.probabilities : e.values;
    float* step_out = calloc((size_t)(e.rows * e.outputs), sizeof(float));
    float* x_t = calloc((size_t)(e.rows * e.features), sizeof(float));
    int64_t ids_t[16];
    OK(fastgru_predictor_stream_create(predictor, e.rows, outputs, &stream));
    fastgru_predictor_free(predictor);
    predictor = NULL;
    for (t = 0; t < e.steps; ++t) {
      for (b = 0; b < e.rows; ++b) {
        ids_t[b] = e.id_inputs[b * e.steps + t];
        for (k = 0; k < e.features; ++k) x_t[b * e.features + k] = inputs[(b * e.steps + t) * e.features + k];
      }
      if (e.ids) {
        OK(fastgru_stream_step_ids_f32(stream, ids_t, step_out));
      } else {
        OK(fastgru_stream_step_f32(stream, x_t, step_out));
      }
      for (b = 0; b < e.rows; ++b) {
        if (t >= e.lengths[b]) continue;
        for (k = 0; k < e.outputs; ++k) {
          const double expected = wanted[(b * e.steps + t) * e.outputs + k];
          CHECK(fabs(step_out[b * e.outputs + k] - expected) <= 1e-5 * fmax(1.0, fabs(expected)));
        }
      }
    }
    fastgru_stream_free(stream);
    free(step_out);
    free(x_t);
  }
  fastgru_predictor_free(predictor);
  free(out);
  free(inputs);
  free_expected(&e);
}

static void predictor_errors_are_reported_clearly(void) {
  fastgru_predictor* predictor = (fastgru_predictor*)1;
  fastgru_model* model = (fastgru_model*)1;
  fastgru_stream* stream = NULL;
  double out[64];
  int64_t ids[6] = {0, 1, 2, 3, 4, 99};
  EXPECT_ERROR(fastgru_predictor_load(data_file("gru2_f32.safetensors"), FASTGRU_FLOAT64, &predictor),
               FASTGRU_ERROR_INVALID_ARGUMENT, "expected a fastgru.Model file, got class 'GRU'");
  CHECK(predictor == NULL);
  EXPECT_ERROR(fastgru_model_load(data_file("model_classifier.safetensors"), FASTGRU_FLOAT64, &model),
               FASTGRU_ERROR_INVALID_ARGUMENT, "fastgru_predictor_load");
  CHECK(model == NULL);
  EXPECT_ERROR(fastgru_predictor_load(data_file("model_classifier.safetensors"), 7, &predictor),
               FASTGRU_ERROR_INVALID_ARGUMENT, "dtype: expected FASTGRU_FLOAT32 (0) or FASTGRU_FLOAT64 (1), got 7");
  OK(fastgru_predictor_load(data_file("model_classifier_tokens.safetensors"), FASTGRU_FLOAT64, &predictor));
  EXPECT_ERROR(fastgru_predictor_predict_ids_f64(predictor, 3, 2, 1, ids, NULL, FASTGRU_OUTPUT_VALUES, out),
               FASTGRU_ERROR_INVALID_ARGUMENT, "ids: expected token ids in 0..10 (vocab_size=11), got 99 at position 5");
  EXPECT_ERROR(fastgru_predictor_predict_f64(predictor, 3, 2, 1, out, NULL, FASTGRU_OUTPUT_VALUES, out),
               FASTGRU_ERROR_INVALID_ARGUMENT, "this is a token model");
  EXPECT_ERROR(fastgru_predictor_predict_ids_f64(predictor, 3, 2, 1, ids, NULL, 2, out),
               FASTGRU_ERROR_INVALID_ARGUMENT, "outputs: expected FASTGRU_OUTPUT_VALUES (0)");
  EXPECT_ERROR(fastgru_predictor_predict_ids_f64(predictor, 1, 2, 1, ids, NULL, FASTGRU_OUTPUT_VALUES, NULL),
               FASTGRU_ERROR_INVALID_ARGUMENT, "out must not be null");
  EXPECT_ERROR(fastgru_predictor_predict_ids_f64(predictor, 0, 2, 1, ids, NULL, FASTGRU_OUTPUT_VALUES, out),
               FASTGRU_ERROR_INVALID_ARGUMENT, "steps >= 1");
  EXPECT_ERROR(fastgru_predictor_stream_create(predictor, 2, FASTGRU_OUTPUT_VALUES, &stream),
               FASTGRU_ERROR_INVALID_ARGUMENT, "expected a forward-in-time model for streaming");
  CHECK(stream == NULL);
  fastgru_predictor_free(predictor);
  OK(fastgru_predictor_load(data_file("model_regression.safetensors"), FASTGRU_FLOAT64, &predictor));
  EXPECT_ERROR(fastgru_predictor_stream_create(predictor, 2, FASTGRU_OUTPUT_PROBABILITIES, &stream),
               FASTGRU_ERROR_INVALID_ARGUMENT, "probabilities are a classifier's");
  fastgru_predictor_free(predictor);
  fastgru_predictor_free(NULL);
}

int main(int argc, char** argv) {
  fastgru_model* model = NULL;
  if (argc != 2) {
    fprintf(stderr, "usage: %s DATA_DIR\n", argv[0]);
    return 2;
  }
  snprintf(data_dir, sizeof data_dir, "%s", argv[1]);
  CHECK(strcmp(fastgru_version(), "") != 0);
  OK(fastgru_model_load(data_file("gru2_f32.safetensors"), FASTGRU_FLOAT32, &model));
  loads_and_reports_the_configuration(model);
  streaming_equals_whole_sequence(model);
  lengths_and_batch_first(model);
  empty_shapes(model);
  float64_bidirectional_model();
  stream_outlives_its_model();
  ligru_model();
  libru_model();
  gate_form_models();
  clipped_model();
  quantized_models();
  errors_are_reported_clearly(model);
  impossible_requests_are_invalid_arguments(model);
  one_model_from_many_threads(model);
  fastgru_model_free(model);
  predictor_matches_python("model_regression.safetensors", "model_regression.expected.txt");
  predictor_matches_python("model_regression_tokens.safetensors", "model_regression_tokens.expected.txt");
  predictor_matches_python("model_classifier.safetensors", "model_classifier.expected.txt");
  predictor_matches_python("model_classifier_tokens.safetensors", "model_classifier_tokens.expected.txt");
  quantized_predictor_matches_python("model_regression_int8.safetensors", "model_regression_int8.expected.txt",
                                     FASTGRU_PRECISION_INT8);
  quantized_predictor_matches_python("model_classifier_tokens_bf16.safetensors",
                                     "model_classifier_tokens_bf16.expected.txt", FASTGRU_PRECISION_BF16);
  predictor_errors_are_reported_clearly();
  if (failures) {
    fprintf(stderr, "%d check(s) failed\n", failures);
    return 1;
  }
  printf("capi_tests: all passed\n");
  return 0;
}
