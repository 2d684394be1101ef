/* fastgru C API: load a model saved from Python (`layer.save(path)`, or a whole
 * `fastgru.Model`'s `model.save(path)`: see fastgru_predictor below) and run it, from C or any
 * language with a C foreign-function interface (Rust, Go, C#, Cython, ...).
 *
 * Conventions
 * - Every function that can fail returns a fastgru_status; FASTGRU_OK is 0. On failure,
 *   fastgru_last_error() gives the reason (the argument, what was expected and what came), the
 *   same message the C++ API's exception carries. No C++ exception crosses this interface.
 * - Arrays are dense and row-major, the last index fastest; the shape letters are those of
 *   fastgru/network.h: T steps, B batch rows, I inputs, H hidden units, L layers, D directions.
 * - A model computes in the precision it was loaded in (FASTGRU_FLOAT32 or FASTGRU_FLOAT64),
 *   and only the functions of that precision (`_f32` or `_f64`) accept it. A file of a bf16 or
 *   int8 layer (`layer.quantize(mode).save(path)`) loads as FASTGRU_FLOAT32 only.
 * - Handles are owned by the caller and released with their `_free` function (null is allowed).
 *   A stream keeps its model's network alive: the model handle may be freed first.
 *
 * Thread safety
 * - A loaded model is read-only: fastgru_model_forward_* and fastgru_model_get_info may run on
 *   the same model from many threads at once.
 * - A stream holds mutable state: one thread at a time per stream (distinct streams of one model
 *   may step concurrently).
 * - fastgru_set_num_threads is global: call it before the compute calls, not during them.
 * - fastgru_last_error is per thread.
 *
 * Linking: the library is C++ and uses OpenMP; with CMake, `find_package(fastgru CONFIG
 * REQUIRED)` in a project that enables both C and CXX, then link fastgru::fastgru.
 */
#ifndef FASTGRU_FASTGRU_H
#define FASTGRU_FASTGRU_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef enum fastgru_status {
  FASTGRU_OK = 0,
  /* A null pointer, a bad size or value (also one whose buffers could not exist), a model of
   * the other precision (a bf16 or int8 model file loaded as FASTGRU_FLOAT64, too), or a model
   * file that is missing, not a regular file, corrupt,
   * foreign or malformed (README.md, "The model file", lists what a loader refuses). */
  FASTGRU_ERROR_INVALID_ARGUMENT = 1,
  FASTGRU_ERROR_OUT_OF_MEMORY = 2,
  /* Anything else (a bug: please report it with the message). */
  FASTGRU_ERROR_INTERNAL = 3
} fastgru_status;

typedef enum fastgru_dtype { FASTGRU_FLOAT32 = 0, FASTGRU_FLOAT64 = 1 } fastgru_dtype;

typedef enum fastgru_cell {
  FASTGRU_CELL_GRU = 0,
  FASTGRU_CELL_MGU = 1,
  FASTGRU_CELL_LIGRU = 2,
  FASTGRU_CELL_LIBRU = 3
} fastgru_cell;

/* A loaded network (opaque). */
typedef struct fastgru_model fastgru_model;
/* The carried state of a batch of sequences fed one step at a time (opaque). */
typedef struct fastgru_stream fastgru_stream;

typedef struct fastgru_model_info {
  fastgru_dtype dtype;
  fastgru_cell cell;
  int64_t input;      /* I */
  int64_t hidden;     /* H */
  int64_t layers;     /* L */
  int64_t directions; /* D: 1, or 2 when bidirectional */
  int reset_after;    /* GRU: 1 for PyTorch's candidate (reset after the product), 0 for Cho et
                         * al.'s; MGU, LiGRU and LiBRU: 0 (the MGU's gate acts before the
                         * product, the LiGRU and LiBRU have no reset gate) */
  int bias;           /* 1 when the layers have biases */
  int gates;          /* GRU: the terms its gates r and z see (EQUATIONS.md §7): 0 the input,
                       * the state and the biases (the GRU), 1 the state and the biases, 2 the
                       * state alone, 3 the biases alone; other cells: 0 */
  int reverse;        /* 1 when a unidirectional model runs backward in time (outputs aligned
                       * with the input steps; no streaming) */
  int64_t outputs;    /* W, features of each output step: D*H, or H for a bidirectional model
                       * that merges its directions (sum, product or mean) */
} fastgru_model_info;

/* The message of the last failed call on this thread ("" if none). Valid until the next failing
 * call on this thread. */
const char* fastgru_last_error(void);

/* The library's version, e.g. "0.1.0". */
const char* fastgru_version(void);

/* The most threads a compute call uses: n >= 1, or 0 (the default) for the CPUs this process
 * may use, capped by OMP_NUM_THREADS (see fastgru::set_num_threads in fastgru/runtime.h). */
fastgru_status fastgru_set_num_threads(int n);
fastgru_status fastgru_get_num_threads(int* n);

