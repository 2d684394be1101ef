"""Data-parallel training over MPI: ``Model.fit(..., communicator=comm)`` under ``mpiexec -n 2``
(tests/mpi_training.py) against one process training on all the samples."""

import csv
import json
import os
import re
import signal
import subprocess
import sys

import numpy as np
import pytest

import fastgru

from . import mpi_training

pytest.importorskip("mpi4py")  # the [test] extra installs it, with mpich's mpiexec beside python

HERE = os.path.dirname(os.path.abspath(__file__))


def run_ranks(case, tmp_path, ranks=2, timeout=300):
    """Runs the case on ``ranks`` MPI processes; returns what each rank wrote: (weights,
    history) or the error it raised ("<class>: <message>"). Ranks still running after
    ``timeout`` seconds (one waiting for another forever) are killed, and the test fails."""
    mpiexec = os.path.join(os.path.dirname(sys.executable), "mpiexec")
    if not os.path.exists(mpiexec):
        pytest.fail(f"no mpiexec beside {sys.executable}: pip install mpich (the [mpi] extra)")
    # The ranks import the fastgru this process imported (a source tree's or an installed one).
    package_parent = os.path.dirname(os.path.dirname(fastgru.__file__))
    environment = {**os.environ, "PYTHONPATH": os.pathsep.join([package_parent, os.environ.get("PYTHONPATH", "")])}
    # A session of its own: on a timeout, mpiexec and every rank are killed together (killing
    # mpiexec alone would leave ranks spinning in a collective).
    process = subprocess.Popen([mpiexec, "-n", str(ranks), sys.executable, "-m", "mpi4py",
                                os.path.join(HERE, "mpi_training.py"), case, str(tmp_path)],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=environment,
                               start_new_session=True)
    try:
        stdout, stderr = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        stdout, stderr = process.communicate()
        pytest.fail(f"{case}: the ranks were still running after {timeout} s (one waiting for another?)\n"
                    f"{stdout}{stderr}")
    result = subprocess.CompletedProcess(process.args, process.returncode, stdout, stderr)
    assert result.returncode == 0, result.stdout + result.stderr
    outcomes = []
    for rank in range(ranks):
        error = tmp_path / f"rank{rank}.error"
        if error.exists():
            outcomes.append(error.read_text())
            continue
        with np.load(tmp_path / f"rank{rank}.npz") as data:
            outcomes.append(({k: data[k] for k in data.files if k != "history"}, json.loads(str(data["history"]))))
    return outcomes, result.stdout + result.stderr


def train_alone(case):
    """The same model on all the samples in one process, with the global batch size."""
    make_model, X, y, validation, options = mpi_training.case(case)
    model = make_model()
    history = model.fit(X, y, batch_size=2 * mpi_training.LOCAL_BATCH, validation_data=validation, shuffle=False,
                        verbose=0, **options)
    return model.get_weights(), history.history


@pytest.mark.best_isa_only  # the ranks compute on the best instruction set
@pytest.mark.parametrize("case", ["last", "uneven", "sequence", "tokens", "temporal"])
def test_two_ranks_with_half_batches_train_as_one_process(case, tmp_path):
    """2 ranks, each with half the samples and batch b/2, reach the weights of one process with
    every sample and batch b (float64: to rounding), and log the same global losses; the ranks
    agree exactly. "last": Adam, clipping, validation, EarlyStopping and ReduceLROnPlateau;
    "uneven": rank 1 runs out of samples one step before rank 0 each epoch; "sequence": ragged
    sequences, a per-step cross-entropy weighted by each rank's real steps, SGD with momentum;
    "tokens": a token model, whose AdamW steps the embedding rows that any rank used;
    "temporal": ragged sequences with a weight per step (sample_weight, a list of (T_i,)),
    Adam."""
    (weights0, history0), (weights1, history1) = run_ranks(case, tmp_path)[0]
    expected_weights, expected_history = train_alone(case)
    assert sorted(weights0) == sorted(expected_weights)
    for name, expected in expected_weights.items():
        assert np.array_equal(weights0[name], weights1[name]), name
        np.testing.assert_allclose(weights0[name], expected, rtol=0, atol=1e-12, err_msg=name)
    assert history0 == history1
    assert sorted(history0) == sorted(expected_history)
    for key, values in expected_history.items():
        np.testing.assert_allclose(history0[key], values, rtol=1e-12, err_msg=key)
    if case == "temporal":
        # the per-step weights took part: without them, another training
        make_model, X, y, _, _ = mpi_training.case(case)
        unweighted = make_model().fit(X, y, batch_size=2 * mpi_training.LOCAL_BATCH, shuffle=False, epochs=3, verbose=0)
        assert abs(unweighted.history["loss"][0] - history0["loss"][0]) > 1e-3
    if case == "last":
        # The callbacks acted: the rate was lowered and training stopped early, on both ranks alike.
        assert len(history0["loss"]) < 6 and min(history0["learning_rate"]) < 0.02


