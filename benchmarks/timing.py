"""One timing protocol for every row of ``make bench-peers``: an untimed warm-up of each side, then ``runs``
rounds in which every side runs once, the order alternating between rounds so that neither side always runs
warm after the other; each side is reported as its median with the min-max spread of its runs, and one side is
called faster only when the two spreads do not overlap ("within noise" otherwise).

Two runs of the same code on this machine moved a ratio up to 3x between dates, so a single run or a best-of
cannot say which side is faster; the spread says how far a number can be trusted.
"""

from __future__ import annotations

import math
import statistics
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TypeVar

MIN_RUNS = 5  # the fewest timed runs per side a published row may rest on
MIN_RUN_SECONDS = (
    0.1  # a timed run repeats a quick call until it lasts about this long (timer resolution, jitter)
)

T = TypeVar("T")
PROTOCOL = (  # how every row was timed, as the tables say it ({runs}: the runs per side)
    "each cell: the median (min-max) of {runs} timed runs per side after one untimed warm-up, the sides "
    'alternating; "faster" only where the spreads do not overlap'
)


@dataclass(frozen=True)
class Timings:
    """The timed runs of one side, in seconds per call."""

    seconds: tuple[float, ...]

    def __post_init__(self) -> None:
        if not self.seconds or min(self.seconds) <= 0:
            raise ValueError(f"timings must be positive seconds, got {self.seconds}")

    @property
    def median(self) -> float:
        return statistics.median(self.seconds)

    @property
    def low(self) -> float:
        return min(self.seconds)

    @property
    def high(self) -> float:
        return max(self.seconds)

    def cell(self, scale: float = 1.0, digits: int = 2) -> str:
        """'median (min-max)' of the durations times ``scale`` (1000 for milliseconds)."""
        return f"{self.median * scale:,.{digits}f} ({self.low * scale:,.{digits}f}-{self.high * scale:,.{digits}f})"

    def rate_cell(self, count: int) -> str:
        """'median (min-max)' of ``count`` items per second (the slowest run gives the lowest rate)."""
        return f"{count / self.median:,.0f} ({count / self.high:,.0f}-{count / self.low:,.0f})"


def compare(ours: Timings, theirs: Timings, them: str = "official") -> str:
    """'ours 3.2x faster' / '<them> 1.4x faster' (the ratio of the medians) when one side's slowest run beats the
    other's fastest; 'within noise' when the spreads overlap."""
    if ours.high < theirs.low:
        return f"ours {theirs.median / ours.median:.1f}x faster"
    if theirs.high < ours.low:
        return f"{them} {ours.median / theirs.median:.1f}x faster"
    return "within noise"


def alternate(
    sides: Mapping[str, Callable[[], T]], runs: int = MIN_RUNS, warmups: int = 1
) -> dict[str, list[T]]:
    """Each side's results of ``runs`` timed rounds, after ``warmups`` untimed rounds (not returned). Round r runs
    the sides in the given order when r is even and in reverse when it is odd."""
    if runs < 1 or warmups < 0:
        raise ValueError(f"runs must be >= 1 and warmups >= 0, got runs={runs}, warmups={warmups}")
    names = list(sides)
    results: dict[str, list[T]] = {name: [] for name in names}
    for round_index in range(warmups + runs):
        order = names if round_index % 2 == 0 else names[::-1]
        for name in order:
            result = sides[name]()
            if round_index >= warmups:
                results[name].append(result)
    return results


def per_call(function: Callable[[], object], number: int) -> Callable[[], float]:
    """A callable that runs ``function`` ``number`` times and returns the seconds per call."""

    def run() -> float:
        started = time.perf_counter()
        for _ in range(number):
            function()
        return (time.perf_counter() - started) / number

    return run


def calls_per_run(function: Callable[[], object]) -> int:
    """How many calls make one timed run last about ``MIN_RUN_SECONDS``, from one untimed call (which is also a
    warm-up)."""
    started = time.perf_counter()
    function()
    once = max(time.perf_counter() - started, 1e-6)
    return max(1, math.ceil(MIN_RUN_SECONDS / once))


def time_sides(
    sides: Mapping[str, Callable[[], object]], runs: int = MIN_RUNS, warmups: int = 1
) -> dict[str, Timings]:
    """The protocol for in-process calls: each side's calls per run fixed from one untimed call, which is also its
    first warm-up, then :func:`alternate` with the ``warmups - 1`` untimed rounds left (a slow side, StyleGRU's
    fit, is no longer run twice untimed before its timed runs)."""
    timed = {name: per_call(function, calls_per_run(function)) for name, function in sides.items()}
    rounds = alternate(timed, runs, max(warmups - 1, 0))
    return {name: Timings(tuple(seconds)) for name, seconds in rounds.items()}
