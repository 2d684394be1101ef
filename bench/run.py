#!/usr/bin/env python
"""The benchmark against the peers, from a source checkout: ``fastgru bench`` with its results
in bench/results/. The runner lives in the package (fastgru/benchmark/) so that an installed
fastgru runs it too; see bench/README.md."""

import sys

from fastgru.benchmark import main

if __name__ == "__main__":
    arguments = sys.argv[1:]
    if not any(a == "--out" or a.startswith("--out=") for a in arguments):
        arguments += ["--out", "bench/results"]
    sys.exit(main(arguments))
