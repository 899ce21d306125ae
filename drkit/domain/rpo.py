"""RPO maths: per-image and per-app lag (from a status sample, a journal estimate or exact synced
points) and breach hysteresis. A journal-mode image has no timestamp of its replayed point: its
figure is an ESTIMATE, kept in ``lag_estimate`` beside its facts (entries behind, replay rate,
status age) and never in ``lag`` (see :func:`journal_lag_estimate`).

Pure functions of samples and an injected ``now``; parsing is in :mod:`drkit.domain.rbd_status`,
the synced points and their completion bounds in :mod:`drkit.domain.rpo_points`, the sawtooth and
its figures in :mod:`drkit.domain.rpo_sawtooth`.

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
    lag: timedelta | None = Field(
        ...,
        description="at - newest complete consistency point (measured); None = unknown, and always None"
        " for a journal-mode image (see lag_estimate)",
    )
    health: Health = Field(..., description="health of the image at 'at'")
    reason: str = Field(..., description="human explanation (why unknown, or what is happening)")
    source: LagSource = Field(..., description="status (upper bound), exact, or journal-estimate")
    role: Role = Field("unknown", description="role of the image at 'site'")
    raw_state: str = Field("", description="rbd's state, e.g. 'up+replaying'")
    mode: MirrorMode = Field("unknown", description="mirroring mode")
    clock_skew: timedelta | None = Field(
        None, description="how far in the future the consistency point was when the lag was clamped to 0"
    )
    lag_estimate: timedelta | None = Field(
        None,
        description="journal mode: ESTIMATED lag (status age + entries behind / replay rate); None ="
        " not a journal-mode image, or no estimate possible",
    )
    entries_behind: int | None = Field(
        None, description="journal mode: entries the secondary had not replayed (entries_behind_primary)"
    )
    entries_per_second: float | None = Field(None, description="journal mode: replay rate rbd-mirror reports")
    status_age: timedelta | None = Field(
        None, description="journal mode: at - last_update, the age of the status the estimate comes from"
    )

    @property
    def lag_seconds(self) -> float | None:
        """The measured lag in seconds, ``None`` when unknown (always for journal mode)."""
        return None if self.lag is None else self.lag.total_seconds()

    @property
    def lag_estimate_seconds(self) -> float | None:
        """The journal-mode lag ESTIMATE in seconds, ``None`` when there is none."""
        return None if self.lag_estimate is None else self.lag_estimate.total_seconds()

    @property
    def status_age_seconds(self) -> float | None:
        """The journal-mode status age in seconds, ``None`` when not known."""
        return None if self.status_age is None else self.status_age.total_seconds()

    @property
    def estimated(self) -> bool:
        """Whether this image's figure is a journal-mode estimate rather than a measure."""
        return self.source == "journal-estimate"

    @property
    def lag_or_estimate(self) -> timedelta | None:
        """One figure for gates that need one: the measured lag, else the journal estimate."""
        return self.lag if self.lag is not None else self.lag_estimate

    @property
    def lag_or_estimate_seconds(self) -> float | None:
        """:attr:`lag_or_estimate` in seconds (``None`` when unknown)."""
        figure = self.lag_or_estimate
        return None if figure is None else figure.total_seconds()


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

    A journal-mode image (the mode its status reports) gets no ``lag``: its figure is
    ``lag_estimate`` (:func:`journal_lag_estimate`), with the entries behind, the replay rate and
    the status age it comes from.
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
        estimate, why = journal_lag_estimate(sample, now)
        return _image_lag(
            sample, now, None, health, why if estimate is None else f"{reason}; {why}", estimate=estimate
        )
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
    *,
    estimate: timedelta | None = None,
) -> ImageLag:
    if lag is None and estimate is None and health == "ok":
        health = "unknown"  # never "ok" without a figure
    journal = sample.mode == "journal"
    age = None if sample.last_update is None else max(now - sample.last_update, _ZERO)
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
        lag_estimate=estimate,
        entries_behind=sample.entries_behind if journal else None,
        entries_per_second=sample.entries_per_second if journal else None,
        status_age=age if journal else None,
    )


