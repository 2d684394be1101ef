"""The ``fastgru`` command's subcommands: ``demo`` and ``forecast`` (which train models) and
``bench`` (fastgru alone on the benchmark's grid)."""

from contextlib import contextmanager

from ..files import atomic_write


@contextmanager
def png_axes(path, out):
    """Axes to draw on, written to ``path`` as a PNG afterwards (off-screen). Without matplotlib
    (an extra: ``fastgru[plot]``) it says so on ``out`` and yields None."""
    try:
        import matplotlib
    except ImportError:
        print('No plot: matplotlib is not installed (pip install "fastgru[plot]")', file=out)
        yield None
        return
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(figsize=(10, 4))
    try:
        yield axes
        axes.legend(loc="upper left")
        figure.tight_layout()
        with atomic_write(path) as handle:
            figure.savefig(handle, format="png", dpi=120)
        print(f"Plot: {path}", file=out)
    finally:
        plt.close(figure)
