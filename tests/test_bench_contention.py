"""`python bench/run.py --contention`: the busy processes beside each timed cell, and its report."""

import importlib.util
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[1] / "bench"
# The benchmark's harness lies in bench/harness, outside the package; spinners.py imports nothing of it.
_spec = importlib.util.spec_from_file_location("bench_spinners", BENCH / "harness" / "spinners.py")
spinners_module = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(spinners_module)
busy_cpus, SPINNER_MARKER = spinners_module.busy_cpus, spinners_module.SPINNER_MARKER

pytestmark = pytest.mark.best_isa_only


def running(pid):
    """Whether pid is a live process (a zombie is not)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except (FileNotFoundError, ProcessLookupError):
        return False


def spinners_on_machine():
    """{pid: parent pid} of every live spinner (their command line holds the marker)."""
    found = {}
    for entry in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{entry}/cmdline", "rb") as f:
                is_spinner = SPINNER_MARKER.encode() in f.read()
            with open(f"/proc/{entry}/stat") as f:
                parent = int(f.read().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError):
            continue
        if is_spinner and running(entry):
            found[int(entry)] = parent
    return found


def test_busy_cpus_runs_exactly_n_spinners_and_stops_them():
    with busy_cpus(3) as spinners:
        ours = {pid for pid, parent in spinners_on_machine().items() if parent == os.getpid()}
        assert ours == set(spinners.pids) and len(ours) == 3
        used = spinners.cpu_seconds()
        time.sleep(0.3)
        assert spinners.cpu_seconds() > used  # they spin
    assert not any(running(pid) for pid in spinners.pids)
    with busy_cpus(0) as spinners:
        assert spinners.pids == [] and spinners.cpu_seconds() == 0


def test_spinners_stop_when_the_block_raises():
    with pytest.raises(RuntimeError, match="the cell failed"):
        with busy_cpus(2) as spinners:
            pids = spinners.pids
            raise RuntimeError("the cell failed")
    assert len(pids) == 2 and not any(running(pid) for pid in pids)


def test_spinners_exit_when_their_parent_is_killed():
    code = ("import os, signal\n"
            "from harness.spinners import busy_cpus\n"
            "with busy_cpus(2) as spinners:\n"
            "    print(*spinners.pids, flush=True)\n"
            "    os.kill(os.getpid(), signal.SIGKILL)\n")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, cwd=BENCH)
    pids = [int(pid) for pid in result.stdout.split()]
    assert len(pids) == 2
    deadline = time.monotonic() + 10
    while any(running(pid) for pid in pids) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not any(running(pid) for pid in pids)


def test_bench_contention_reports_the_ratios_and_leaves_no_spinner(tmp_path):
    result = subprocess.run([sys.executable, str(BENCH / "run.py"), "--set", "quick", "--impls", "fastgru",
                             "--contention", "--threads", "1,default", "--min-repeats", "1", "--target-seconds",
                             "0.01", "--out", str(tmp_path)], capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr
    report = (tmp_path / "results.md").read_text()
    for text in ("**under contention**: ", "### 1 thread, under contention", "### default threads, under contention",
                 "## Under contention: ", "| fastgru 1 thread ms | fastgru default ms | default / 1 thread |",
                 "| conv | fastgru 1 thread µs | fastgru default µs | default / 1 thread |",
                 "- fastgru default ≤ 1.15× its 1-thread time in "):
        assert text in report
    assert report.count("| 10 | 4 | 96 | 128 | after | train |") == 3  # two thread settings, the summary
    results = json.loads((tmp_path / "results.json").read_text())
    spinners = len(os.sched_getaffinity(0))
    assert results["settings"]["contention"]["spinners"] == spinners
    assert {c["threads"] for c in results["cells"]} == {1, "default"} == {r["threads"] for r in results["stream"]}
    assert all(r["contention"]["spinners"] == spinners for r in results["cells"] + results["stream"])
    assert results["impl_info"]["fastgru"]["default"]["info"]["threads"] >= 1
    assert not spinners_on_machine()