def journal_lag_estimate(sample: MirrorSample, now: datetime) -> tuple[timedelta | None, str]:
    """An ESTIMATE of a journal-mode image's lag: ``(estimate or None, explanation)``.

    Journal mode reports how many entries the secondary has not replayed
    (``entries_behind_primary``, ``n``), the replay rate (``entries_per_second``, ``r``) and when
    the status was written (``last_update``), but no time of the replayed point, so a lag in
    seconds can only be estimated::

        estimate = (now - last_update) + n / r     when n > 0 and r > 0
        estimate = (now - last_update)             when n == 0 (the backlog term is 0, never negative)
        unknown                                    when last_update or n is missing, or n > 0 and r <= 0

    ``n / r`` is the time the backlog takes to replay at the current rate; while replay keeps
    pace with the writes it is also about the age of the oldest entry not yet replayed. The status
    age adds the time since rbd-mirror wrote the figures (every 30 s): writes made since are not
    counted, and B may have replayed more. A rough estimate, neither a bound nor exact; it is
    labelled ``journal-estimate`` wherever it is shown and never mixed into the measured ``lag``.
    A ``last_update`` in the future counts as age 0.
    """
    if sample.last_update is None:
        return None, "journal mode: no last_update to estimate from"
    age = max(now - sample.last_update, _ZERO)
    behind = sample.entries_behind
    if behind is None:
        return None, "journal mode: description has no entries_behind_primary"
    if behind <= 0:
        return age, (f"journal estimate: caught up at the last status write, {age.total_seconds():.0f}s ago")
    rate = sample.entries_per_second
    if rate is None or rate <= 0:
        return None, f"journal mode: {behind} entries behind and no replay rate to estimate the lag"
    return age + timedelta(seconds=behind / rate), (
        f"journal estimate: {behind} entries behind at {rate:g} entries/s,"
        f" status {age.total_seconds():.0f}s old"
    )


# ------------------------------------------------------------------------------------- per app

_SOURCE_RANK: dict[str, int] = {"journal-estimate": 0, "status": 1, "exact": 2}


class AppLag(Model):
    """An app's lag: the oldest of its images; unknown when any image is unknown.

    Measured and estimated figures are kept apart: ``lag`` is the oldest measured image (status
    or exact), ``lag_estimate`` the oldest journal-mode estimate; an app with both kinds of image
    has both. Unknown (both ``None``) when any image has no figure.
    """

    app: str = Field(..., description="app name")
    at: AwareDatetime = Field(..., description="time the lag is computed for")
    lag: timedelta | None = Field(
        ..., description="max of the measured images' lags; None = unknown, or no measured image"
    )
    reason: str = Field(..., description="why, naming the image that decides")
    source: LagSource = Field(..., description="least exact source among the images")
    worst_image: str | None = Field(None, description="image that sets the lag (or is unknown)")
    images: tuple[ImageLag, ...] = Field(..., description="the per-image lags")
    lag_estimate: timedelta | None = Field(
        None,
        description="max of the journal-mode images' ESTIMATED lags; None = unknown, or no journal-mode"
        " image",
    )
    entries_behind: int | None = Field(
        None, description="most journal entries any journal-mode image is behind; None = none known"
    )

    @property
    def lag_seconds(self) -> float | None:
        """The measured lag in seconds, ``None`` when unknown."""
        return None if self.lag is None else self.lag.total_seconds()

    @property
    def lag_estimate_seconds(self) -> float | None:
        """The estimated (journal-mode) lag in seconds, ``None`` when there is none."""
        return None if self.lag_estimate is None else self.lag_estimate.total_seconds()

    @property
    def lag_or_estimate(self) -> timedelta | None:
        """The figure the breach rule judges: the larger of ``lag`` and ``lag_estimate``."""
        figures = [f for f in (self.lag, self.lag_estimate) if f is not None]
        return max(figures) if figures else None

    @property
    def estimated(self) -> bool:
        """Whether :attr:`lag_or_estimate` is the journal-mode estimate (not a measure)."""
        return self.lag_estimate is not None and (self.lag is None or self.lag_estimate > self.lag)


