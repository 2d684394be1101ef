"""Callbacks of :meth:`fastgru.Model.fit`, its progress bar and its history.

A callback's methods are called with the model: ``on_train_begin(model)``,
``on_epoch_end(model, epoch, logs)`` (``logs``: ``loss``, ``val_loss`` when there is validation
data, ``accuracy``/``val_accuracy`` for classification, ``learning_rate``) and
``on_train_end(model)``. Setting ``model.stop_training = True`` ends training after the epoch.
"""

from __future__ import annotations

import csv
import math
import os
import sys
import tempfile
import time
from typing import Callable, Dict, List

from .._arguments import boolean

__all__ = ["Callback", "History", "EarlyStopping", "ReduceLROnPlateau", "LearningRateScheduler", "ModelCheckpoint",
           "CSVLogger"]


class Callback:
    """Base class with every hook doing nothing."""

    def on_train_begin(self, model) -> None:
        pass

    def on_epoch_begin(self, model, epoch: int) -> None:
        pass

    def on_epoch_end(self, model, epoch: int, logs: Dict[str, float]) -> None:
        pass

    def on_train_end(self, model) -> None:
        pass


class History(Callback):
    """What :meth:`fit` returns: ``history`` maps each log name to its value per epoch."""

    def __init__(self):
        self.history: Dict[str, List[float]] = {}
        self.epochs: List[int] = []

    def on_epoch_end(self, model, epoch, logs):
        self.epochs.append(epoch)
        for key, value in logs.items():
            self.history.setdefault(key, []).append(value)

    def __repr__(self):
        last = {k: round(v[-1], 6) for k, v in self.history.items()}
        return f"History(epochs={len(self.epochs)}, last={last})"


def _monitored(logs, monitor):
    if monitor not in logs:
        raise KeyError(f"monitor: {monitor!r} is not among the logs {sorted(logs)} "
                       "(val_* needs validation_data)")
    return logs[monitor]


class EarlyStopping(Callback):
    """Stops when ``monitor`` has not improved by more than ``min_delta`` for ``patience``
    epochs in a row (Keras' rule: with patience 2, two epochs after the best); with ``restore_best_weights`` the model ends with the weights of its best epoch.
    ``mode``: ``"min"`` (losses) or ``"max"`` (accuracies); ``"auto"`` picks from the name."""

    def __init__(self, monitor: str = "val_loss", patience: int = 10, min_delta: float = 0.0,
                 mode: str = "auto", restore_best_weights: bool = True):
        if mode not in ("auto", "min", "max"):
            raise ValueError(f"mode: expected 'auto', 'min' or 'max', got {mode!r}")
        if isinstance(patience, bool) or not isinstance(patience, int) or patience < 1:
            raise ValueError(f"patience: expected an int >= 1, got {patience!r}")
        self.monitor, self.patience, self.min_delta = monitor, int(patience), abs(float(min_delta))
        self.sign = -1.0 if mode == "max" or (mode == "auto" and "acc" in monitor) else 1.0
        self.restore_best_weights = boolean(restore_best_weights, "restore_best_weights")

    def on_train_begin(self, model):
        self.best, self.best_epoch, self.best_weights, self.wait = math.inf, None, None, 0
        self.stopped_epoch = None

    def on_epoch_end(self, model, epoch, logs):
        value = self.sign * _monitored(logs, self.monitor)
        if value < self.best - self.min_delta:
            self.best, self.best_epoch, self.wait = value, epoch, 0
            if self.restore_best_weights:
                self.best_weights = model.get_weights()
        else:
            self.wait += 1
            if self.wait >= self.patience:
                self.stopped_epoch = epoch
                model.stop_training = True

    def on_train_end(self, model):
        if self.restore_best_weights and self.best_weights is not None:
            model.set_weights(self.best_weights)


class ReduceLROnPlateau(Callback):
    """Multiplies the learning rate by ``factor`` when ``monitor`` has not improved for
    ``patience`` epochs in a row (Keras' rule), down to ``min_lr``."""

    def __init__(self, monitor: str = "val_loss", factor: float = 0.5, patience: int = 5,
                 min_lr: float = 0.0, min_delta: float = 0.0):
        if not isinstance(factor, (int, float)) or not 0 < factor < 1:
            raise ValueError(f"factor: expected a number in (0, 1), got {factor!r}")
        if isinstance(patience, bool) or not isinstance(patience, int) or patience < 1:
            raise ValueError(f"patience: expected an int >= 1, got {patience!r}")
        self.monitor, self.factor, self.patience = monitor, float(factor), int(patience)
        self.min_lr, self.min_delta = float(min_lr), float(min_delta)
        self.sign = -1.0 if "acc" in monitor else 1.0

    def on_train_begin(self, model):
        self.best, self.wait = math.inf, 0

    def on_epoch_end(self, model, epoch, logs):
        value = self.sign * _monitored(logs, self.monitor)
        if value < self.best - self.min_delta:
            self.best, self.wait = value, 0
            return
        self.wait += 1
        if self.wait >= self.patience:
            optimizer = model.optimizer
            optimizer.learning_rate = max(self.min_lr, optimizer.learning_rate * self.factor)
            self.wait = 0


