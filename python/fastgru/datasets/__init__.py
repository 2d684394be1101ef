"""Data sets for the demo and the validation tests.

- :func:`load_sunspots`: yearly sunspot numbers 1700–2008, shipped in the package (public
  domain; NOAA's National Geophysical Data Center, the copy in statsmodels' datasets).
- :func:`load_ucr`: a data set of the UCR time-series classification archive with its canonical
  train/test split, read from the package data of ``sktime`` (not a dependency: install it to
  use this, e.g. ``pip install sktime==1.2.0``).
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Tuple

import numpy as np

__all__ = ["load_sunspots", "load_ucr"]


def load_sunspots() -> Tuple[np.ndarray, np.ndarray]:
    """Yearly sunspot numbers: ``(years, values)``, (309,) int64 years 1700..2008 and (309,)
    float64 values."""
    from importlib import resources  # here, not at import: it costs ~20 ms to load

    text = resources.files(__name__).joinpath("sunspots.csv").read_text()
    table = np.loadtxt(text.splitlines()[1:], delimiter=",")
    return table[:, 0].astype(np.int64), table[:, 1]


def _parse_ts(path: Path):
    """Reads a univariate, equal-length ``.ts`` file: (X (N, T) float64, labels (N,) str)."""
    rows, labels, in_data = [], [], False
    for number, line in enumerate(path.read_text().splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        if not in_data:
            in_data = line.lower() == "@data"
            continue
        *series, label = line.split(":")
        if len(series) != 1:
            raise ValueError(f"{path}:{number}: expected one univariate series and a label, got {len(series)} dimensions")
        rows.append(np.array(series[0].split(","), dtype=np.float64))
        labels.append(label)
    if not rows or len({len(r) for r in rows}) != 1:
        raise ValueError(f"{path}: expected equal-length series after @data")
    return np.stack(rows), np.array(labels)


def load_ucr(name: str, split: str = "train") -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A UCR data set (e.g. ``"GunPoint"``, ``"ItalyPowerDemand"``) from sktime's package data.

    Returns ``(X, y, classes)``: X (N, T) float64, y (N,) int64 class indices into ``classes``
    (the labels as strings, sorted). ``split``: ``"train"`` or ``"test"``.
    """
    if split not in ("train", "test"):
        raise ValueError(f"split: expected 'train' or 'test', got {split!r}")
    spec = importlib.util.find_spec("sktime")  # located, not imported: sktime's import is slow
    if spec is None or not spec.submodule_search_locations:
        raise ModuleNotFoundError("load_ucr reads the UCR files shipped with sktime: pip install sktime==1.2.0")
    folder = Path(list(spec.submodule_search_locations)[0]) / "datasets" / "data" / name
    path = folder / f"{name}_{split.upper()}.ts"
    if not path.is_file():
        available = sorted(p.name for p in folder.parent.iterdir() if p.is_dir())
        raise ValueError(f"name: no UCR data set {name!r} in sktime's data (found {available})")
    X, labels = _parse_ts(path)
    classes = np.unique(_parse_ts(folder / f"{name}_TRAIN.ts")[1])
    y = np.searchsorted(classes, labels)
    if np.any(classes[np.minimum(y, len(classes) - 1)] != labels):
        raise ValueError(f"{path}: has labels not seen in the training split")
    return X, y.astype(np.int64), classes
