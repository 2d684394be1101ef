"""Instruction-set dispatch, thread settings and the accuracy of the vectorized activations."""

import os
import subprocess
import sys

import numpy as np
import pytest

import fastgru
from fastgru import _core

from .helpers import normalised_error




def run_single_unit(weight_ih, x, h0):
    layer = fastgru.GRU(1, 1, seed=0)
    layer.load_state_dict(
        {
            "weight_ih_l0": np.array(weight_ih, dtype=np.float32).reshape(3, 1),
            "weight_hh_l0": np.zeros((3, 1), np.float32),
            "bias_ih_l0": np.zeros(3, np.float32),
            "bias_hh_l0": np.zeros(3, np.float32),
        }
    )
    y, _ = layer(x.reshape(1, -1, 1), h0)
    return y.reshape(-1).astype(np.float64)


GRID = np.concatenate([np.linspace(-30, 30, 20001), [-1e-6, 1e-6, 0.0, -100.0, 100.0]]).astype(np.float32)


def test_sigmoid_accuracy():
    # r = z = σ(x) (n's row is 0, so n = 0) and h0 = 1: y = z · h0 = σ(x).
    y = run_single_unit([0, 1, 0], GRID, np.ones((1, GRID.size, 1), np.float32))
    exact = 1 / (1 + np.exp(-GRID.astype(np.float64)))
    assert np.abs(y - exact).max() <= 3e-7


def test_tanh_accuracy():
    # z = σ(0) = 1/2 and h0 = 0: y = n / 2 = tanh(x) / 2.
    y = run_single_unit([0, 0, 1], GRID, None) * 2
    exact = np.tanh(GRID.astype(np.float64))
    assert np.abs(y - exact).max() <= 5e-7


def run_softplus(x):
    """softplus(x) through a LiGRU unit: z = σ(0) = 1/2 and h0 = 0 give y = n / 2, the batch
    normalisation an identity (γ = 1, β = μ = 0, σ² + ε = 1 to double rounding)."""
    layer = fastgru.LiGRU(1, 1, activation="softplus", bn_eps=1e-30, seed=0)
    layer.load_state_dict({
        "weight_ih_l0": np.array([[0], [1]], np.float32), "weight_hh_l0": np.zeros((2, 1), np.float32),
        "bn_weight_l0": np.ones(2, np.float32), "bn_bias_l0": np.zeros(2, np.float32),
        "bn_running_mean_l0": np.zeros(2, np.float32), "bn_running_var_l0": np.ones(2, np.float32),
    })
    y, _ = layer(x.reshape(1, -1, 1))
    return y.reshape(-1).astype(np.float64) * 2


def test_softplus_accuracy_and_saturation():
    # log(1 + e^−|x|) by its series: a few float32 ulps of max(1, softplus(x)), and relative
    # precision where softplus(x) ≈ e^x is tiny (down to float32's normal range).
    y = run_softplus(GRID)
    exact = np.logaddexp(0, GRID.astype(np.float64))
    assert (np.abs(y - exact) / np.maximum(exact, 1)).max() <= 2e-7
    normal = exact > 1e-37
    assert (np.abs(y - exact)[normal] / exact[normal]).max() <= 1e-6
    huge = run_softplus(np.array([1e30, -1e30, 3e38, np.nan], np.float32))
    np.testing.assert_allclose(huge[:3], [1e30, 0.0, 3e38], rtol=1e-7, atol=0)
    assert np.isnan(huge[3])


def test_activations_saturate_on_huge_inputs_and_keep_nan():
    x = np.array([1e30, -1e30, 3e38, np.nan], np.float32)
    sig = run_single_unit([0, 1, 0], x, np.ones((1, 4, 1), np.float32))
    tanh = run_single_unit([0, 0, 1], x, None) * 2
    np.testing.assert_allclose(sig[:3], [1.0, 0.0, 1.0], rtol=0, atol=1e-30)
    np.testing.assert_allclose(tanh[:3], [1.0, -1.0, 1.0], rtol=0, atol=1e-30)
    assert np.isnan(sig[3]) and np.isnan(tanh[3])


def test_info_reports_the_isa_in_use(isa):
    report = fastgru.info()
    assert report["isa"] == isa
    assert report["isas_available"][-1] == "scalar"
    assert isa in report["isas_available"]
    assert report["threads"] >= 1
    assert report["version"] == fastgru.__version__


def test_set_isa_rejects_unknown_names():
    with pytest.raises(ValueError, match="expected one of .*got 'sse9'"):
        _core.set_isa("sse9")


@pytest.mark.parametrize("forced", ["scalar", "avx2"])
def test_environment_variable_forces_a_lower_isa(forced):
    if forced not in _core.available_isas():
        pytest.skip(f"{forced} not available here")
    env = dict(os.environ, FASTGRU_ISA=forced)
    out = subprocess.run(
        [sys.executable, "-c", "import fastgru; print(fastgru.info()['isa'])"],
        env=env, capture_output=True, text=True, check=True,
    )
    assert out.stdout.strip() == forced


def test_environment_variable_with_an_unknown_isa_is_a_clear_error():
    env = dict(os.environ, FASTGRU_ISA="avx9000")
    out = subprocess.run(
        [sys.executable, "-c", "import fastgru, numpy as np; fastgru.GRU(2, 3)(np.zeros((1, 1, 2)))"],
        env=env, capture_output=True, text=True,
    )
    assert out.returncode != 0
    assert "FASTGRU_ISA" in out.stderr and "avx9000" in out.stderr


def test_thread_count_setting_round_trips_and_results_do_not_depend_on_it():
    layer = fastgru.GRU(40, 70, seed=1)
    x = np.random.default_rng(0).standard_normal((30, 3, 40)).astype(np.float32)
    previous = fastgru.get_num_threads()
    try:
        fastgru.set_num_threads(1)
        assert fastgru.get_num_threads() == 1
        y1, _ = layer(x)
        fastgru.set_num_threads(2)
        y2, _ = layer(x)
    finally:
        fastgru.set_num_threads(0)
    assert fastgru.get_num_threads() == previous
    assert normalised_error(y2, y1) <= 1e-6
    with pytest.raises(ValueError, match="n >= 0"):
        fastgru.set_num_threads(-1)
    with pytest.raises(TypeError):
        fastgru.set_num_threads(1.5)


def test_layers_keep_the_isa_they_were_made_with():
    layer = fastgru.GRU(8, 20, seed=2)
    x = np.random.default_rng(1).standard_normal((5, 2, 8)).astype(np.float32)
    y_before, _ = layer(x)
    for other in _core.available_isas():
        _core.set_isa(other)
        y_after, _ = layer(x)
        np.testing.assert_array_equal(y_before, y_after)


def test_threadpoolctl_limits_fastgru_threads():
    threadpoolctl = pytest.importorskip("threadpoolctl")
    fastgru.set_num_threads(0)  # follow OpenMP, which threadpoolctl drives
    with threadpoolctl.threadpool_limits(limits=1, user_api="openmp"):
        assert fastgru.get_num_threads() == 1
    assert fastgru.get_num_threads() >= 1


def test_info_command_prints_the_isa():
    out = subprocess.run([sys.executable, "-m", "fastgru", "info"], capture_output=True, text=True, check=True)
    fields = dict(line.split(": ", 1) for line in out.stdout.splitlines())
    assert fields["isa"] in _core.available_isas()
    assert fields["isas_available"].split(", ") == list(_core.available_isas())
    assert int(fields["threads"]) >= 1 and fields["version"] == fastgru.__version__
