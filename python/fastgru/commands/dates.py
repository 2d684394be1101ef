"""Dates of a series for ``fastgru forecast``: parsing a column of ISO dates, inferring their
step (a fixed spacing, or a number of calendar months) and continuing them after the series.

Accepted cells: ISO 8601 without a time zone, read by ``numpy.datetime64``: a year ``1999``, a
month ``1999-12``, a day ``1999-12-31``, or a day and time ``1999-12-31T23:59`` (seconds and a
space instead of ``T`` allowed). Dates on the first (or the last) day of every month step by
calendar months, so 2020-01-01, 2020-02-01 continue with 2020-03-01, not 31 days later.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import List, Optional

import numpy as np

EXPECTED_FORMS = "an ISO date such as 1999, 1999-12, 1999-12-31 or 1999-12-31T23:59[:59]"

# The ISO forms numpy.datetime64 reads that are dates (its other words, "NaT", "today" and "now",
# are not; time zones are deprecated in NumPy).
_ISO_DATE = re.compile(r"\d{4}(-\d{2}(-\d{2}([T ]\d{2}(:\d{2}(:\d{2}(\.\d{1,9})?)?)?)?)?)?")

_YEAR = re.compile(r"\d{4}")

_UNIT_NAMES = {"D": "day", "h": "hour", "m": "minute", "s": "second", "ms": "millisecond", "us": "microsecond",
               "ns": "nanosecond"}

# Seasons too obvious to ask for: (kind, count) of the step -> steps per season.
_OBVIOUS_SEASONS = {("months", 1): 12, ("months", 3): 4, ("fixed", np.timedelta64(1, "D")): 7,
                    ("fixed", np.timedelta64(1, "h")): 24}


def parse_date(cell: str) -> Optional[np.datetime64]:
    """``cell`` as a datetime64, or None when it is not one of the accepted ISO forms (or not a
    real date, like 2021-02-30)."""
    cell = cell.strip()
    if not _ISO_DATE.fullmatch(cell):
        return None
    try:
        return np.datetime64(cell)
    except ValueError:
        return None


def _plural(count: int, name: str) -> str:
    return f"{count} {name}" + ("" if count == 1 else "s")


@dataclass
class DateStep:
    """The spacing of a series' dates: ``kind`` "months" (``count`` calendar months, ``anchor``
    "start" or "end" of the month) or "fixed" (``count`` a numpy.timedelta64)."""

    kind: str
    count: object
    anchor: Optional[str] = None

    def describe(self) -> str:
        if self.kind == "months":
            if self.count % 12 == 0:
                text = _plural(self.count // 12, "year")
            else:
                text = _plural(self.count, "month")
            return text + (" (month ends)" if self.anchor == "end" else "")
        unit, _ = np.datetime_data(self.count.dtype)
        value = int(self.count.astype(np.int64))
        # The coarsest unit that holds the step whole: "1 day" rather than "86400 seconds".
        for coarser, name in (("D", "day"), ("h", "hour"), ("m", "minute"), ("s", "second")):
            whole = self.count.astype(f"timedelta64[{coarser}]")
            if whole.astype(self.count.dtype) == self.count and whole.astype(np.int64) != 0:
                return _plural(int(whole.astype(np.int64)), name)
        return _plural(value, _UNIT_NAMES.get(unit, unit))

    def season(self) -> Optional[int]:
        """Steps per season when the step makes it obvious (12 months, 4 quarters, 7 days,
        24 hours), else None."""
        for (kind, count), season in _OBVIOUS_SEASONS.items():
            if kind == self.kind and count == self.count:
                return season
        return None


@dataclass
class Dates:
    """A series' dates (``values``, datetime64 of the file's resolution), the column they came
    from, their inferred step and how to write them (``separator`` between day and time)."""

    column: str
    values: np.ndarray
    step: DateStep
    separator: str = "T"

    def following(self, count: int) -> np.ndarray:
        """The ``count`` dates after the last one, one step apart."""
        last, unit = self.values[-1], np.datetime_data(self.values.dtype)[0]
        offsets = np.arange(1, count + 1)
        if self.step.kind == "fixed":
            return last + offsets * self.step.count
        months = last.astype("datetime64[M]") + offsets * self.step.count
        if self.step.anchor == "end":
            return ((months + 1).astype("datetime64[D]") - 1).astype(f"datetime64[{unit}]")
        return months.astype(f"datetime64[{unit}]")

    def text(self, values) -> List[str]:
        """``values`` written as the file wrote its dates (same resolution and separator)."""
        return [text.replace("T", self.separator) for text in np.datetime_as_string(np.asarray(values))]


def _month_positions(values: np.ndarray):
    """Which dates fall at midnight on the first, and which on the last, day of their month."""
    days = values.astype("datetime64[D]")
    midnight = days == values
    starts = midnight & (days == days.astype("datetime64[M]").astype("datetime64[D]"))
    ends = midnight & ((days + 1) == (days + 1).astype("datetime64[M]").astype("datetime64[D]"))
    return {"start": starts, "end": ends}


def _month_anchor(values: np.ndarray) -> Optional[str]:
    """"start" or "end" when more than half the dates fall at midnight on the first or the last
    day of their month (so one stray date is named as such, not taken for irregular days)."""
    for anchor, hits in _month_positions(values).items():
        if hits.sum() * 2 > len(values):
            return anchor
    return None


def infer_step(column: str, values: np.ndarray, lines: List[int], path) -> DateStep:
    """The step of increasing, evenly spaced dates; anything else is refused naming the first
    place it breaks (``lines``: each date's line in ``path``)."""
    if len(values) < 2:
        raise ValueError(f"{path}: column {column!r} has {len(values)} date(s); at least 2 are needed to infer a step")
    show = lambda index: np.datetime_as_string(values[index])  # noqa: E731 (the messages' dates)
    unordered = np.flatnonzero(values[1:] <= values[:-1])
    if len(unordered):
        index = unordered[0] + 1
        what = "repeats" if values[index] == values[index - 1] else "comes before"
        raise ValueError(f"{path}:{lines[index]}: date {show(index)} {what} {show(index - 1)}; expected the dates "
                         f"of column {column!r} in increasing order, one per row")
    unit = np.datetime_data(values.dtype)[0]
    anchor = "start" if unit in ("Y", "M") else _month_anchor(values)
    if anchor is not None:
        astray = np.flatnonzero(~_month_positions(values)[anchor])
        if len(astray):
            index = astray[0]
            raise ValueError(f"{path}:{lines[index]}: date {show(index)} is not at the {anchor} of its month as "
                             f"most dates of column {column!r} are; expected monthly dates all at the {anchor} "
                             f"of their month")
        gaps = np.diff(values.astype("datetime64[M]").astype(np.int64))
        step = DateStep("months", int(np.bincount(gaps).argmax()), anchor)
        describe = lambda gap: DateStep("months", int(gap), anchor).describe()  # noqa: E731
    else:
        gaps = np.diff(values)
        kinds, counts = np.unique(gaps, return_counts=True)
        step = DateStep("fixed", kinds[counts.argmax()])
        describe = lambda gap: DateStep("fixed", gap).describe()  # noqa: E731
    irregular = np.flatnonzero(gaps != step.count)
    if len(irregular):
        index = irregular[0] + 1
        raise ValueError(f"{path}:{lines[index]}: date {show(index)} comes {describe(gaps[index - 1])} after "
                         f"{show(index - 1)}; expected the dates of column {column!r} evenly spaced, "
                         f"{step.describe()} apart as most are (fill or drop the gap first)")
    return step


def read_dates(column: str, cells: List[str], lines: List[int], path, required: bool) -> Optional[Dates]:
    """The dates of ``cells`` (a column's cells and their lines in ``path``), or None when a cell
    is not a date and ``required`` is False (a first column detected, not named)."""
    if not required and all(_YEAR.fullmatch(cell.strip()) for cell in cells) and "year" not in column.lower():
        return None  # bare 4-digit numbers are years only in a column that says so (or is named)
    parsed = []
    for cell, line in zip(cells, lines):
        value = parse_date(cell)
        if value is None:
            if not required:
                return None
            raise ValueError(f"{path}:{line}: --date-column {column!r} holds {cell!r}, expected {EXPECTED_FORMS}")
        parsed.append(value)
    values = np.array(parsed)  # the finest resolution among the cells
    separator = " " if any(" " in cell.strip() for cell in cells) else "T"
    return Dates(column, values, infer_step(column, values, lines, path), separator)
