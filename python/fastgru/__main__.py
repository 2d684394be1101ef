"""The `fastgru` command."""

from __future__ import annotations

import argparse
import sys


# The demos' own options: each is refused by the other demo rather than ignored.
_DEMO_OPTIONS = {"sunspots": ("plot", "members", "quiet"), "text": ("hidden", "window", "seconds")}


def _add_demo(commands):
    demo = commands.add_parser("demo", help="sunspots: train GRUs on the yearly sunspot numbers and forecast "
                                            "1921-1987; text: a character-level language model of the Python docs")
    demo.add_argument("which", nargs="?", choices=("sunspots", "text"), default="sunspots",
                      help="which demo (default %(default)s)")
    demo.add_argument("--epochs", type=int, help="sunspots: epochs per GRU (default 300); text: training epochs "
                                                 "(default: as many as fit in --seconds)")
    demo.add_argument("--seed", type=int, default=0)
    demo.add_argument("--plot", help="sunspots: PNG to write (default sunspots_forecast.png; '' for none)")
    demo.add_argument("--members", type=int, help="sunspots: GRUs averaged (default 5)")
    demo.add_argument("--quiet", action="store_true", default=None, help="sunspots: no progress bar")
    demo.add_argument("--hidden", type=int, help="text: GRU units (default 256)")
    demo.add_argument("--window", type=int, help="text: characters per training window (default 100)")
    demo.add_argument("--seconds", type=float, help="text: training budget in seconds, instead of --epochs "
                                                     "(default 180)")


def _add_anomalies(commands):
    anomalies = commands.add_parser("anomalies", help="score each value of a CSV column by its GRU forecast "
                                                      "residual and list the anomalies")
    anomalies.add_argument("file", metavar="FILE.csv", help="CSV file with a header row")
    anomalies.add_argument("--column", required=True, help="name of the column to score")
    anomalies.add_argument("--lookback", type=int, default=24, help="values each forecast reads (default %(default)s)")
    anomalies.add_argument("--threshold", type=float, default=5.0,
                           help="score above which a value is an anomaly, in robust standard deviations of the "
                                "residuals (default %(default)s)")
    anomalies.add_argument("--epochs", type=int, default=60, help="training epochs (default %(default)s)")
    anomalies.add_argument("--hidden", type=int, default=32, help="GRU units (default %(default)s)")
    anomalies.add_argument("--seed", type=int, default=0)
    anomalies.add_argument("--output", help="scores CSV (default FILE_anomalies.csv)")
    anomalies.add_argument("--plot", help="plot PNG (default: the output's name with .png; '' for none)")


def _run_demo(args, parser):
    for other, options in _DEMO_OPTIONS.items():
        given = [f"--{name}" for name in options if getattr(args, name) is not None]
        if other != args.which and given:
            parser.error(f"{', '.join(given)}: options of `fastgru demo {other}`, not of `fastgru demo {args.which}`")
    for name in ("members", "epochs", "hidden", "window"):
        if getattr(args, name) is not None and getattr(args, name) < 1:
            parser.error(f"--{name}: expected an int >= 1, got {getattr(args, name)}")
    if args.which == "text":
        from .commands import text

        if args.seconds is not None and not args.seconds > 0:
            parser.error(f"--seconds: expected a number > 0, got {args.seconds}")
        if args.seconds is not None and args.epochs is not None:
            parser.error("--seconds, --epochs: expected one budget, got both")
        seconds = 180.0 if args.seconds is None else args.seconds
        text.run(args.hidden or 256, args.window or 100, args.epochs, None if args.epochs else seconds, args.seed)
        return
    from .commands import demo

    demo.run(args.members or 5, args.epochs or 300, args.seed,
             "sunspots_forecast.png" if args.plot is None else args.plot or None, 0 if args.quiet else "auto")


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
    _add_anomalies(commands)
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
        from .linking import get_cmake_dir

        print(get_cmake_dir())
        return 0
    if args.command is None:
        parser.error("a command is required (or --cmake-dir)")
    try:
        if args.command == "demo":
            _run_demo(args, parser)
            return 0
        if args.command == "anomalies":
            from .commands import anomalies

            for name in ("lookback", "epochs", "hidden"):
                if getattr(args, name) < 1:
                    parser.error(f"--{name}: expected an int >= 1, got {getattr(args, name)}")
            if not args.threshold > 0:
                parser.error(f"--threshold: expected a number > 0, got {args.threshold}")
            anomalies.run(args.file, args.column, args.lookback, args.threshold, args.hidden, args.epochs, args.seed,
                          args.output, args.plot)
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
