"""RPO maths: per-image and per-app lag (from a status sample, a journal estimate or exact synced
points) and breach hysteresis. Pure functions of samples and an injected ``now``; parsing is in
:mod:`drkit.domain.rbd_status`, the synced points and their completion bounds in
:mod:`drkit.domain.rpo_points`, the sawtooth and its figures in :mod:`drkit.domain.rpo_sawtooth`.

What the figures mean (status mode an upper bound, what bounds a completion, why exact points are
remembered, the sawtooth) is in docs/architecture.md, "What the RPO figures mean".
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta
from typing import Literal

from pydantic import AwareDatetime, Field

from drkit.domain.model_base import Model
from drkit.domain.rbd_models import Health, LagSource, MirrorMode, MirrorSample, Role
from drkit.domain.rbd_status import DEFAULT_STALE_AFTER
from drkit.domain.rpo_points import PointLike, _points

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
