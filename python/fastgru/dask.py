"""Batch scoring on Dask: :func:`predict` maps a layer or a :class:`fastgru.Model` over a
``dask.array`` of sequences or a ``dask.bag`` of variable-length ones, lazily.

Needs ``pip install "fastgru[dask]"``; ``import fastgru`` does not import this module (import
``fastgru.dask`` where it is used). The model enters the task graph once, as one task of its
own that every block depends on: the Dask scheduler sends it to each worker that needs it once,
rather than serialising it into every block's task. On a ``distributed`` worker, fastgru's
threads are capped at that worker's thread count (``nthreads``), so that 2 workers of 1 thread
on 2 cores run 2 threads, not 4; elsewhere (Dask's local schedulers) fastgru keeps its own
setting. :func:`from_npy` reads a ``.npy`` file block by block on the workers and :func:`to_npy`
writes one so, so that data larger than their memory streams through.
"""

from __future__ import annotations

import uuid

import numpy as np

try:
    import dask
    import dask.array as da
    import dask.bag as db
except ImportError as error:  # pragma: no cover - the [dask] extra installs it
    raise ImportError('fastgru.dask: needs Dask (pip install "fastgru[dask]")') from error

from ._arguments import one_of, positive_int
from .layers import LAYER_CLASSES
from .layers.base import RecurrentLayer
from .training.model import Model

__all__ = ["predict", "from_npy", "to_npy"]

_OUTPUTS = ("y", "h_n")


def _match_worker_threads():
    """Caps fastgru's threads at the thread count of the ``distributed`` worker running the
    calling task (nothing outside a worker)."""
    try:
        from distributed import get_worker
    except ImportError:
        return
    try:
        worker = get_worker()
    except ValueError:  # not on a distributed worker
        return
    threads = worker.state.nthreads
    from . import runtime

    if runtime.get_num_threads() != threads:
        runtime.set_num_threads(threads)


def _layer_outputs(layer, x, lengths, output):
    """A layer over a batch-first (B, T, F) x: y (B, T, D*H) or h_n (L*D, B, H)."""
    x_in = x if layer.batch_first else np.ascontiguousarray(x.transpose(1, 0, 2))
    y, h_n = layer.forward(x_in, train=False, lengths=lengths)
    if output == "h_n":
        return h_n
    return y if layer.batch_first else np.ascontiguousarray(y.transpose(1, 0, 2))


def _score_block(x, model, output, batch_size):
    """One (b, T, F) block's predictions, batch first (``"h_n_rows"``: h_n as (b, L*D, H))."""
    _match_worker_threads()
    if isinstance(model, Model):
        return model.predict(x, batch_size=batch_size)
    if output == "h_n_rows":
        parts = [_layer_outputs(model, x[start : start + batch_size], None, "h_n").transpose(1, 0, 2)
                 for start in range(0, len(x), batch_size)]
    else:
        parts = [_layer_outputs(model, x[start : start + batch_size], None, output)
                 for start in range(0, len(x), batch_size)]
    return np.concatenate(parts, axis=0)


def _score_partition(sequences, partition, model, output, batch_size):
    """One bag partition's predictions, one per sequence, in order; ``partition``: [its index in
    the bag], which a refused sequence's message names beside its position in the partition."""
    _match_worker_threads()
    sequences = list(sequences)
    if not sequences:
        return []
    try:
        return _score_sequences(sequences, model, output, batch_size)
    except ValueError as error:
        raise ValueError(f"{error} (in partition {partition[0]} of the bag: bag.to_delayed()[{partition[0]}])") \
            from error


