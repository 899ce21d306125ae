"""Rules of one RPO sample: which status describes an image, when exact mode runs, how its figure
merges with the status, and what the sampler remembers and alerts on between runs.

Pure: the rbd calls, the clock and the storage are in :mod:`drkit.jobs.rpo`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Literal

from drkit.domain.rbd_models import MirrorSample, PoolStatus
from drkit.domain.rpo import AppLag, BreachState, ImageLag, evaluate_breach, image_lag
from drkit.domain.rpo_points import SyncedPoint, remember

ExactMode = Literal["auto", "always", "never"]
"""When exact mode (``rbd snap ls`` on both sites) runs: on suspicion, always, or never."""
AlertKind = Literal["breach", "recovered", "unhealthy"]
UNHEALTHY = frozenset({"down", "error", "split-brain"})
"""Image healths that raise an ``unhealthy`` alert when an image enters them."""
NO_LAG = frozenset({"split-brain", "error"})
"""Image healths that never get a lag (and never run exact mode)."""

_KNOWN_POOL_KEYS = frozenset({"summary", "daemons", "images"})
_KNOWN_IMAGE_KEYS = frozenset(
    {"name", "global_id", "state", "description", "daemon_service", "last_update", "peer_sites", "snapshots"}
)


def unknown_keys(doc: Mapping[str, Any]) -> tuple[str, ...]:
    """Fields of a pool-status document Standby does not read (reported, never fatal)."""
    extra = sorted(set(doc) - _KNOWN_POOL_KEYS)
    images = doc.get("images")
    if isinstance(images, list):
        extra += sorted({k for img in images if isinstance(img, Mapping) for k in img} - _KNOWN_IMAGE_KEYS)
    return tuple(extra)


@dataclass(frozen=True)
class SiteSampling:
    """One pool-status call on one site: the parsed status, or why the sample is invalid."""

    site: str
    pool: str
    taken_at: datetime
    command: str
    status: PoolStatus | None = None
    error: str | None = None
    transient: bool = False
    notes: tuple[str, ...] = ()
    seconds: float = 0.0

    @property
    def valid(self) -> bool:
        """Whether the call succeeded and parsed."""
        return self.status is not None

    @property
    def samples(self) -> tuple[MirrorSample, ...]:
        """The per-image samples (empty when invalid)."""
        return self.status.samples if self.status is not None else ()


@dataclass(frozen=True)
class AppReading:
    """The measured lag of one app at one time, with its target and exact points used."""

    app: str
    target: timedelta
    lag: AppLag
    secondary_site: str
    pool: str
    exact_points: Mapping[str, tuple[SyncedPoint, ...]] = field(default_factory=dict)
    exact_errors: Mapping[str, str] = field(default_factory=dict)
    max_entries_behind: int | None = None
    """The app's ``rpo_max_entries_behind``: the breach limit on a journal-mode image's entries."""


def choose_sample(
    samplings: Iterable[SiteSampling], secondary: str, image: str, pool: str | None = None
) -> MirrorSample | None:
    """The sample describing ``image``'s copy on ``secondary``, the app's current secondary site
    (``pool``: only samplings of that pool; an image name is unique within a pool only).

    Any split-brain or error seen from either side wins (never a healthy lag then). Otherwise the
    secondary's own status is preferred to the primary's ``peer_sites`` view of it.
    """
    found = [
        s
        for sampling in samplings
        if pool is None or sampling.pool == pool
        for s in sampling.samples
        if s.image == image
    ]
    bad = [s for s in found if s.health in NO_LAG]
    if bad:
        return bad[0]
    own = [s for s in found if s.site == secondary and not s.from_peer]
    peer = [s for s in found if s.site == secondary and s.from_peer]
    other = [s for s in found if s.site != secondary]
    for group in (own, peer, other):
        if group:
            return group[0]
    return None


def status_lag(sample: MirrorSample | None, image: str, pool: str, site: str, now: datetime) -> ImageLag:
    """The status's lag of ``image`` at ``now``; ``unknown`` when no valid status names it."""
    if sample is not None:
        return image_lag(sample, now)
    return ImageLag(
        image=image,
        pool=pool,
        site=site,
        at=now,
        lag=None,
        health="unknown",
        reason=f"image {pool}/{image} is not in any valid pool status",
        source="status",
    )


def needs_exact(probe: ImageLag, mode: ExactMode, target: timedelta, suspect_ratio: float = 0.8) -> bool:
    """Whether exact mode runs for an image whose status lag is ``probe``.

    Never for split-brain or error, nor for a journal-mode image (it has no mirror snapshots to
    list: its figure is the estimate). In ``auto`` mode, when a breach is suspected (status lag
    over ``suspect_ratio`` x target) or the status gives no figure (daemon down, stale status).
    """
    if probe.health in NO_LAG or mode == "never" or probe.mode == "journal":
        return False
    return mode == "always" or probe.lag is None or probe.lag > target * suspect_ratio