/* Reads a model file written by Python's `layer.save(path)` (any class, layers, directions) into
 * a network computing in `dtype`, FASTGRU_FLOAT32 or FASTGRU_FLOAT64 (weights are converted if
 * the file holds the other one). `dtype` is an int so that any value a caller passes is checked
 * (a C++ enum parameter could not hold other values). On success *model is a new handle; on
 * failure it is set to null. A whole Model's file (`model.save(path)`) is refused: read it with
 * fastgru_predictor_load. */
fastgru_status fastgru_model_load(const char* path, int dtype, fastgru_model** model);
void fastgru_model_free(fastgru_model* model);
fastgru_status fastgru_model_get_info(const fastgru_model* model, fastgru_model_info* info);

/* The products' arithmetic of a model (EQUATIONS.md §9; Python's layer.quantize): full (the
 * dtype's), or a float32 model whose files hold bf16 or int8 weights. */
typedef enum fastgru_precision {
  FASTGRU_PRECISION_FULL = 0,
  FASTGRU_PRECISION_BF16 = 1,
  FASTGRU_PRECISION_INT8 = 2
} fastgru_precision;
/* Settings beside fastgru_model_info (which keeps its layout for callers built against it):
 * *precision a fastgru_precision; *clip the GRU's bound on its pre-activations (ONNX's clip,
 * EQUATIONS.md §1.1) as the network computes with it (a float32 network's is a float32), or
 * INFINITY where nothing is clipped (every other cell). fastgru_predictor_get_precision and
 * fastgru_predictor_get_clip (below) give the same of a predictor's network. */
fastgru_status fastgru_model_get_precision(const fastgru_model* model, int* precision);
fastgru_status fastgru_model_get_clip(const fastgru_model* model, double* clip);

/* Inference over whole sequences.
 *   steps, batch  T >= 0, B >= 0
 *   batch_first   0: x is (T, B, I) and y (T, B, W); 1: x is (B, T, I) and y (B, T, W), W =
 *                 fastgru_model_info.outputs (D*H unless the directions are merged)
 *   x             the input
 *   lengths       (B) real steps of each row, each in 0..T, or null for T everywhere; outputs past
 *                 a row's length are zero and its final state is the one after its last step
 *   h0            (L*D, B, H) initial states, or null for zeros
 *   y             out: the last layer's outputs, directions side by side
 *   h_n           out: (L*D, B, H) final states, or null if not wanted
 * Outputs must not overlap the inputs. */
fastgru_status fastgru_model_forward_f32(const fastgru_model* model, int64_t steps, int64_t batch,
                                         int batch_first, const float* x, const int64_t* lengths,
                                         const float* h0, float* y, float* h_n);
fastgru_status fastgru_model_forward_f64(const fastgru_model* model, int64_t steps, int64_t batch,
                                         int batch_first, const double* x, const int64_t* lengths,
                                         const double* h0, double* y, double* h_n);

/* Streaming (unidirectional models only): `batch` sequences advanced one step per call, all
 * starting from the zero state. Stepping over a sequence equals one forward call on it, to
 * rounding. */
fastgru_status fastgru_stream_create(const fastgru_model* model, int64_t batch, fastgru_stream** stream);
void fastgru_stream_free(fastgru_stream* stream);
/* Zeroes the state of the rows where rows[b] != 0 (a new sequence in that slot), or of every row
 * when `rows` is null. */
fastgru_status fastgru_stream_reset(fastgru_stream* stream, const unsigned char* rows);
/* x_t (B, I) this step's input; y_t out: (B, H) the last layer's output after it (a predictor's
 * stream: (B, K), the head's outputs; see fastgru_predictor_stream_create). */
fastgru_status fastgru_stream_step_f32(fastgru_stream* stream, const float* x_t, float* y_t);
fastgru_status fastgru_stream_step_f64(fastgru_stream* stream, const double* x_t, double* y_t);
/* Copies the carried state, (L, B, H), into `h`. */
fastgru_status fastgru_stream_get_state_f32(const fastgru_stream* stream, float* h);
fastgru_status fastgru_stream_get_state_f64(const fastgru_stream* stream, double* h);

/* ---------------------------------------------------------------------------------------------
 * Whole models: a file written by Python's `fastgru.Model(...).save(path)` (an optional embedding
 * of token ids, the recurrent network, the dense head and the optional output scaling) runs
 * through a predictor handle, a sibling of fastgru_model, whose outputs are the head's, equal to
 * Python's Model.predict / predict_proba: values in the targets' own units (the output scaling
 * applied), a classifier's logits or class probabilities. fastgru_model_load refuses such a file
 * and fastgru_predictor_load a recurrent layer's file. Its threading rules are fastgru_model's.
 * --------------------------------------------------------------------------------------------- */

/* A loaded Model (opaque). */
typedef struct fastgru_predictor fastgru_predictor;