def _score_sequences(sequences, model, output, batch_size):
    if isinstance(model, Model):
        predictions = model.predict(sequences, batch_size=batch_size)
        return list(predictions)
    results = []
    for start in range(0, len(sequences), batch_size):
        batch = [np.asarray(s) for s in sequences[start : start + batch_size]]
        for i, sequence in enumerate(batch):
            if sequence.ndim != 2 or sequence.shape[1] != model.input_size or len(sequence) < 1:
                raise ValueError(f"X: expected sequences of shape (steps >= 1, {model.input_size}), got "
                                 f"{sequence.shape} at position {start + i} of a partition")
        lengths = np.array([len(s) for s in batch], np.int64)
        x = np.zeros((len(batch), lengths.max(), model.input_size), model.dtype)
        for row, sequence in zip(x, batch):
            row[: len(sequence)] = sequence
        out = _layer_outputs(model, x, lengths, output)
        if output == "h_n":
            results.extend(out[:, i] for i in range(len(batch)))
        else:
            results.extend(out[i, :n] for i, n in enumerate(lengths))
    return results


def _output_shape(model, steps, output):
    """The per-sequence trailing shape of a dense block's predictions, after the batch axis
    (for h_n: the leading one, before it)."""
    if isinstance(model, Model):
        return (model.outputs,) if model.head == "last" else (steps, model.outputs)
    if output == "h_n":
        return (model.num_layers * model.num_directions, model.hidden_size)
    return (steps, model.num_directions * model.hidden_size)


def predict(model, X, output: str = "y", batch_size: int = 256):
    """Lazy predictions of ``model`` over Dask data; ``.compute()`` (or ``store``) runs them.

    Args:
        model: a :class:`fastgru.Model` (its :meth:`~fastgru.Model.predict`) or a recurrent layer
            (:class:`fastgru.GRU`, ...: its inference forward).
        X: a ``dask.array`` (N, T, F) of real numbers chunked along N only (one chunk over T and
            F: ``X.rechunk({1: -1, 2: -1})`` otherwise; the chunks along N bound the memory a
            task needs), or a ``dask.bag`` of (T_i, F) arrays of any lengths; for a token Model
            (``vocab_size``), int ids (N, T) or a bag of (T_i,) id arrays.
        output: for a layer, ``"y"`` (every step's outputs) or ``"h_n"`` (the final states);
            a Model predicts its head's outputs (leave ``"y"``).
        batch_size: sequences per forward within a block.
    Returns:
        For a dask array, a dask array in the layer's dtype: a Model's (N, K) (head ``"last"``)
        or (N, T, K) (head ``"sequence"``); a layer's y (N, T, D*H), batch first whatever the
        layer's ``batch_first``, or h_n (L*D, N, H). For a bag, a bag of one prediction per
        sequence: (K,) or (T_i, K) for a Model, (T_i, D*H) or (L*D, H) for a layer. Each
        equals what the model computes in one process, to rounding (1e-6 in float32).
    """
    if not isinstance(model, (Model, RecurrentLayer)):
        raise TypeError(f"model: expected a fastgru.Model or a fastgru layer ({', '.join(LAYER_CLASSES)}), "
                        f"got {type(model).__name__}")
    output = one_of(output, "output", _OUTPUTS)
    if isinstance(model, Model) and output != "y":
        raise ValueError(f"output: a Model predicts its head's outputs; {output!r} is for layers (model.recurrent)")
    batch_size = positive_int(batch_size, "batch_size")
    layer = model.recurrent if isinstance(model, Model) else model
    # One task holding the model, named without hashing (tokenize would pickle it).
    shared_model = dask.delayed(model, name=f"fastgru-{type(model).__name__}-{uuid.uuid4().hex}")
    if isinstance(X, db.Bag):
        partitions = db.from_sequence(range(X.npartitions), npartitions=X.npartitions)
        return X.map_partitions(_score_partition, partitions, shared_model, output, batch_size)
    if not isinstance(X, da.Array):
        raise TypeError(f"X: expected a dask.array.Array (N, T, F) or a dask.bag.Bag of (T_i, F) arrays, "
                        f"got {type(X).__name__}")
    tokens = isinstance(model, Model) and model.vocab_size is not None
    if tokens:
        if X.ndim != 2 or np.dtype(X.dtype).kind not in "iu":
            raise ValueError(f"X: expected token ids of shape (samples, steps) and an int dtype, got {X.shape} {X.dtype}")
    else:
        if X.ndim != 3 or X.shape[2] != layer.input_size:
            raise ValueError(f"X: expected shape (samples, steps, {layer.input_size}), got {X.shape}")
        if np.dtype(X.dtype).kind not in "biuf":
            raise TypeError(f"X: expected real numbers, got dtype {X.dtype}")
    if any(len(chunks) != 1 for chunks in X.chunks[1:]):
        raise ValueError(f"X: expected chunks along the samples only (one chunk over the other axes), got chunks "
                         f"{X.chunks[1:]} along them; X.rechunk({{{', '.join(f'{a}: -1' for a in range(1, X.ndim))}}}) "
                         "makes it so")
    steps = X.shape[1]
    trailing = _output_shape(model, steps, output)
    if output == "h_n":
        # Blocks of (b, L*D, H), batch first like the input's, then h_n's own (L*D, N, H) order.
        return da.map_blocks(_score_block, X, shared_model, "h_n_rows", batch_size, dtype=layer.dtype,
                             chunks=(X.chunks[0],) + tuple((size,) for size in trailing),
                             meta=np.empty((0, 0, 0), layer.dtype)).transpose(1, 0, 2)
    chunks = (X.chunks[0],) + tuple((size,) for size in trailing)
    axes = {"drop_axis": list(range(len(chunks), X.ndim))} if X.ndim > len(chunks) else \
        {"new_axis": list(range(X.ndim, len(chunks)))}
    return da.map_blocks(_score_block, X, shared_model, output, batch_size, dtype=layer.dtype, chunks=chunks,
                         meta=np.empty((0,) * len(chunks), layer.dtype), **axes)


