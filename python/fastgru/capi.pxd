# fastgru's C API (fastgru/fastgru.h) for Cython: `from fastgru cimport capi`, then call the
# core without Python objects and without the GIL. Build with the include directory
# fastgru.get_include() and link fastgru.get_library_dir()/libfastgru.a, the C++ runtime and
# OpenMP (see tests/cython_client/build.py). Semantics, shapes and thread safety: the header.
from libc.stdint cimport int64_t

cdef extern from "fastgru/fastgru.h" nogil:
    ctypedef enum fastgru_status:
        FASTGRU_OK
        FASTGRU_ERROR_INVALID_ARGUMENT
        FASTGRU_ERROR_OUT_OF_MEMORY
        FASTGRU_ERROR_INTERNAL

    ctypedef enum fastgru_dtype:
        FASTGRU_FLOAT32
        FASTGRU_FLOAT64

    ctypedef enum fastgru_cell:
        FASTGRU_CELL_GRU
        FASTGRU_CELL_MGU
        FASTGRU_CELL_LIGRU
        FASTGRU_CELL_LIBRU

    ctypedef enum fastgru_precision:
        FASTGRU_PRECISION_FULL
        FASTGRU_PRECISION_BF16
        FASTGRU_PRECISION_INT8

    ctypedef struct fastgru_model:
        pass

    ctypedef struct fastgru_stream:
        pass

    ctypedef struct fastgru_model_info:
        fastgru_dtype dtype
        fastgru_cell cell
        int64_t input
        int64_t hidden
        int64_t layers
        int64_t directions
        int reset_after
        int bias
        int gates
        int reverse
        int64_t outputs

    const char* fastgru_last_error()
    const char* fastgru_version()
    fastgru_status fastgru_set_num_threads(int n)
    fastgru_status fastgru_get_num_threads(int* n)

    fastgru_status fastgru_model_load(const char* path, int dtype, fastgru_model** model)
    void fastgru_model_free(fastgru_model* model)
    fastgru_status fastgru_model_get_info(const fastgru_model* model, fastgru_model_info* info)
    fastgru_status fastgru_model_get_precision(const fastgru_model* model, int* precision)
    fastgru_status fastgru_model_get_clip(const fastgru_model* model, double* clip)
    fastgru_status fastgru_model_forward_f32(const fastgru_model* model, int64_t steps, int64_t batch,
                                             int batch_first, const float* x, const int64_t* lengths,
                                             const float* h0, float* y, float* h_n)
    fastgru_status fastgru_model_forward_f64(const fastgru_model* model, int64_t steps, int64_t batch,
                                             int batch_first, const double* x, const int64_t* lengths,
                                             const double* h0, double* y, double* h_n)

    fastgru_status fastgru_stream_create(const fastgru_model* model, int64_t batch, fastgru_stream** stream)
    void fastgru_stream_free(fastgru_stream* stream)
    fastgru_status fastgru_stream_reset(fastgru_stream* stream, const unsigned char* rows)
    fastgru_status fastgru_stream_step_f32(fastgru_stream* stream, const float* x_t, float* y_t)
    fastgru_status fastgru_stream_step_f64(fastgru_stream* stream, const double* x_t, double* y_t)
    fastgru_status fastgru_stream_get_state_f32(const fastgru_stream* stream, float* h)
    fastgru_status fastgru_stream_get_state_f64(const fastgru_stream* stream, double* h)

    # Whole Models (`model.save(path)`): predictors and their streams.
    ctypedef struct fastgru_predictor:
        pass

    ctypedef enum fastgru_head:
        FASTGRU_HEAD_LAST
        FASTGRU_HEAD_SEQUENCE

    ctypedef enum fastgru_outputs:
        FASTGRU_OUTPUT_VALUES
        FASTGRU_OUTPUT_PROBABILITIES

    ctypedef struct fastgru_predictor_info:
        fastgru_model_info network
        int64_t outputs
        fastgru_head head
        int classifier
        int64_t vocab_size
        int64_t padding_id
        int output_scaling

    fastgru_status fastgru_predictor_load(const char* path, int dtype, fastgru_predictor** predictor)
    void fastgru_predictor_free(fastgru_predictor* predictor)
    fastgru_status fastgru_predictor_get_info(const fastgru_predictor* predictor, fastgru_predictor_info* info)
    fastgru_status fastgru_predictor_get_precision(const fastgru_predictor* predictor, int* precision)
    fastgru_status fastgru_predictor_get_clip(const fastgru_predictor* predictor, double* clip)
    fastgru_status fastgru_predictor_predict_f32(const fastgru_predictor* predictor, int64_t steps, int64_t batch,
                                                 int batch_first, const float* x, const int64_t* lengths,
                                                 int outputs, float* out)
    fastgru_status fastgru_predictor_predict_f64(const fastgru_predictor* predictor, int64_t steps, int64_t batch,
                                                 int batch_first, const double* x, const int64_t* lengths,
                                                 int outputs, double* out)
    fastgru_status fastgru_predictor_predict_ids_f32(const fastgru_predictor* predictor, int64_t steps,
                                                     int64_t batch, int batch_first, const int64_t* ids,
                                                     const int64_t* lengths, int outputs, float* out)
    fastgru_status fastgru_predictor_predict_ids_f64(const fastgru_predictor* predictor, int64_t steps,
                                                     int64_t batch, int batch_first, const int64_t* ids,
                                                     const int64_t* lengths, int outputs, double* out)
    fastgru_status fastgru_predictor_stream_create(const fastgru_predictor* predictor, int64_t batch, int outputs,
                                                   fastgru_stream** stream)
    fastgru_status fastgru_stream_step_ids_f32(fastgru_stream* stream, const int64_t* ids, float* out)
    fastgru_status fastgru_stream_step_ids_f64(fastgru_stream* stream, const int64_t* ids, double* out)
