"""Data-parallel training over MPI: ``Model.fit(..., communicator=comm)`` under ``mpiexec -n 2``
(tests/mpi_training.py) against one process training on all the samples."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest

import fastgru

from . import mpi_training

pytest.importorskip("mpi4py")  # the [test] extra installs it, with mpich's mpiexec beside python

HERE = os.path.dirname(os.path.abspath(__file__))


def run_ranks(case, tmp_path, ranks=2):
    """Runs the case on ``ranks`` MPI processes; returns what each rank wrote: (weights,
    history) or the error message it raised."""
    mpiexec = os.path.join(os.path.dirname(sys.executable), "mpiexec")
    if not os.path.exists(mpiexec):
        pytest.fail(f"no mpiexec beside {sys.executable}: pip install mpich (the [mpi] extra)")
    # The ranks import the fastgru this process imported (a source tree's or an installed one).
    package_parent = os.path.dirname(os.path.dirname(fastgru.__file__))
    environment = {**os.environ, "PYTHONPATH": os.pathsep.join([package_parent, os.environ.get("PYTHONPATH", "")])}
    result = subprocess.run([mpiexec, "-n", str(ranks), sys.executable, "-m", "mpi4py",
                             os.path.join(HERE, "mpi_training.py"), case, str(tmp_path)],
                            capture_output=True, text=True, timeout=300, env=environment)
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
@pytest.mark.parametrize("case", ["last", "uneven", "sequence", "tokens"])
def test_two_ranks_with_half_batches_train_as_one_process(case, tmp_path):
    """2 ranks, each with half the samples and batch b/2, reach the weights of one process with
    every sample and batch b (float64: to rounding), and log the same global losses; the ranks
    agree exactly. "last": Adam, clipping, validation, EarlyStopping and ReduceLROnPlateau;
    "uneven": rank 1 runs out of samples one step before rank 0 each epoch; "sequence": ragged
    sequences, a per-step cross-entropy weighted by each rank's real steps, SGD with momentum;
    "tokens": a token model, whose AdamW steps the embedding rows that any rank used."""
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
