"""fastgru.dask: scoring dask arrays and bags on a distributed LocalCluster of 2 worker processes,
against the model's own predictions in this process."""

import os
import pickle

import numpy as np
import pytest

import fastgru

da = pytest.importorskip("dask.array")  # the [test] extra installs dask[distributed]
db = pytest.importorskip("dask.bag")
distributed = pytest.importorskip("distributed")

import fastgru.dask as fastgru_dask  # noqa: E402


class CountingGRU(fastgru.GRU):
    """A GRU that notes each time it is pickled, in any process, in the file that
    FASTGRU_TEST_PICKLE_LOG names (the workers inherit the variable)."""

    def __getstate__(self):
        with open(os.environ["FASTGRU_TEST_PICKLE_LOG"], "a") as log:
            log.write(f"{os.getpid()}\n")
        return super().__getstate__()


@pytest.fixture(scope="module")
def client(tmp_path_factory):
    os.environ["FASTGRU_TEST_PICKLE_LOG"] = str(tmp_path_factory.mktemp("pickles") / "log")
    try:
        with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None,
                                      silence_logs=40) as cluster, distributed.Client(cluster) as client:
            yield client
    finally:
        del os.environ["FASTGRU_TEST_PICKLE_LOG"]


def sequences(count, steps, features, seed=0, dtype=np.float32):
    return np.random.default_rng(seed).standard_normal((count, steps, features)).astype(dtype)


@pytest.mark.parametrize("head", ["last", "sequence"])
def test_a_model_scores_a_dask_array_as_in_one_process(client, head):
    model = fastgru.Model(fastgru.GRU(4, 8, num_layers=2, seed=0), outputs=3, head=head, seed=1)
    X = sequences(50, 7, 4)
    lazy = fastgru_dask.predict(model, da.from_array(X, chunks=(12, 7, 4)), batch_size=5)
    assert isinstance(lazy, da.Array) and lazy.shape == model.predict(X).shape
    np.testing.assert_allclose(lazy.compute(), model.predict(X), rtol=0, atol=1e-6)


@pytest.mark.parametrize("mode", ["bf16", "int8"])
def test_a_quantized_model_scores_as_in_one_process(client, mode):
    model = fastgru.Model(fastgru.GRU(4, 8, batch_first=True, seed=0), outputs=2, seed=1).quantize(mode)
    X = sequences(30, 7, 4)
    lazy = fastgru_dask.predict(model, da.from_array(X, chunks=(8, 7, 4)), batch_size=5)
    np.testing.assert_allclose(lazy.compute(), model.predict(X), rtol=0, atol=1e-6)


@pytest.mark.parametrize("head", ["last", "sequence"])
def test_a_token_model_scores_dask_ids_and_bags(client, head):
    model = fastgru.Model(fastgru.GRU(4, 8, batch_first=True, seed=0), outputs=5, head=head, seed=1, vocab_size=9,
                          padding_id=0)
    ids = np.random.default_rng(2).integers(0, 9, (30, 6))
    lazy = fastgru_dask.predict(model, da.from_array(ids, chunks=(7, 6)))
    np.testing.assert_allclose(lazy.compute(), model.predict(ids), rtol=0, atol=1e-6)
    items = [ids[i, : 2 + i % 5] for i in range(len(ids))]
    scored = fastgru_dask.predict(model, db.from_sequence(items, npartitions=3)).compute()
    for got, want in zip(scored, model.predict(items)):
        np.testing.assert_allclose(got, want, rtol=0, atol=1e-6)


@pytest.mark.parametrize("batch_first", [False, True])
def test_a_layer_scores_a_dask_array_as_in_one_process(client, batch_first):
    """y (N, T, D*H) batch first whatever the layer's layout, and h_n (L*D, N, H)."""
    layer = fastgru.GRU(4, 6, num_layers=2, bidirectional=True, batch_first=batch_first, seed=2)
    X = sequences(30, 5, 4, seed=1)
    y, h_n = layer(X if batch_first else X.transpose(1, 0, 2))
    y = y if batch_first else y.transpose(1, 0, 2)
    dask_X = da.from_array(X, chunks=(8, 5, 4))
    lazy_y, lazy_h_n = fastgru_dask.predict(layer, dask_X), fastgru_dask.predict(layer, dask_X, output="h_n")
    assert lazy_y.shape == y.shape and lazy_h_n.shape == h_n.shape
    np.testing.assert_allclose(lazy_y.compute(), y, rtol=0, atol=1e-6)
    np.testing.assert_allclose(lazy_h_n.compute(), h_n, rtol=0, atol=1e-6)


