"""Loss functions: each returns the mean loss and its gradient with respect to the predictions.

A loss is called as ``loss(pred, target, weight=None, count=None) -> (value, dpred)``:
``pred`` is (N, K) (rows are samples, or samples x steps for a per-step head); ``weight`` an
optional (N,) array of row weights >= 0: 0 for a row that does not count (a padded step), else
1 or the sample's, step's or class's weight (``fit``'s ``sample_weight``, ``class_weight``); ``count``
the number of rows the value is a mean over (default: the sum of ``weight``, at least 1, or N
without weights). The value is ``sum(weight * row loss) / count`` (the row loss of the
regression losses being the mean over the K outputs): with ``count`` the number of real rows,
Keras's ``"sum_over_batch_size"`` reduction of sample-weighted, masked losses. ``dpred`` has
pred's shape.
"""

from __future__ import annotations

import numpy as np

__all__ = ["Loss", "MeanSquaredError", "MeanAbsoluteError", "Huber", "CrossEntropy", "get"]


def _count(pred, weight, count):
    """The number of rows a loss value is the mean over (see the module's docstring)."""
    if count is not None:
        return float(count)
    return pred.shape[0] if weight is None else max(float(weight.sum()), 1.0)


class Loss:
    """Base class: subclasses define :meth:`_elementwise` (regression) or override ``__call__``."""

    name = "loss"
    #: whether targets are class indices (int) rather than values shaped like the predictions
    classification = False

    def check_target(self, target, outputs):
        """Converts ``target`` to the array this loss compares with (N, outputs) predictions."""
        target = np.asarray(target)
        if target.dtype.kind not in "biuf":
            raise TypeError(f"y: expected real numbers, got dtype {target.dtype}")
        if target.ndim == 1 and outputs == 1:
            target = target[:, None]
        if target.ndim != 2 or target.shape[1] != outputs:
            raise ValueError(f"y: expected shape (samples, {outputs}) (or (samples,) for one output), got {target.shape}")
        if not np.isfinite(target).all():
            raise ValueError("y: expected finite values, got NaN or inf")
        return target

    def __call__(self, pred, target, weight=None, count=None):
        diff = pred - target
        value, grad = self._elementwise(diff)
        count = _count(pred, weight, count)
        if weight is not None:
            value = value * weight[:, None]
            grad = grad * weight[:, None]
        scale = 1.0 / (count * pred.shape[1])
        return float(value.sum() * scale), grad * scale

    def _elementwise(self, diff):
        raise NotImplementedError

    def __repr__(self):
        return f"{type(self).__name__}()"


class MeanSquaredError(Loss):
    """mean((pred - y)^2)."""

    name = "mse"

    def _elementwise(self, diff):
        return diff * diff, 2.0 * diff


class MeanAbsoluteError(Loss):
    """mean(|pred - y|); its gradient at 0 is taken as 0."""

    name = "mae"

    def _elementwise(self, diff):
        return np.abs(diff), np.sign(diff)


class Huber(Loss):
    """mean of 0.5 d^2 where |d| <= delta, delta (|d| - 0.5 delta) elsewhere (d = pred - y)."""

    name = "huber"

    def __init__(self, delta: float = 1.0):
        if isinstance(delta, bool) or not isinstance(delta, (int, float, np.floating)) or not delta > 0:
            raise ValueError(f"delta: expected a number > 0, got {delta!r}")
        self.delta = float(delta)

    def _elementwise(self, diff):
        small = np.abs(diff) <= self.delta
        value = np.where(small, 0.5 * diff * diff, self.delta * (np.abs(diff) - 0.5 * self.delta))
        return value, np.where(small, diff, self.delta * np.sign(diff))

    def __repr__(self):
        return f"Huber(delta={self.delta})"


class CrossEntropy(Loss):
    """Softmax cross-entropy from logits: mean over rows of -log softmax(pred)[y].

    Targets are class indices (N,) in 0..K-1.
    """

    name = "cross_entropy"
    classification = True

    def check_target(self, target, outputs):
        target = np.asarray(target)
        if target.ndim == 2 and target.shape[1] == 1:
            target = target[:, 0]
        if target.ndim != 1:
            raise ValueError(f"y: expected class indices of shape (samples,), got shape {target.shape}")
        if target.dtype.kind not in "iu":
            if target.dtype.kind != "f" or not np.all(target == np.round(target)):
                raise TypeError(f"y: expected integer class indices, got dtype {target.dtype}")
            target = target.astype(np.int64)
        if target.size and (target.min() < 0 or target.max() >= outputs):
            raise ValueError(f"y: expected class indices in 0..{outputs - 1}, got values in {target.min()}..{target.max()}")
        return target.astype(np.int64)

    def __call__(self, pred, target, weight=None, count=None):
        shifted = pred - pred.max(axis=1, keepdims=True)
        log_norm = np.log(np.exp(shifted).sum(axis=1))
        rows = np.arange(pred.shape[0])
        losses = log_norm - shifted[rows, target]
        grad = np.exp(shifted - log_norm[:, None])
        grad[rows, target] -= 1.0
        count = _count(pred, weight, count)
        if weight is not None:
            losses = losses * weight
            grad = grad * weight[:, None]
        return float(losses.sum() / count), grad / count


_BY_NAME = {
    "mse": MeanSquaredError, "mean_squared_error": MeanSquaredError,
    "mae": MeanAbsoluteError, "mean_absolute_error": MeanAbsoluteError,
    "huber": Huber,
    "cross_entropy": CrossEntropy, "crossentropy": CrossEntropy,
}


def get(loss) -> Loss:
    """A :class:`Loss` from an instance or one of the names ``mse``, ``mae``, ``huber``,
    ``cross_entropy``."""
    if isinstance(loss, Loss):
        return loss
    if isinstance(loss, str) and loss.lower() in _BY_NAME:
        return _BY_NAME[loss.lower()]()
    raise ValueError(f"loss: expected a fastgru Loss or one of {sorted(set(_BY_NAME))}, got {loss!r}")