class LearningRateScheduler(Callback):
    """Sets the learning rate before each epoch to ``schedule(epoch, initial_rate)``, the
    initial rate being the optimiser's when ``fit`` starts (see
    :mod:`fastgru.training.optimizers` for ``step_decay``, ``exponential_decay``,
    ``cosine_decay``)."""

    def __init__(self, schedule: Callable[[int, float], float]):
        if not callable(schedule):
            raise TypeError(f"schedule: expected a callable (epoch, initial_rate) -> rate, got {schedule!r}")
        self.schedule = schedule

    def on_train_begin(self, model):
        self.initial = model.optimizer.learning_rate

    def on_epoch_begin(self, model, epoch):
        rate = self.schedule(epoch, self.initial)
        if not isinstance(rate, (int, float)) or not math.isfinite(rate) or rate <= 0:
            raise ValueError(f"schedule: expected a finite learning rate > 0 for epoch {epoch}, got {rate!r}")
        model.optimizer.learning_rate = float(rate)


def _file_path(value, name):
    """A path argument as a str (str, bytes or os.PathLike)."""
    try:
        path = os.fsdecode(os.fspath(value))
    except TypeError:
        raise TypeError(f"{name}: expected a path (str or os.PathLike), got {type(value).__name__}") from None
    if not path or path.endswith(os.sep):
        raise ValueError(f"{name}: expected the path of a file, got {path!r}")
    return path


def _writes_files(model) -> bool:
    """Whether this process writes the callbacks' files: over MPI (``fit`` with a
    communicator) rank 0 only, since every rank has the same logs and weights and would write
    the same files once per rank (a CSV log's rows N times over)."""
    return getattr(model, "_rank", None) in (None, 0)


def _unwritable(name, path, error):
    return ValueError(f"{name}: cannot write {path!r}: {error.strerror or error}")


class ModelCheckpoint(Callback):
    """Saves the model (:meth:`fastgru.Model.save`, a file :func:`fastgru.load` reads) at the
    end of each epoch, as Keras's ``ModelCheckpoint``: with ``save_best_only``, only when
    ``monitor`` is better than at every earlier save, so that the file holds the best epoch's
    model (the last epoch's otherwise). Each file is written whole to a temporary file beside it
    and renamed over it: a crash never leaves a half-written checkpoint.

    Args:
        filepath: the file; may name log fields as Keras's does, formatted with ``epoch``
            (counted from 1) and the epoch's logs, e.g. ``"model-{epoch:02d}-{val_loss:.3f}.safetensors"``.
            Missing folders are created. Its folder is checked when training begins (a
            trial save there, removed at once: an unwritable path fails before the first epoch).
        monitor: the log compared with ``save_best_only`` (``"val_loss"``, ``"loss"``,
            ``"val_accuracy"``...).
        save_best_only: save only improvements of ``monitor`` (a NaN never is one).
        mode: ``"min"``, ``"max"``, or ``"auto"``: ``"max"`` for a name with ``acc`` in it.

    Attributes: ``best`` (the best value of ``monitor`` saved, with save_best_only) and
    ``best_epoch`` (its epoch, from 0; None before any save).

    Over MPI (``fit(communicator=...)``) only rank 0 writes (every rank decides alike and keeps
    ``best`` and ``best_epoch``): give every rank the same ``filepath``; a failure to write on
    rank 0 raises on every rank.
    """

    def __init__(self, filepath, monitor: str = "val_loss", save_best_only: bool = False, mode: str = "auto"):
        self.filepath = _file_path(filepath, "filepath")
        if not isinstance(monitor, str):
            raise TypeError(f"monitor: expected the name of a log (str), got {type(monitor).__name__}")
        if mode not in ("auto", "min", "max"):
            raise ValueError(f"mode: expected 'auto', 'min' or 'max', got {mode!r}")
        self.monitor, self.save_best_only = monitor, boolean(save_best_only, "save_best_only")
        self.sign = -1.0 if mode == "max" or (mode == "auto" and "acc" in monitor) else 1.0
        self.best, self.best_epoch = None, None

    def on_train_begin(self, model):
        self.best, self.best_epoch = None, None
        folder = os.path.dirname(self.filepath) or "."
        if "{" in folder or not _writes_files(model):
            return  # a folder named by the logs is known only at the first save
        try:
            os.makedirs(folder, exist_ok=True)
            descriptor, trial = tempfile.mkstemp(dir=folder, prefix=".fastgru-checkpoint-", suffix=".tmp")
        except OSError as error:
            raise _unwritable("filepath", self.filepath, error) from error
        os.close(descriptor)
        try:
            model.save(trial)  # refuses a model that cannot be saved (a custom loss) before training
        except OSError as error:
            raise _unwritable("filepath", self.filepath, error) from error
        finally:
            os.remove(trial)

    def on_epoch_end(self, model, epoch, logs):
        if self.save_best_only:
            value = _monitored(logs, self.monitor)
            if not (self.best is None or self.sign * value < self.sign * self.best):
                return
            self.best = value
        try:
            path = self.filepath.format(epoch=epoch + 1, **logs)
        except (KeyError, IndexError, ValueError) as error:
            raise ValueError(f"filepath: {self.filepath!r} names a field that is not epoch or a log "
                             f"({sorted(logs)}), or formats it wrongly: {error}") from None
        if _writes_files(model):
            try:
                folder = os.path.dirname(path)
                if folder:
                    os.makedirs(folder, exist_ok=True)
                model.save(path)
            except OSError as error:
                raise _unwritable("filepath", path, error) from error
        self.best_epoch = epoch