def test_a_bag_of_sequences_of_different_lengths(client):
    rng = np.random.default_rng(3)
    items = [rng.standard_normal((n, 3)).astype(np.float32) for n in rng.integers(1, 12, 23)]
    bag = db.from_sequence(items, npartitions=4)
    layer = fastgru.MGU(3, 5, seed=4)
    for head in ("last", "sequence"):
        model = fastgru.Model(layer, outputs=2, head=head, seed=5)
        scored = fastgru_dask.predict(model, bag, batch_size=4).compute()
        expected = model.predict(items)
        assert len(scored) == len(items)
        for got, want in zip(scored, expected):
            np.testing.assert_allclose(got, want, rtol=0, atol=1e-6)
    y = fastgru_dask.predict(layer, bag, batch_size=4).compute()
    h_n = fastgru_dask.predict(layer, bag, output="h_n", batch_size=4).compute()
    for item, got_y, got_h_n in zip(items, y, h_n):
        want_y, want_h_n = layer(item)
        np.testing.assert_allclose(got_y, want_y, rtol=0, atol=1e-6)
        np.testing.assert_allclose(got_h_n, want_h_n, rtol=0, atol=1e-6)


def test_the_model_is_pickled_once_per_worker_not_once_per_task(client):
    """16 blocks on 2 workers: the model is pickled once to submit the graph and at most once
    more for each worker it travels to, not for each of the 16 tasks."""
    log = os.environ["FASTGRU_TEST_PICKLE_LOG"]
    model = fastgru.Model(CountingGRU(4, 8, seed=0), outputs=2, seed=1)
    X = sequences(64, 6, 4)
    lazy = fastgru_dask.predict(model, da.from_array(X, chunks=(4, 6, 4)))
    assert lazy.npartitions == 16
    open(log, "w").close()
    np.testing.assert_allclose(lazy.compute(), model.predict(X), rtol=0, atol=1e-6)
    with open(log) as file:
        pickled = len(file.read().split())
    workers = len(client.scheduler_info()["workers"])
    assert 1 <= pickled <= 1 + workers, pickled


def test_each_worker_computes_on_its_own_thread_count(client):
    """Workers of one thread each: fastgru runs one thread in each, not the CPUs' count."""
    model = fastgru.Model(fastgru.GRU(4, 8, seed=0), outputs=1, seed=1)
    fastgru_dask.predict(model, da.from_array(sequences(40, 3, 4), chunks=(5, 3, 4))).compute()
    assert set(client.run(fastgru.get_num_threads).values()) == {1}


def test_a_npy_file_streams_through_block_by_block(client, tmp_path):
    """from_npy's graph carries the file's path, not its data; to_npy writes the predictions
    block by block on the workers."""
    X = sequences(96, 10, 4, seed=6)
    np.save(tmp_path / "X.npy", X)
    model = fastgru.Model(fastgru.GRU(4, 8, seed=7), outputs=2, seed=8)
    dask_X = fastgru_dask.from_npy(tmp_path / "X.npy", rows_per_chunk=16)
    assert dask_X.shape == X.shape and dask_X.npartitions == 6
    assert len(pickle.dumps(dict(dask_X.__dask_graph__()))) < X.nbytes / 8
    lazy = fastgru_dask.predict(model, dask_X)
    fastgru_dask.to_npy(lazy, tmp_path / "pred.npy")
    np.testing.assert_allclose(np.load(tmp_path / "pred.npy"), model.predict(X), rtol=0, atol=1e-6)


