"""The RPO sawtooth: the lag function ``L(t)`` rebuilt from synced points (:class:`Sawtooth`), and
the figures read from it over a window (lag series, worst lag, time within target, time-weighted
percentiles, the worst breach intervals). Pure and exact; see docs/architecture.md, "What the RPO
figures mean".
"""

from __future__ import annotations

import bisect
import heapq
import itertools
from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta
from typing import NamedTuple

from pydantic import AwareDatetime, Field, model_validator

from drkit.domain.model_base import Model
from drkit.domain.rpo import _ZERO
from drkit.domain.rpo_points import PointLike, _points


class Window(Model):
    """A time window ``[start, end]``."""

    start: AwareDatetime = Field(..., description="start of the window")
    end: AwareDatetime = Field(..., description="end of the window")

    @model_validator(mode="after")
    def _positive(self) -> Window:
        if self.end <= self.start:
            raise ValueError("window end must be after its start")
        return self

    @property
    def length(self) -> timedelta:
        """``end - start``."""
        return self.end - self.start


class BreachInterval(Model):
    """A maximal interval where the lag was over the target (or unknown)."""

    start: AwareDatetime = Field(..., description="first instant over target")
    end: AwareDatetime = Field(..., description="instant the lag fell back to the target or below")
    peak: timedelta | None = Field(..., description="highest lag in the interval; None = lag unknown")

    @property
    def duration(self) -> timedelta:
        """``end - start``."""
        return self.end - self.start


class _Segment(NamedTuple):
    """A piece of the sawtooth: on ``[start, end)`` the lag is ``t - base`` (unknown if base is None)."""

    start: datetime
    end: datetime
    base: datetime | None


class Sawtooth:
    """The lag function ``L(t)`` rebuilt from synced points; the engine behind the helpers below.

    Points whose ``completed_at`` is ``None`` cannot be placed in time and are ignored, which can only
    raise ``L`` (an upper bound stays an upper bound).
    """

    def __init__(self, points: Iterable[PointLike]) -> None:
        placed = sorted(
            ((p.completed_at, p.data_time) for p in _points(points) if p.completed_at is not None),
        )
        self._times: list[datetime] = []
        self._bases: list[datetime] = []
        best: datetime | None = None
        for completed, data in placed:
            if best is not None and data <= best:
                continue  # an older point completing later changes nothing
            best = data
            if self._times and self._times[-1] == completed:
                self._bases[-1] = data
            else:
                self._times.append(completed)
                self._bases.append(data)

    def base_at(self, t: datetime) -> datetime | None:
        """The newest data point complete at ``t`` (completion at ``t`` included)."""
        i = bisect.bisect_right(self._times, t)
        return self._bases[i - 1] if i else None

    def lag_at(self, t: datetime) -> timedelta | None:
        """``L(t)``; ``None`` before the first completion."""
        base = self.base_at(t)
        return None if base is None else max(t - base, _ZERO)

    def segments(self, window: Window) -> list[_Segment]:
        """The window cut at each completion: on each piece ``L`` is linear (or unknown)."""
        cuts = [t for t in self._times if window.start < t < window.end]
        edges = [window.start, *cuts, window.end]
        return [_Segment(a, b, self.base_at(a)) for a, b in itertools.pairwise(edges)]


def lag_series(points: Iterable[PointLike], times: Iterable[datetime]) -> list[timedelta | None]:
    """``L(t)`` at each of ``times``; ``None`` where no point had completed yet."""
    saw = Sawtooth(points)
    return [saw.lag_at(t) for t in times]


def worst_lag(points: Iterable[PointLike], window_start: datetime, window_end: datetime) -> timedelta | None:
    """The exact supremum of ``L`` over ``[window_start, window_end]``.

    ``L`` rises with slope 1 between completions, so the supremum is the left limit just before a
    completion (or the value at the window's end). ``None`` when ``L`` is unknown anywhere in the
    window (no point complete by ``window_start``): an unknown stretch has no worst value to report.
    """
    window = Window(start=window_start, end=window_end)
    worst: timedelta | None = None
    for seg in Sawtooth(points).segments(window):
        if seg.base is None:
            return None
        peak = max(seg.end - seg.base, _ZERO)
        worst = peak if worst is None else max(worst, peak)
    return worst


