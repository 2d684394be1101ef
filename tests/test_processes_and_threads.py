"""Processes and threads: children forked after multithreaded compute work, and training and
inference may share a layer across threads."""

import os
import signal
import subprocess
import sys
import textwrap
import threading

import numpy as np
import pytest

import fastgru

# Forks after a 2-thread inference (the parent's worker threads are not copied into a child)
# and checks that each child computes on 2 threads of a pool of its own and that its result
# equals the parent's: by default, after asking for 2 threads again, on a thread the child
# starts, and in a multiprocessing pool.
# A child that hangs is killed after CHILD_SECONDS and fails the script.
_FORKING_SCRIPT = textwrap.dedent("""
    import multiprocessing
    import os
    import pickle
    import select
    import sys
    import threading

    import numpy as np

    import fastgru

    CHILD_SECONDS = 30
    fastgru._core._force_threads(True)  # this small layer runs on 2 threads all the same
    fastgru.set_num_threads(2)
    layer = fastgru.GRU(32, 64, seed=0)
    x = np.random.default_rng(0).standard_normal((10, 16, 32)).astype(np.float32)
    parent_y, _ = layer(x)  # B = 16, H = 64: enough work for 2 threads

    def compute(_=None):
        before = fastgru._core._regions_on_several_threads()
        y = layer(x)[0]
        threaded = fastgru._core._regions_on_several_threads() > before
        return (fastgru.get_num_threads() if threaded else 1), y

    def in_child(how):
        if how == "ask for 2 threads":
            fastgru.set_num_threads(2)
        if how != "on a new thread":
            return compute()
        result = []
        worker = threading.Thread(target=lambda: result.append(compute()))
        worker.start()
        worker.join()
        return result[0]

    def forked(how):
        read_end, write_end = os.pipe()
        pid = os.fork()
        if pid == 0:
            os.close(read_end)
            with os.fdopen(write_end, "wb") as out:
                pickle.dump(in_child(how), out)
            os._exit(0)
        os.close(write_end)
        ready, _, _ = select.select([read_end], [], [], CHILD_SECONDS)
        if not ready:
            os.kill(pid, 9)
            sys.exit(f"forked child ({how}) hung")
        with os.fdopen(read_end, "rb") as result:
            outcome = pickle.load(result)
        os.waitpid(pid, 0)
        return outcome

    expected_threads = {"by default": 2, "ask for 2 threads": 2, "on a new thread": 2}
    for how, threads in expected_threads.items():
        child_threads, child_y = forked(how)
        assert child_threads == threads, (how, child_threads)
        assert np.array_equal(child_y, parent_y), how

    with multiprocessing.get_context("fork").Pool(1) as pool:
        _, pool_y = pool.apply_async(compute).get(timeout=CHILD_SECONDS)
    assert np.array_equal(pool_y, parent_y), "multiprocessing"
    print("children agree")
""")


def test_children_forked_after_multithreaded_compute_work(tmp_path, isa):
    script = tmp_path / "fork.py"
    script.write_text(_FORKING_SCRIPT)
    env = dict(os.environ, FASTGRU_ISA=isa)
    # Its own session: a timeout kills the script and any child it left hanging.
    process = subprocess.Popen([sys.executable, str(script)], env=env, stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, text=True, start_new_session=True)
    try:
        output, _ = process.communicate(timeout=240)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        output, _ = process.communicate()
        pytest.fail(f"the forking script hung:\n{output}")
    assert process.returncode == 0 and "children agree" in output, output


def _layer(cell):
    if cell == "ligru":
        return fastgru.LiGRU(5, 8, seed=1)
    return getattr(fastgru, cell.upper())(5, 8, seed=1)


@pytest.mark.parametrize("cell", ["gru", "mgu", "ligru"])
def test_training_and_inference_on_other_threads_share_a_layer(cell):
    layer = _layer(cell)
    rng = np.random.default_rng(2)
    x = rng.standard_normal((6, 3, 5)).astype(np.float32)
    x_t = x[0]
    dy = rng.standard_normal((6, 3, 8)).astype(np.float32)
    # Training changes a LiGRU's running statistics, so its inference results change with them.
    expected_y, _ = layer(x)
    expected_y_t, _ = layer.step(x_t)
    iterations = 500
    errors, mismatches = [], []

    def shrink_recurrent_weights(params):
        params["weight_hh_l0"] *= 0.999

    def train():
        try:
            for i in range(iterations):
                layer.forward(x, train=True)
                layer.backward(dy)
                if cell == "ligru" and i % 10 == 9:
                    layer._update_parameters(shrink_recurrent_weights)
        except Exception as error:  # noqa: BLE001 - reported by the main thread
            errors.append(error)

    def infer():
        try:
            for _ in range(iterations):
                for y, expected in ((layer(x)[0], expected_y), (layer.step(x_t)[0], expected_y_t)):
                    if y.shape != expected.shape or not np.isfinite(y).all():
                        mismatches.append(y)
                    elif cell != "ligru" and not np.array_equal(y, expected):
                        mismatches.append(y)
        except Exception as error:  # noqa: BLE001 - reported by the main thread
            errors.append(error)

    threads = [threading.Thread(target=train)] + [threading.Thread(target=infer) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors, errors[:3]
    assert not mismatches, f"{len(mismatches)} inference results differ from the layer's"
    # Nothing was lost: inference runs the layer's current parameters and statistics.
    rebuilt = _layer(cell)
    rebuilt.load_state_dict(layer.state_dict())
    np.testing.assert_array_equal(layer(x)[0], rebuilt(x)[0])


# PyTorch, imported first, loads the same OpenMP runtime as fastgru and starts its pool on the
# main thread: a child forked after that (a DataLoader's workers, say) must still compute.
_FORK_AFTER_TORCH_SCRIPT = textwrap.dedent("""
    import os
    import sys

    import torch
    import numpy as np
    import fastgru

    torch.set_num_threads(2)
    a = torch.randn(256, 4096)
    for _ in range(20):
        a = torch.tanh(a) * 1.0001  # element-wise ops over 1M values: torch's OpenMP pool
    fastgru.set_num_threads(2)
    layer = fastgru.GRU(32, 64, seed=0)
    x = np.random.default_rng(0).standard_normal((10, 16, 32)).astype(np.float32)
    pid = os.fork()
    if pid == 0:
        os._exit(0 if np.isfinite(layer(x)[0]).all() else 1)
    _, status = os.waitpid(pid, 0)
    sys.exit(os.waitstatus_to_exitcode(status))
""")


@pytest.mark.best_isa_only  # the fork, not the kernels, is under test
def test_a_child_forked_after_another_librarys_openmp_work_computes(tmp_path):
    pytest.importorskip("torch")
    script = tmp_path / "fork_after_torch.py"
    script.write_text(_FORK_AFTER_TORCH_SCRIPT)
    process = subprocess.Popen([sys.executable, str(script)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                               text=True, start_new_session=True)
    try:
        output, _ = process.communicate(timeout=120)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        pytest.fail("the child forked after PyTorch's OpenMP work hung")
    assert process.returncode == 0, output
