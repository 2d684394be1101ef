"""Data-parallel training over MPI: what :meth:`fastgru.Model.fit` does with ``communicator=``.

Imported only when a communicator is given (it needs ``mpi4py``: ``pip install "fastgru[mpi]"``).
Every rank runs the same ``fit`` on its own samples. At the start, the ranks check that they
train the same thing (the same layer, head, loss, batch size and epochs) and take rank 0's
weights and optimiser state. At each step, every rank computes the loss and gradients of its
local batch, and one ``Allreduce`` over a single flat buffer sums, across ranks, each rank's
gradients and loss times its number of counted rows (sequences, or real steps for a per-step
head), those counts, its correct predictions and (batch-normalised cells) its running
statistics (and a token model's embedding rows); dividing by the global count gives the mean
over the global batch, so every rank applies the same update, and 2 ranks with batch b/2 each
train as 1 process with batch b does.

No rank raises alone. A rank that raised between two collectives would leave the others
waiting in the next one forever, so ``fit`` runs each rank-local part (checking its inputs,
preparing and computing a batch, scoring its validation samples, the callbacks, the progress
bar) under :meth:`DataParallel.guarded`, which keeps the exception instead of raising it. Every
collective carries whether this rank holds one (the start's ``allgather``, the steps' and the
scores' ``Allreduce`` as one more slot, the callbacks' agreement): when any rank does, every
rank learns the failing ranks' messages in one ``allgather`` and raises the same error, naming
them and their messages (of the failing ranks' exception class when they agree on one of the
built-in ones, a ``ValueError`` otherwise).
``stop_training`` is agreed the same way after each epoch's callbacks: training stops on every
rank when any rank's callbacks ask; and learning rates that the callbacks set apart (which would
train the ranks differently) are an error on every rank.
"""

from __future__ import annotations

import contextlib

import numpy as np

try:
    from mpi4py import MPI
except ImportError as error:  # pragma: no cover - the [mpi] extra installs it
    raise ImportError('fit(communicator=...): needs mpi4py (pip install "fastgru[mpi]")') from error

__all__ = ["DataParallel"]

# Trailing slots of the flat buffer after the gradients and buffers: the last counts the ranks
# that failed before this step (see the module's docstring).
_LOSS, _COUNT, _HITS, _FAILED = range(4)
_SLOTS = 4
# The exception classes an error raised on every rank keeps (others become a ValueError).
_KINDS = {kind.__name__: kind for kind in (ValueError, TypeError, KeyError, IndexError, FloatingPointError,
                                           OSError, RuntimeError, ZeroDivisionError)}


def _message(error):
    """An exception's own text (a KeyError's str() quotes it)."""
    if len(error.args) == 1 and isinstance(error.args[0], str):
        return error.args[0]
    return str(error) or type(error).__name__


def _on_rank(message, rank, size):
    """``"name: reason"`` -> ``"name: on rank r (of n): reason"``, the argument's name first."""
    head, separator, rest = message.partition(": ")
    if separator and len(head) <= 80 and " " not in head.replace(", ", ","):
        return f"{head}: on rank {rank} (of {size}): {rest}"
    return f"on rank {rank} (of {size}): {message}"


