"""Training GRU models end to end: :class:`Model` (a recurrent layer with a dense head, ``fit``
and ``predict``), losses, optimisers, gradient clipping, learning-rate schedules and callbacks."""

from .callbacks import (Callback, CSVLogger, EarlyStopping, History, LearningRateScheduler, ModelCheckpoint,
                        ReduceLROnPlateau)
from .losses import CrossEntropy, Huber, Loss, MeanAbsoluteError, MeanSquaredError
from .model import Model
from .optimizers import SGD, Adam, AdamW, Optimizer, clip_grad_norm, cosine_decay, exponential_decay, step_decay

__all__ = [
    "Model", "Loss", "MeanSquaredError", "MeanAbsoluteError", "Huber", "CrossEntropy",
    "Optimizer", "SGD", "Adam", "AdamW", "clip_grad_norm", "step_decay", "exponential_decay", "cosine_decay",
    "Callback", "History", "EarlyStopping", "ReduceLROnPlateau", "LearningRateScheduler", "ModelCheckpoint",
    "CSVLogger",
]
