"""RPO maths: per-image and per-app lag, exact synced points, the sawtooth and its figures, breach
hysteresis. Pure functions of samples and an injected ``now``; parsing is in
:mod:`drkit.domain.rbd_status`.

What the figures mean (status mode an upper bound, what bounds a completion, why exact points are
remembered, the sawtooth) is in docs/architecture.md, "What the RPO figures mean".
"""

from __future__ import annotations

import bisect
import heapq
import itertools
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime, timedelta, tzinfo
from typing import Literal, NamedTuple

from pydantic import AwareDatetime, Field, model_validator

from drkit.domain.models import Model
from drkit.domain.rbd_models import Health, LagSource, MirrorMode, MirrorSample, MirrorSnapshot, Role
from drkit.domain.rbd_readers import zone
from drkit.domain.rbd_status import DEFAULT_STALE_AFTER

DEFAULT_SKEW_TOLERANCE = timedelta(seconds=5)
"""A consistency point up to this far in the future is clock skew: the lag is clamped to 0 and flagged."""

_ZERO = timedelta(0)


# ----------------------------------------------------------------------------------- per image


class ImageLag(Model):
    """The lag of one image's secondary copy at ``at``."""

    image: str = Field(..., description="RBD image name")
    pool: str = Field("", description="RBD pool name")
    site: str = Field("", description="site whose copy lags")
    at: AwareDatetime = Field(..., description="time the lag is computed for")
    lag: timedelta | None = Field(..., description="at - newest complete consistency point; None = unknown")
    health: Health = Field(..., description="health of the image at 'at'")
    reason: str = Field(..., description="human explanation (why unknown, or what is happening)")
    source: LagSource = Field(..., description="status (upper bound), exact, or journal-estimate")
    role: Role = Field("unknown", description="role of the image at 'site'")
    raw_state: str = Field("", description="rbd's state, e.g. 'up+replaying'")
    mode: MirrorMode = Field("unknown", description="mirroring mode")
    clock_skew: timedelta | None = Field(
        None, description="how far in the future the consistency point was when the lag was clamped to 0"
    )

    @property
    def lag_seconds(self) -> float | None:
        """The lag in seconds, ``None`` when unknown."""
        return None if self.lag is None else self.lag.total_seconds()


def _clamped(
    delta: timedelta, skew_tolerance: timedelta
) -> tuple[timedelta | None, timedelta | None, str | None]:
    """``(lag, skew, problem)``: tiny negative deltas clamp to 0 (skew flagged); big ones are unknown."""
    if delta >= _ZERO:
        return delta, None, None
    if -delta <= skew_tolerance:
        return _ZERO, -delta, None
    return (
        None,
        -delta,
        (
            f"consistency point is {(-delta).total_seconds():.0f}s in the future: clock skew between sites"
            f" over {skew_tolerance.total_seconds():.0f}s; check NTP"
        ),
    )


def image_lag(
    sample: MirrorSample,
    now: datetime,
    *,
    stale_after: timedelta = DEFAULT_STALE_AFTER,
    skew_tolerance: timedelta = DEFAULT_SKEW_TOLERANCE,
) -> ImageLag:
    """The lag of ``sample``'s image at ``now`` (status mode, or a journal estimate).

    Unknown when the health at ``now`` is down, error, split-brain, stale or unknown, or when
    ``local_snapshot_time`` is missing. Staleness is re-judged at ``now`` (a sample fresh when taken
    can be stale later). The figure is an upper bound of the true lag (see the module docstring).
    """
    health, reason = sample.health, sample.reason
    age = None if sample.last_update is None else (now - sample.last_update).total_seconds()
    if health in ("ok", "syncing") and age is not None and age > stale_after.total_seconds():
        health, reason = (
            "stale",
            (
                f"{sample.raw_state} status last written {age:.0f}s ago"
                f" (limit {stale_after.total_seconds():.0f}s); rbd-mirror may be stuck"
            ),
        )
    if health not in ("ok", "syncing"):
        return _image_lag(sample, now, None, health, reason)
    if sample.mode == "journal":
        lag, why = journal_lag_estimate(sample, now)
        return _image_lag(sample, now, lag, health, why if lag is None else f"{reason}; {why}")
    if sample.local_snapshot_time is None:
        return _image_lag(sample, now, None, health, reason)
    lag, skew, problem = _clamped(now - sample.local_snapshot_time, skew_tolerance)
    if problem:
        return _image_lag(sample, now, None, health, problem, skew)
    if skew:
        reason = f"{reason}; clamped {skew.total_seconds():.1f}s of clock skew to 0"
    return _image_lag(sample, now, lag, health, reason, skew)


