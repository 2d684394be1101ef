"""Callbacks of :meth:`fastgru.Model.fit`, its progress bar and its history.

A callback's methods are called with the model: ``on_train_begin(model)``,
``on_epoch_end(model, epoch, logs)`` (``logs``: ``loss``, ``val_loss`` when there is validation
data, ``accuracy``/``val_accuracy`` for classification, ``learning_rate``) and
``on_train_end(model)``. Setting ``model.stop_training = True`` ends training after the epoch.
"""

from __future__ import annotations

import math
import sys
import time
from typing import Callable, Dict, List

from .._arguments import boolean

__all__ = ["Callback", "History", "EarlyStopping", "ReduceLROnPlateau", "LearningRateScheduler"]


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
