"""A recurrent network with a dense head, trained end to end: :class:`Model`."""

from __future__ import annotations

import contextlib
import copy
import json
import math
import numbers
import sys
from types import SimpleNamespace
from typing import Dict, Optional, Sequence

import numpy as np

from .._arguments import boolean, positive_int, real_number
from .._version import __version__
from ..layers import LAYER_CLASSES
from ..model_file import (FORMAT_VERSION, as_number, build_layer, check_identity_statistics, check_tensors, dequantized,
                          file_config, file_dtype, layer_plan, parse_json, refusal, refused_as, stored_weights,
                          write_model_file)
from . import callbacks as callbacks_module
from . import losses as losses_module
from . import optimizers as optimizers_module

__all__ = ["Model"]

_HEADS = ("last", "sequence")
# The fields of config() that a model file keeps, and the losses it names (Huber's carries delta).
_FILE_FIELDS = {"outputs", "head", "loss", "clip_grad_norm"}
# Fields a file has only when the model has that part (older files never have them).
_OPTIONAL_FILE_FIELDS = {"embedding", "output_scaling"}
_FILE_LOSSES = ("mse", "mae", "cross_entropy")
# A model file's user metadata: at most this much JSON (its parse costs a multiple of it).
MAX_USER_METADATA_BYTES = 1_000_000


def _user_metadata(text: str, refuse) -> dict:
    """The user metadata of a model file (JSON text): a JSON object of at most
    MAX_USER_METADATA_BYTES, nested at most 64 deep."""
    size = len(text.encode("utf-8", "surrogatepass"))
    if size > MAX_USER_METADATA_BYTES:
        raise refuse(f"user_metadata: {size} bytes of JSON, more than the format's {MAX_USER_METADATA_BYTES}")
    value = parse_json(text, "user_metadata", refuse, user_data=True)
    if not isinstance(value, dict):
        raise refuse(f"user_metadata: expected a JSON object, got {type(value).__name__}")
    return value


def _as_float_array(value, name, dtype):
    array = np.asarray(value)
    if array.dtype.kind not in "biuf":
        raise TypeError(f"{name}: expected real numbers, got dtype {array.dtype}")
    array = np.asarray(array, dtype=dtype)
    if not np.isfinite(array).all():
        raise ValueError(f"{name}: expected finite values, got NaN or inf")
    return array


def _is_sequence_list(X):
    """Whether X holds its sequences one by one (a list, a tuple or a 1-D object array: lengths
    may differ) rather than as one array."""
    return isinstance(X, (list, tuple)) or (isinstance(X, np.ndarray) and X.dtype == object and X.ndim == 1)


class _Sequences:
    """Input sequences, dense (N, T, F) with optional lengths or a list of (T_i, F) arrays,
    cut into batch-first batches padded to each batch's longest sequence."""

    def __init__(self, X, features, dtype, lengths=None, name="X"):
        if _is_sequence_list(X):
            if len(X) == 0:
                raise ValueError(f"{name}: expected at least one sequence, got an empty list")
            self.items = []
            for i, seq in enumerate(X):
                seq = _as_float_array(seq, f"{name}[{i}]", dtype)
                if seq.ndim == 1 and features == 1:
                    seq = seq[:, None]
                if seq.ndim != 2 or seq.shape[1] != features or seq.shape[0] < 1:
                    raise ValueError(f"{name}[{i}]: expected shape (steps >= 1, {features}), got {seq.shape}")
                self.items.append(seq)
            self.dense = None
            self.lengths = np.array([len(s) for s in self.items], dtype=np.int64)
            if lengths is not None:
                raise ValueError("lengths: a list of sequences carries its own lengths; pass lengths=None")
        else:
            dense = _as_float_array(X, name, dtype)
            if dense.ndim == 2:
                # As in PyTorch, a 2-D array is one unbatched sequence: never guess (samples, steps).
                raise ValueError(f"{name}: a 2-D array of shape {dense.shape} is one sequence (steps, features); "
                                 f"expected a batch: shape (samples, steps, {features}) ({name}[None] for this one "
                                 f"sequence, {name}[:, :, None] for samples of one feature), or a list of (steps, "
                                 f"{features}) arrays")
            if dense.ndim != 3 or dense.shape[2] != features or 0 in dense.shape:
                raise ValueError(f"{name}: expected shape (samples, steps, {features}), or a list of (steps, "
                                 f"{features}) arrays, got shape {dense.shape}")
            self.dense, self.items = dense, None
            self.lengths = None if lengths is None else self._check_lengths(lengths, dense)

    @staticmethod
    def _check_lengths(lengths, dense):
        lengths = np.asarray(lengths)
        if lengths.dtype.kind not in "iu" or lengths.shape != (len(dense),):
            raise ValueError(f"lengths: expected {len(dense)} integers, got {lengths.dtype} {lengths.shape}")
        if lengths.min() < 1 or lengths.max() > dense.shape[1]:
            raise ValueError(f"lengths: expected values in 1..{dense.shape[1]}, got {lengths.min()}..{lengths.max()}")
        return lengths.astype(np.int64)

    def __len__(self):
        return len(self.items) if self.items is not None else len(self.dense)

    @property
    def ragged(self):
        return self.items is not None

    def split(self, at):
        """(the first ``at`` sequences, the rest): two views of the same data."""
        first, rest = copy.copy(self), copy.copy(self)
        for part, rows in ((first, slice(0, at)), (rest, slice(at, None))):
            if self.items is not None:
                part.items = self.items[rows]
            else:
                part.dense = self.dense[rows]
            part.lengths = None if self.lengths is None else self.lengths[rows]
        return first, rest

    def batch(self, rows):
        """(x (B, T_b, F), lengths (B,) or None when every row fills T_b)."""
        if self.items is None:
            x = self.dense[rows]
            if self.lengths is None:
                return x, None
            lengths = self.lengths[rows]
            steps = int(lengths.max())
            x = x[:, :steps]
        else:
            lengths = self.lengths[rows]
            steps = int(lengths.max())
            x = np.zeros((len(rows), steps, self.items[0].shape[1]), self.items[0].dtype)
            for out, row in zip(x, rows):
                out[: self.lengths[row]] = self.items[row]
        return x, (None if lengths.min() == steps else lengths)


def _as_ids(value, name, vocab_size):
    """Token ids as an int64 array, every one in 0..vocab_size-1."""
    array = np.asarray(value)
    if array.dtype.kind not in "iu":
        raise TypeError(f"{name}: expected integer token ids (an int dtype), got dtype {array.dtype}")
    array = array.astype(np.int64, copy=False)
    if array.size and (array.min() < 0 or array.max() >= vocab_size):
        raise ValueError(f"{name}: expected token ids in 0..{vocab_size - 1} (vocab_size={vocab_size}), "
                         f"got values in {array.min()}..{array.max()}")
    return array


class _TokenSequences(_Sequences):
    """Token-id sequences, dense (N, T) with optional lengths or a list of (T_i,) arrays, cut
    into batches of ids (B, T_b) padded with ``fill`` to each batch's longest sequence."""

    def __init__(self, X, vocab_size, fill, lengths=None, name="X"):
        self.fill = fill
        if _is_sequence_list(X):
            if len(X) == 0:
                raise ValueError(f"{name}: expected at least one sequence, got an empty list")
            self.items = []
            for i, seq in enumerate(X):
                seq = _as_ids(seq, f"{name}[{i}]", vocab_size)
                if seq.ndim != 1 or seq.shape[0] < 1:
                    raise ValueError(f"{name}[{i}]: expected a 1-D array of >= 1 token ids, got shape {seq.shape}")
                self.items.append(seq)
            self.dense = None
            self.lengths = np.array([len(s) for s in self.items], dtype=np.int64)
            if lengths is not None:
                raise ValueError("lengths: a list of sequences carries its own lengths; pass lengths=None")
            return
        dense = _as_ids(X, name, vocab_size)
        if dense.ndim == 1:
            raise ValueError(f"{name}: a 1-D array of shape {dense.shape} is one sequence of token ids; expected a "
                             f"batch: shape (samples, steps) ({name}[None] for this one sequence), or a list of "
                             "1-D id arrays")
        if dense.ndim != 2 or 0 in dense.shape:
            raise ValueError(f"{name}: expected token ids of shape (samples, steps), or a list of 1-D id arrays, "
                             f"got shape {dense.shape}")
        self.dense, self.items = dense, None
        self.lengths = None if lengths is None else _Sequences._check_lengths(lengths, dense)

    def batch(self, rows):
        """(ids (B, T_b) int64, lengths (B,) or None when every row fills T_b)."""
        if self.items is None:
            return super().batch(rows)
        lengths = self.lengths[rows]
        steps = int(lengths.max())
        ids = np.full((len(rows), steps), self.fill, np.int64)
        for out, row in zip(ids, rows):
            out[: self.lengths[row]] = self.items[row]
        return ids, (None if lengths.min() == steps else lengths)


def _checked_weights(array, name, dtype):
    """Weights as finite numbers >= 0 in ``dtype``."""
    array = np.asarray(array)
    if array.dtype.kind not in "biuf":
        raise TypeError(f"{name}: expected real numbers, got dtype {array.dtype}")
    array = array.astype(dtype)
    if not np.isfinite(array).all():
        raise ValueError(f"{name}: expected finite weights, got NaN or inf")
    if array.size and (array < 0).any():
        raise ValueError(f"{name}: expected weights >= 0, got {array.min()}")
    return array