def _image_lag(
    sample: MirrorSample,
    now: datetime,
    lag: timedelta | None,
    health: Health,
    reason: str,
    skew: timedelta | None = None,
) -> ImageLag:
    if lag is None and health == "ok":
        health = "unknown"  # never "ok" without a figure
    return ImageLag(
        image=sample.image,
        pool=sample.pool,
        site=sample.site,
        at=now,
        lag=lag,
        health=health,
        reason=reason,
        source=sample.source,
        role=sample.role,
        raw_state=sample.raw_state,
        mode=sample.mode,
        clock_skew=skew,
    )


def journal_lag_estimate(sample: MirrorSample, now: datetime) -> tuple[timedelta | None, str]:
    """An ESTIMATE of a journal-mode image's lag: ``(lag or None, explanation)``.

    * 0 entries behind at ``last_update``: B had replayed everything written by then, so the lag is
      about ``now - last_update`` (the age of the status bounds it; writes since are not counted).
    * ``n`` entries behind with a replay rate ``r`` > 0: ``now - last_update + n / r``, the time to
      replay the backlog at the current rate. A rough estimate, not a bound.
    * Otherwise unknown.
    """
    if sample.last_update is None:
        return None, "journal mode: no last_update to estimate from"
    age = max(now - sample.last_update, _ZERO)
    behind = sample.entries_behind
    if behind is None:
        return None, "journal mode: description has no entries_behind_primary"
    if behind <= 0:
        return age, "journal estimate: caught up at the last status write"
    rate = sample.entries_per_second
    if rate is None or rate <= 0:
        return None, f"journal mode: {behind} entries behind and no replay rate to estimate the lag"
    return age + timedelta(seconds=behind / rate), (
        f"journal estimate: {behind} entries behind at {rate:g} entries/s"
    )


# ------------------------------------------------------------------------------------- per app

_SOURCE_RANK: dict[str, int] = {"journal-estimate": 0, "status": 1, "exact": 2}


class AppLag(Model):
    """An app's lag: the oldest of its images; unknown when any image is unknown."""

    app: str = Field(..., description="app name")
    at: AwareDatetime = Field(..., description="time the lag is computed for")
    lag: timedelta | None = Field(..., description="max of the images' lags; None = unknown")
    reason: str = Field(..., description="why, naming the image that decides")
    source: LagSource = Field(..., description="least exact source among the images")
    worst_image: str | None = Field(None, description="image that sets the lag (or is unknown)")
    images: tuple[ImageLag, ...] = Field(..., description="the per-image lags")

    @property
    def lag_seconds(self) -> float | None:
        """The lag in seconds, ``None`` when unknown."""
        return None if self.lag is None else self.lag.total_seconds()