def app_lag(app: str, lags: Sequence[ImageLag], at: datetime | None = None) -> AppLag:
    """Combine per-image lags: the max, or unknown with the first unknown image's reason.

    Measured images give ``lag``, journal-mode ones ``lag_estimate`` (each the max of its kind);
    ``worst_image`` is the image with the largest figure of either kind. The app's ``source`` is
    the least exact of its images' (journal-estimate < status < exact). An app with no images is
    unknown.
    """
    when = at or (lags[0].at if lags else None)
    if when is None:
        raise ValueError("app_lag needs 'at' when the app has no images")
    if not lags:
        return AppLag(app=app, at=when, lag=None, reason="no images to measure", source="status", images=())
    source: LagSource = min((lag.source for lag in lags), key=lambda s: _SOURCE_RANK[s])
    behind = [lag.entries_behind for lag in lags if lag.entries_behind is not None]
    entries = max(behind) if behind else None
    unknown = [lag for lag in lags if lag.lag_or_estimate is None]
    if unknown:
        first = unknown[0]
        return AppLag(
            app=app,
            at=when,
            lag=None,
            source=source,
            worst_image=first.image,
            images=tuple(lags),
            entries_behind=entries,
            reason=f"image {first.image} ({first.health}): {first.reason}",
        )
    measured = [lag.lag for lag in lags if lag.lag is not None]
    estimates = [lag.lag_estimate for lag in lags if lag.lag is None and lag.lag_estimate is not None]
    worst = max(lags, key=lambda lag: lag.lag_or_estimate or _ZERO)
    what = "estimated lag of image" if worst.lag is None else "oldest image"
    return AppLag(
        app=app,
        at=when,
        lag=max(measured) if measured else None,
        lag_estimate=max(estimates) if estimates else None,
        entries_behind=entries,
        source=source,
        worst_image=worst.image,
        images=tuple(lags),
        reason=f"{what} {worst.image}: {worst.reason}",
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
    previous: BreachState | None,
    app_lag: AppLag,
    target: timedelta,
    clear_ratio: float = 0.8,
    *,
    max_entries_behind: int | None = None,
) -> BreachDecision:
    """Breach detection with hysteresis.

    * A breach opens when the lag is over ``target``, or when the lag has been unknown for longer
      than ``target`` (without a figure the RPO cannot be shown to hold; a blind spot shorter than
      the target, such as one stale sample, does not page anyone).
    * An open breach recovers only when the lag is known and below ``clear_ratio * target``, so a lag
      oscillating around the target emits one breach, not a storm. Unknown keeps it open.

    The lag judged is :attr:`AppLag.lag_or_estimate`: a journal-mode image's estimate counts against
    ``target`` like a measure, and the reason then says "estimated". With ``max_entries_behind``,
    a journal-mode image more entries behind than that also opens a breach (even when its estimate
    is unknown), and the breach recovers only once the entries are at most ``clear_ratio`` times it.
    """
    if not 0 < clear_ratio <= 1:
        raise ValueError(f"clear_ratio must be within (0, 1], got {clear_ratio}")
    prev = previous or BreachState()
    now, lag = app_lag.at, app_lag.lag_or_estimate
    what = "estimated lag" if app_lag.estimated else "lag"
    entries = app_lag.entries_behind
    over_entries = max_entries_behind is not None and entries is not None and entries > max_entries_behind
    entries_high = (
        max_entries_behind is not None and entries is not None and entries > clear_ratio * max_entries_behind
    )
    unknown_since = (prev.unknown_since or now) if lag is None else None
    keep = {"unknown_since": unknown_since, "last_lag": lag, "last_at": now}
    clear_below = target * clear_ratio
    if not prev.breached:
        if lag is not None and lag > target:
            why = f"{what} {lag.total_seconds():.0f}s is over the target {target.total_seconds():.0f}s"
            if app_lag.estimated:
                why += " (journal mode: status age + entries behind / replay rate)"
        elif over_entries:
            why = (
                f"a journal-mode image is {entries} entries behind its primary, over the limit"
                f" {max_entries_behind} (rpo_max_entries_behind); estimated lag "
                + ("unknown" if lag is None else f"{lag.total_seconds():.0f}s")
            )
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
    if lag is not None and lag < clear_below and not entries_high:
        entries_note = f", {entries} entries behind" if entries is not None and max_entries_behind else ""
        return BreachDecision(
            state=BreachState(breached=False, **keep),
            event="recovered",
            reason=f"{what} {lag.total_seconds():.0f}s is below {clear_ratio:g} x target{entries_note}",
        )
    if lag is None:
        why = "lag unknown"
    elif lag >= clear_below:
        why = f"{what} {lag.total_seconds():.0f}s not yet below {clear_below.total_seconds():.0f}s"
    else:
        why = f"{entries} journal entries behind, not yet at most {clear_ratio:g} x {max_entries_behind}"
    return BreachDecision(
        state=BreachState(breached=True, breached_since=prev.breached_since, **keep),
        reason=f"still breached: {why}",
    )