def _sample_weights(value, sequences, dtype, head, name="sample_weight"):
    """Checked sample weights, finite numbers >= 0 in ``dtype``: (N,), one per sample, or, for
    head ``"sequence"``, one per step (Keras's temporal weights): (N, T) for a dense X of T
    steps, or for a list of sequences a list of N arrays (T_i,) (an (N, T) array when every
    T_i is T), returned as an (N, max T_i) array padded with zeros."""
    count = len(sequences)
    steps = sequences.lengths if sequences.ragged else np.full(count, sequences.dense.shape[1], np.int64)
    rows = _is_sequence_list(value) and any(np.ndim(row) >= 1 for row in value)  # a list of per-step arrays
    if not rows:
        array = _checked_weights(value, name, dtype)
        if array.shape == (count,):
            return array
        if array.ndim != 2:
            one_per_step = ("" if head != "sequence" else f" or ({count}, {steps[0]}) (one per step)"
                            if not sequences.ragged else f" or a list of {count} arrays (T_i,) (one per step)")
            raise ValueError(f"{name}: expected shape ({count},) (one weight per sample){one_per_step}, got shape "
                             f"{array.shape}")
        given = f"shape {array.shape}"
    else:
        given = f"a list of {len(value)} arrays"
    if head != "sequence":
        raise ValueError(f"{name}: expected shape ({count},) (one weight per sample): the model's head is {head!r}, "
                         f"one prediction per sequence (a weight per step needs head='sequence'), got {given}")
    if not rows:
        if not sequences.ragged:
            if array.shape != (count, steps[0]):
                raise ValueError(f"{name}: expected shape ({count},) (one weight per sample) or ({count}, {steps[0]}) "
                                 f"(one per step of X's {steps[0]}), got shape {array.shape}")
            return array
        if len(array) != count:
            raise ValueError(f"{name}: expected shape ({count},) (one weight per sample) or a list of {count} arrays "
                             f"(T_i,) (one per step of each sequence), got shape {array.shape}")
        value = list(array)  # each row checked against its sequence's length below
    elif len(value) != count:
        raise ValueError(f"{name}: expected {count} arrays of weights (one per sample, a weight for each of its "
                         f"steps), got {len(value)}")
    padded = np.zeros((count, int(steps.max())), dtype)
    for i, (row, length) in enumerate(zip(value, steps)):
        row = _checked_weights(row, f"{name}[{i}]", dtype)
        if row.shape != (length,):
            raise ValueError(f"{name}[{i}]: expected shape ({length},) (a weight for each of its {length} steps), "
                             f"got shape {row.shape}")
        padded[i, :length] = row
    return padded


def _validation_split_point(fraction, count):
    """Where ``validation_split`` cuts ``count`` samples: Keras's rule, the last fraction
    (floor(count * (1 - fraction)) samples train), taken before any shuffling."""
    if isinstance(fraction, bool) or not isinstance(fraction, numbers.Real):
        raise TypeError(f"validation_split: expected a number in (0, 1) (or 0 for none), got {fraction!r}")
    if not 0 < fraction < 1:
        raise ValueError(f"validation_split: expected a number in (0, 1) (or 0 for none), got {fraction!r}")
    split_at = int(math.floor(count * (1.0 - float(fraction))))
    if split_at == 0 or split_at == count:
        raise ValueError(f"validation_split: {count} samples cannot be split into a training and a validation part "
                         f"at validation_split={fraction!r} (it gives {split_at} training samples); give more samples "
                         "or another fraction")
    return split_at


