"""The RPO report as records: per app and image, the figures of a lag series over a window.

A journal-mode image's estimates make series of their own (``estimated``), apart from the measured ones.

Built by :mod:`drkit.jobs.rpo_report` from the recorded samples; shown by :mod:`drkit.views.rpo`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from drkit.domain.rpo_points import SyncedPoint
from drkit.domain.rpo_sawtooth import BreachInterval


@dataclass(frozen=True)
class SeriesStats:
    """Figures of one lag series (an image, or the app) over the window."""

    name: str
    source: str
    start: datetime
    end: datetime
    p50: float | None
    p95: float | None
    p99: float | None
    max: float | None
    within_target: float | None
    worst: tuple[BreachInterval, ...] = ()
    points: tuple[SyncedPoint, ...] = ()
    samples: tuple[tuple[datetime, float], ...] = ()
    longest_gap: float | None = None
    """Seconds of the longest stretch with no observation (in which the lag is assumed to grow)."""
    estimated: bool = False
    """A series of journal-mode ESTIMATES (``source`` ``journal-estimate``), never mixed with measures."""


@dataclass
class AppReport:
    """One app's section of the report."""

    app: str
    target: timedelta
    overall: SeriesStats | None
    images: list[SeriesStats] = field(default_factory=list)
    estimated: list[SeriesStats] = field(default_factory=list)
    """Journal-mode estimates: the app's (when it has one) first, then each image's."""


@dataclass
class RpoReport:
    """The report: window, per-app sections and their PNG charts."""

    start: datetime
    end: datetime
    apps: list[AppReport]
    stamp: str = ""
