"""Data-parallel training cases, run under ``mpiexec -n 2`` by tests/test_distributed_training.py.

    mpiexec -n 2 python tests/mpi_training.py CASE OUT_DIR

Each rank trains on its share of the case's samples with ``communicator=MPI.COMM_WORLD`` and
writes its final weights and history to OUT_DIR/rank<r>.npz (or, for a case that must fail,
the error it raised, "<class>: <message>", to OUT_DIR/rank<r>.error). The test file imports
:func:`case` to train the single-process counterpart on all the samples.

The cases of :data:`FAULTS` spoil one rank's inputs, or make something fail on one rank only
during training: every rank must raise (none may wait forever for the failing one).
"""

from __future__ import annotations

import json
import os
import sys

import numpy as np

import fastgru
from fastgru.training import (SGD, Adam, AdamW, Callback, CSVLogger, EarlyStopping, MeanSquaredError, ModelCheckpoint,
                              ReduceLROnPlateau)

LOCAL_BATCH = 4


def _split(count, ranks, rank):
    """The rows of ``rank`` when each global batch of ``ranks * LOCAL_BATCH`` rows is the union
    of every rank's local batch of LOCAL_BATCH: rows are dealt out LOCAL_BATCH at a time."""
    rows = np.arange(count)
    return rows[(rows // LOCAL_BATCH) % ranks == rank]


def case(name):
    """(model factory, X, y, validation (X, y) or None, fit options) of a case, all samples."""
    rng = np.random.default_rng(7)
    if name in ("last", "uneven", "mismatch", "stop_on_one_rank", "writers", *FAULTS):
        count = 20 if name != "uneven" else 17
        X = rng.standard_normal((count, 6, 3))
        y = X[:, -3:, :2].sum(axis=1) + 0.1 * rng.standard_normal((count, 2))
        validation = (rng.standard_normal((10, 6, 3)), rng.standard_normal((10, 2)))

        def model():
            return fastgru.Model(fastgru.GRU(3, 5, batch_first=True, dtype="float64", seed=1), outputs=2,
                                 optimizer=Adam(0.02), clip_grad_norm=0.5, seed=2)

        if name in FAULTS or name in ("stop_on_one_rank", "writers"):
            return model, X, y, validation, dict(epochs=3)
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
    if name == "temporal":
        # per-step weights (a list of (T_i,)) on ragged sequences
        lengths = rng.integers(2, 9, 20)
        X = [rng.standard_normal((n, 3)) for n in lengths]
        y = [rng.standard_normal((n, 2)) for n in lengths]
        weights = [rng.uniform(0, 2, n) for n in lengths]

        def model():
            return fastgru.Model(fastgru.GRU(3, 4, dtype="float64", seed=7), outputs=2, head="sequence",
                                 optimizer=Adam(0.05), seed=8)

        return model, X, y, None, dict(epochs=3, sample_weight=weights)
    if name == "tokens":
        X = rng.integers(0, 12, (16, 7))
        X[:, :2] = 0  # padding ids, never trained
        y = rng.integers(0, 3, 16)

        def model():
            return fastgru.Model(fastgru.GRU(4, 5, batch_first=True, dtype="float64", seed=5), outputs=3,
                                 loss="cross_entropy", optimizer=AdamW(0.05), seed=6, vocab_size=12, padding_id=0)

        return model, X, y, None, dict(epochs=3)
    raise ValueError(f"case: unknown {name!r}")


class _FailsAt(Callback):
    """Raises in ``hook`` at ``epoch`` (from 0), on the rank it is given to."""

    def __init__(self, hook, epoch=0):
        self.hook, self.epoch = hook, epoch

    def on_train_begin(self, model):
        if self.hook == "on_train_begin":
            raise OSError("checkpoint: cannot write '/full/disk/model.safetensors': No space left on device")

    def on_epoch_begin(self, model, epoch):
        if self.hook == "on_epoch_begin" and epoch == self.epoch:
            raise ValueError(f"schedule: expected a learning rate > 0 for epoch {epoch}, got -1")

    def on_epoch_end(self, model, epoch, logs):
        if self.hook == "on_epoch_end" and epoch == self.epoch:
            raise KeyError("monitor: 'val_auc' is not among the logs")

    def on_train_end(self, model):
        if self.hook == "on_train_end":
            raise OSError("checkpoint: cannot restore '/gone/best.safetensors': No such file or directory")


class _StopsAt(Callback):
    """Stops training at the end of ``epoch`` (from 0), on the rank it is given to."""

    def __init__(self, epoch):
        self.epoch = epoch

    def on_epoch_end(self, model, epoch, logs):
        if epoch == self.epoch:
            model.stop_training = True


class _HalvesRateAt(Callback):
    """Halves the learning rate at the end of ``epoch`` (from 0), on the rank it is given to."""

    def __init__(self, epoch):
        self.epoch = epoch

    def on_epoch_end(self, model, epoch, logs):
        if epoch == self.epoch:
            model.optimizer.learning_rate /= 2


class _LossFailsAt(MeanSquaredError):
    """Mean squared error whose ``call``-th call raises (a user's loss failing on one rank)."""

    def __init__(self, call):
        self.calls, self.call = 0, call

    def __call__(self, pred, target, weight=None, count=None):
        self.calls += 1
        if self.calls == self.call:
            raise ValueError("loss: my loss cannot take this batch")
        return super().__call__(pred, target, weight, count)

    def __repr__(self):
        return "MeanSquaredError()"  # the ranks' settings must match


class _ProgressFails:
    """A stream that cannot be written (rank 0's progress bar on a closed terminal)."""

    def write(self, text):
        raise OSError("progress: the terminal is gone")

    def flush(self):
        pass


# What each fault changes on the ranks it spoils, as {rank: {fit argument: value}} (keys named
# "X" or "y" replace this rank's share; "validation" its validation data), over the "last" case.
# The test checks that every rank raises the same error, naming the failing ranks.
def _faults(rank, X, y):
    return {
        # rank 1 keeps 1 sample: validation_split cannot cut it in two
        "small_shard": {0: {"validation_split": 0.5, "validation": None},
                        1: {"validation_split": 0.5, "validation": None, "X": X[:1], "y": y[:1]}},
        "empty_shard": {1: {"X": X[:0], "y": y[:0]}},
        "wrong_features": {1: {"X": np.concatenate([X, X[:, :, :1]], axis=2)}},
        "wrong_targets": {1: {"y": y[:-1]}},
        "negative_weight": {r: {"sample_weight": np.r_[-1.0, np.ones(len(X) - 1)] if r == 1 else np.ones(len(X))}
                            for r in (0, 1)},
        "bad_validation": {1: {"validation": (X[:, :, :2], y)}},
        # both ranks refuse, for different reasons: both are named
        "two_ranks_refuse": {0: {"X": X[:, :, :2]}, 1: {"sample_weight": np.ones(3)}},
        "callback_begin": {1: {"callbacks": [_FailsAt("on_train_begin")]}},
        "callback_epoch_begin": {1: {"callbacks": [_FailsAt("on_epoch_begin", 1)]}},
        "callback_epoch_end": {1: {"callbacks": [_FailsAt("on_epoch_end", 1)]}},
        "callback_train_end": {0: {"callbacks": [_FailsAt("on_train_end")]}},
        # rank 1 has 2 batches per epoch, then its validation batch: call 3 scores, call 4 trains
        "validation_fails": {1: {"loss": _LossFailsAt(3)}},
        "loss_fails": {1: {"loss": _LossFailsAt(4)}},
        "progress_fails": {0: {"progress": _ProgressFails()}},
        # not an error on any rank, but the ranks would train apart: refused on every rank
        "rate_on_one_rank": {1: {"callbacks": [_HalvesRateAt(0)]}},
    }


FAULTS = ("small_shard", "empty_shard", "wrong_features", "wrong_targets", "negative_weight", "bad_validation",
          "two_ranks_refuse", "callback_begin", "callback_epoch_begin", "callback_epoch_end", "callback_train_end",
          "validation_fails", "loss_fails",
          "progress_fails", "rate_on_one_rank")


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
    X, y = _take(X, rows), _take(y, rows)
    if "sample_weight" in options:
        options["sample_weight"] = _take(options["sample_weight"], rows)
    if name == "writers":  # every rank is given the same files (a shared folder)
        options["callbacks"] = [CSVLogger(os.path.join(out_dir, "log.csv")),
                                ModelCheckpoint(os.path.join(out_dir, "model-{epoch}.safetensors")),
                                ModelCheckpoint(os.path.join(out_dir, "best.safetensors"), save_best_only=True)]
    if name == "stop_on_one_rank" and rank == 1:
        options["callbacks"] = [_StopsAt(1)]  # rank 0 has no callback that stops
    if name in FAULTS:
        fault = dict(_faults(rank, X, y)[name].get(rank, {}))
        X, y = fault.pop("X", X), fault.pop("y", y)
        local_validation = fault.pop("validation", local_validation)
        if "loss" in fault:
            model.loss = fault.pop("loss")
        if "progress" in fault:
            stream = fault.pop("progress")
            original = fastgru.training.callbacks.ProgressBar.__init__

            def progress_to(self, epochs, batches, verbose, stream=stream):
                original(self, epochs, batches, verbose, stream)

            fastgru.training.callbacks.ProgressBar.__init__ = progress_to
        options.update(fault)
    try:
        history = model.fit(X, y, batch_size=batch_size, validation_data=local_validation,
                            shuffle=False, verbose=2, communicator=communicator, **options)
    except Exception as error:  # noqa: BLE001 - the test reads what each rank raised
        with open(path + ".error", "w") as file:
            message = error.args[0] if len(error.args) == 1 and isinstance(error.args[0], str) else str(error)
            file.write(f"{type(error).__name__}: {message}")  # (a KeyError's str() would quote it)
        return
    np.savez(path + ".npz", history=json.dumps(history.history), **model.get_weights())


if __name__ == "__main__":
    main(*sys.argv[1:])
