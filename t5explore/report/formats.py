"""How a table prints a number: the formatters a `Column` (columns.py) carries.

A column names its formatter instead of the table guessing one from the column's key, so a new column
(parameters, FLOPs, ...) prints in its own units with one registry line. Scores and losses print their
mean with its 95% interval at a fixed number of decimals; costs print the mean alone in readable units.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from t5explore.report.stats import Interval

MISSING = "–"


class Formatter(Protocol):
    """Renders a cell's interval (or a Δ's, `signed`) as the text a table shows."""

    def __call__(self, iv: Interval, signed: bool = False) -> str: ...


@dataclass(frozen=True)
class Decimals:
    """`m ± h` / `m [lo, hi]` / `m` at `digits` decimals (scores: 2, losses: 3)."""

    digits: int

    def __call__(self, iv: Interval, signed: bool = False) -> str:
        return format_interval(iv, self.digits, signed)


@dataclass(frozen=True)
class Magnitude:
    """The mean alone in readable units (`1.23M`, `4.5 min`): costs are not compared with an interval."""

    scale: Callable[[float], str]

    def __call__(self, iv: Interval, signed: bool = False) -> str:
        if iv.mean is None or math.isnan(iv.mean):
            return MISSING
        return self.scale(iv.mean)


def format_interval(iv: Interval, digits: int, signed: bool = False) -> str:
    """`m ± h` for a t interval, `m [lo, hi]` for a bootstrap one, `m` without one."""
    sign = "+" if signed else ""
    if iv.mean is None or math.isnan(iv.mean):
        return MISSING
    text = f"{iv.mean:{sign}.{digits}f}"
    if iv.kind == "t" and iv.known:
        return f"{text} ± {iv.half:.{digits}f}"
    if iv.kind == "bootstrap" and iv.known:
        return f"{text} [{iv.lo:{sign}.{digits}f}, {iv.hi:{sign}.{digits}f}]"
    return text


def format_count(n: float) -> str:
    """A count (tokens, parameters) to 3 significant digits: `565k`, `1.23M`, `11B`."""
    for unit, scale in (("B", 1e9), ("M", 1e6), ("k", 1e3)):
        if abs(n) >= scale:
            return f"{n / scale:.3g}{unit}"
    return f"{n:.0f}"


def format_seconds(s: float) -> str:
    """Seconds as `42 s`, `4.5 min` or `1.2 h`."""
    if s >= 3600:
        return f"{s / 3600:.1f} h"
    if s >= 60:
        return f"{s / 60:.1f} min"
    return f"{s:.0f} s"


format_tokens = format_count  # the name findings and older callers use

SCORE = Decimals(2)
LOSS = Decimals(3)
COUNT = Magnitude(format_count)
SECONDS = Magnitude(format_seconds)