@pytest.mark.best_isa_only
def test_only_rank_zero_prints(tmp_path):
    _, output = run_ranks("sequence", tmp_path)
    assert output.count("Epoch 1/3") == 1 and output.count("Epoch 3/3") == 1


@pytest.mark.best_isa_only
def test_ranks_training_different_settings_all_refuse(tmp_path):
    """Rank 1 asks for another batch size: every rank raises, naming it (none hangs)."""
    errors, _ = run_ranks("mismatch", tmp_path)
    assert all(isinstance(e, str) and "batch_size is" in e for e in errors), errors


# What each fault of mpi_training.FAULTS raises on every rank: (class, failing ranks, pattern).
FAULT_ERRORS = {
    "small_shard": ("ValueError", [1], r"validation_split: on rank 1 \(of 2\): 1 samples cannot be split"),
    "empty_shard": ("ValueError", [1], r"X: on rank 1 \(of 2\): expected shape \(samples, steps, 3\).*"
                                       r"got shape \(0, 6, 3\)"),
    "wrong_features": ("ValueError", [1], r"X: on rank 1 \(of 2\): expected shape .*got shape \(8, 6, 4\)"),
    "wrong_targets": ("ValueError", [1], r"y: on rank 1 \(of 2\): expected 8 targets \(one per sequence\), got 7"),
    "negative_weight": ("ValueError", [1], r"sample_weight: on rank 1 \(of 2\): expected weights >= 0, got -1"),
    "bad_validation": ("ValueError", [1], r"validation_data\[0\]: on rank 1 \(of 2\): expected shape"),
    "two_ranks_refuse": ("ValueError", [0, 1], r"X: on rank 0 \(of 2\): expected shape .*got shape \(12, 6, 2\); "
                                               r"sample_weight: on rank 1 \(of 2\): expected shape \(8,\)"),
    "callback_begin": ("OSError", [1], r"checkpoint: on rank 1 \(of 2\): cannot write .*on_train_begin"),
    "callback_epoch_begin": ("ValueError", [1], r"schedule: on rank 1 \(of 2\): .* on_epoch_begin of epoch 2"),
    "callback_epoch_end": ("KeyError", [1], r"monitor: on rank 1 \(of 2\): 'val_auc' is not among the logs.*"
                                            r"at the end of epoch 2"),
    "callback_train_end": ("OSError", [0], r"checkpoint: on rank 0 \(of 2\): cannot restore .*on_train_end"),
    "validation_fails": ("ValueError", [1], r"loss: on rank 1 \(of 2\): my loss cannot take this batch.*"
                                            r"while scoring the validation data of epoch 1"),
    "loss_fails": ("ValueError", [1], r"loss: on rank 1 \(of 2\): my loss cannot take this batch.*"
                                      r"at epoch 2, batch 1"),
    "progress_fails": ("OSError", [0], r"progress: on rank 0 \(of 2\): the terminal is gone.*at the end of epoch 1"),
    "rate_on_one_rank": ("ValueError", None, r"learning_rate: every rank must train with the same rate, but at the "
                                             r"end of epoch 1 the ranks' are 0.02 on rank 0, 0.01 on rank 1"),
}


