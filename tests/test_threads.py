"""fastgru's threads: a step loop that goes on alone mid-way computes the same bits, small
models stay on one thread, and the default thread count follows the CPUs the process may use."""

import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import fastgru
from fastgru import _core

CASES = [
    ("gru", dict(reset_after=True)),
    ("gru", dict(reset_after=False)),
    ("gru", dict(reset_after=True, recurrent_dropout=0.3, zoneout=0.2)),
    ("gru", dict(reset_after=False, recurrent_dropout=0.3)),
    ("mgu", dict()),
    ("mgu", dict(recurrent_dropout=0.3, zoneout=0.2)),
    ("ligru", dict()),
]


def _layer(cell, options):
    kind = {"gru": fastgru.GRU, "mgu": fastgru.MGU, "ligru": fastgru.LiGRU}[cell]
    # H = 100: several panels of 3W units even for 16-wide vectors, so each thread gets some.
    return kind(6, 100, seed=2, **options)


def _train_step(cell, options, x, dy):
    # A new layer each time: training moves a LiGRU's running statistics.
    layer = _layer(cell, options)
    layer._mask_seeds = np.random.default_rng([7, 7])
    y, h_n = layer.forward(x, train=True)
    dx, _ = layer.backward(dy)
    inference, _ = layer(x)
    return [y, h_n, dx, inference] + [g.copy() for g in layer.grads.values()]


@pytest.mark.parametrize("cell, options", CASES)
def test_a_step_loop_that_goes_on_alone_gives_the_same_bits(cell, options, forced_threads):
    # B = 3 is too few rows to split: two threads split the hidden units and meet every step,
    # and the loops go on on thread 0 alone after their third step, as on a busy machine.
    rng = np.random.default_rng(1)
    x = rng.standard_normal((12, 3, 6)).astype(np.float32)
    dy = rng.standard_normal((12, 3, 100)).astype(np.float32)
    forced_threads(1)
    alone = _train_step(cell, options, x, dy)
    forced_threads(2)
    together = _train_step(cell, options, x, dy)
    threaded = _core._regions_on_several_threads()
    _core._collapse_step_loops_after(2)
    try:
        collapsed = _train_step(cell, options, x, dy)
    finally:
        _core._collapse_step_loops_after(-1)
    assert _core._regions_on_several_threads() > threaded
    for one, two, three in zip(alone, together, collapsed):
        np.testing.assert_array_equal(one, two)
        np.testing.assert_array_equal(one, three)


def test_small_models_run_on_one_thread():
    # The demo's layer (I = 1, H = 32, B = 16, T = 12): no region pays for a second thread.
    fastgru.set_num_threads(0)
    layer = fastgru.GRU(1, 32, seed=0)
    x = np.random.default_rng(0).standard_normal((12, 16, 1)).astype(np.float32)
    layer(x)
    before = _core._regions_on_several_threads()
    for _ in range(20):
        layer.forward(x, train=True)
        layer.backward(np.ones((12, 16, 32), np.float32))
        layer(x)
    assert _core._regions_on_several_threads() == before


_DEFAULTS_SCRIPT = textwrap.dedent("""
    import os, sys
    import fastgru
    first = fastgru.get_num_threads()
    os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[0]})
    import time; time.sleep(0.15)  # the mask is read again after 100 ms
    print(first, fastgru.get_num_threads())
""")


def test_default_threads_follow_the_affinity_mask_and_openmp_caps():
    cpus = len(os.sched_getaffinity(0))
    env = {k: v for k, v in os.environ.items() if k != "OMP_NUM_THREADS"}
    out = subprocess.run([sys.executable, "-c", _DEFAULTS_SCRIPT], env=env, capture_output=True,
                         text=True, check=True).stdout.split()
    assert out == [str(cpus), "1"]
    capped = subprocess.run([sys.executable, "-c", "import fastgru; print(fastgru.get_num_threads())"],
                            env=dict(env, OMP_NUM_THREADS="1"), capture_output=True, text=True, check=True)
    assert capped.stdout.split() == ["1"]
