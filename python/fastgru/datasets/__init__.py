"""Data sets for the demo and the validation tests.

- :func:`load_sunspots`: yearly sunspot numbers 1700–2008, shipped in the package (public
  domain; NOAA's National Geophysical Data Center, the copy in statsmodels' datasets).
- :func:`load_ucr`: a data set of the UCR/UEA time-series classification archives with its
  canonical train/test split (univariate, multivariate, variable-length), read from the package
  data of ``sktime`` (not a dependency: install it to use this, e.g. ``pip install
  sktime==1.2.0``); :func:`ucr_classification_sets` names those sktime ships.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Tuple

import numpy as np

__all__ = ["load_sunspots", "load_ucr", "ucr_classification_sets"]


def load_sunspots() -> Tuple[np.ndarray, np.ndarray]:
    """Yearly sunspot numbers: ``(years, values)``, (309,) int64 years 1700..2008 and (309,)
    float64 values."""
    from importlib import resources  # here, not at import: it costs ~20 ms to load

    text = resources.files(__name__).joinpath("sunspots.csv").read_text()
    table = np.loadtxt(text.splitlines()[1:], delimiter=",")
    return table[:, 0].astype(np.int64), table[:, 1]


def _parse_ts(path: Path):
    """Reads a classification ``.ts`` file: (cases, labels (N,) str), each case a (T_i, C)
    float64 array (C channels, T_i steps; ``?`` read as NaN)."""
    cases, labels, in_data = [], [], False
    for number, line in enumerate(path.read_text().splitlines(), 1):
        line = line.strip()
        if not line or line.startswith(("#", "%")):
            continue
        if not in_data:
            if line.lower().startswith("@targetlabel") and line.lower().split()[1:2] == ["true"]:
                raise ValueError(f"name: {path.parent.name!r} is a regression set (@targetLabel); load_ucr reads "
                                 "classification sets")
            in_data = line.lower() == "@data"
            continue
        *channels, label = line.split(":")
        if not channels:
            raise ValueError(f"{path}:{number}: expected comma-separated values and a label after ':', "
                             f"got {line[:40]!r}")
        series = [np.array([np.nan if v == "?" else float(v) for v in c.split(",")]) for c in channels]
        if len({len(s) for s in series}) != 1:
            raise ValueError(f"{path}:{number}: expected the channels of a case to have one length, got "
                             f"{[len(s) for s in series]}")
        cases.append(np.stack(series, axis=1))
        labels.append(label)
    if not cases:
        raise ValueError(f"{path}: expected cases after @data, found none")
    if len({c.shape[1] for c in cases}) != 1:
        raise ValueError(f"{path}: expected every case to have the same number of channels")
    return cases, np.array(labels)


def load_ucr(name: str, split: str = "train"):
    """A UCR/UEA classification data set (e.g. ``"GunPoint"``, ``"BasicMotions"``,
    ``"JapaneseVowels"``) from sktime's package data, with its canonical train/test split.

    Returns ``(X, y, classes)``: y (N,) int64 class indices into ``classes`` (the labels of the
    training split as strings, sorted), and X, float64, in fastgru's layout (samples, steps,
    channels last):

    - univariate, equal length: an array (N, T);
    - multivariate, equal length: an array (N, T, C);
    - variable length: a list of N arrays, (T_i,) for univariate sets, (T_i, C) for
      multivariate ones (the estimators and :class:`fastgru.Model` take such lists).

    Missing values (``?`` in the files) are NaN. ``split``: ``"train"`` or ``"test"``.
    Regression sets (``@targetLabel``) are refused.
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
    cases, labels = _parse_ts(path)
    classes = np.unique(labels if split == "train" else _parse_ts(folder / f"{name}_TRAIN.ts")[1])
    y = np.searchsorted(classes, labels)
    if np.any(classes[np.minimum(y, len(classes) - 1)] != labels):
        raise ValueError(f"{path}: has labels not seen in the training split")
    univariate = cases[0].shape[1] == 1
    if len({len(c) for c in cases}) > 1:
        X = [c[:, 0] if univariate else c for c in cases]
    else:
        X = np.stack(cases)
        X = X[:, :, 0] if univariate else X
    return X, y.astype(np.int64), classes


def ucr_classification_sets():
    """The names of the classification sets in sktime's package data (sorted)."""
    spec = importlib.util.find_spec("sktime")
    if spec is None or not spec.submodule_search_locations:
        raise ModuleNotFoundError("ucr_classification_sets reads the UCR files shipped with sktime: "
                                  "pip install sktime==1.2.0")
    data = Path(list(spec.submodule_search_locations)[0]) / "datasets" / "data"
    names = []
    for train in sorted(data.glob("*/*_TRAIN.ts")):
        header = train.read_text().lower().split("@data")[0]
        if "@classlabel true" in " ".join(header.split()):
            names.append(train.parent.name)
    return names
