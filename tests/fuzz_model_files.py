"""CI's bounded fuzz job for the model-file loaders.

    python tests/fuzz_model_files.py [--files 5000] [--seed 0] [--memory-mb 512] [--timeout 600]

Feeds a fixed-seed corpus of mutated model files (tests/model_file_corpus.py) to both loaders,
the Python one and the C++ one, in worker subprocesses whose address space is capped at their
size after start-up plus ``--memory-mb`` and whose run time is capped at ``--timeout``. Fails
(exit 1), naming the seed, on any crash, hang, allocation beyond the cap, exception other than the
documented ones, disagreement between the loaders' verdicts, or network read differently by them.
Files of a fastgru.Model (a layer with a dense head; with and without an embedding and output
scaling) are held to the same: C++'s Model loader (fastgru::load_model) must read or refuse each as
Python does, and predict what Python predicts.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile

CHUNK = 250  # files per worker process


def worker(start: int, count: int, memory_mb: int) -> None:
    import resource

    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    from tests.model_file_corpus import base_files, judge, model_base_files, mutate

    bases = {**base_files(), **model_base_files()}
    names = sorted(bases)
    with open("/proc/self/statm") as statm:
        current = int(statm.read().split()[0]) * resource.getpagesize()
    limit = current + memory_mb * 2**20
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    with tempfile.TemporaryDirectory() as folder:
        path = os.path.join(folder, "mutated.safetensors")
        for seed in range(start, start + count):
            name = names[seed % len(names)]
            with open(path, "wb") as f:
                f.write(mutate(bases[name], seed))
            python, cpp, detail = judge(path)
            problem = None
            if python != cpp or detail or python.startswith("failed"):
                problem = f"Python {python}, C++ {cpp} {detail}".strip()
            if problem:
                print(json.dumps({"seed": seed, "base": name, "problem": problem[:500]}), flush=True)
    print(f"done {count}", flush=True)


def run_chunk(start: int, count: int, args) -> tuple:
    """(problems, failure or None) of one worker over seeds start .. start + count - 1."""
    command = [sys.executable, os.path.abspath(__file__), "--worker", str(start), str(count),
               "--memory-mb", str(args.memory_mb)]
    try:
        result = subprocess.run(command, capture_output=True, text=True, timeout=args.timeout)
    except subprocess.TimeoutExpired:
        return [], f"hang: seeds {start}..{start + count - 1} ran past {args.timeout} s"
    problems = [json.loads(line) for line in result.stdout.splitlines() if line.startswith("{")]
    if result.returncode != 0 or f"done {count}" not in result.stdout:
        return problems, (f"crash: seeds {start}..{start + count - 1} ended with status {result.returncode}: "
                          f"{result.stderr.strip()[-800:]}")
    return problems, None


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--files", type=int, default=5000)
    parser.add_argument("--seed", type=int, default=0, help="first seed of the corpus")
    parser.add_argument("--memory-mb", type=int, default=512, help="address space a worker may add after start-up")
    parser.add_argument("--timeout", type=int, default=600, help="seconds one worker may run")
    parser.add_argument("--worker", nargs=2, type=int, metavar=("START", "COUNT"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        worker(*args.worker, args.memory_mb)
        return 0
    problems, failures = [], []
    for start in range(args.seed, args.seed + args.files, CHUNK):
        count = min(CHUNK, args.seed + args.files - start)
        found, failure = run_chunk(start, count, args)
        problems += found
        if failure:
            # Name the file: each seed of the chunk alone (a crash or hang ends the whole worker).
            for seed in range(start, start + count):
                found, single = run_chunk(seed, 1, args)
                if single:
                    failures.append(f"seed {seed}: {single}")
                    break
            else:
                failures.append(failure)
    for problem in problems:
        print(f"seed {problem['seed']} ({problem['base']}): {problem['problem']}")
    for failure in failures:
        print(failure)
    bad = len(problems) + len(failures)
    print(f"fuzz: {args.files - bad} passed, {bad} failed")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
