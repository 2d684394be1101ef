"""bench/ucr.py's --evaluate train-cv: the fold helper and one tiny cross-validated set."""

import importlib.util
from pathlib import Path

import numpy as np
import pytest

pytestmark = pytest.mark.best_isa_only  # no kernel here that the other tests do not cover

UCR = Path(__file__).resolve().parents[1] / "bench" / "ucr.py"


@pytest.fixture(scope="module")
def ucr():
    spec = importlib.util.spec_from_file_location("bench_ucr", UCR)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_stratified_folds_partition_the_rows_and_lower_k_to_the_smallest_class(ucr):
    y = np.array([0] * 6 + [1] * 3)
    k, folds = ucr.stratified_folds(y, 3, seed=0)
    assert k == 3 and len(folds) == 3
    held = np.concatenate([held_out for _, held_out in folds])
    assert sorted(held) == list(range(9))
    for fit_rows, held_out in folds:
        assert not set(fit_rows) & set(held_out)
        assert np.bincount(y[held_out]).tolist() == [2, 1]
    k, folds = ucr.stratified_folds(y, 5, seed=0)
    assert k == 3 and len(folds) == 3
    with pytest.raises(ValueError):
        ucr.stratified_folds(np.array([0, 0, 0, 1]), 3, seed=0)


def test_take_indexes_arrays_and_lists(ucr):
    X = [np.zeros(3), np.ones(5), np.full(2, 2.0)]
    assert [len(s) for s in ucr.take(X, np.array([2, 0]))] == [2, 3]
    assert ucr.take(np.arange(6).reshape(3, 2), np.array([1])).tolist() == [[2, 3]]


def test_cross_validate_set_runs_on_the_training_split_only(ucr, monkeypatch):
    loaded = []
    load = ucr.load_ucr
    monkeypatch.setattr(ucr, "load_ucr", lambda name, split: loaded.append(split) or load(name, split))
    row = ucr.cross_validate_set("UnitTest", [0], {"epochs": 2, "hidden_size": 4, "ensemble_size": 1}, 3)
    assert loaded == ["train"]
    assert row["K"] == 3 and row["train"] == 20
    for key in ("gru", "previous", "1nn", "rf"):
        assert len(row[key]) == 1 and 0.0 <= row[key][0] <= 1.0
    assert len(row["seconds"]) == 3 and len(row["previous seconds"]) == 3
    assert "K |" in ucr.cv_table([row])
