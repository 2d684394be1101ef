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
"""

from __future__ import annotations

import numpy as np

try:
    from mpi4py import MPI
except ImportError as error:  # pragma: no cover - the [mpi] extra installs it
    raise ImportError('fit(communicator=...): needs mpi4py (pip install "fastgru[mpi]")') from error

__all__ = ["DataParallel"]

# Trailing slots of the flat buffer after the gradients and buffers.
_LOSS, _COUNT, _HITS = range(3)


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
        self.flat = np.empty(sum(sizes) + 3, layer.dtype)

    @property
    def is_root(self) -> bool:
        return self.rank == 0

    def start(self, settings: dict, local_batches: int) -> int:
        """Checks that every rank trains the same thing (``settings``: name -> value, compared
        across ranks), gives every rank rank 0's weights and optimiser state, and returns the
        steps per epoch: the most local batches of any rank (a rank that has run out of samples
        takes part in the remaining steps with none)."""
        model = self.model
        signature = {"layer": type(model.recurrent).__name__, "layer config": model.recurrent.config(),
                     "vocab_size": model.vocab_size, "padding_id": model.padding_id,
                     "outputs": model.outputs, "head": model.head, "loss": repr(model.loss),
                     "optimizer": type(model.optimizer).__name__, "clip_grad_norm": model.clip_grad_norm, **settings}
        everyone = self.communicator.allgather((signature, local_batches))
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
        return max(batches for _, batches in everyone)

    def average(self, grads: dict, loss: float, count: float, hits: float):
        """Replaces each of ``grads`` (name -> array, this rank's mean gradient over its ``count``
        counted rows) in place by the global mean gradient, with one ``Allreduce``; sets the
        running statistics to the count-weighted mean of every rank's. Returns the global
        ``(loss, count, hits)``: the mean loss, the counted rows and the correct predictions."""
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
        self.communicator.Allreduce(MPI.IN_PLACE, flat, op=MPI.SUM)
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

    def sum(self, *values: float):
        """Each value summed across the ranks (validation scores: one small ``Allreduce``)."""
        totals = np.array(values, np.float64)
        self.communicator.Allreduce(MPI.IN_PLACE, totals, op=MPI.SUM)
        return tuple(float(v) for v in totals)