class CSVLogger(Callback):
    """Writes each epoch's logs to a CSV file, as Keras's ``CSVLogger``: a header ``epoch``
    then the log names sorted (e.g. ``epoch,learning_rate,loss,val_loss``), and a row per epoch
    (the epoch counted from 0, the values as Python writes floats), written and flushed as each
    epoch ends.

    Args:
        filename: the file (created, or emptied when training begins unless ``append``).
        separator: the one character between fields.
        append: add the rows to an existing file (its header, if it has one, must be the same
            columns); its header is written only to a new or empty file.

    Over MPI (``fit(communicator=...)``) only rank 0 writes the file (the logs are global, the
    same on every rank): give every rank the same ``filename``.
    """

    def __init__(self, filename, separator: str = ",", append: bool = False):
        self.filename = _file_path(filename, "filename")
        if not isinstance(separator, str) or len(separator) != 1 or separator in '"\r\n':
            raise ValueError(f"separator: expected one character (not a quote or a line break), got {separator!r}")
        self.separator, self.append = separator, boolean(append, "append")

    def on_train_begin(self, model):
        self.writes = _writes_files(model)
        if not self.writes:
            return
        try:
            with open(self.filename, "a" if self.append else "w", newline="", encoding="utf-8"):
                pass  # created (or emptied) now: an unwritable path fails before the first epoch
            with open(self.filename, newline="", encoding="utf-8") as existing:
                self.existing_header = next(csv.reader(existing, delimiter=self.separator), None)
        except OSError as error:
            raise _unwritable("filename", self.filename, error) from error

    def on_epoch_end(self, model, epoch, logs):
        if not self.writes:
            return
        columns = ["epoch", *sorted(logs)]
        write_header = self.existing_header is None
        if not write_header and self.existing_header != columns:
            raise ValueError(f"filename: {self.filename!r} has the columns {self.existing_header}, but the logs "
                             f"give {columns}; append to a file of the same columns, or set append=False")
        try:
            with open(self.filename, "a", newline="", encoding="utf-8") as out:
                writer = csv.writer(out, delimiter=self.separator)
                if write_header:
                    writer.writerow(columns)
                writer.writerow([epoch, *(logs[name] for name in columns[1:])])
        except OSError as error:
            raise _unwritable("filename", self.filename, error) from error
        self.existing_header = columns


class ProgressBar:
    """One line per epoch on a terminal, redrawn as batches finish: the loss so far, then the
    epoch's logs. ``verbose``: 0 quiet, 1 the bar, 2 one printed line per epoch."""

    width = 24

    def __init__(self, epochs: int, batches: int, verbose: int, stream=None):
        self.epochs, self.batches, self.verbose = epochs, batches, verbose
        self.stream = stream or sys.stderr

    def start_epoch(self, epoch):
        self.epoch, self.started = epoch, time.perf_counter()

    def update(self, batch, loss):
        if self.verbose != 1:
            return
        done = int(self.width * batch / self.batches)
        bar = "=" * done + "." * (self.width - done)
        self.stream.write(f"\rEpoch {self.epoch + 1}/{self.epochs} [{bar}] {batch}/{self.batches} loss {loss:.5g}")
        self.stream.flush()

    def end_epoch(self, logs):
        if self.verbose == 0:
            return
        seconds = time.perf_counter() - self.started
        text = " ".join(f"{k} {v:.5g}" for k, v in logs.items() if k != "learning_rate")
        line = f"Epoch {self.epoch + 1}/{self.epochs} {seconds:.2f}s {text}"
        # On a terminal the bar's line is overwritten (and cleared to its end).
        self.stream.write(f"\r{line}\033[K\n" if self.verbose == 1 else f"{line}\n")
        self.stream.flush()