@pytest.mark.best_isa_only
@pytest.mark.parametrize("case", mpi_training.FAULTS)
def test_a_failure_on_some_ranks_raises_on_every_rank(case, tmp_path):
    """Inputs refused on one rank (too few samples for validation_split, none at all, a wrong
    shape, a bad weight or validation set), or a failure on one rank during training (a
    callback, a user's loss in a step or in scoring, rank 0's progress bar), or a callback
    setting one rank's learning rate apart: every rank raises the same error, of the
    failing rank's class, naming the failing ranks and why, within the timeout; before the
    fix the other ranks waited in the next collective forever."""
    kind, ranks, pattern = FAULT_ERRORS[case]
    errors, output = run_ranks(case, tmp_path, timeout=60)
    assert all(isinstance(e, str) for e in errors), (case, output)
    assert errors[0] == errors[1], errors  # the same error on every rank
    assert errors[0].startswith(f"{kind}: "), errors[0]
    assert re.search(pattern, errors[0]), errors[0]
    assert errors[0].endswith("; raised on every rank)"), errors[0]
    if ranks is not None:
        named = "ranks 0, 1" if len(ranks) == 2 else f"rank {ranks[0]}"
        assert f"(failed on {named} " in errors[0], errors[0]


@pytest.mark.best_isa_only
def test_a_callback_that_stops_one_rank_stops_every_rank(tmp_path):
    """A callback on rank 1 only sets stop_training after epoch 2: both ranks stop there
    (rank 0 does not wait alone in epoch 3's first step), with the same weights."""
    (weights0, history0), (weights1, history1) = run_ranks("stop_on_one_rank", tmp_path, timeout=60)[0]
    assert len(history0["loss"]) == len(history1["loss"]) == 2 and history0 == history1
    for name, value in weights0.items():
        assert np.array_equal(value, weights1[name]), name


@pytest.mark.best_isa_only
def test_callbacks_write_their_files_once_from_rank_zero(tmp_path):
    """Both ranks are given the same CSVLogger and ModelCheckpoint paths: the log has one header
    and one row per epoch (not one per rank), and the checkpoints hold the weights both ranks
    ended with."""
    (weights0, history0), (weights1, _) = run_ranks("writers", tmp_path, timeout=60)[0]
    with open(tmp_path / "log.csv", newline="") as handle:
        rows = list(csv.reader(handle))
    assert rows[0] == ["epoch", "learning_rate", "loss", "val_loss"]
    assert [row[0] for row in rows[1:]] == ["0", "1", "2"]
    assert [float(row[2]) for row in rows[1:]] == history0["loss"]
    last = fastgru.load(tmp_path / "model-3.safetensors").get_weights()
    for name, value in weights0.items():
        assert np.array_equal(last[name], value) and np.array_equal(weights1[name], value), name
    best = int(np.argmin(history0["val_loss"]))
    best_saved = fastgru.load(tmp_path / "best.safetensors").get_weights()
    for name, value in fastgru.load(tmp_path / f"model-{best + 1}.safetensors").get_weights().items():
        assert np.array_equal(best_saved[name], value), name
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".")) == []  # no temporary file left


def test_a_communicator_that_is_not_one_is_refused():
    make_model, X, y, _, _ = mpi_training.case("last")
    with pytest.raises(TypeError, match="communicator: expected an mpi4py intracommunicator"):
        make_model().fit(X, y, epochs=1, verbose=0, communicator="COMM_WORLD")


def test_one_rank_trains_as_without_a_communicator():
    from mpi4py import MPI

    make_model, X, y, validation, options = mpi_training.case("last")
    alone, together = make_model(), make_model()
    history = alone.fit(X, y, batch_size=4, validation_data=validation, shuffle=False, verbose=0, **options)
    history_mpi = together.fit(X, y, batch_size=4, validation_data=validation, shuffle=False, verbose=0,
                               communicator=MPI.COMM_SELF, **options)
    for name, value in alone.get_weights().items():
        np.testing.assert_allclose(together.get_weights()[name], value, rtol=0, atol=1e-13, err_msg=name)
    assert history.history.keys() == history_mpi.history.keys()