class _NpyRows:
    """A ``.npy`` file as an array-like that reads (or writes) the rows asked for when sliced,
    on the worker, for ``dask.array.from_array`` (and ``store``); it pickles as its path, not
    its data."""

    def __init__(self, path):
        self.path = str(path)
        header = np.load(self.path, mmap_mode="r")
        self.shape, self.dtype, self.ndim = header.shape, header.dtype, header.ndim

    def __getitem__(self, index):
        return np.array(np.load(self.path, mmap_mode="r")[index])

    def __setitem__(self, index, value):
        target = np.load(self.path, mmap_mode="r+")
        target[index] = value
        target.flush()


def from_npy(path, rows_per_chunk: int):
    """A ``.npy`` file (N, T, F) as a dask array of chunks of ``rows_per_chunk`` rows, each read
    from the file by the task that needs it: unlike ``dask.array.from_array`` over a memory map,
    the graph holds the path, not the data, so a file larger than the workers' memory streams
    through :func:`predict` (into :func:`to_npy`, say)."""
    rows_per_chunk = positive_int(rows_per_chunk, "rows_per_chunk")
    rows = _NpyRows(path)
    if rows.ndim != 3:
        raise ValueError(f"path: expected a .npy array of shape (samples, steps, features), got shape {rows.shape}")
    return da.from_array(rows, chunks=(rows_per_chunk, -1, -1), name=f"fastgru-npy-{uuid.uuid4().hex}",
                         asarray=False, fancy=False)


def to_npy(array, path) -> None:
    """Computes a dask array into a ``.npy`` file at ``path``, each block written by the task
    that computed it (a path that every worker can write: one machine, or a shared file
    system), so that results larger than the workers' or this process's memory are kept."""
    if not isinstance(array, da.Array):
        raise TypeError(f"array: expected a dask.array.Array, got {type(array).__name__}")
    if any(np.isnan(size) for size in array.shape):
        raise ValueError(f"array: expected known chunk sizes, got shape {array.shape} (compute_chunk_sizes() first)")
    np.lib.format.open_memmap(str(path), mode="w+", dtype=array.dtype, shape=array.shape).flush()
    da.store(array, _NpyRows(path), lock=False)