def app_lag(app: str, lags: Sequence[ImageLag], at: datetime | None = None) -> AppLag:
    """Combine per-image lags: the max, or unknown with the first unknown image's reason.

    The app's ``source`` is the least exact of its images' (journal-estimate < status < exact).
    An app with no images is unknown.
    """
    when = at or (lags[0].at if lags else None)
    if when is None:
        raise ValueError("app_lag needs 'at' when the app has no images")
    if not lags:
        return AppLag(app=app, at=when, lag=None, reason="no images to measure", source="status", images=())
    source: LagSource = min((lag.source for lag in lags), key=lambda s: _SOURCE_RANK[s])
    unknown = [lag for lag in lags if lag.lag is None]
    if unknown:
        first = unknown[0]
        return AppLag(
            app=app,
            at=when,
            lag=None,
            source=source,
            worst_image=first.image,
            images=tuple(lags),
            reason=f"image {first.image} ({first.health}): {first.reason}",
        )
    worst = max(lags, key=lambda lag: lag.lag or _ZERO)
    return AppLag(
        app=app,
        at=when,
        lag=worst.lag,
        source=source,
        worst_image=worst.image,
        images=tuple(lags),
        reason=f"oldest image {worst.image}: {worst.reason}",
    )


# ------------------------------------------------------------------------------------ exact mode


class SyncedPoint(Model):
    """One consistency point: the primary's snapshot time and when B completed its copy."""

    data_time: AwareDatetime = Field(..., description="creation time on the primary: the recoverable point")
    completed_at: AwareDatetime | None = Field(
        None, description="when B's copy was complete (or an upper bound); None = complete, time unknown"
    )

    @model_validator(mode="after")
    def _order(self) -> SyncedPoint:
        if self.completed_at is not None and self.completed_at < self.data_time:
            raise ValueError("completed_at is before data_time: a snapshot cannot be synced before it exists")
        return self


PointLike = SyncedPoint | tuple[datetime, datetime | None]


def _points(points: Iterable[PointLike]) -> list[SyncedPoint]:
    return [
        p if isinstance(p, SyncedPoint) else SyncedPoint(data_time=p[0], completed_at=p[1]) for p in points
    ]


WHOLE_SECOND = timedelta(seconds=1)
"""rbd prints snapshot times and ``last_update`` in whole seconds (truncated)."""


def latest_instant(printed: datetime, tz: tzinfo | str | None = None) -> datetime:
    """An instant strictly after every instant that the whole-second wall-clock text of ``printed`` can denote.

    ``printed`` is what the parsers return for a time rbd printed without a zone (``snap ls``
    ``timestamp``, status ``last_update``): the whole second, read in the site's zone with
    ``fold=0``. The true instant is within ``[printed, printed + 1 s)``, or, in a DST fall-back
    hour, possibly one hour later (``fold=1``). Used where a time must be an UPPER bound.
    """
    out = printed
    if tz is not None:
        local = printed.astimezone(zone(tz))
        out = max(out, local.replace(fold=1).astimezone(UTC))
    return out + WHOLE_SECOND


def tighten(points: Iterable[PointLike]) -> tuple[SyncedPoint, ...]:
    """Merge points by data time (the smallest bound wins) and apply B's ordering.

    B syncs one snapshot at a time, in order: a point is complete no later than any newer point,
    so its bound is also the smallest bound of every newer point. A bound is never before the data
    time (clock skew between the sites' OSDs clamps it up, which can only raise the lag).
    """
    best: dict[datetime, datetime | None] = {}
    for p in _points(points):
        if p.data_time not in best:
            best[p.data_time] = p.completed_at
        elif p.completed_at is not None:
            old = best[p.data_time]
            best[p.data_time] = p.completed_at if old is None else min(old, p.completed_at)
    out: list[SyncedPoint] = []
    newer: datetime | None = None
    for data in sorted(best, reverse=True):
        bound = best[data]
        if newer is not None and (bound is None or newer < bound):
            bound = newer
        if bound is not None:
            bound = max(bound, data)
            newer = bound if newer is None else min(newer, bound)
        out.append(SyncedPoint(data_time=data, completed_at=bound))
    return tuple(reversed(out))


def remember(points: Iterable[PointLike], keep: int = 16) -> tuple[SyncedPoint, ...]:
    """The newest ``keep`` points after :func:`tighten`: what a sampler carries to its next run.

    Older points cannot get a tighter bound any more once a newer B snapshot was seen after them.
    """
    return tighten(points)[-keep:] if keep > 0 else ()


