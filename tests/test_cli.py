"""The `fastgru` command: forecast, demo and bench run as a user runs them."""

import subprocess
import sys

import numpy as np
import pytest

import fastgru

pytestmark = pytest.mark.best_isa_only


def fastgru_command(*arguments, cwd=None):
    return subprocess.run([sys.executable, "-m", "fastgru", *arguments], capture_output=True, text=True, cwd=cwd,
                          timeout=600)


def test_forecast_writes_the_forecast_and_the_model(tmp_path):
    steps = np.arange(300)
    series = 50 + 20 * np.sin(steps * 2 * np.pi / 30)
    path = tmp_path / "load.csv"
    path.write_text("day,load,other\n" + "".join(f"{d},{v:.4f},1\n" for d, v in zip(steps, series)))
    result = fastgru_command("forecast", str(path), "--column", "load", "--horizon", "6", "--lookback", "40",
                             "--epochs", "40", "--save", str(tmp_path / "m.safetensors"), "--plot", "", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    lines = (tmp_path / "load_forecast.csv").read_text().splitlines()
    assert lines[0] == "step,load" and len(lines) == 7
    forecast = np.array([float(line.split(",")[1]) for line in lines[1:]])
    truth = 50 + 20 * np.sin(np.arange(300, 306) * 2 * np.pi / 30)
    assert np.abs(forecast - truth).max() < 6  # a fifth of the amplitude
    model = fastgru.load(tmp_path / "m.safetensors")
    assert model.metadata["column"] == "load" and model.metadata["horizon"] == 6
    assert model.metadata["scaler"]["low"] == pytest.approx(series.min(), abs=1e-3)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["load.csv", "load_forecast.csv", "m.safetensors"]  # no plot


def test_forecast_errors_are_clear(tmp_path):
    path = tmp_path / "s.csv"
    path.write_text("a,b\n1,2\n3,x\n")
    result = fastgru_command("forecast", str(path), "--column", "c", "--horizon", "2")
    assert result.returncode == 2 and "--column: expected one of ['a', 'b'], got 'c'" in result.stderr
    result = fastgru_command("forecast", str(path), "--column", "b", "--horizon", "2")
    assert result.returncode == 2 and "s.csv:3: column 'b' holds 'x', expected a number" in result.stderr
    result = fastgru_command("forecast", str(tmp_path / "none.csv"), "--column", "b", "--horizon", "2")
    assert result.returncode == 2 and "FILE: no such file" in result.stderr
    result = fastgru_command("forecast", str(path), "--column", "b", "--horizon", "1", "--lookback", "1",
                             "--output", str(tmp_path))
    assert result.returncode == 2 and "error:" in result.stderr and "Traceback" not in result.stderr
    result = fastgru_command("forecast", str(path), "--column", "b", "--horizon", "0")
    assert result.returncode == 2 and "--horizon: expected an int >= 1, got 0" in result.stderr


def test_demo_prints_scores_and_writes_its_plot(tmp_path):
    pytest.importorskip("matplotlib")
    result = fastgru_command("demo", "--members", "1", "--epochs", "30", "--plot", "plot.png", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    for text in ("fastgru GRU", "persistence", "AR(9)", "305.2", "Training time", "Plot: plot.png"):
        assert text in result.stdout
    assert (tmp_path / "plot.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_bench_runs_its_quick_set_and_names_the_peers_script():
    result = fastgru_command("bench", "--quick", "--threads", "1", "--min-repeats", "1", "--target-seconds", "0.01")
    assert result.returncode == 0, result.stderr
    row = next(line for line in result.stdout.splitlines() if line.startswith("| 10 | 4 | 96 | 128 | after | train |"))
    assert row.endswith("| ok |") and "run `python bench/run.py` in a checkout" in result.stdout
