"""The `fastgru` command."""

from __future__ import annotations

import argparse
import sys


def _add_demo(commands):
    demo = commands.add_parser("demo", help="train GRUs on the yearly sunspot numbers and forecast 1921-1987")
    demo.add_argument("--plot", default="sunspots_forecast.png", help="PNG to write (default %(default)s; '' for none)")
    demo.add_argument("--members", type=int, default=5, help="GRUs averaged (default %(default)s)")
    demo.add_argument("--epochs", type=int, default=300, help="epochs per GRU (default %(default)s)")
    demo.add_argument("--seed", type=int, default=0)
    demo.add_argument("--quiet", action="store_true", help="no progress bar")


def _add_forecast(commands):
    forecast = commands.add_parser("forecast", help="train on a column of a CSV file and forecast its next values")
    forecast.add_argument("file", metavar="FILE.csv", help="CSV file with a header row")
    forecast.add_argument("--column", required=True, help="name of the column to forecast")
    forecast.add_argument("--horizon", type=int, required=True, help="steps to forecast after the series' end")
    forecast.add_argument("--lookback", type=int, default=24, help="input steps per window (default %(default)s)")
    forecast.add_argument("--epochs", type=int, default=200, help="most epochs (early stopping; default %(default)s)")
    forecast.add_argument("--hidden", type=int, default=32, help="GRU units (default %(default)s)")
    forecast.add_argument("--seed", type=int, default=0)
    forecast.add_argument("--output", help="forecast CSV (default FILE_forecast.csv)")
    forecast.add_argument("--plot", help="plot PNG (default: the output's name with .png; '' for none)")
    forecast.add_argument("--save", metavar="MODEL.safetensors", help="keep the trained model")
    forecast.add_argument("--quiet", action="store_true", help="no progress bar")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="fastgru", description="Fast GRU layers on CPUs.")
    parser.add_argument("--cmake-dir", action="store_true",
                        help="print the directory of the CMake package (for -Dfastgru_DIR=...) and exit")
    commands = parser.add_subparsers(dest="command")
    _add_demo(commands)
    _add_forecast(commands)
    commands.add_parser("bench", help="time fastgru on the benchmark's grid (the peers: python bench/run.py in a "
                                      "source checkout; fastgru bench --help)")
    commands.add_parser("selfcheck", help="check forward and BPTT against the NumPy reference and time them")
    commands.add_parser("info", help="print the version, instruction sets, threads, OpenMP runtime and CMake directory")
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv[:1] == ["bench"]:  # its options are the benchmark's own
        from .commands import bench

        return bench.main(argv[1:])
    args = parser.parse_args(argv)
    if args.cmake_dir:
        from .embedding import get_cmake_dir

        print(get_cmake_dir())
        return 0
    if args.command is None:
        parser.error("a command is required (or --cmake-dir)")
    try:
        if args.command == "demo":
            from .commands import demo

            for name in ("members", "epochs"):
                if getattr(args, name) < 1:
                    parser.error(f"--{name}: expected an int >= 1, got {getattr(args, name)}")
            demo.run(args.members, args.epochs, args.seed, args.plot or None, 0 if args.quiet else "auto")
            return 0
        if args.command == "forecast":
            from .commands import forecast

            for name in ("horizon", "lookback", "epochs", "hidden"):
                if getattr(args, name) < 1:
                    parser.error(f"--{name}: expected an int >= 1, got {getattr(args, name)}")
            forecast.run(args.file, args.column, args.horizon, args.lookback, args.epochs, args.hidden, args.seed,
                         args.output, args.plot, args.save, 0 if args.quiet else "auto")
            return 0
    except (ValueError, OSError, ArithmeticError) as error:
        print(f"fastgru {args.command}: error: {error}", file=sys.stderr)
        return 2
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