class DataParallel:
    """One ``fit``'s link between the ranks of ``communicator`` (an ``mpi4py.MPI.Intracomm``).

    ``model`` is the :class:`fastgru.Model` being trained on every rank.
    """

    def __init__(self, communicator, model):
        if not isinstance(communicator, MPI.Intracomm):
            raise TypeError(f"communicator: expected an mpi4py intracommunicator (e.g. mpi4py.MPI.COMM_WORLD), "
                            f"got {type(communicator).__name__}")
        self.communicator = communicator
        self.rank, self.size = communicator.Get_rank(), communicator.Get_size()
        self.model = model
        #: the first exception a guarded part raised on this rank, until a collective raises it
        self.error = None
        self.flat = None  # the step's buffer: built by start(), once the inputs are agreed

    @contextlib.contextmanager
    def guarded(self):
        """Runs a rank-local part: an ``Exception`` it raises is kept (the first one) for the
        next collective to raise on every rank, instead of raising here alone."""
        try:
            yield
        except Exception as error:  # noqa: BLE001 - raised on every rank by the next collective
            if self.error is None:
                self.error = error

    def _raise_failures(self, when):
        """Every rank: one ``allgather`` of each rank's kept error, then the same exception,
        naming the failing ranks and their messages (called by every rank at once, after a
        collective told them all that some rank failed)."""
        own = None if self.error is None else (type(self.error).__name__, _message(self.error))
        failures = [(rank, failure) for rank, failure in enumerate(self.communicator.allgather(own))
                    if failure is not None]
        self._raise(failures, when)

    def _raise(self, failures, when):
        kinds = {kind for _, (kind, _) in failures}
        kind = _KINDS.get(kinds.pop(), ValueError) if len(kinds) == 1 else ValueError
        ranks = [rank for rank, _ in failures]
        text = "; ".join(_on_rank(message, rank, self.size) for rank, (_, message) in failures)
        plural = "s" if len(ranks) > 1 else ""
        error = kind(f"{text} (failed on rank{plural} {', '.join(map(str, ranks))} {when}; raised on every rank)")
        raise error from self.error

    def agree(self, stop: bool = False, when: str = "") -> bool:
        """One collective after a rank-local part (the callbacks): raises on every rank if any
        rank kept an error (see :meth:`guarded`) or if the ranks' learning rates differ (a
        callback of the user's that set them apart would train each rank differently); else
        returns whether any rank asked to ``stop``."""
        rate = self.model.optimizer.learning_rate
        everyone = self.communicator.allgather((None if self.error is None else
                                                (type(self.error).__name__, _message(self.error)), bool(stop), rate))
        failures = [(rank, failure) for rank, (failure, _, _) in enumerate(everyone) if failure is not None]
        if failures:
            self._raise(failures, when)
        rates = [other for _, _, other in everyone]
        if any(other != rates[0] for other in rates):
            raise ValueError(f"learning_rate: every rank must train with the same rate, but {when} the ranks' are "
                             f"{', '.join(f'{r!r} on rank {k}' for k, r in enumerate(rates))} (a callback set them "
                             "apart; raised on every rank)")
        return any(asked for _, asked, _ in everyone)

    def _build_buffers(self):
        model = self.model
        layer = model.recurrent
        self.gradient_shapes = {f"recurrent.{k}": v.shape for k, v in layer.grads.items()}
        self.gradient_shapes["head.weight"] = model.head_weight.shape
        self.gradient_shapes["head.bias"] = model.head_bias.shape
        # Running statistics (batch-normalised cells): averaged as the gradients are.
        self.buffer_names = sorted(set(layer.state_dict()) - set(layer.grads))
        state = layer.state_dict()
        sizes = [int(np.prod(s)) for s in self.gradient_shapes.values()] + [state[n].size for n in self.buffer_names]
        # A token model's embedding gradient holds the rows its batch used: each rank's go into
        # the whole table's place, beside a count of the ranks that used each row, so that the
        # rows any rank used step.
        self.table_shape = None if model.vocab_size is None else model.embedding_weight.shape
        if self.table_shape is not None:
            sizes += [self.table_shape[0] * self.table_shape[1], self.table_shape[0]]
        self.flat = np.empty(sum(sizes) + _SLOTS, layer.dtype)

    @property
    def is_root(self) -> bool:
        return self.rank == 0

    def start(self, settings, local_batches) -> int:
        """The first collective of ``fit``: raises on every rank if any rank's inputs were
        refused (an error kept by :meth:`guarded`; ``settings`` and ``local_batches`` are then
        None), checks that every rank trains the same thing (``settings``: name -> value,
        compared across ranks), gives every rank rank 0's weights and optimiser state, and
        returns the steps per epoch: the most local batches of any rank (a rank that has run out
        of samples takes part in the remaining steps with none)."""
        model = self.model
        signature = None
        if self.error is None:
            with self.guarded():
                signature = {"layer": type(model.recurrent).__name__, "layer config": model.recurrent.config(),
                             "vocab_size": model.vocab_size, "padding_id": model.padding_id,
                             "outputs": model.outputs, "head": model.head, "loss": repr(model.loss),
                             "optimizer": type(model.optimizer).__name__, "clip_grad_norm": model.clip_grad_norm,
                             **settings}
        own = None if self.error is None else (type(self.error).__name__, _message(self.error))
        everyone = self.communicator.allgather((own, signature, local_batches))
        failures = [(rank, failure) for rank, (failure, _, _) in enumerate(everyone) if failure is not None]
        if failures:
            self._raise(failures, "while checking the inputs, before training")
        everyone = [(other, batches) for _, other, batches in everyone]
        for rank, (other, _) in enumerate(everyone):
            differing = sorted(k for k in signature if other.get(k) != signature[k])
            if differing:
                name = differing[0]
                raise ValueError(f"communicator: every rank must train the same model the same way; {name} is "
                                 f"{signature[name]!r} on rank {self.rank} but {other.get(name)!r} on rank {rank}")
        optimizer = model.optimizer
        root_state = self.communicator.bcast(
            (model.get_weights(), optimizer.state, optimizer.iterations, optimizer.learning_rate)
            if self.is_root else None, root=0)
        if not self.is_root:
            weights, optimizer.state, optimizer.iterations, optimizer.learning_rate = root_state
            model.set_weights(weights)
        self._build_buffers()
        return max(batches for _, batches in everyone)

    def average(self, grads: dict, loss: float, count: float, hits: float, when: str = ""):
        """Replaces each of ``grads`` (name -> array, this rank's mean gradient over its ``count``
        counted rows) in place by the global mean gradient, with one ``Allreduce``; sets the
        running statistics to the count-weighted mean of every rank's. Returns the global
        ``(loss, count, hits)``: the mean loss, the counted rows and the correct predictions.
        Raises on every rank if any rank kept an error (its gradients are then zeros)."""
        flat, offset = self.flat, 0
        state = self.model.recurrent.state_dict() if self.buffer_names else {}
        arrays = [grads[name] for name in self.gradient_shapes] + [state[name] for name in self.buffer_names]
        for array in arrays:
            np.multiply(array.reshape(-1), count, out=flat[offset : offset + array.size])
            offset += array.size
        if self.table_shape is not None:
            rows, (vocabulary, features) = self.model._embedding_rows, self.table_shape
            table = flat[offset : offset + vocabulary * features].reshape(vocabulary, features)
            used = flat[offset + table.size : offset + table.size + vocabulary]
            table.fill(0)
            used.fill(0)
            table[rows] = grads["embedding.weight"] * count
            used[rows] = 1
            offset += table.size + vocabulary
        flat[offset + _LOSS], flat[offset + _COUNT], flat[offset + _HITS] = loss * count, count, hits
        flat[offset + _FAILED] = self.error is not None
        self.communicator.Allreduce(MPI.IN_PLACE, flat, op=MPI.SUM)
        if flat[offset + _FAILED]:
            self._raise_failures(when)
        total = float(flat[offset + _COUNT])
        offset = 0
        for array in arrays:
            np.divide(flat[offset : offset + array.size].reshape(array.shape), total, out=array)
            offset += array.size
        if self.table_shape is not None:
            rows = np.flatnonzero(used)
            self.model._embedding_rows, grads["embedding.weight"] = rows, table[rows] / total
            offset += table.size + vocabulary
        if self.buffer_names:
            self.model.recurrent.load_state_dict(state)
        return float(flat[offset + _LOSS]) / total, total, float(flat[offset + _HITS])

    def sum(self, *values: float, when: str = ""):
        """Each value summed across the ranks (validation scores: one small ``Allreduce``);
        raises on every rank if any rank kept an error."""
        totals = np.array([*values, self.error is not None], np.float64)
        self.communicator.Allreduce(MPI.IN_PLACE, totals, op=MPI.SUM)
        if totals[-1]:
            self._raise_failures(when)
        return tuple(float(v) for v in totals[:-1])