def test_a_bad_sequence_in_one_partition_raises_rather_than_hangs(client):
    """Scoring has no collective between workers (unlike fit over MPI): a task that raises on
    one worker fails the computation, with its error, while the other tasks finish."""
    rng = np.random.default_rng(9)
    items = [rng.standard_normal((n, 3)) for n in (4, 5, 6, 3, 7, 2)]
    items[4] = rng.standard_normal((7, 2))  # in the last of 3 partitions: 2 features, not 3
    model = fastgru.Model(fastgru.GRU(3, 4, seed=0), outputs=1, seed=1)
    future = client.compute(fastgru_dask.predict(model, db.from_sequence(items, npartitions=3)))
    with pytest.raises(ValueError, match=r"X\[0\]: expected shape \(steps >= 1, 3\), got \(7, 2\).*"
                                         r"\(in partition 2 of the bag: bag.to_delayed\(\)\[2\]\)"):
        future.result(timeout=60)
    # A layer's refusal names the partition too.
    future = client.compute(fastgru_dask.predict(model.recurrent, db.from_sequence(items, npartitions=3)))
    with pytest.raises(ValueError, match=r"got \(7, 2\) at position 0 of a partition \(in partition 2 of the bag"):
        future.result(timeout=60)


def test_bad_arguments_are_refused_by_name():
    model = fastgru.Model(fastgru.GRU(4, 8, seed=0), outputs=1, seed=1)
    X = da.from_array(sequences(10, 6, 4), chunks=(5, 3, 4))
    with pytest.raises(ValueError, match=r"X: expected chunks along the samples only .*rechunk\(\{1: -1, 2: -1\}\)"):
        fastgru_dask.predict(model, X)
    with pytest.raises(ValueError, match=r"X: expected shape \(samples, steps, 4\), got \(10, 6, 3\)"):
        fastgru_dask.predict(model, da.zeros((10, 6, 3), chunks=5))
    with pytest.raises(TypeError, match="X: expected a dask.array.Array .* got ndarray"):
        fastgru_dask.predict(model, np.zeros((10, 6, 4)))
    with pytest.raises(TypeError, match="model: expected a fastgru.Model or a fastgru layer"):
        fastgru_dask.predict("model", X)
    with pytest.raises(ValueError, match="output: a Model predicts its head's outputs"):
        fastgru_dask.predict(model, X.rechunk({1: -1, 2: -1}), output="h_n")
    with pytest.raises(ValueError, match="output: expected one of 'y', 'h_n', got 'c_n'"):
        fastgru_dask.predict(model.recurrent, X, output="c_n")
    with pytest.raises(ValueError, match="batch_size: expected an int >= 1, got 0"):
        fastgru_dask.predict(model, X, batch_size=0)


@pytest.mark.best_isa_only  # the workers compute on the best instruction set
def test_grid_search_on_the_cluster_finds_what_a_local_search_finds(client):
    """GridSearchCV under joblib's Dask backend: the same best parameters and scores as in this
    process."""
    joblib = pytest.importorskip("joblib")
    from sklearn.model_selection import GridSearchCV

    from fastgru.estimators import GRURegressor

    rng = np.random.default_rng(9)
    X = rng.standard_normal((60, 8, 2))
    y = X[:, -2:, 0].sum(axis=1) + 0.1 * rng.standard_normal(60)
    grid = {"hidden_size": [4, 8], "learning_rate": [1e-2, 3e-2]}

    def search():
        estimator = GRURegressor(epochs=8, batch_size=16, ensemble_size=1, dtype="float64", random_state=0)
        return GridSearchCV(estimator, grid, cv=3, n_jobs=-1).fit(X, y)

    with joblib.parallel_backend("dask"), distributed.get_task_stream(client) as tasks:
        distributed_search = search()
    workers = {task["worker"] for task in tasks.data}
    assert len(workers) == 2  # the fits ran on both workers
    with joblib.parallel_backend("sequential"):
        local_search = search()
    assert distributed_search.best_params_ == local_search.best_params_
    for key in ("mean_test_score", "split0_test_score", "split2_test_score"):
        np.testing.assert_allclose(distributed_search.cv_results_[key], local_search.cv_results_[key], rtol=1e-12)
    np.testing.assert_allclose(distributed_search.predict(X), local_search.predict(X), rtol=1e-12)