typedef enum fastgru_head {
  FASTGRU_HEAD_LAST = 0,    /* the head reads each sequence's final state: outputs (B, K) */
  FASTGRU_HEAD_SEQUENCE = 1 /* the head reads every step: outputs (T, B, K), or (B, T, K) batch first */
} fastgru_head;

/* What a prediction gives (an int argument `outputs`). */
typedef enum fastgru_outputs {
  FASTGRU_OUTPUT_VALUES = 0,       /* the head's outputs: regression values (in the targets' units
                                    * when the model has output scaling), a classifier's logits */
  FASTGRU_OUTPUT_PROBABILITIES = 1 /* a classifier's class probabilities (softmax over K) */
} fastgru_outputs;

typedef struct fastgru_predictor_info {
  fastgru_model_info network; /* the recurrent network (input: I, the features the network sees) */
  int64_t outputs;            /* K */
  fastgru_head head;
  int classifier;             /* 1 for a cross-entropy model (outputs are logits of K classes) */
  int64_t vocab_size;         /* V: the model takes token ids in 0..V-1 (one per step); 0: it takes
                               * I real features per step */
  int64_t padding_id;         /* the embedding's padding id, or -1 */
  int output_scaling;         /* 1 when outputs are head(h) * scale + offset */
} fastgru_predictor_info;

/* Reads a Model file (any recurrent class, layers, directions, embedding, head, scaling) into a
 * predictor computing in `dtype`, as fastgru_model_load does for a network. On failure
 * *predictor is set to null. */
fastgru_status fastgru_predictor_load(const char* path, int dtype, fastgru_predictor** predictor);
void fastgru_predictor_free(fastgru_predictor* predictor);
fastgru_status fastgru_predictor_get_info(const fastgru_predictor* predictor, fastgru_predictor_info* info);
fastgru_status fastgru_predictor_get_precision(const fastgru_predictor* predictor, int* precision);
fastgru_status fastgru_predictor_get_clip(const fastgru_predictor* predictor, double* clip);

/* Predictions over whole sequences.
 *   steps, batch  T >= 1 (or 0 with B = 0), B >= 0
 *   batch_first   0: x is (T, B, I), ids (T, B); 1: x is (B, T, I), ids (B, T)
 *   x / ids       real inputs (a model without embedding), or token ids (a model with one: every
 *                 id, also past a row's length, in 0..V-1)
 *   lengths       (B) real steps of each row, each in 1..T, or null for T everywhere
 *   outputs       FASTGRU_OUTPUT_VALUES, or FASTGRU_OUTPUT_PROBABILITIES (classifiers only)
 *   out           FASTGRU_HEAD_LAST: (B, K); FASTGRU_HEAD_SEQUENCE: (T, B, K) or (B, T, K)
 *                 following batch_first, zero past each row's length */
fastgru_status fastgru_predictor_predict_f32(const fastgru_predictor* predictor, int64_t steps, int64_t batch,
                                             int batch_first, const float* x, const int64_t* lengths, int outputs,
                                             float* out);
fastgru_status fastgru_predictor_predict_f64(const fastgru_predictor* predictor, int64_t steps, int64_t batch,
                                             int batch_first, const double* x, const int64_t* lengths, int outputs,
                                             double* out);
fastgru_status fastgru_predictor_predict_ids_f32(const fastgru_predictor* predictor, int64_t steps, int64_t batch,
                                                 int batch_first, const int64_t* ids, const int64_t* lengths,
                                                 int outputs, float* out);
fastgru_status fastgru_predictor_predict_ids_f64(const fastgru_predictor* predictor, int64_t steps, int64_t batch,
                                                 int batch_first, const int64_t* ids, const int64_t* lengths,
                                                 int outputs, double* out);

/* Streaming a Model (forward-in-time networks only: not bidirectional or reverse): a fastgru_stream whose steps give the head's
 * outputs, (B, K) per step (`outputs` as above, fixed for the stream), equal to predicting with
 * FASTGRU_HEAD_SEQUENCE step by step (with FASTGRU_HEAD_LAST, each step's output is the prediction
 * for the sequence so far). fastgru_stream_step_f32/_f64 take x_t (B, I) for a model without
 * embedding; fastgru_stream_step_ids_f32/_f64 take ids (B) for one with. fastgru_stream_reset,
 * fastgru_stream_get_state_* and fastgru_stream_free work as for a network's stream; the stream
 * keeps the model alive after fastgru_predictor_free. */
fastgru_status fastgru_predictor_stream_create(const fastgru_predictor* predictor, int64_t batch, int outputs,
                                               fastgru_stream** stream);
/* ids (B) this step's token ids; out (B, K). Only for a predictor's stream of a token model. */
fastgru_status fastgru_stream_step_ids_f32(fastgru_stream* stream, const int64_t* ids, float* out);
fastgru_status fastgru_stream_step_ids_f64(fastgru_stream* stream, const int64_t* ids, double* out);

#ifdef __cplusplus
}
#endif

#endif /* FASTGRU_FASTGRU_H */