def time_within_target(points: Iterable[PointLike], window: Window, target: timedelta) -> float:
    """Share of ``window`` (0..1) during which ``L(t) <= target``; unknown time counts as outside."""
    inside = _ZERO
    for seg in Sawtooth(points).segments(window):
        if seg.base is None:
            continue
        limit = min(seg.end, seg.base + target)
        if limit > seg.start:
            inside += limit - seg.start
    return inside / window.length


def percentiles(
    points: Iterable[PointLike], window: Window, qs: Sequence[float] = (50, 95, 99)
) -> dict[float, timedelta | None]:
    """Time-weighted percentiles of ``L`` over ``window``, exactly.

    On each segment ``L`` rises with slope 1 from ``L(start)``, so the time spent at a lag ``<= x``,
    ``F(x) = sum(clip(x - L(start), 0, length))``, is piecewise linear in ``x`` with a slope equal to
    the number of segments covering ``x``. A sweep over the breakpoints inverts it exactly.
    Unknown time counts as an infinite lag, so a percentile that falls in it is ``None``.
    """
    for q in qs:
        if not 0 <= q <= 100:
            raise ValueError(f"percentile must be within 0..100, got {q}")
    total = window.length.total_seconds()
    events: list[tuple[float, int]] = []  # (lag, slope change)
    for seg in Sawtooth(points).segments(window):
        if seg.base is not None:
            lo = (seg.start - seg.base).total_seconds()
            events += [(lo, 1), (lo + (seg.end - seg.start).total_seconds(), -1)]
    events.sort()
    out: dict[float, timedelta | None] = {}
    wanted = sorted((q / 100 * total, q) for q in qs)
    f, slope, x_prev, i = 0.0, 0, events[0][0] if events else 0.0, 0
    for need, q in wanted:
        while i < len(events) and f + slope * (events[i][0] - x_prev) < need:
            f += slope * (events[i][0] - x_prev)
            x_prev = events[i][0]
            slope += events[i][1]
            i += 1
        if slope > 0 and f + slope * ((events[i][0] if i < len(events) else x_prev) - x_prev) >= need:
            out[q] = timedelta(seconds=max(x_prev + (need - f) / slope, 0.0))
        elif events and need <= f + 1e-9:
            out[q] = timedelta(seconds=max(x_prev, 0.0))
        else:
            out[q] = None
    return {q: out[q] for q in qs}


def worst_intervals(
    points: Iterable[PointLike], window: Window, target: timedelta, k: int = 5
) -> list[BreachInterval]:
    """The ``k`` worst maximal intervals of ``window`` where ``L > target`` (or ``L`` is unknown).

    Ranked by peak lag, unknown first (an unknown stretch may hide any lag), then by duration.
    """
    runs: list[tuple[datetime, datetime, timedelta | None, bool]] = []  # start, end, peak, unknown
    for seg in Sawtooth(points).segments(window):
        run: tuple[datetime, datetime, timedelta | None, bool]
        if seg.base is None:
            run = (seg.start, seg.end, None, True)
        elif seg.end - seg.base > target:  # L(t) > target  <=>  t > base + target
            run = (max(seg.start, seg.base + target), seg.end, seg.end - seg.base, False)
        else:
            continue
        if runs and runs[-1][1] == run[0] and runs[-1][3] == run[3]:
            prev = runs[-1]
            peak = None if run[3] else max(prev[2] or _ZERO, run[2] or _ZERO)
            runs[-1] = (prev[0], run[1], peak, run[3])
        else:
            runs.append(run)
    best = heapq.nsmallest(
        k,
        runs,
        key=lambda r: (0 if r[3] else 1, -(r[2] or _ZERO).total_seconds(), -(r[1] - r[0]).total_seconds()),
    )
    return [BreachInterval(start=s, end=e, peak=p) for s, e, p, _ in best]
