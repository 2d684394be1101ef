"""`fastgru bench`: fastgru alone on the benchmark's grid (the peers are bench/run.py's, outside
the package), on the same shapes and inputs as bench/run.py."""

import io
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from fastgru.commands import bench

BENCH = Path(__file__).resolve().parents[1] / "bench"


@pytest.mark.best_isa_only
def test_times_every_cell_of_the_quick_grid_checks_it_and_names_the_peers_script():
    out = io.StringIO()
    assert bench.main(["--quick", "--threads", "1,2", "--min-repeats", "1", "--target-seconds", "0.001"], out) == 0
    report = out.getvalue()
    assert "### 1 thread\n" in report and "### 2 threads\n" in report
    for T, B, I, H in bench.GRID["quick"]:
        for conv in ("after", "before"):
            for mode in ("inference", "bf16 inference", "int8 inference", "train"):
                rows = [line for line in report.splitlines()
                        if line.startswith(f"| {T} | {B} | {I} | {H} | {conv} | {mode} | ")]
                assert len(rows) == 2 and all(row.endswith("| ok |") for row in rows)
    assert report.rstrip().endswith(bench.PEERS_NOTE) and "`python bench/run.py`" in bench.PEERS_NOTE


@pytest.mark.parametrize("argument, value, message", [
    ("--threads", "0", "--threads: expected comma-separated thread counts >= 1, got '0'"),
    ("--threads", "1,x", "--threads: expected comma-separated thread counts >= 1, got '1,x'"),
    ("--min-repeats", "0", "--min-repeats: expected a number > 0, got 0"),
    ("--target-seconds", "-1", "--target-seconds: expected a number > 0, got -1.0"),
    ("--cell-budget", "0", "--cell-budget: expected a number > 0, got 0.0"),
])
def test_bad_arguments_are_refused_naming_them(capsys, argument, value, message):
    with pytest.raises(SystemExit) as exit_info:
        bench.main([argument, value])
    assert exit_info.value.code == 2 and message in capsys.readouterr().err


def test_timed_runs_follow_the_benchmark_rule():
    assert bench.timed_runs(0.01, 5, 0.5, 20.0) == 50  # enough for the target
    assert bench.timed_runs(1.0, 5, 0.5, 20.0) == 5  # at least min_repeats
    assert bench.timed_runs(10.0, 5, 0.5, 20.0) == 2  # min_repeats would exceed the budget: as many as fit
    assert bench.timed_runs(60.0, 5, 0.5, 20.0) == 1


def test_the_grid_is_bench_run_py_s():
    sets = json.loads((BENCH / "shapes.json").read_text())["sets"]
    assert {name: tuple(tuple(s[k] for k in "TBIH") for s in sets[name]["sequences"]) for name in bench.GRID} == \
        bench.GRID


def test_the_inputs_are_those_bench_run_py_writes(tmp_path):
    code = ("import sys; from pathlib import Path; from harness.data import make_data; "
            "make_data(Path(sys.argv[1]), 10, 4, 96, 128, 3, with_backward=False)")
    subprocess.run([sys.executable, "-c", code, str(tmp_path)], cwd=BENCH, check=True, timeout=120,
                   env=dict(os.environ, PYTHONPATH=str(Path(bench.__file__).parents[2])))  # this fastgru
    ours = bench.problem(10, 4, 96, 128, 3)
    for name, array in ours.items():
        np.testing.assert_array_equal(np.fromfile(tmp_path / f"{name}.f32", np.float32).reshape(array.shape), array)