def merge_exact(status: ImageLag, exact: ImageLag, pool: str, site: str) -> ImageLag:
    """The image's lag once exact mode gave a figure: the exact lag, with the status's health.

    A down, stale or syncing status keeps its health (and its reason first); otherwise the image
    is ``ok`` with the exact reason. Without an exact figure the status lag stands.
    """
    if exact.lag is None:
        return status
    health = status.health if status.health in ("down", "stale", "syncing") else "ok"
    reason = exact.reason if health == "ok" else f"{status.reason}; {exact.reason}"
    return exact.model_copy(
        update={"pool": pool, "site": site, "health": health, "reason": reason, "raw_state": status.raw_state}
    )


# ------------------------------------------------------------------------------- memory and alerts


@dataclass(frozen=True)
class RpoAlert:
    """Something to tell the operators: a breach opened or recovered, or an image turned unhealthy.

    ``image`` is set for ``unhealthy`` (the alert is about that image) and ``None`` for the app's
    breach alerts. ``payload`` holds plain JSON values.
    """

    kind: AlertKind
    app: str
    site: str
    pool: str
    payload: Mapping[str, Any]
    image: str | None = None


@dataclass
class RpoMemory:
    """What the sampler remembers per app: breach hysteresis, each image's last health, and the
    newest exact points per image with the smallest completion bound seen so far (B prunes its
    snapshots, so a later listing can only tighten a point the sampler remembers)."""

    breach: BreachState = field(default_factory=BreachState)
    health: dict[str, str] = field(default_factory=dict)
    points: dict[str, tuple[SyncedPoint, ...]] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {
            "breach": self.breach.model_dump(mode="json"),
            "health": dict(self.health),
            "points": {
                image: [p.model_dump(mode="json") for p in pts] for image, pts in sorted(self.points.items())
            },
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> RpoMemory:
        """Inverse of :meth:`to_json`."""
        points = data.get("points") or {}
        return cls(
            breach=BreachState.model_validate(data.get("breach") or {}),
            health={str(k): str(v) for k, v in (data.get("health") or {}).items()},
            points={
                str(image): tuple(SyncedPoint.model_validate(p) for p in pts)
                for image, pts in (points.items() if isinstance(points, Mapping) else ())
                if isinstance(pts, list)
            },
        )


def evaluate(
    reading: AppReading, memory: RpoMemory, clear_ratio: float = 0.8
) -> tuple[RpoMemory, list[RpoAlert]]:
    """Breach hysteresis and unhealthy transitions of one app: the new memory and the alerts.

    A breach or a recovery is alerted once per crossing (:func:`~drkit.domain.rpo.evaluate_breach`),
    an unhealthy image once per entry into down, error or split-brain.
    """
    decision = evaluate_breach(
        memory.breach, reading.lag, reading.target, clear_ratio, max_entries_behind=reading.max_entries_behind
    )
    lag = reading.lag
    alerts: list[RpoAlert] = []
    if decision.event is not None:
        alerts.append(
            RpoAlert(
                kind=decision.event,
                app=reading.app,
                site=reading.secondary_site,
                pool=reading.pool,
                payload={
                    "app": reading.app,
                    "lag_seconds": lag.lag_seconds,
                    "lag_estimate_seconds": lag.lag_estimate_seconds,
                    "estimated": lag.estimated,
                    "entries_behind": lag.entries_behind,
                    "max_entries_behind": reading.max_entries_behind,
                    "target_seconds": reading.target.total_seconds(),
                    "source": lag.source,
                    "worst_image": lag.worst_image,
                    "reason": decision.reason,
                    "at": lag.at.isoformat(),
                    "breached_since": (
                        decision.state.breached_since or memory.breach.breached_since or lag.at
                    ).isoformat(),
                },
            )
        )
    health: dict[str, str] = {}
    for img in lag.images:
        health[img.image] = img.health
        if img.health in UNHEALTHY and memory.health.get(img.image) != img.health:
            alerts.append(
                RpoAlert(
                    kind="unhealthy",
                    app=reading.app,
                    site=img.site or reading.secondary_site,
                    pool=reading.pool,
                    image=img.image,
                    payload={
                        "app": reading.app,
                        "image": img.image,
                        "pool": reading.pool,
                        "health": img.health,
                        "state": img.raw_state,
                        "reason": img.reason,
                        "at": img.at.isoformat(),
                    },
                )
            )
    points = dict(memory.points)
    for image, pts in reading.exact_points.items():
        points[image] = remember([*points.get(image, ()), *pts])
    return RpoMemory(breach=decision.state, health=health, points=points), alerts


@dataclass(frozen=True)
class SampleRun:
    """Everything one sampler run produced."""

    at: datetime
    samplings: tuple[SiteSampling, ...]
    readings: tuple[AppReading, ...]
    keys: tuple[str, ...] = ()
    alerts: tuple[RpoAlert, ...] = ()
