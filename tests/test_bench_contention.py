"""The busy processes that `fastgru bench --contention` runs beside each timed cell."""

import os
import subprocess
import sys
import time

import pytest

from fastgru.benchmark import busy_cpus
from fastgru.benchmark.spinners import SPINNER_MARKER

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
            "from fastgru.benchmark import busy_cpus\n"
            "with busy_cpus(2) as spinners:\n"
            "    print(*spinners.pids, flush=True)\n"
            "    os.kill(os.getpid(), signal.SIGKILL)\n")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    pids = [int(pid) for pid in result.stdout.split()]
    assert len(pids) == 2
    deadline = time.monotonic() + 10
    while any(running(pid) for pid in pids) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not any(running(pid) for pid in pids)

