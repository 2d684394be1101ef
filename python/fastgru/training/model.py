"""A recurrent network with a dense head, trained end to end: :class:`Model`."""

from __future__ import annotations

import json
import math
import numbers
import sys
from typing import Dict, Optional, Sequence

import numpy as np

from .._arguments import boolean
from .._version import __version__
from ..layers import LAYER_CLASSES
from ..model_file import (FORMAT_VERSION, as_number, build_layer, check_tensors, layer_plan, parse_json, refusal,
                          refused_as, write_model_file)
from . import callbacks as callbacks_module
from . import losses as losses_module
from . import optimizers as optimizers_module

__all__ = ["Model"]

_HEADS = ("last", "sequence")
# The fields of config() that a model file keeps, and the losses it names (Huber's carries delta).
_FILE_FIELDS = {"outputs", "head", "loss", "clip_grad_norm"}
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
            if lengths is None:
                self.lengths = None
            else:
                lengths = np.asarray(lengths)
                if lengths.dtype.kind not in "iu" or lengths.shape != (len(dense),):
                    raise ValueError(f"lengths: expected {len(dense)} integers, got {lengths.dtype} {lengths.shape}")
                if lengths.min() < 1 or lengths.max() > dense.shape[1]:
                    raise ValueError(f"lengths: expected values in 1..{dense.shape[1]}, got {lengths.min()}..{lengths.max()}")
                self.lengths = lengths.astype(np.int64)

    def __len__(self):
        return len(self.items) if self.items is not None else len(self.dense)

    @property
    def ragged(self):
        return self.items is not None

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
        seed: initialisation of the head and the shuffling of :meth:`fit`.

    Parameters (:meth:`get_weights`): ``recurrent.<name>`` for each of the recurrent layer's
    (its own names), ``head.weight`` (K, D*H) and ``head.bias`` (K,), in the layer's dtype.
    """

    def __init__(self, recurrent, outputs: int = 1, head: str = "last", loss="mse", optimizer="adam",
                 learning_rate: Optional[float] = None, clip_grad_norm: Optional[float] = None,
                 seed: Optional[int] = None):
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
        features = recurrent.num_directions * recurrent.hidden_size
        bound = 1.0 / math.sqrt(features)  # PyTorch's nn.Linear initialisation
        self.head_weight = self._rng.uniform(-bound, bound, (self.outputs, features)).astype(recurrent.dtype)
        self.head_bias = self._rng.uniform(-bound, bound, self.outputs).astype(recurrent.dtype)
        self.stop_training = False
        #: user data saved with the model (see :meth:`save`)
        self.metadata: dict = {}

    # ------------------------------------------------------------------ parameters
    def get_weights(self) -> Dict[str, np.ndarray]:
        """Copies of every parameter (and the recurrent layer's buffers, if any), by name."""
        weights = {f"recurrent.{k}": v for k, v in self.recurrent.state_dict().items()}
        weights["head.weight"] = self.head_weight.copy()
        weights["head.bias"] = self.head_bias.copy()
        return weights

    def set_weights(self, weights) -> None:
        """Loads what :meth:`get_weights` returned (every key and shape checked)."""
        recurrent = {k[len("recurrent."):]: v for k, v in weights.items() if k.startswith("recurrent.")}
        head = {k: v for k, v in weights.items() if not k.startswith("recurrent.")}
        if set(head) != {"head.weight", "head.bias"}:
            raise KeyError(f"set_weights: expected head.weight and head.bias besides recurrent.*, got {sorted(head)}")
        weight = _as_float_array(head["head.weight"], "head.weight", self.recurrent.dtype)
        bias = _as_float_array(head["head.bias"], "head.bias", self.recurrent.dtype)
        if weight.shape != self.head_weight.shape or bias.shape != self.head_bias.shape:
            raise ValueError(f"set_weights: head expected {self.head_weight.shape} and {self.head_bias.shape}, "
                             f"got {weight.shape} and {bias.shape}")
        self.recurrent.load_state_dict(recurrent)
        self.head_weight, self.head_bias = weight.copy(), bias.copy()

    # ------------------------------------------------------------------ compute
    def _run(self, x, lengths, train):
        """Recurrent layer and head on one batch: (pred (rows, K), features, y, h_n)."""
        layer = self.recurrent
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

    def _targets(self, y, count):
        """Checked targets, with per-row arrays kept for ragged per-step targets."""
        if self.head == "last":
            target = self.loss.check_target(y, self.outputs)
            if len(target) != count:
                raise ValueError(f"y: expected {count} targets (one per sequence), got {len(target)}")
            return target
        if isinstance(y, (list, tuple)):
            items = [np.asarray(t) for t in y]
        else:
            items = list(np.asarray(y))
        if len(items) != count:
            raise ValueError(f"y: expected {count} target sequences, got {len(items)}")
        return [self.loss.check_target(t, self.outputs) for t in items]

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

    def _gradients(self, x, lengths, target, weight):
        """Loss of one batch and its gradient for every parameter, by name (a training forward,
        the head's backward, BPTT)."""
        layer = self.recurrent
        layer.zero_grad()
        pred, features, y, h_n = self._run(x, lengths, train=True)
        loss, dpred = self.loss(pred, target, weight)
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
        layer.backward(dy, dh_n)
        return loss, grads, pred

    def _train_batch(self, x, lengths, target, weight):
        """One optimiser step; returns the batch's loss and, for classification, its correct
        predictions (counted before the step). A non-finite loss or gradient stops before any
        update."""
        layer = self.recurrent
        loss, grads, pred = self._gradients(x, lengths, target, weight)
        norm = optimizers_module.global_norm(grads)
        if not (math.isfinite(loss) and math.isfinite(norm)):
            what = f"the loss became {loss}" if not math.isfinite(loss) else f"the gradients' norm became {norm}"
            raise FloatingPointError(f"fit: {what} (the weights are left as they were before this batch; lower "
                                     "the learning rate, scale the targets or set clip_grad_norm)")
        hits = 0.0
        if self.loss.classification:
            correct = pred.argmax(axis=1) == target
            hits = float(correct.sum() if weight is None else (correct * weight).sum())
        if self.clip_grad_norm is not None:
            optimizers_module.scale_to_norm(grads, norm, self.clip_grad_norm)

        def update(trainable):
            params = {f"recurrent.{k}": v for k, v in trainable.items()}
            params["head.weight"], params["head.bias"] = self.head_weight, self.head_bias
            self.optimizer.step(params, grads)

        layer._update_parameters(update)
        return loss, hits

    def fit(self, X, y, epochs: int = 10, batch_size: int = 32, validation_data=None, shuffle: bool = True,
            callbacks: Optional[Sequence] = None, verbose="auto", lengths=None) -> callbacks_module.History:
        """Trains the model.

        Args:
            X: (N, T, F) array of real numbers, or a list (tuple, 1-D object array) of N arrays
                (T_i, F) of different lengths ((T_i,) when F = 1), batched with lengths: padded
                steps cost nothing. A 2-D array, one sequence, is refused.
            y: targets. Head ``"last"``: (N, K) or (N,) values, or (N,) class indices for
                cross-entropy. Head ``"sequence"``: (N, T, K) / (N, T) arrays or a list of
                (T_i, K) / (T_i,) arrays; padded steps do not count.
            epochs, batch_size: passes over the data, and sequences per optimiser step.
            validation_data: ``(X_val, y_val)`` or ``(X_val, y_val, lengths_val)``, scored after
                each epoch (``val_loss``, ``val_accuracy``).
            shuffle: a new order of the samples at each epoch (from the model's seed).
            callbacks: e.g. :class:`EarlyStopping`, :class:`ReduceLROnPlateau` (or None).
            verbose: 0 quiet, 1 a progress bar, 2 one line per epoch; ``"auto"``: the bar on a
                terminal, quiet otherwise.
            lengths: (N,) real steps of each row of a dense X (optional).
        Returns:
            the :class:`History` of the epochs' logs (``loss``, ``val_loss``, ``accuracy``...;
            ``loss`` and ``accuracy`` are the means over the epoch's batches, each taken before
            its optimiser step, as in Keras).
        """
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
        if validation_data is not None:
            if not isinstance(validation_data, (tuple, list)) or len(validation_data) not in (2, 3):
                raise ValueError("validation_data: expected (X_val, y_val) or (X_val, y_val, lengths_val)")
            # checked now, not after the first epoch
            validation_sequences = self._sequences(validation_data[0], validation_data[2] if len(validation_data) == 3
                                                   else None, "validation_data[0]")
            validation_targets = self._targets(validation_data[1], len(validation_sequences))
            self._check_sequence_targets(validation_sequences, validation_targets)
            validation = (validation_sequences, validation_targets)
        callbacks = [] if callbacks is None else list(callbacks)
        history = callbacks_module.History()
        all_callbacks = [history, *callbacks]
        for callback in callbacks:
            if not isinstance(callback, callbacks_module.Callback):
                raise TypeError(f"callbacks: expected fastgru Callback objects, got {type(callback).__name__}")
        count = len(sequences)
        batches = math.ceil(count / batch_size)
        progress = callbacks_module.ProgressBar(epochs, batches, verbose)
        self.stop_training = False
        for callback in all_callbacks:
            callback.on_train_begin(self)
        for epoch in range(epochs):
            for callback in all_callbacks:
                callback.on_epoch_begin(self, epoch)
            progress.start_epoch(epoch)
            order = self._rng.permutation(count) if shuffle else np.arange(count)
            total, correct, weight_sum = 0.0, 0.0, 0.0
            for b in range(batches):
                rows = order[b * batch_size : (b + 1) * batch_size]
                x, batch_lengths = sequences.batch(rows)
                target, weight = self._batch_targets(targets, rows, x.shape[1], batch_lengths)
                try:
                    loss, hits = self._train_batch(x, batch_lengths, target, weight)
                except FloatingPointError as error:
                    raise FloatingPointError(f"{error} at epoch {epoch + 1}, batch {b + 1}") from None
                rows_counted = len(target) if weight is None else float(weight.sum())
                total += loss * rows_counted
                correct += hits
                weight_sum += rows_counted
                progress.update(b + 1, total / weight_sum)
            # Like Keras: the epoch's running means over its batches, each before its step.
            logs = {"loss": total / weight_sum}
            if self.loss.classification:
                logs["accuracy"] = correct / weight_sum
            if validation_data is not None:
                scores = self._score(*validation, batch_size)
                logs.update({f"val_{k}": v for k, v in scores.items()})
            logs["learning_rate"] = self.optimizer.learning_rate
            progress.end_epoch(logs)
            for callback in all_callbacks:
                callback.on_epoch_end(self, epoch, logs)
            if self.stop_training:
                break
        for callback in all_callbacks:
            callback.on_train_end(self)
        return history

    def _sequences(self, X, lengths, name="X"):
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
        """
        if not _is_sequence_list(X) and np.ndim(X) == 2:
            if lengths is not None:
                raise ValueError(f"lengths: X of shape {np.shape(X)} is one unbatched sequence, all of whose steps "
                                 "are real; pass lengths=None (and only its real steps)")
            return self.predict([X], batch_size)[0]
        sequences = self._sequences(X, lengths)
        outputs = []
        for rows, steps, _, pred in self._predict_batches(sequences, batch_size):
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
        a cross-entropy model."""
        if not self.loss.classification:
            raise ValueError(f"predict_proba: the model's loss {self.loss!r} is not a classification loss")
        logits = self.predict(X, batch_size, lengths)
        if isinstance(logits, list):
            return [_softmax(l) for l in logits]
        return _softmax(logits)

    def _score(self, sequences, targets, batch_size):
        total, count, correct = 0.0, 0.0, 0.0
        for rows, steps, lengths, pred in self._predict_batches(sequences, batch_size):
            target, weight = self._batch_targets(targets, rows, steps, lengths)
            loss, _ = self.loss(pred, target, weight)
            rows_counted = len(target) if weight is None else float(weight.sum())
            total += loss * rows_counted
            count += rows_counted
            if self.loss.classification:
                hits = pred.argmax(axis=1) == target
                correct += float(hits.sum() if weight is None else (hits * weight).sum())
        scores = {"loss": total / count}
        if self.loss.classification:
            scores["accuracy"] = correct / count
        return scores

    def evaluate(self, X, y, batch_size: int = 256, lengths=None) -> Dict[str, float]:
        """The mean loss over X (``{"loss": ...}``, plus ``"accuracy"`` for cross-entropy);
        X, y and lengths as for :meth:`fit`."""
        sequences = self._sequences(X, lengths)
        targets = self._targets(y, len(sequences))
        self._check_sequence_targets(sequences, targets)
        return self._score(sequences, targets, batch_size)

    # ------------------------------------------------------------------ files
    def config(self) -> dict:
        """The model's settings (without the recurrent layer's, weights or optimiser)."""
        loss = {"name": self.loss.name, **({"delta": self.loss.delta} if hasattr(self.loss, "delta") else {})}
        return {"outputs": self.outputs, "head": self.head, "loss": loss,
                "clip_grad_norm": self.clip_grad_norm}

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
        write_model_file(path, self.get_weights(), {
            "user_metadata": text,
            "format": "fastgru", "format_version": str(FORMAT_VERSION), "class": "Model",
            "config": json.dumps(self.config()),
            "recurrent_class": type(self.recurrent).__name__,
            "recurrent_config": json.dumps(self.recurrent.config()),
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
        if not isinstance(config, dict) or set(config) != _FILE_FIELDS:
            raise refuse(f"config: expected an object of the fields {sorted(_FILE_FIELDS)}, got {config!r:.200}")
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
        expected = {f"recurrent.{name}": shape for name, shape in recurrent_shapes.items()}
        features = (2 if recurrent_config["bidirectional"] else 1) * recurrent_config["hidden_size"]
        expected.update({"head.weight": (outputs, features), "head.bias": (outputs,)})
        check_tensors(tensors, expected, recurrent_config["dtype"], refuse)
        user_metadata = _user_metadata(metadata.get("user_metadata", "{}"), refuse)
        with refused_as(refuse):
            model = cls(build_layer(layer_class, recurrent_config), outputs=outputs, head=head,
                        loss=losses_module.Huber(as_number(loss["delta"])) if huber else loss["name"],
                        clip_grad_norm=None if clip is None else as_number(clip))
            model.set_weights(tensors)
        model.metadata = user_metadata
        return model

    def __repr__(self):
        return (f"Model({self.recurrent!r}, outputs={self.outputs}, head={self.head!r}, loss={self.loss!r}, "
                f"optimizer={type(self.optimizer).__name__}(learning_rate={self.optimizer.learning_rate}))")


def _softmax(logits):
    shifted = np.exp(logits - logits.max(axis=-1, keepdims=True))
    return shifted / shifted.sum(axis=-1, keepdims=True)