class Model:
    """A recurrent network (a layer of :mod:`fastgru.layers`: :class:`fastgru.GRU`, ...) with a
    dense head, for regression and classification, trained with :meth:`fit`.

    Args:
        recurrent: the recurrent layer (its ``input_size`` is the number of features F; either
            layout: the model feeds it what it expects).
        outputs: K, the head's outputs (values for regression, classes for cross-entropy).
        head: ``"last"``: the head reads each sequence's final state (the last real step; both
            directions' final states side by side when bidirectional) and predicts (N, K);
            ``"sequence"``: it reads every step's output and predicts (N, T, K).
        loss: ``"mse"``, ``"mae"``, ``"huber"``, ``"cross_entropy"`` (logits; targets are class
            indices) or a :class:`fastgru.training.losses.Loss`.
        optimizer: ``"adam"``, ``"adamw"``, ``"sgd"`` or a
            :class:`fastgru.training.optimizers.Optimizer`.
        learning_rate: the optimiser's rate when it is given by name (default: its own).
        clip_grad_norm: if set, the global L2 norm of all gradients is clipped to it each step.
        seed: initialisation of the head (and embedding) and the shuffling of :meth:`fit`.
        vocab_size: V, for token inputs: the model then begins with an embedding table (V, F)
            (F = the recurrent layer's ``input_size``), trained with the rest, and takes integer
            token ids in 0..V-1 instead of real-valued features: X (N, T) or a list of (T_i,)
            id arrays, any int dtype. Initialised N(0, 1), as PyTorch's ``nn.Embedding``.
        padding_id: with ``vocab_size``, an id whose row is zero and never trained (no gradient,
            no optimiser step): a padding step feeds the recurrent layer zeros. It is still a
            step: to skip padded steps, give lengths or a list of sequences.

    The embedding is an option of Model rather than a layer object of its own: a Model is the
    unit that trains, saves (one file: the table is the tensor ``embedding.weight``, its size
    and padding id in the config's ``embedding`` field) and deploys, and the table's only
    consumer is the recurrent layer's first input. Each batch's embedding gradient holds only
    the rows its real steps used, and the optimiser steps only those rows (lazily: see
    :mod:`fastgru.training.optimizers`): an untouched row keeps its value and moments, and
    AdamW's weight decay reaches a row only on the steps that use it.

    Output scaling (:meth:`set_output_scaling`, regression only): the head computes in scaled
    units, and :meth:`predict` and :meth:`step` return ``head(h) * scale + offset`` per output,
    values in the series' own units, which the model file keeps so that the C and C++ loaders
    return them too. :meth:`fit` and :meth:`evaluate` then take targets in those same units and
    map them to the head's units, ``(y - offset) / scale``, where the loss is computed: the
    losses they report are in the scaled units.

    Parameters (:meth:`get_weights`): ``embedding.weight`` (V, F) for a token model,
    ``recurrent.<name>`` for each of the recurrent layer's (its own names), ``head.weight``
    (K, D*H) and ``head.bias`` (K,), and with output scaling ``output.scale`` and
    ``output.offset`` (K,) (constants: never trained), in the layer's dtype.
    """

    # Class defaults: models pickled before output scaling existed have no such attributes.
    output_scale: Optional[np.ndarray] = None
    output_offset: Optional[np.ndarray] = None
    # This process's rank while fit trains over MPI (None otherwise): the callbacks that write
    # files write on rank 0 only.
    _rank: Optional[int] = None

    def __init__(self, recurrent, outputs: int = 1, head: str = "last", loss="mse", optimizer="adam",
                 learning_rate: Optional[float] = None, clip_grad_norm: Optional[float] = None,
                 seed: Optional[int] = None, vocab_size: Optional[int] = None, padding_id: Optional[int] = None):
        for attribute in ("forward", "backward", "grads", "state_dict", "load_state_dict", "hidden_size"):
            if not hasattr(recurrent, attribute):
                raise TypeError(f"recurrent: expected a fastgru recurrent layer ({', '.join(LAYER_CLASSES)}), "
                                f"got {type(recurrent).__name__}")
        if isinstance(outputs, bool) or not isinstance(outputs, numbers.Integral) or outputs < 1:
            raise ValueError(f"outputs: expected an int >= 1, got {outputs!r}")
        if head not in _HEADS:
            raise ValueError(f"head: expected one of {_HEADS}, got {head!r}")
        if clip_grad_norm is not None and (not isinstance(clip_grad_norm, numbers.Real) or not clip_grad_norm > 0):
            raise ValueError(f"clip_grad_norm: expected a number > 0 or None, got {clip_grad_norm!r}")
        self.recurrent = recurrent
        self.outputs, self.head = int(outputs), head
        self.loss = losses_module.get(loss)
        if self.loss.classification and self.outputs < 2:
            raise ValueError(f"outputs: cross-entropy needs at least 2 classes, got {outputs}")
        if isinstance(optimizer, optimizers_module.Optimizer):
            if learning_rate is not None:
                raise ValueError("learning_rate: set it on the optimizer instance, not beside it "
                                 f"(got optimizer={optimizer!r} and learning_rate={learning_rate!r})")
            if optimizer.iterations:
                raise ValueError(f"optimizer: expected a fresh optimizer (its moments belong to one model), got one "
                                 f"that has already taken {optimizer.iterations} steps")
        self.optimizer = optimizers_module.get(optimizer, learning_rate)
        self.clip_grad_norm = None if clip_grad_norm is None else float(clip_grad_norm)
        self.seed = seed
        self._rng = np.random.default_rng(seed)
        if getattr(recurrent, "merge_mode", "concat") is None:
            raise ValueError("recurrent: merge_mode=None gives the directions apart ((N, T, 2, H) outputs), which a "
                             "dense head does not read; expected 'concat', 'sum', 'mul' or 'ave'")
        # The head reads the final states of every direction ("last") or each step's outputs.
        features = (recurrent.num_directions * recurrent.hidden_size if head == "last"
                    else getattr(recurrent, "output_size", recurrent.num_directions * recurrent.hidden_size))
        bound = 1.0 / math.sqrt(features)  # PyTorch's nn.Linear initialisation
        self.head_weight = self._rng.uniform(-bound, bound, (self.outputs, features)).astype(recurrent.dtype)
        self.head_bias = self._rng.uniform(-bound, bound, self.outputs).astype(recurrent.dtype)
        self.vocab_size, self.padding_id, self.embedding_weight = None, None, None
        if vocab_size is not None:
            self.vocab_size = positive_int(vocab_size, "vocab_size")
            if padding_id is not None:
                if isinstance(padding_id, bool) or not isinstance(padding_id, numbers.Integral):
                    raise TypeError(f"padding_id: expected an int or None, got {type(padding_id).__name__}")
                if not 0 <= padding_id < self.vocab_size:
                    raise ValueError(f"padding_id: expected an id in 0..{self.vocab_size - 1} (vocab_size="
                                     f"{self.vocab_size}), got {padding_id}")
                self.padding_id = int(padding_id)
            table = self._rng.standard_normal((self.vocab_size, recurrent.input_size)).astype(recurrent.dtype)
            if self.padding_id is not None:
                table[self.padding_id] = 0
            self.embedding_weight = table
        elif padding_id is not None:
            raise ValueError(f"padding_id: needs token inputs (vocab_size), got padding_id={padding_id!r} "
                             "with vocab_size=None")
        # (K,) each, or None: predictions are head(h) * scale + offset (see set_output_scaling).
        self.output_scale, self.output_offset = None, None
        # The distinct rows of embedding.weight that the last _gradients' embedding gradient holds.
        self._embedding_rows = None
        self.stop_training = False
        #: user data saved with the model (see :meth:`save`)
        self.metadata: dict = {}

    # ------------------------------------------------------------------ parameters
    def quantize(self, mode: str) -> "Model":
        """An inference-only copy whose recurrent layer runs in ``mode`` (``"bf16"`` or ``"int8"``,
        :meth:`fastgru.GRU.quantize`); the embedding and the head stay in float32 and this model
        is left as it is. The copy predicts, scores, steps and generates as this one does, and
        saves (its file holds the recurrent weights quantized; C and C++ load it in float32);
        :meth:`fit` refuses."""
        quantized_layer = self.recurrent.quantize(mode)
        quantized = copy.copy(self)
        quantized.__dict__.update({name: value.copy() for name, value in self.__dict__.items()
                                   if isinstance(value, np.ndarray)})
        quantized.metadata = copy.deepcopy(self.metadata)
        quantized._rng = np.random.default_rng(self.seed)
        quantized.recurrent = quantized_layer
        quantized.optimizer = copy.deepcopy(self.optimizer)
        return quantized

    def set_output_scaling(self, scale, offset=None) -> None:
        """Predictions in the targets' own units: :meth:`predict` and :meth:`step` return
        ``head(h) * scale + offset`` (see the class's docstring for :meth:`fit`).

        Args:
            scale: (K,) finite non-zero numbers (or one number for all K outputs); or a fitted
                :class:`fastgru.timeseries.Scaler` of K columns that scaled the targets (then
                ``offset`` is left out): its inverse, ``scale = 1 / scaler.scale_``, ``offset =
                -scaler.offset_ / scaler.scale_``; or None to remove the scaling.
            offset: (K,) finite numbers (or one number); default 0.
        Not for a cross-entropy model (its outputs are logits).
        """
        if self.loss.classification:
            raise ValueError(f"set_output_scaling: the outputs of a {self.loss.name} model are logits; output "
                             "scaling is for regression")
        if scale is None:
            if offset is not None:
                raise ValueError(f"offset: expected None when removing the scaling (scale=None), got {offset!r}")
            self.output_scale = self.output_offset = None
            return
        if hasattr(scale, "scale_") and hasattr(scale, "offset_"):  # a fitted fastgru.timeseries.Scaler
            if offset is not None:
                raise ValueError("offset: a Scaler gives the offset too; pass the scaler alone")
            if scale.scale_ is None:
                raise ValueError("scale: the Scaler is not fitted (call its fit first)")
            scale, offset = 1.0 / np.asarray(scale.scale_), -np.asarray(scale.offset_) / np.asarray(scale.scale_)
        dtype = self.head_weight.dtype
        values = {}
        for name, value in (("scale", scale), ("offset", 0.0 if offset is None else offset)):
            array = _as_float_array(value, name, dtype)
            if array.ndim == 0:
                array = np.full(self.outputs, array, dtype)
            if array.shape != (self.outputs,):
                raise ValueError(f"{name}: expected one number or shape ({self.outputs},) (one per output), "
                                 f"got shape {array.shape}")
            values[name] = array
        if not np.all(values["scale"] != 0):
            raise ValueError("scale: expected non-zero numbers (the targets are divided by them), got a 0")
        self.output_scale, self.output_offset = values["scale"], values["offset"]

    def _scaled(self, pred):
        """Head outputs in the targets' units."""
        return pred if self.output_scale is None else pred * self.output_scale + self.output_offset

    def get_weights(self) -> Dict[str, np.ndarray]:
        """Copies of every parameter (and the recurrent layer's buffers, if any), by name."""
        weights = {} if self.vocab_size is None else {"embedding.weight": self.embedding_weight.copy()}
        weights.update({f"recurrent.{k}": v for k, v in self.recurrent.state_dict().items()})
        weights["head.weight"] = self.head_weight.copy()
        weights["head.bias"] = self.head_bias.copy()
        if self.output_scale is not None:
            weights["output.scale"] = self.output_scale.copy()
            weights["output.offset"] = self.output_offset.copy()
        return weights

    def set_weights(self, weights) -> None:
        """Loads what :meth:`get_weights` returned (every key and shape checked)."""
        recurrent = {k[len("recurrent."):]: v for k, v in weights.items() if k.startswith("recurrent.")}
        head = {k: v for k, v in weights.items() if not k.startswith("recurrent.")}
        expected = {"head.weight", "head.bias"} | ({"embedding.weight"} if self.vocab_size is not None else set())
        scaling = {"output.scale", "output.offset"}
        if set(head) != expected and set(head) != expected | scaling:
            raise KeyError(f"set_weights: expected {', '.join(sorted(expected))} besides recurrent.* (and "
                           f"output.scale and output.offset for output scaling), got {sorted(head)}")
        weight = _as_float_array(head["head.weight"], "head.weight", self.recurrent.dtype)
        bias = _as_float_array(head["head.bias"], "head.bias", self.recurrent.dtype)
        if weight.shape != self.head_weight.shape or bias.shape != self.head_bias.shape:
            raise ValueError(f"set_weights: head expected {self.head_weight.shape} and {self.head_bias.shape}, "
                             f"got {weight.shape} and {bias.shape}")
        table = None
        if self.vocab_size is not None:
            table = _as_float_array(head["embedding.weight"], "embedding.weight", self.recurrent.dtype)
            if table.shape != self.embedding_weight.shape:
                raise ValueError(f"set_weights: embedding.weight expected {self.embedding_weight.shape}, got {table.shape}")
        if scaling <= set(head):
            # checked (and refused for a cross-entropy model) before anything changes
            previous = self.output_scale, self.output_offset
            self.set_output_scaling(head["output.scale"], head["output.offset"])
            scale, offset = self.output_scale, self.output_offset
            self.output_scale, self.output_offset = previous
        else:
            scale = offset = None
        self.recurrent.load_state_dict(recurrent)
        self.output_scale, self.output_offset = scale, offset
        self.head_weight, self.head_bias = weight.copy(), bias.copy()
        if table is not None:
            self.embedding_weight = table.copy()

    # ------------------------------------------------------------------ compute
    def _run(self, x, lengths, train):
        """Recurrent layer and head on one batch (x: (B, T, F) features, or (B, T) ids for a
        token model): (pred (rows, K), features, y, h_n)."""
        layer = self.recurrent
        if self.vocab_size is not None:
            x = self.embedding_weight[x]
        x_in = x if layer.batch_first else np.ascontiguousarray(x.transpose(1, 0, 2))
        y, h_n = layer.forward(x_in, train=train, lengths=lengths)
        if not layer.batch_first:
            y = y.transpose(1, 0, 2)
        if self.head == "last":
            directions = layer.num_directions
            features = np.concatenate(list(h_n[-directions:]), axis=1)
        else:
            features = y.reshape(-1, y.shape[2])
        pred = features @ self.head_weight.T + self.head_bias
        return pred, features, y, h_n

    def _unscaled(self, target):
        """Targets in the head's units (see set_output_scaling)."""
        if self.output_scale is None:
            return target
        return (target - self.output_offset) / self.output_scale  # target (..., K)

    def _targets(self, y, count):
        """Checked targets (in the head's units), with per-row arrays kept for ragged per-step
        targets."""
        if self.head == "last":
            target = self._unscaled(self.loss.check_target(y, self.outputs))
            if len(target) != count:
                raise ValueError(f"y: expected {count} targets (one per sequence), got {len(target)}")
            return target
        if isinstance(y, (list, tuple)):
            items = [np.asarray(t) for t in y]
        else:
            items = list(np.asarray(y))
        if len(items) != count:
            raise ValueError(f"y: expected {count} target sequences, got {len(items)}")
        return [self._unscaled(self.loss.check_target(t, self.outputs)) for t in items]

    def _batch_targets(self, targets, rows, steps, lengths):
        """Targets for a batch, and the 0/1 weight of each prediction row (None: all count)."""
        if self.head == "last":
            return targets[rows], None
        first = targets[rows[0]]
        out = np.zeros((len(rows), steps) + first.shape[1:], first.dtype)
        for i, row in enumerate(rows):
            available = min(steps, len(targets[row]))
            out[i, :available] = targets[row][:available]
        out = out.reshape((len(rows) * steps,) + first.shape[1:])
        if lengths is None:
            return out, None
        weight = (np.arange(steps)[None, :] < lengths[:, None]).reshape(-1).astype(self.head_weight.dtype)
        return out, weight

    def _check_sequence_targets(self, sequences, targets):
        """Per-step targets: one per step of each sequence (of the padded T for a dense X)."""
        if self.head != "sequence":
            return
        steps = sequences.lengths if sequences.ragged else np.full(len(sequences), sequences.dense.shape[1])
        for i, (target, length) in enumerate(zip(targets, steps)):
            if len(target) != length:
                raise ValueError(f"y[{i}]: expected a target for each of its {length} steps, got {len(target)}")

    def _class_weights(self, class_weight):
        """A (K,) table of the weight of each class from ``fit``'s ``class_weight`` (classes
        it leaves out weigh 1, as in Keras), or None."""
        if class_weight is None:
            return None
        if not isinstance(class_weight, dict):
            raise TypeError(f"class_weight: expected a dict {{class index: weight}}, got {type(class_weight).__name__}")
        if not self.loss.classification:
            raise ValueError(f"class_weight: weighs the classes of a classification loss (cross_entropy), but the "
                             f"model's loss is {self.loss!r}; weigh samples with sample_weight instead")
        table = np.ones(self.outputs, self.head_weight.dtype)
        for key, weight in class_weight.items():
            if isinstance(key, bool) or not isinstance(key, numbers.Integral) or not 0 <= key < self.outputs:
                raise ValueError(f"class_weight: expected class indices in 0..{self.outputs - 1} as keys (outputs="
                                 f"{self.outputs}), got the key {key!r}")
            if isinstance(weight, bool) or not isinstance(weight, numbers.Real) or not (math.isfinite(weight)
                                                                                      and weight >= 0):
                raise ValueError(f"class_weight: expected finite weights >= 0, got {weight!r} for class {key}")
            table[int(key)] = weight
        return table

    def _row_weights(self, sample_weights, class_table, rows, steps, target):
        """The weight of each prediction row of a batch (None: all 1): its sample's weight (on
        every step of a per-step head), its step's weight (per-step weights (N, T): the batch's
        ``steps`` first ones of each row), or the weight of its target's class."""
        if sample_weights is not None:
            weights = sample_weights[rows]
            if weights.ndim == 2:
                return np.ascontiguousarray(weights[:, :steps]).reshape(-1)
            return weights if self.head == "last" else np.repeat(weights, steps)
        if class_table is not None:
            return class_table[target]
        return None

    def _loss(self, pred, target, mask, row_weight):
        """(loss, dpred, count) of one batch: the sum of the row-weighted losses of the rows
        ``mask`` keeps (all if None) over their number, ``count``."""
        count = len(target) if mask is None else float(mask.sum())
        if row_weight is None:  # a user's Loss may predate the count argument
            loss, dpred = self.loss(pred, target, mask)
        else:
            loss, dpred = self.loss(pred, target, row_weight if mask is None else row_weight * mask, count=count)
        return loss, dpred, count

    def _gradients(self, x, lengths, target, mask, row_weight=None):
        """Loss of one batch and its gradient for every parameter, by name (a training forward,
        the head's backward, BPTT); ``mask`` and ``row_weight`` as for :meth:`_loss`. A token
        model's ``embedding.weight`` gradient holds only the rows its real steps used,
        :attr:`_embedding_rows` (sorted, distinct, without the padding id)."""
        layer = self.recurrent
        layer.zero_grad()
        pred, features, y, h_n = self._run(x, lengths, train=True)
        loss, dpred, _ = self._loss(pred, target, mask, row_weight)
        dpred = dpred.astype(self.head_weight.dtype, copy=False)
        grads = {f"recurrent.{k}": v for k, v in layer.grads.items()}
        grads["head.weight"] = dpred.T @ features
        grads["head.bias"] = dpred.sum(axis=0)
        dfeatures = dpred @ self.head_weight
        if self.head == "last":
            directions, hidden = layer.num_directions, layer.hidden_size
            dh_n = np.zeros_like(h_n)
            dh_n[-directions:] = dfeatures.reshape(len(x), directions, hidden).transpose(1, 0, 2)
            dy = np.zeros_like(y)
        else:
            dh_n, dy = None, dfeatures.reshape(y.shape)
        if not layer.batch_first:
            dy = dy.transpose(1, 0, 2)
        dx, _ = layer.backward(dy, dh_n)
        if self.vocab_size is not None:
            dx = dx if layer.batch_first else dx.transpose(1, 0, 2)
            self._embedding_rows, grads["embedding.weight"] = self._embedding_gradient(x, lengths, dx)
        return loss, grads, pred

    def _embedding_gradient(self, ids, lengths, dx):
        """(rows, gradient (len(rows), F)): dx (B, T, F) summed by the id of each real step."""
        if lengths is None:
            ids, dx = ids.reshape(-1), dx.reshape(-1, dx.shape[2])
        else:
            real = np.arange(ids.shape[1])[None, :] < lengths[:, None]
            ids, dx = ids[real], dx[real]
        if self.padding_id is not None:
            kept = ids != self.padding_id
            ids, dx = ids[kept], dx[kept]
        # Sort-based scatter: the steps grouped by id, each group summed (np.add.at is slower).
        rows, inverse = np.unique(ids, return_inverse=True)
        order = np.argsort(inverse, kind="stable")
        starts = np.concatenate([[0], np.cumsum(np.bincount(inverse, minlength=len(rows)))[:-1]])
        grad = np.add.reduceat(dx[order], starts, axis=0) if len(rows) else np.zeros((0, dx.shape[1]), dx.dtype)
        return rows, grad.astype(self.head_weight.dtype, copy=False)

    def _train_batch(self, x, lengths, target, mask, row_weight=None, data_parallel=None, where=""):
        """One optimiser step; returns the batch's loss, its counted rows and, for
        classification, its correct predictions (counted before the step: unweighted, as
        Keras's ``metrics``). A non-finite loss or
        gradient stops before any update (``where``: the epoch and batch, for its message). With
        ``data_parallel`` (a :class:`fastgru.training.distributed.DataParallel`), all three and
        the gradients are the global batch's (x is None on a rank that has run out of samples,
        or whose batch failed: its error is raised on every rank by the step's collective)."""
        layer = self.recurrent
        local = contextlib.nullcontext if data_parallel is None else data_parallel.guarded
        computed = False
        if x is not None:
            with local():
                loss, grads, pred = self._gradients(x, lengths, target, mask, row_weight)
                count = len(target) if mask is None else float(mask.sum())
                hits = 0.0
                if self.loss.classification:
                    correct = pred.argmax(axis=1) == target
                    hits = float(correct.sum() if mask is None else (correct * mask).sum())
                computed = True
        if not computed:
            loss, count, hits = 0.0, 0.0, 0.0
            grads = {f"recurrent.{k}": np.zeros_like(v) for k, v in layer.grads.items()}
            grads["head.weight"], grads["head.bias"] = np.zeros_like(self.head_weight), np.zeros_like(self.head_bias)
            if self.vocab_size is not None:
                self._embedding_rows = np.zeros(0, np.int64)
                grads["embedding.weight"] = np.zeros((0, self.embedding_weight.shape[1]), self.head_weight.dtype)
        if data_parallel is not None:
            loss, count, hits = data_parallel.average(grads, loss, count, hits, when=where)
        # Global over MPI (the same on every rank): every rank raises here together.
        norm = optimizers_module.global_norm(grads)
        if not (math.isfinite(loss) and math.isfinite(norm)):
            what = f"the loss became {loss}" if not math.isfinite(loss) else f"the gradients' norm became {norm}"
            raise FloatingPointError(f"fit: {what} (the weights are left as they were before this batch; lower "
                                     f"the learning rate, scale the targets or set clip_grad_norm) {where}".rstrip())
        if self.clip_grad_norm is not None:
            optimizers_module.scale_to_norm(grads, norm, self.clip_grad_norm)

        def update(trainable):
            params = {f"recurrent.{k}": v for k, v in trainable.items()}
            params["head.weight"], params["head.bias"] = self.head_weight, self.head_bias
            if self.vocab_size is None:
                self.optimizer.step(params, grads)
            else:  # only the rows the batch used step (see the class's docstring)
                params["embedding.weight"] = self.embedding_weight
                self.optimizer.step(params, grads, rows={"embedding.weight": self._embedding_rows})

        with local():  # a failure raises on every rank at the next collective
            layer._update_parameters(update)
        return loss, count, hits

    def fit(self, X, y, epochs: int = 10, batch_size: int = 32, validation_data=None, shuffle: bool = True,
            callbacks: Optional[Sequence] = None, verbose="auto", lengths=None,
            communicator=None, validation_split: float = 0.0, class_weight: Optional[dict] = None,
            sample_weight=None) -> callbacks_module.History:
        """Trains the model.

        Args:
            X: (N, T, F) array of real numbers, or a list (tuple, 1-D object array) of N arrays
                (T_i, F) of different lengths ((T_i,) when F = 1), batched with lengths: padded
                steps cost nothing. A 2-D array, one sequence, is refused. For a token model
                (``vocab_size``): integer ids (N, T) or a list of N (T_i,) id arrays.
            y: targets. Head ``"last"``: (N, K) or (N,) values, or (N,) class indices for
                cross-entropy. Head ``"sequence"``: (N, T, K) / (N, T) arrays or a list of
                (T_i, K) / (T_i,) arrays; padded steps do not count. Values are in the units
                :meth:`predict` returns: with output scaling, the loss sees ``(y - offset) /
                scale`` (see :meth:`set_output_scaling`).
            epochs, batch_size: passes over the data, and sequences per optimiser step.
            validation_data: ``(X_val, y_val)`` or ``(X_val, y_val, lengths_val)``, scored after
                each epoch (``val_loss``, ``val_accuracy``).
            validation_split: 0 or None (none), or a fraction in (0, 1) of the samples held out for
                validation instead of ``validation_data`` (not both): as in Keras, the last
                ones, before any shuffling (the first ``floor(N * (1 - validation_split))``
                train), with their lengths and sample weights.
            class_weight: for cross-entropy, ``{class index: weight >= 0}``: each sample's (each
                step's, for head ``"sequence"``) loss is multiplied by the weight of its target
                class (classes left out weigh 1), as in Keras. Not with ``sample_weight``.
            sample_weight: finite weights >= 0 (any real dtype; computed in the layer's),
                multiplying the losses they weigh: (N,), one per sample (on each of its steps
                for head ``"sequence"``); or, for head ``"sequence"`` only, one per step, as
                Keras's temporal weights: (N, T) for a dense X of T steps, or for a list X a
                list of N arrays (T_i,), one weight per step of each sequence. The weights of
                padded steps (past ``lengths``) are ignored: those steps do not count, as under
                a Keras mask. As in Keras, a batch's loss is ``sum(weight * loss) / rows``,
                rows being its samples (its real steps), not the sum of the weights
                (``"sum_over_batch_size"``); ``accuracy`` stays unweighted (Keras's
                ``metrics``). Class and sample weights apply to training, and sample weights to
                the part ``validation_split`` holds out; ``validation_data`` is scored
                unweighted. A (N, T) weight for head ``"last"`` (one prediction per sequence),
                another shape, or a negative or non-finite weight is refused.
            shuffle: a new order of the samples at each epoch (from the model's seed).
            callbacks: e.g. :class:`EarlyStopping`, :class:`ReduceLROnPlateau`,
                :class:`ModelCheckpoint`, :class:`CSVLogger` (or None).
            verbose: 0 quiet, 1 a progress bar, 2 one line per epoch; ``"auto"``: the bar on a
                terminal, quiet otherwise.
            lengths: (N,) real steps of each row of a dense X (optional).
            communicator: an ``mpi4py`` communicator (``MPI.COMM_WORLD``) for data-parallel
                training (needs ``pip install "fastgru[mpi]"``): every rank calls ``fit`` with its
                own samples (X, y, validation_data) and the same settings; rank 0's weights and
                optimiser state are given to all, and each step applies the mean gradient over
                the global batch, the union of every rank's local batch of ``batch_size``
                (README.md, "Scaling out"). Losses, accuracies, clipping, callbacks' decisions
                are global, identical on every rank; only rank 0 shows progress. Ranks with
                fewer batches take part in an epoch's last steps with none. ``shuffle`` orders
                each rank's own samples (from its model's seed). No rank raises alone: an
                input refused on any rank (a shard too small for ``validation_split``, empty, of
                a wrong shape, a bad weight...) or a failure on one rank during training (a
                callback, a custom loss) raises the same error on every rank, naming the failing
                ranks (``"validation_split: on rank 1 (of 2): ..."``), and training stops on
                every rank when any rank's callbacks set ``stop_training``. ``ModelCheckpoint``
                and ``CSVLogger`` write from rank 0 only.
        Returns:
            the :class:`History` of the epochs' logs (``loss``, ``val_loss``, ``accuracy``...;
            ``loss`` and ``accuracy`` are the means over the epoch's batches, each taken before
            its optimiser step, as in Keras).
        """
        data_parallel = None
        if communicator is not None:
            from .distributed import DataParallel  # mpi4py only when asked for

            data_parallel = DataParallel(communicator, self)
        # Over MPI no rank raises alone between collectives (the others would wait for it in the
        # next one forever): each rank-local part runs guarded, its error kept for the next
        # collective, which raises it on every rank (see fastgru.training.distributed).
        local = contextlib.nullcontext if data_parallel is None else data_parallel.guarded
        plan = None
        with local():
            plan = self._fit_inputs(X, y, epochs, batch_size, validation_data, shuffle, callbacks, verbose, lengths,
                                    validation_split, class_weight, sample_weight)
        local_batches = None if plan is None else math.ceil(len(plan.sequences) / batch_size)
        batches = local_batches
        verbose = None if plan is None else plan.verbose
        if data_parallel is not None:
            settings = None if plan is None else {
                "epochs": epochs, "batch_size": batch_size, "validation_data": plan.validation is not None,
                "class_weight": None if plan.class_table is None else plan.class_table.tolist(),
                "sample_weight": plan.sample_weights is not None}
            batches = data_parallel.start(settings, local_batches)  # raises on every rank if any was refused
            if not data_parallel.is_root:
                verbose = 0
        sequences, targets, class_table = plan.sequences, plan.targets, plan.class_table
        sample_weights, validation, count = plan.sample_weights, plan.validation, len(plan.sequences)
        shuffle = plan.shuffle
        history = callbacks_module.History()
        all_callbacks = [history, *plan.callbacks]

        def agree(when, stop=False):
            """Over MPI, raises on every rank what any rank's guarded part raised; returns
            whether any rank's callbacks stopped training."""
            return stop if data_parallel is None else data_parallel.agree(stop, when)

        self._rank = None if data_parallel is None else data_parallel.rank
        try:
            progress = callbacks_module.ProgressBar(epochs, batches, verbose)
            self.stop_training = False
            with local():
                for callback in all_callbacks:
                    callback.on_train_begin(self)
            agree("in the callbacks' on_train_begin")
            for epoch in range(epochs):
                with local():
                    for callback in all_callbacks:
                        callback.on_epoch_begin(self, epoch)
                    progress.start_epoch(epoch)
                agree(f"in the callbacks' on_epoch_begin of epoch {epoch + 1}")
                order = self._rng.permutation(count) if shuffle else np.arange(count)
                total, correct, weight_sum = 0.0, 0.0, 0.0
                for b in range(batches):
                    x = batch_lengths = target = mask = row_weight = None
                    if b < local_batches:
                        with local():
                            rows = order[b * batch_size : (b + 1) * batch_size]
                            x, batch_lengths = sequences.batch(rows)
                            target, mask = self._batch_targets(targets, rows, x.shape[1], batch_lengths)
                            row_weight = self._row_weights(sample_weights, class_table, rows, x.shape[1], target)
                        if data_parallel is not None and data_parallel.error is not None:
                            x = None  # this step's collective raises the error on every rank
                    loss, rows_counted, hits = self._train_batch(x, batch_lengths, target, mask, row_weight,
                                                                 data_parallel, f"at epoch {epoch + 1}, batch {b + 1}")
                    total += loss * rows_counted
                    correct += hits
                    weight_sum += rows_counted
                    with local():
                        progress.update(b + 1, total / weight_sum)
                # Like Keras: the epoch's running means over its batches, each before its step.
                logs = {"loss": total / weight_sum}
                if self.loss.classification:
                    logs["accuracy"] = correct / weight_sum
                if validation is not None:
                    validation_sequences, validation_targets, validation_weights = validation
                    scores = self._score(validation_sequences, validation_targets, batch_size, data_parallel,
                                         validation_weights, f"while scoring the validation data of epoch {epoch + 1}")
                    logs.update({f"val_{k}": v for k, v in scores.items()})
                logs["learning_rate"] = self.optimizer.learning_rate
                with local():
                    progress.end_epoch(logs)
                    for callback in all_callbacks:
                        callback.on_epoch_end(self, epoch, logs)
                # Every rank stops when any rank's callbacks ask (they see the same global logs, but
                # a callback of the user's may decide on more than them).
                self.stop_training = agree(f"at the end of epoch {epoch + 1}", self.stop_training)
                if self.stop_training:
                    break
            with local():
                for callback in all_callbacks:
                    callback.on_train_end(self)
            # A failure there raises on every rank, as everywhere else in fit: code the ranks run
            # after fit (their own collectives) would otherwise wait for the rank that raised.
            agree("in the callbacks' on_train_end")
            return history
        finally:
            self.__dict__.pop("_rank", None)

    def _fit_inputs(self, X, y, epochs, batch_size, validation_data, shuffle, callbacks, verbose, lengths,
                    validation_split, class_weight, sample_weight):
        """Checks ``fit``'s arguments (this rank's, over MPI) before any training; returns what
        the epochs need: verbose, shuffle, sequences, targets, class_table, sample_weights, validation
        ((sequences, targets, weights) or None) and callbacks."""
        precision = getattr(self.recurrent, "precision", "full")
        if precision != "full":
            raise ValueError(f"fit: this model's recurrent layer runs in {precision}, for inference only; fit the "
                             "float32 model it was quantized from, then quantize it again")
        for name, value in (("epochs", epochs), ("batch_size", batch_size)):
            if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
                raise ValueError(f"{name}: expected an int >= 1, got {value!r}")
        if verbose == "auto":
            verbose = 1 if sys.stderr.isatty() else 0
        if verbose not in (0, 1, 2):
            raise ValueError(f"verbose: expected 0, 1, 2 or 'auto', got {verbose!r}")
        shuffle = boolean(shuffle, "shuffle")
        sequences = self._sequences(X, lengths)
        targets = self._targets(y, len(sequences))
        self._check_sequence_targets(sequences, targets)
        class_table = self._class_weights(class_weight)
        sample_weights = None
        if sample_weight is not None:
            if class_table is not None:
                raise ValueError("class_weight, sample_weight: expected one of them, got both (as Keras; multiply the "
                                 "class weights into sample_weight to combine them)")
            sample_weights = _sample_weights(sample_weight, sequences, self.head_weight.dtype, self.head)
        validation = None
        if validation_split is not None and validation_split != 0:
            if validation_data is not None:
                raise ValueError("validation_split, validation_data: expected one of them, got both")
            split_at = _validation_split_point(validation_split, len(sequences))
            sequences, validation_sequences = sequences.split(split_at)
            targets, validation_targets = targets[:split_at], targets[split_at:]
            validation_weights = None
            if sample_weights is not None:
                sample_weights, validation_weights = sample_weights[:split_at], sample_weights[split_at:]
            validation = (validation_sequences, validation_targets, validation_weights)
        elif validation_data is not None:
            if not isinstance(validation_data, (tuple, list)) or len(validation_data) not in (2, 3):
                raise ValueError("validation_data: expected (X_val, y_val) or (X_val, y_val, lengths_val)")
            # checked now, not after the first epoch
            validation_sequences = self._sequences(validation_data[0], validation_data[2] if len(validation_data) == 3
                                                   else None, "validation_data[0]")
            validation_targets = self._targets(validation_data[1], len(validation_sequences))
            self._check_sequence_targets(validation_sequences, validation_targets)
            validation = (validation_sequences, validation_targets, None)
        callbacks = [] if callbacks is None else list(callbacks)
        for callback in callbacks:
            if not isinstance(callback, callbacks_module.Callback):
                raise TypeError(f"callbacks: expected fastgru Callback objects, got {type(callback).__name__}")
        return SimpleNamespace(verbose=verbose, shuffle=shuffle, sequences=sequences, targets=targets, class_table=class_table,
                               sample_weights=sample_weights, validation=validation, callbacks=callbacks)

    def _sequences(self, X, lengths, name="X"):
        if self.vocab_size is not None:
            fill = 0 if self.padding_id is None else self.padding_id
            return _TokenSequences(X, self.vocab_size, fill, lengths, name)
        return _Sequences(X, self.recurrent.input_size, self.recurrent.dtype, lengths, name)

    def _predict_batches(self, sequences, batch_size):
        if isinstance(batch_size, bool) or not isinstance(batch_size, numbers.Integral) or batch_size < 1:
            raise ValueError(f"batch_size: expected an int >= 1, got {batch_size!r}")
        for start in range(0, len(sequences), batch_size):
            rows = np.arange(start, min(start + batch_size, len(sequences)))
            if len(rows) > 1:
                x, lengths = sequences.batch(rows)
                pred = self._run(x, lengths, train=False)[0]
            else:
                # A lone row would run the core's one-row kernels, which sum in another order
                # than row tiles do: run it twice over, so that its prediction equals, bit for
                # bit, what it gets in a batch.
                x, lengths = sequences.batch(np.repeat(rows, 2))
                pred = self._run(x, lengths, train=False)[0]
                pred = pred.reshape(2, -1)[0].reshape((pred.shape[0] // 2,) + pred.shape[1:])
                lengths = None if lengths is None else lengths[:1]
            yield rows, x.shape[1], lengths, pred

    def predict(self, X, batch_size: int = 256, lengths=None):
        """The head's outputs (logits for cross-entropy) in inference mode, in the recurrent
        layer's dtype.

        Args:
            X: as for :meth:`fit`: an (N, T, F) array with optional ``lengths`` (N,), or a list
                of N arrays (T_i, F); or, as in PyTorch, one unbatched sequence: a 2-D array
                (T, F) (not (N, T): give N sequences of one feature as (N, T, 1)).
            batch_size: sequences per forward.
        Returns:
            (N, K) for head ``"last"``; for ``"sequence"`` (N, T, K) for a dense X (zero past
            each row's length) or a list of (T_i, K) arrays for a list X. For one (T, F)
            sequence, its one prediction: (K,) for ``"last"``, (T, K) for ``"sequence"``.
            For a token model: ids (N, T), a list of (T_i,) id arrays, or one sequence (T,).
        """
        one_sequence_ndim = 2 if self.vocab_size is None else 1
        if not _is_sequence_list(X) and np.ndim(X) == one_sequence_ndim:
            if lengths is not None:
                raise ValueError(f"lengths: X of shape {np.shape(X)} is one unbatched sequence, all of whose steps "
                                 "are real; pass lengths=None (and only its real steps)")
            return self.predict([X], batch_size)[0]
        sequences = self._sequences(X, lengths)
        outputs = []
        for rows, steps, _, pred in self._predict_batches(sequences, batch_size):
            pred = self._scaled(pred)
            if self.head == "last":
                outputs.append(pred)
            else:
                pred = pred.reshape(len(rows), steps, self.outputs)
                if sequences.ragged:
                    outputs.extend(p[: sequences.lengths[r]] for p, r in zip(pred, rows))
                else:
                    if steps < sequences.dense.shape[1]:
                        pred = np.concatenate([pred, np.zeros((len(rows), sequences.dense.shape[1] - steps, self.outputs), pred.dtype)], axis=1)
                    if sequences.lengths is not None:
                        pred[np.arange(pred.shape[1])[None, :] >= sequences.lengths[rows][:, None]] = 0
                    outputs.append(pred)
        if self.head == "sequence" and sequences.ragged:
            return outputs
        return np.concatenate(outputs, axis=0)

    def predict_proba(self, X, batch_size: int = 256, lengths=None):
        """Class probabilities (softmax of the logits) shaped as :meth:`predict`'s outputs; for
        a cross-entropy model. With head ``"sequence"``, a dense X and ``lengths``, zero past
        each row's length (as :meth:`predict`)."""
        if not self.loss.classification:
            raise ValueError(f"predict_proba: the model's loss {self.loss!r} is not a classification loss")
        logits = self.predict(X, batch_size, lengths)
        if isinstance(logits, list):
            return [_softmax(l) for l in logits]
        probabilities = _softmax(logits)
        if self.head == "sequence" and lengths is not None:
            probabilities[np.arange(probabilities.shape[1])[None, :] >= np.asarray(lengths)[:, None]] = 0
        return probabilities

    # ------------------------------------------------------------------ streaming and generation
    def _step_inputs(self, x_t, name):
        """x_t as the recurrent layer's step input: (B, F) or (F,) features, or embedded ids."""
        if self.vocab_size is None:
            return x_t
        ids = _as_ids(x_t, name, self.vocab_size)
        if ids.ndim > 1:
            raise ValueError(f"{name}: expected token ids of shape (B,) (one per stream), or one id, got shape {ids.shape}")
        return self.embedding_weight[ids]

    def step(self, x_t, state=None, reset=None):
        """Advances B independent streams by one step: the recurrent layer's
        :meth:`~fastgru.GRU.step`, then the head (streaming inference; not for a
        bidirectional layer).

        Args:
            x_t: (B, F) features of this step, or (F,) for one stream; for a token model, (B,)
                integer ids, or one id.
            state: (num_layers, B, H) from the previous step ((num_layers, H) for one stream),
                or None for zeros.
            reset: optional (B,) bool mask (a bool for one stream): those streams start again
                from the zero state (a new sequence in one slot).
        Returns:
            ``(output_t, state)``: output_t (B, K) (or (K,)), the head's outputs (logits for
            cross-entropy) in the layer's dtype; the new state. Stepping through a sequence
            gives, at each step, what :meth:`predict` gives with ``head="sequence"`` (and, with
            ``head="last"``, the prediction for the sequence so far), to rounding.
        """
        y_t, state = self.recurrent.step(self._step_inputs(x_t, "x_t"), state, reset)
        return self._scaled(y_t @ self.head_weight.T + self.head_bias), state

    def generate(self, prompt, steps: int, temperature: float = 1.0, top_k: Optional[int] = None,
                 seed: Optional[int] = None) -> np.ndarray:
        """Continues ``prompt`` by ``steps`` steps, each prediction fed back as the next input
        (for a ``head="sequence"`` model whose outputs are its inputs' next value).

        A token model (cross-entropy over ``outputs == vocab_size`` classes) samples each next
        id from the softmax of the logits divided by ``temperature`` (restricted to the
        ``top_k`` likeliest ids if set); ``temperature=0`` takes the likeliest id (greedy). A
        real-valued model (``outputs == input_size``) feeds each predicted value back as is;
        it draws nothing, so ``temperature``, ``top_k`` and ``seed`` do not apply to it.

        Args:
            prompt: token model: ids (T0,), or (N, T0) for N prompts at once; real-valued:
                (T0, F), or (N, T0, F). T0 >= 1.
            steps: how many steps to generate (an int >= 1).
            temperature: a number >= 0.
            top_k: None, or an int in 1..vocab_size.
            seed: the sampling generator's seed: the same seed, the same continuation.
        Returns:
            the continuation without the prompt: ids (steps,) / (N, steps) int64, or values
            (steps, F) / (N, steps, F) in the layer's dtype.
        """
        steps = positive_int(steps, "steps")
        if self.head != "sequence":
            raise ValueError(f"generate: expected a model with head='sequence' (trained to predict each next step), "
                             f"got head={self.head!r}")
        if self.vocab_size is not None:
            if not (self.loss.classification and self.outputs == self.vocab_size):
                raise ValueError(f"generate: a token model generates with a cross-entropy head over its vocabulary; "
                                 f"expected outputs={self.vocab_size} (vocab_size) and loss cross_entropy, got "
                                 f"outputs={self.outputs} and loss {self.loss!r}")
            temperature = real_number(temperature, "temperature", "a number >= 0", lambda t: t >= 0)
            if top_k is not None:
                if isinstance(top_k, bool) or not isinstance(top_k, numbers.Integral) or not 1 <= top_k <= self.outputs:
                    raise ValueError(f"top_k: expected None or an int in 1..{self.outputs}, got {top_k!r}")
            if seed is not None and (isinstance(seed, bool) or not isinstance(seed, numbers.Integral) or seed < 0):
                raise ValueError(f"seed: expected None or an int >= 0, got {seed!r}")
            prompt = _as_ids(prompt, "prompt", self.vocab_size)
            one, expected = prompt.ndim == 1, "ids (T0,) or (N, T0)"
        else:
            if self.outputs != self.recurrent.input_size:
                raise ValueError(f"generate: a real-valued model feeds its predictions back as inputs; expected "
                                 f"outputs == input_size, got outputs={self.outputs} and input_size="
                                 f"{self.recurrent.input_size}")
            if self.output_scale is not None:
                raise ValueError("generate: this model's outputs are scaled (set_output_scaling) and its inputs need "
                                 "not be: feeding them back would mix units; remove the scaling first "
                                 "(set_output_scaling(None)) to continue in the head's units")
            if temperature != 1.0 or top_k is not None or seed is not None:
                raise ValueError(f"generate: a real-valued model draws nothing: temperature, top_k and seed apply to "
                                 f"token models; got temperature={temperature!r}, top_k={top_k!r}, seed={seed!r}")
            prompt = _as_float_array(prompt, "prompt", self.recurrent.dtype)
            one, expected = prompt.ndim == 2, f"(T0, {self.outputs}) or (N, T0, {self.outputs})"
        batch = prompt[None] if one else prompt
        features_ok = self.vocab_size is not None or batch.shape[-1] == self.outputs
        if batch.ndim != (2 if self.vocab_size is not None else 3) or 0 in batch.shape or not features_ok:
            raise ValueError(f"prompt: expected {expected} with T0 >= 1, got shape {prompt.shape}")
        rng = np.random.default_rng(seed)
        state = None
        for t in range(batch.shape[1]):
            output, state = self.step(batch[:, t], state)
        generated = []
        for _ in range(steps):
            following = output if self.vocab_size is None else _sample(output, temperature, top_k, rng)
            generated.append(following)
            output, state = self.step(following, state)
        result = np.stack(generated, axis=1)
        return result[0] if one else result

    def _score(self, sequences, targets, batch_size, data_parallel=None, sample_weights=None, where=""):
        """{"loss": the mean loss, "accuracy"}: over every rank's samples with ``data_parallel``
        (whose ``Allreduce`` raises on every rank what scoring raised on any; ``where``: when,
        for its message)."""
        total, count, correct = 0.0, 0.0, 0.0
        with contextlib.nullcontext() if data_parallel is None else data_parallel.guarded():
            for rows, steps, lengths, pred in self._predict_batches(sequences, batch_size):
                target, mask = self._batch_targets(targets, rows, steps, lengths)
                row_weight = self._row_weights(sample_weights, None, rows, steps, target)
                loss, _, rows_counted = self._loss(pred, target, mask, row_weight)
                total += loss * rows_counted
                count += rows_counted
                if self.loss.classification:
                    hits = pred.argmax(axis=1) == target
                    correct += float(hits.sum() if mask is None else (hits * mask).sum())
        if data_parallel is not None:
            total, count, correct = data_parallel.sum(total, count, correct, when=where)
        scores = {"loss": total / count}
        if self.loss.classification:
            scores["accuracy"] = correct / count
        return scores

    def evaluate(self, X, y, batch_size: int = 256, lengths=None, sample_weight=None) -> Dict[str, float]:
        """The mean loss over X (``{"loss": ...}``, plus ``"accuracy"`` for cross-entropy);
        X, y, lengths and ``sample_weight`` as for :meth:`fit`: (N,) per sample, or for head
        ``"sequence"`` (N, T) / a list of (T_i,) per step, padded steps not counting (with
        output scaling, y in the units :meth:`predict` returns, the loss in the head's scaled
        units). The loss is ``sum(weight * loss) / rows`` over all of X's rows (real steps), as
        Keras's ``evaluate`` with ``sample_weight``."""
        sequences = self._sequences(X, lengths)
        targets = self._targets(y, len(sequences))
        self._check_sequence_targets(sequences, targets)
        weights = None if sample_weight is None else _sample_weights(sample_weight, sequences,
                                                                     self.head_weight.dtype, self.head)
        return self._score(sequences, targets, batch_size, sample_weights=weights)

    # ------------------------------------------------------------------ files
    def config(self) -> dict:
        """The model's settings (without the recurrent layer's, weights or optimiser)."""
        loss = {"name": self.loss.name, **({"delta": self.loss.delta} if hasattr(self.loss, "delta") else {})}
        config = {"outputs": self.outputs, "head": self.head, "loss": loss, "clip_grad_norm": self.clip_grad_norm}
        if self.vocab_size is not None:
            config["embedding"] = {"vocab_size": self.vocab_size, "padding_id": self.padding_id}
        if self.output_scale is not None:
            config["output_scaling"] = True  # the tensors output.scale and output.offset
        return config

    def save(self, path, metadata: Optional[dict] = None) -> None:
        """Writes the recurrent layer, the head and the settings to a ``.safetensors`` file;
        ``fastgru.load(path)`` returns the model (the optimiser's state is not kept).
        ``metadata``: a JSON-serialisable dict kept beside them (e.g. how inputs were scaled);
        the loaded model has it as :attr:`metadata`."""
        try:
            builtin = type(losses_module.get(self.loss.name))
        except ValueError:
            builtin = None
        if type(self.loss) is not builtin:
            raise TypeError(f"save: the model file names its loss, and {self.loss!r} is not one of fastgru's; "
                            "save the weights with get_weights() instead")
        user_metadata = metadata if metadata is not None else self.metadata
        if not isinstance(user_metadata, dict):
            raise TypeError(f"metadata: expected a JSON-serialisable dict, got {type(user_metadata).__name__}")
        try:
            text = json.dumps(user_metadata, allow_nan=False)
        except (TypeError, ValueError) as error:
            raise type(error)(f"metadata: expected a JSON-serialisable dict of finite numbers, got {error}") from None

        def refuse(reason):
            return ValueError(f"metadata: {reason}")

        _user_metadata(text, refuse)  # what load would refuse is not written
        # The recurrent layer's tensors as a file of its precision holds them (bf16, int8: quantized).
        weights = {name: array for name, array in self.get_weights().items() if not name.startswith("recurrent.")}
        weights.update({f"recurrent.{name}": array for name, array in stored_weights(self.recurrent).items()})
        write_model_file(path, weights, {
            "user_metadata": text,
            "format": "fastgru", "format_version": str(FORMAT_VERSION), "class": "Model",
            "config": json.dumps(self.config()),
            "recurrent_class": type(self.recurrent).__name__,
            "recurrent_config": json.dumps(file_config(self.recurrent)),
            "fastgru_version": __version__,
        })

    @classmethod
    def _from_file(cls, path, tensors, metadata):
        """The model of a checked model file's tensors and metadata (see :func:`fastgru.load`):
        every field and tensor is checked before anything is built."""
        refuse = refusal(path)
        recurrent_class = metadata.get("recurrent_class")
        if recurrent_class not in LAYER_CLASSES:
            raise refuse(f"recurrent_class: expected one of {tuple(LAYER_CLASSES)}, got {recurrent_class!r:.50}")
        layer_class = LAYER_CLASSES[recurrent_class]
        recurrent_config, recurrent_shapes = layer_plan(
            layer_class, metadata.get("recurrent_config", ""), "recurrent_config", refuse, len(tensors))
        config = parse_json(metadata["config"], "config", refuse)
        if not isinstance(config, dict) or set(config) - _OPTIONAL_FILE_FIELDS != _FILE_FIELDS:
            raise refuse(f"config: expected an object of the fields {sorted(_FILE_FIELDS)} (and embedding for a "
                         f"token model, output_scaling for scaled outputs), got {config!r:.200}")
        scaled = config.get("output_scaling", False)
        if "output_scaling" in config and scaled is not True:
            raise refuse(f"config output_scaling: expected true (or no field), got {scaled!r:.50}")
        vocab_size, padding_id = _file_embedding(config.get("embedding"), refuse)
        outputs, head, loss, clip = config["outputs"], config["head"], config["loss"], config["clip_grad_norm"]
        if type(outputs) is not int or not 1 <= outputs <= 2**31:
            raise refuse(f"config outputs: expected an integer in 1..2^31, got {outputs!r:.50}")
        if head not in _HEADS:
            raise refuse(f"config head: expected one of {_HEADS}, got {head!r:.50}")
        huber = isinstance(loss, dict) and set(loss) == {"name", "delta"} and loss["name"] == "huber"
        if not (huber and (as_number(loss["delta"]) or 0) > 0 or loss in [{"name": n} for n in _FILE_LOSSES]):
            raise refuse(f"config loss: expected {{'name': one of {_FILE_LOSSES}}} or {{'name': 'huber', "
                         f"'delta': a number > 0}}, got {loss!r:.100}")
        if clip is not None and not (as_number(clip) or 0) > 0:
            raise refuse(f"config clip_grad_norm: expected a number > 0 or null, got {clip!r:.50}")
        expected = {f"recurrent.{name}": stored for name, stored in recurrent_shapes.items()}
        directions = 2 if recurrent_config["bidirectional"] else 1
        merged = head == "sequence" and recurrent_config.get("merge_mode", "concat") in ("sum", "mul", "ave")
        features = (1 if merged else directions) * recurrent_config["hidden_size"]
        dtype = file_dtype(recurrent_config["dtype"])  # of the head, embedding and scaling
        expected.update({"head.weight": ((outputs, features), dtype), "head.bias": ((outputs,), dtype)})
        if vocab_size is not None:
            expected["embedding.weight"] = ((vocab_size, recurrent_config["input_size"]), dtype)
        if scaled:
            expected.update({"output.scale": ((outputs,), dtype), "output.offset": ((outputs,), dtype)})
        check_tensors(tensors, expected, refuse)
        check_identity_statistics(tensors, recurrent_config, refuse)
        user_metadata = _user_metadata(metadata.get("user_metadata", "{}"), refuse)
        weights = dequantized(tensors, refuse)
        with refused_as(refuse):
            model = cls(build_layer(layer_class, recurrent_config), outputs=outputs, head=head,
                        loss=losses_module.Huber(as_number(loss["delta"])) if huber else loss["name"],
                        clip_grad_norm=None if clip is None else as_number(clip), vocab_size=vocab_size,
                        padding_id=padding_id)
            model.set_weights(weights)
            if recurrent_config["precision"] != "full":
                model = model.quantize(recurrent_config["precision"])
        model.metadata = user_metadata
        return model

    def to_onnx(self, path, lengths: bool = False, layout: int = 0) -> None:
        """Writes the model as standard ONNX (opset 14; needs the ``onnx`` package), to run in
        ONNX Runtime or any ONNX backend: the recurrent layer's GRU nodes
        (:meth:`fastgru.GRU.to_onnx`), the head as MatMul and Add, the output scaling as Mul and
        Add, and a token model's embedding as a Gather. Only a Model of a :class:`fastgru.GRU`
        (gates ``"full"``, no recurrent_dropout or zoneout, float precision) exports: ONNX's
        recurrent operators have no other cell.

        Inputs: ``x`` (N, T, F) in the layer's dtype, or for a token model ``ids`` (N, T) int64
        (ids out of range are the backend's error); with ``lengths``, ``lengths`` (N,) int64,
        each in 1..T (the GRU nodes' ``sequence_lens``). Outputs: ``outputs``, what
        :meth:`predict` gives for a dense X ((N, K) for head ``"last"``, (N, T, K) for
        ``"sequence"``, zero past each row's length); for a cross-entropy model (logits) a
        second output, ``probabilities``, what :meth:`predict_proba` gives. (ONNX Runtime's GRU
        computes in float32 only: it refuses the model of a float64 layer.)

        ``layout``: the GRU nodes' ``layout`` attribute, as for :meth:`fastgru.GRU.to_onnx`: 0,
        time-major (ONNX Runtime's CPU GRU runs only these); 1, batch-major, as the model's
        inputs are (no Transpose around the nodes). Inputs and outputs are the same either way.
        """
        from onnx import TensorProto, checker, helper, numpy_helper, save

        from ..layers.gru import _ONNX_OPSET, GRU, _onnx_layout, _require_gru

        lengths = boolean(lengths, "lengths")
        layout = _onnx_layout(layout)
        layer = self.recurrent
        if not isinstance(layer, GRU):
            raise ValueError(f"to_onnx: ONNX has a GRU operator but none for the {type(layer).__name__}; only a Model "
                             "of a fastgru.GRU exports (run other cells from C or C++: fastgru_predictor_load, "
                             "fastgru::load_model)")
        _require_gru(layer, "to_onnx")
        if layer.recurrent_dropout or layer.zoneout:
            raise ValueError("to_onnx: ONNX's GRU has no recurrent_dropout or zoneout")
        D, H = layer.num_directions, layer.hidden_size
        element = TensorProto.FLOAT if layer.dtype == np.float32 else TensorProto.DOUBLE
        nodes, initializers = [], []

        def constant(name, array):
            initializers.append(numpy_helper.from_array(np.asarray(array), name))
            return name

        def node(op, inputs, output, **attributes):
            nodes.append(helper.make_node(op, inputs, [output], **attributes))
            return output

        if self.vocab_size is None:
            inputs = [helper.make_tensor_value_info("x", element, ["N", "T", layer.input_size])]
            x = "x"
        else:
            inputs = [helper.make_tensor_value_info("ids", TensorProto.INT64, ["N", "T"])]
            x = node("Gather", [constant("embedding.weight", self.embedding_weight), "ids"], "x", axis=0)
        sequence_lens = ""
        if lengths:
            inputs.append(helper.make_tensor_value_info("lengths", TensorProto.INT64, ["N"]))
            sequence_lens = node("Cast", ["lengths"], "sequence_lens", to=TensorProto.INT32)
        if not layout:
            x = node("Transpose", [x], "x_time_major", perm=[1, 0, 2])
        y, final_states = layer._onnx_layers(x, sequence_lens, "", nodes, constant, layout)
        if self.head == "last":
            # the last layer's final states (D, N, H) -> (N, D*H), directions side by side
            states = node("Transpose", [final_states[-1]], "final_n_d_h", perm=[1, 0, 2])
            features = node("Reshape", [states, constant("features_shape", np.array([0, D * H]))], "features")
            shape = ["N", self.outputs]
        else:
            merge = getattr(layer, "merge_mode", "concat")
            if D == 2 and merge != "concat":  # the directions' halves merged into H features
                halves = [node("Slice", [y, constant(f"half{d}_start", np.array([d * H])),
                                         constant(f"half{d}_end", np.array([(d + 1) * H])),
                                         constant(f"half{d}_axis", np.array([2]))], f"y_half{d}") for d in range(2)]
                y = node("Mul" if merge == "mul" else "Add", halves, "y_merged")
                if merge == "ave":
                    y = node("Mul", [y, constant("one_half", np.array(0.5, layer.dtype))], "y_mean")
            features = node("Identity" if layout else "Transpose", [y], "features",
                            **({} if layout else {"perm": [1, 0, 2]}))
            shape = ["N", "T", self.outputs]
        product = node("MatMul", [features, constant("head.weight_t", np.ascontiguousarray(self.head_weight.T))], "product")
        head = node("Add", [product, constant("head.bias", self.head_bias)], "head")
        if self.output_scale is not None:
            scaled = node("Mul", [head, constant("output.scale", self.output_scale)], "scaled")
            head = node("Add", [scaled, constant("output.offset", self.output_offset)], "shifted")
        results = {"outputs": head}
        if self.loss.classification:
            results["probabilities"] = node("Softmax", [head], "softmax", axis=-1)
        if self.head == "sequence" and lengths:
            # zero past each row's length: mask (N, T, 1) = [t < lengths[n]]
            steps = node("Gather", [node("Shape", [features], "features_shape_all"), constant("one", np.array(1))],
                         "steps")
            step_range = node("Range", [constant("zero", np.array(0)), steps, constant("step", np.array(1))], "step_range")
            column = node("Unsqueeze", ["lengths", constant("axis1", np.array([1]))], "lengths_column")
            real = node("Cast", [node("Less", [step_range, column], "real_steps")], "real_steps_real", to=element)
            mask = node("Unsqueeze", [real, constant("axis2", np.array([2]))], "mask")
            results = {name: node("Mul", [value, mask], f"{name}_masked") for name, value in results.items()}
        for name, value in results.items():
            node("Identity", [value], name)
        outputs = [helper.make_tensor_value_info(name, element, shape) for name in results]
        graph = helper.make_graph(nodes, "fastgru_model", inputs, outputs, initializers)
        model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", _ONNX_OPSET)], producer_name="fastgru")
        model.ir_version = min(model.ir_version, 9)  # readable by the ONNX Runtime releases in use
        helper.set_model_props(model, {"fastgru_class": "Model", "fastgru_config": json.dumps(self.config()),
                                       "fastgru_recurrent_config": json.dumps(layer.config()),
                                       "fastgru_version": __version__})
        checker.check_model(model)
        save(model, path)

    def __repr__(self):
        tokens = "" if self.vocab_size is None else f", vocab_size={self.vocab_size}, padding_id={self.padding_id}"
        return (f"Model({self.recurrent!r}, outputs={self.outputs}, head={self.head!r}, loss={self.loss!r}, "
                f"optimizer={type(self.optimizer).__name__}(learning_rate={self.optimizer.learning_rate}){tokens})")


def _file_embedding(field, refuse):
    """(vocab_size, padding_id) of a model file's config ``embedding`` field ((None, None) without one)."""
    if field is None:
        return None, None
    if not isinstance(field, dict) or set(field) != {"vocab_size", "padding_id"}:
        raise refuse(f"config embedding: expected an object of the fields ['padding_id', 'vocab_size'], got {field!r:.200}")
    vocab_size, padding_id = field["vocab_size"], field["padding_id"]
    if type(vocab_size) is not int or not 1 <= vocab_size <= 2**31:
        raise refuse(f"config embedding vocab_size: expected an integer in 1..2^31, got {vocab_size!r:.50}")
    if padding_id is not None and (type(padding_id) is not int or not 0 <= padding_id < vocab_size):
        raise refuse(f"config embedding padding_id: expected null or an integer in 0..{vocab_size - 1}, "
                     f"got {padding_id!r:.50}")
    return vocab_size, padding_id


def _sample(logits, temperature, top_k, rng):
    """One id per row of logits (B, K): the likeliest at temperature 0, else drawn from the
    softmax of logits / temperature over the top_k likeliest (all if None)."""
    logits = logits.astype(np.float64)
    if temperature == 0:
        return logits.argmax(axis=1)
    if top_k is not None and top_k < logits.shape[1]:
        kth = np.partition(logits, -top_k, axis=1)[:, -top_k][:, None]
        logits = np.where(logits >= kth, logits, -np.inf)
    probabilities = _softmax(logits / temperature)
    # Inverse-CDF draws: one uniform per row.
    cumulative = np.cumsum(probabilities, axis=1)
    draws = rng.random((len(logits), 1)) * cumulative[:, -1:]
    return np.minimum((cumulative < draws).sum(axis=1), logits.shape[1] - 1)


def _softmax(logits):
    shifted = np.exp(logits - logits.max(axis=-1, keepdims=True))
    return shifted / shifted.sum(axis=-1, keepdims=True)
