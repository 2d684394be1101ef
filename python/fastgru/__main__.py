"""The `fastgru` command."""

from __future__ import annotations

import argparse
import sys


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="fastgru", description="Fast GRU layers on CPUs.")
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("selfcheck", help="check forward and BPTT against the NumPy reference and time them")
    commands.add_parser("info", help="print the version, instruction sets and thread count")
    args = parser.parse_args(argv)
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
