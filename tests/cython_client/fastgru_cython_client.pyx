# cython: language_level=3, boundscheck=False, wraparound=False
"""A small Cython client of fastgru's C API (`from fastgru cimport capi`): it loads a model file
and runs it, whole sequences or step by step, with the GIL released. Built by build.py against an
installed fastgru; tests/test_cython_client.py checks it against fastgru.GRU."""

import os

import numpy as np

from libc.stdint cimport int64_t

from fastgru cimport capi


cdef int check(capi.fastgru_status status) except -1:
    if status == capi.FASTGRU_OK:
        return 0
    message = capi.fastgru_last_error().decode("utf-8", "replace")
    if status == capi.FASTGRU_ERROR_INVALID_ARGUMENT:
        raise ValueError(message)
    if status == capi.FASTGRU_ERROR_OUT_OF_MEMORY:
        raise MemoryError(message)
    raise RuntimeError(message)


cdef class Model:
    """A float32 model loaded from a file saved by ``layer.save(path)``."""

    cdef capi.fastgru_model* handle
    cdef readonly int64_t input_size, hidden_size, num_layers, directions

    def __cinit__(self, path):
        cdef bytes encoded = os.fsencode(path)
        cdef const char* c_path = encoded
        cdef capi.fastgru_status status
        cdef capi.fastgru_model_info info
        with nogil:
            status = capi.fastgru_model_load(c_path, capi.FASTGRU_FLOAT32, &self.handle)
        check(status)
        check(capi.fastgru_model_get_info(self.handle, &info))
        self.input_size, self.hidden_size = info.input, info.hidden
        self.num_layers, self.directions = info.layers, info.directions

    def __dealloc__(self):
        capi.fastgru_model_free(self.handle)

    def forward(self, const float[:, :, ::1] x, const int64_t[::1] lengths=None):
        """x (T, B, I) float32 -> y (T, B, D*H); lengths optional (B,) int64."""
        cdef int64_t steps = x.shape[0], batch = x.shape[1]
        y = np.zeros((steps, batch, self.directions * self.hidden_size), np.float32)
        cdef float[:, :, ::1] y_view = y
        cdef const float* x_data = &x[0, 0, 0] if x.size else NULL
        cdef float* y_data = &y_view[0, 0, 0] if y_view.size else NULL
        cdef const int64_t* lengths_data = &lengths[0] if lengths is not None and lengths.size else NULL
        cdef capi.fastgru_status status
        with nogil:
            status = capi.fastgru_model_forward_f32(self.handle, steps, batch, 0, x_data, lengths_data,
                                                    NULL, y_data, NULL)
        check(status)
        return y

    def stream(self, const float[:, :, ::1] x):
        """Feeds x (T, B, I) one step at a time through a stream; returns the outputs (T, B, H)."""
        cdef int64_t steps = x.shape[0], batch = x.shape[1], t
        y = np.zeros((steps, batch, self.hidden_size), np.float32)
        cdef float[:, :, ::1] y_view = y
        cdef capi.fastgru_stream* stream = NULL
        cdef capi.fastgru_status status = capi.FASTGRU_OK
        check(capi.fastgru_stream_create(self.handle, batch, &stream))
        with nogil:
            t = 0
            while t < steps and status == capi.FASTGRU_OK:
                status = capi.fastgru_stream_step_f32(stream, &x[t, 0, 0], &y_view[t, 0, 0])
                t += 1
        capi.fastgru_stream_free(stream)
        check(status)
        return y


def version():
    return capi.fastgru_version().decode()