def points_from_snapshots(
    secondary: Sequence[MirrorSnapshot],
    primary_times: Mapping[int, datetime],
    listed_at: datetime | None = None,
    *,
    known: Iterable[PointLike] = (),
    status: MirrorSample | None = None,
    tz: tzinfo | str | None = None,
) -> tuple[SyncedPoint, ...]:
    """Synced points, with the tightest SOUND completion bounds one sample allows (see module doc).

    ``secondary`` is B's ``rbd snap ls --all``; ``primary_times`` maps A's snapshot id to its creation
    time (``{s.id: s.created_at for s in parse_snap_ls(a_json, tz=...)}``); ``listed_at`` is a time
    read AFTER both listings returned; ``known`` are the points kept from earlier samples
    (:func:`remember`); ``status`` is B's status of the image at this sample; ``tz`` is B's zone
    (for the DST fall-back hour, see :func:`latest_instant`).

    Evidence, each an upper bound of the completion time (the smallest wins):

    * a non-primary snapshot listed complete was complete by ``listed_at``;
    * B creates snapshot ``k + 1`` only once ``k`` is complete (one sync at a time, in order), so the
      creation of ANY listed non-primary snapshot, complete or not, bounds every older synced point,
      including the ones only seen in earlier samples. Its printed time is truncated to the second,
      hence :func:`latest_instant`;
    * a status whose ``local_snapshot_timestamp`` is ``T`` and ``last_update`` is ``u``: the point
      ``T`` was complete when the description was built, before ``u`` was written;
    * ordering: no point completes after a newer one (:func:`tighten`).

    ``last_snapshot_sync_seconds`` is NOT used: it times ``copy_image`` only, so creation + it is
    a LOWER bound of the completion (it would under-report the lag).
    """
    ordered = sorted((s for s in secondary if s.non_primary), key=lambda s: s.id)
    found: list[SyncedPoint] = list(_points(known))
    # (B snapshot creation bound, its primary data time or None): bounds every older point.
    starts: list[tuple[int, datetime, datetime | None]] = []
    for snap in ordered:
        data_time = primary_times.get(snap.primary_snap_id) if snap.primary_snap_id is not None else None
        if snap.created_at is not None:
            starts.append((snap.id, latest_instant(snap.created_at, tz), data_time))
        if snap.complete and data_time is not None:
            found.append(SyncedPoint(data_time=data_time, completed_at=listed_at))
    listed_ids = {
        primary_times[s.primary_snap_id]: s.id
        for s in ordered
        if s.complete and s.primary_snap_id is not None and s.primary_snap_id in primary_times
    }
    if (
        status is not None
        and status.health in ("ok", "syncing", "stale")
        and status.mode == "snapshot"
        and status.local_snapshot_time is not None
        and status.last_update is not None
    ):
        found.append(
            SyncedPoint(
                data_time=status.local_snapshot_time, completed_at=latest_instant(status.last_update, tz)
            )
        )
    out: list[SyncedPoint] = []
    for p in tighten(found):
        bound = p.completed_at
        own_id = listed_ids.get(p.data_time)
        for snap_id, created, data in starts:
            newer = (data is not None and data > p.data_time) or (own_id is not None and snap_id > own_id)
            if newer and (bound is None or created < bound):
                bound = created
        out.append(SyncedPoint(data_time=p.data_time, completed_at=bound))
    return tighten(out)


