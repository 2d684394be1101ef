"""The `fastgru` command."""

from __future__ import annotations

import argparse
import sys


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="fastgru", description="Fast GRU layers on CPUs.")
    parser.add_argument("--cmake-dir", action="store_true",
                        help="print the directory of the CMake package (for -Dfastgru_DIR=...) and exit")
    commands = parser.add_subparsers(dest="command")
    commands.add_parser("selfcheck", help="check forward and BPTT against the NumPy reference and time them")
    commands.add_parser("info", help="print the version, instruction sets, threads, OpenMP runtime and CMake directory")
    args = parser.parse_args(argv)
    if args.cmake_dir:
        from .embedding import get_cmake_dir

        print(get_cmake_dir())
        return 0
    if args.command is None:
        parser.error("a command is required (or --cmake-dir)")
    if args.command == "info":
        from .runtime import info

        for key, value in info().items():
            print(f"{key}: {', '.join(value) if isinstance(value, list) else value}")
        return 0
    if args.command == "selfcheck":
        from . import selfcheck

        return 0 if selfcheck.run() else 1
    return 2


if __name__ == "__main__":
    sys.exit(main())
