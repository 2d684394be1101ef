"""Data-parallel training cases, run under ``mpiexec -n 2`` by tests/test_distributed_training.py.

    mpiexec -n 2 python tests/mpi_training.py CASE OUT_DIR

Each rank trains on its share of the case's samples with ``communicator=MPI.COMM_WORLD`` and
writes its final weights and history to OUT_DIR/rank<r>.npz (or, for a case that must fail,
the error every rank raised). The test file imports :func:`case` to train the single-process
counterpart on all the samples.
"""

from __future__ import annotations

import json
import os
import sys

import numpy as np

import fastgru
from fastgru.training import SGD, Adam, AdamW, EarlyStopping, ReduceLROnPlateau

LOCAL_BATCH = 4


def _split(count, ranks, rank):
    """The rows of ``rank`` when each global batch of ``ranks * LOCAL_BATCH`` rows is the union
    of every rank's local batch of LOCAL_BATCH: rows are dealt out LOCAL_BATCH at a time."""
    rows = np.arange(count)
    return rows[(rows // LOCAL_BATCH) % ranks == rank]


def case(name):
    """(model factory, X, y, validation (X, y) or None, fit options) of a case, all samples."""
    rng = np.random.default_rng(7)
    if name in ("last", "uneven", "mismatch"):
        count = 20 if name != "uneven" else 17
        X = rng.standard_normal((count, 6, 3))
        y = X[:, -3:, :2].sum(axis=1) + 0.1 * rng.standard_normal((count, 2))
        validation = (rng.standard_normal((10, 6, 3)), rng.standard_normal((10, 2)))

        def model():
            return fastgru.Model(fastgru.GRU(3, 5, batch_first=True, dtype="float64", seed=1), outputs=2,
                                 optimizer=Adam(0.02), clip_grad_norm=0.5, seed=2)

        callbacks = [EarlyStopping(patience=2), ReduceLROnPlateau(patience=1, factor=0.5)]
        return model, X, y, validation, dict(epochs=6, callbacks=callbacks)
    if name == "sequence":
        lengths = rng.integers(2, 9, 16)
        X = [rng.standard_normal((n, 3)) for n in lengths]
        y = [rng.integers(0, 3, n) for n in lengths]

        def model():
            return fastgru.Model(fastgru.GRU(3, 4, dtype="float64", seed=3), outputs=3, head="sequence",
                                 loss="cross_entropy", optimizer=SGD(0.1, momentum=0.9), seed=4)

        return model, X, y, None, dict(epochs=3)
    if name == "tokens":
        X = rng.integers(0, 12, (16, 7))
        X[:, :2] = 0  # padding ids, never trained
        y = rng.integers(0, 3, 16)

        def model():
            return fastgru.Model(fastgru.GRU(4, 5, batch_first=True, dtype="float64", seed=5), outputs=3,
                                 loss="cross_entropy", optimizer=AdamW(0.05), seed=6, vocab_size=12, padding_id=0)

        return model, X, y, None, dict(epochs=3)
    raise ValueError(f"case: unknown {name!r}")


def _take(data, rows):
    return [data[i] for i in rows] if isinstance(data, list) else data[rows]


def main(name, out_dir):
    from mpi4py import MPI

    communicator = MPI.COMM_WORLD
    rank, ranks = communicator.Get_rank(), communicator.Get_size()
    make_model, X, y, validation, options = case(name)
    rows = _split(len(X), ranks, rank)
    local_validation = None
    if validation is not None:
        validation_rows = _split(len(validation[0]), ranks, rank)
        local_validation = (validation[0][validation_rows], validation[1][validation_rows])
    model = make_model()
    if rank != 0:
        # Different initial weights and a spent optimiser: rank 0's must replace them.
        model.set_weights({k: v + 1.0 for k, v in model.get_weights().items()})
        model.optimizer.learning_rate *= 3
    batch_size = LOCAL_BATCH + (rank if name == "mismatch" else 0)
    path = os.path.join(out_dir, f"rank{rank}")
    try:
        history = model.fit(_take(X, rows), _take(y, rows), batch_size=batch_size, validation_data=local_validation,
                            shuffle=False, verbose=2, communicator=communicator, **options)
    except ValueError as error:
        with open(path + ".error", "w") as file:
            file.write(str(error))
        return
    np.savez(path + ".npz", history=json.dumps(history.history), **model.get_weights())


if __name__ == "__main__":
    main(*sys.argv[1:])