def exact_lag(
    image: str,
    points: Iterable[PointLike],
    now: datetime,
    *,
    skew_tolerance: timedelta = DEFAULT_SKEW_TOLERANCE,
) -> ImageLag:
    """Exact-mode lag at ``now``: ``now`` minus the newest point complete by ``now``.

    A point with ``completed_at=None`` is known complete (it was listed complete) and counts, unless
    its data time is after ``now`` by more than ``skew_tolerance`` (it cannot be complete yet).
    """
    pts = _points(points)
    done = [
        p.data_time
        for p in pts
        if (p.completed_at <= now if p.completed_at is not None else p.data_time <= now + skew_tolerance)
    ]

    def result(lag: timedelta | None, reason: str, skew: timedelta | None = None) -> ImageLag:
        return ImageLag(
            image=image,
            at=now,
            lag=lag,
            health="ok" if lag is not None else "unknown",
            reason=reason,
            source="exact",
            role="secondary",
            mode="snapshot",
            clock_skew=skew,
        )

    if not done:
        return result(None, "exact: no complete synced point yet")
    newest = max(done)
    lag, skew, problem = _clamped(now - newest, skew_tolerance)
    if problem:
        return result(None, problem, skew)
    return result(lag, f"exact: newest synced point {newest.isoformat()}", skew)


# -------------------------------------------------------------------------------------- sawtooth


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


# ----------------------------------------------------------------------------- breach hysteresis


class BreachState(Model):
    """What the breach detector remembers between evaluations of one app."""

    breached: bool = Field(False, description="whether a breach is open")
    breached_since: AwareDatetime | None = Field(None, description="when the open breach began")
    unknown_since: AwareDatetime | None = Field(None, description="start of the current unknown stretch")
    last_lag: timedelta | None = Field(None, description="lag at the last evaluation")
    last_at: AwareDatetime | None = Field(None, description="time of the last evaluation")


class BreachDecision(Model):
    """The new state, and the event to emit (if any)."""

    state: BreachState = Field(..., description="state to keep for the next evaluation")
    event: Literal["breach", "recovered"] | None = Field(None, description="event to emit now, if any")
    reason: str = Field(..., description="why")


def evaluate_breach(
    previous: BreachState | None, app_lag: AppLag, target: timedelta, clear_ratio: float = 0.8
) -> BreachDecision:
    """Breach detection with hysteresis.

    * A breach opens when the lag is over ``target``, or when the lag has been unknown for longer
      than ``target`` (without a figure the RPO cannot be shown to hold; a blind spot shorter than
      the target, such as one stale sample, does not page anyone).
    * An open breach recovers only when the lag is known and below ``clear_ratio * target``, so a lag
      oscillating around the target emits one breach, not a storm. Unknown keeps it open.
    """
    if not 0 < clear_ratio <= 1:
        raise ValueError(f"clear_ratio must be within (0, 1], got {clear_ratio}")
    prev = previous or BreachState()
    now, lag = app_lag.at, app_lag.lag
    unknown_since = (prev.unknown_since or now) if lag is None else None
    keep = {"unknown_since": unknown_since, "last_lag": lag, "last_at": now}
    clear_below = target * clear_ratio
    if not prev.breached:
        if lag is not None and lag > target:
            why = f"lag {lag.total_seconds():.0f}s is over the target {target.total_seconds():.0f}s"
        elif lag is None and unknown_since is not None and now - unknown_since > target:
            why = (
                f"lag unknown for {(now - unknown_since).total_seconds():.0f}s, longer than the target"
                f" {target.total_seconds():.0f}s: {app_lag.reason}"
            )
        else:
            return BreachDecision(state=BreachState(breached=False, **keep), reason="within target")
        return BreachDecision(
            state=BreachState(breached=True, breached_since=now, **keep), event="breach", reason=why
        )
    if lag is not None and lag < clear_below:
        return BreachDecision(
            state=BreachState(breached=False, **keep),
            event="recovered",
            reason=f"lag {lag.total_seconds():.0f}s is below {clear_ratio:g} x target",
        )
    why = (
        "lag unknown"
        if lag is None
        else (f"lag {lag.total_seconds():.0f}s not yet below {clear_below.total_seconds():.0f}s")
    )
    return BreachDecision(
        state=BreachState(breached=True, breached_since=prev.breached_since, **keep),
        reason=f"still breached: {why}",
    )
