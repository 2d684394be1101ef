"""Busy processes beside a timing, as on a shared server: ``with busy_cpus(n): ...``.

Each spinner is a plain Python process running a tight loop (no dependency beyond the running
interpreter). They are running before the block starts and are killed and reaped when it ends,
however it ends; a spinner whose parent dies without that (SIGKILL, a crash) notices within a few
milliseconds and exits, so none outlives the process that started it.

This module imports nothing from fastgru: the benchmark's peer workers import it without loading
fastgru's compiled core into their processes.
"""

from __future__ import annotations

import os
import subprocess
import sys
from contextlib import contextmanager

# The marker comment names the spinners in `ps`; the loop checks its parent between short bursts.
SPINNER_CODE = ("# fastgru bench spinner\n"
                "import os\n"
                "parent = os.getppid()\n"
                "os.write(1, b'spinning')\n"
                "os.close(1)\n"
                "while os.getppid() == parent:\n"
                "    for _ in range(100000):\n"
                "        pass\n")
SPINNER_MARKER = "fastgru bench spinner"


class Spinners:
    """The running spinners of a busy_cpus block."""

    def __init__(self, processes):
        self.processes = processes

    @property
    def pids(self):
        return [p.pid for p in self.processes]

    def cpu_seconds(self):
        """CPU seconds the spinners have used so far (user + system, from /proc/<pid>/stat)."""
        tick = os.sysconf("SC_CLK_TCK")
        total = 0
        for pid in self.pids:
            try:
                with open(f"/proc/{pid}/stat") as f:
                    fields = f.read().rsplit(")", 1)[1].split()
            except (OSError, IndexError):
                continue
            total += int(fields[11]) + int(fields[12])  # utime, stime: fields 14 and 15 of proc(5)
        return total / tick


@contextmanager
def busy_cpus(n):
    """Runs n spinners (busy processes) for the duration of the block; yields a Spinners."""
    processes = []
    try:
        for _ in range(n):
            processes.append(subprocess.Popen([sys.executable, "-I", "-S", "-c", SPINNER_CODE],
                                              stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                              stderr=subprocess.DEVNULL))
        for p in processes:  # each has started its loop once it has written its word
            if p.stdout.read() != b"spinning":
                raise RuntimeError(f"a spinner failed to start (exit status {p.poll()})")
        yield Spinners(processes)
    finally:
        for p in processes:
            p.kill()
        for p in processes:
            p.wait()
            p.stdout.close()
