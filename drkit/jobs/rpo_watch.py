"""The completion watcher: when the secondary completed each mirror snapshot, to within one poll.

The secondary keeps only its newest complete snapshot, so a sampler every few minutes misses most
consistency points. For each protected image the watcher lists the secondary's ``rbd snap ls
--all`` every ``every`` (every ``busy_every`` while a sync is in progress) and the primary's only
when a new snapshot appears. Each listing bounds every completion it shows by the clock read after
the call (never early, see :func:`~drkit.domain.rpo_points.points_from_snapshots`). New or tightened
points go to the secondary's sample partition as ``kind=point, source=watch`` rows every
``flush_every`` and at the end, with one ``kind=watch`` coverage row per image; the run fails when
an image still cannot be listed at its end or rows could not be written.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from drkit.adapters.clock import Clock
from drkit.adapters.rbd import RbdMirror
from drkit.adapters.rpo_store import COLUMNS, SampleStore
from drkit.domain.errors import ConfigError, StandbyError
from drkit.domain.models import ProtectedApp, Site, StandbyConfig
from drkit.domain.placement import Placement, roles
from drkit.domain.rbd_status import parse_snap_ls
from drkit.domain.rpo_points import SyncedPoint, points_from_snapshots, remember
from drkit.jobs.requests import RpoWatchRequest, default

DEFAULT_EVERY = timedelta(seconds=default(RpoWatchRequest, "every_seconds"))
DEFAULT_BUSY_EVERY = timedelta(seconds=default(RpoWatchRequest, "busy_every_seconds"))
BUSY_FOR = timedelta(seconds=30)
DEFAULT_FLUSH_EVERY = timedelta(seconds=60)


@dataclass
class ImageWatch:
    """What the watcher knows about one image between polls."""

    app: str
    image: str
    primary: Site
    secondary: Site
    primary_times: dict[int, datetime] = field(default_factory=dict)
    points: tuple[SyncedPoint, ...] = ()
    pending: list[dict[str, Any]] = field(default_factory=list)
    last_listing: str | None = None
    polls: int = 0
    primary_listings: int = 0
    failures: int = 0
    error: StandbyError | None = None  # the last failed listing's error
    written: int = 0
    last_polled_at: datetime | None = None
    covered_until: datetime | None = None
    syncing: tuple[int, datetime] | None = None  # B's snapshot in progress and when it was first seen
    skew_clamps: int = 0

    @property
    def busy(self) -> bool:
        """A sync is in progress and still in its first ``BUSY_FOR`` (a stalled one is not polled fast)."""
        return (
            self.syncing is not None
            and self.last_polled_at is not None
            and self.last_polled_at - self.syncing[1] < BUSY_FOR
        )

    @property
    def last_error(self) -> str | None:
        """The last failed listing: its command, site and message."""
        if self.error is None:
            return None
        return (
            f"`{self.error.context.get('command')}` on {self.error.context.get('site')}: {self.error.message}"
        )

    @property
    def label(self) -> str:
        """``pool/image on site`` of the listing this watch makes."""
        return f"{self.secondary.pool}/{self.image} on {self.secondary.name}"

    def summary(self) -> dict[str, Any]:
        """One row of the watcher's table: polls, failures, points and the newest point."""
        newest = self.points[-1] if self.points else None
        return {
            "app": self.app,
            "image": self.image,
            "site": self.secondary.name,
            "polls": self.polls,
            "primary_listings": self.primary_listings,
            "failures": self.failures,
            "points_written": self.written,
            "skew_clamps": self.skew_clamps,
            "newest_point": newest.data_time.isoformat() if newest else None,
            "newest_completed_by": newest.completed_at.isoformat()
            if newest and newest.completed_at
            else None,
            "last_error": self.last_error,
        }


def watches_for(
    config: StandbyConfig,
    apps: Sequence[str] | None = None,
    *,
    placements: Mapping[str, Placement] | None = None,
) -> list[ImageWatch]:
    """One :class:`ImageWatch` per volume of the chosen apps (every app when ``apps`` is empty),
    from each app's current primary to its current secondary (its ``placements``; home without one)."""
    chosen: list[ProtectedApp] = [config.app(name) for name in apps] if apps else list(config.apps)
    watches = []
    for app in chosen:
        primary, secondary = roles(app, placements)
        for volume in app.volumes:
            watches.append(
                ImageWatch(
                    app=app.name,
                    image=volume.image,
                    primary=config.site(primary),
                    secondary=config.site(secondary),
                )
            )
    return watches


def _row(w: ImageWatch, kind: str, at: datetime, **more: Any) -> dict[str, Any]:
    values = {
        "kind": kind,
        "sampled_at": at,
        "site": w.secondary.name,
        "observed_from": w.secondary.name,
        "pool": w.secondary.pool,
        "app": w.app,
        "image": w.image,
        "source": "watch",
        **more,
    }
    return {c: values.get(c) for c in COLUMNS}


def _point_row(w: ImageWatch, p: SyncedPoint, at: datetime) -> dict[str, Any]:
    return _row(w, "point", at, data_time=p.data_time, completed_at=p.completed_at)


def _coverage_row(w: ImageWatch) -> dict[str, Any] | None:
    """A ``kind=watch`` row: every completion up to its time is in the points already written.

    ``rpo-report`` extends its figures up to the newest such row (no figures past the data).
    """
    if w.last_polled_at is None or w.last_polled_at == w.covered_until:
        return None
    w.covered_until = w.last_polled_at
    reason = f"{w.polls} listings, {w.failures} failed" + (
        f"; last error: {w.last_error}" if w.failures else ""
    )
    return _row(w, "watch", w.last_polled_at, reason=reason)


def snap_ls_command(pool: str, image: str) -> str:
    """The rbd command one listing runs (for messages)."""
    return f"rbd snap ls --all {pool}/{image} --format json"


def _list(rbds: Mapping[str, RbdMirror], site: Site, image: str) -> list[dict[str, Any]]:
    try:
        return rbds[site.name].snapshots(site.pool, image)
    except StandbyError as exc:  # the same error, told which command and site it came from
        exc.context.setdefault("command", snap_ls_command(site.pool, image))
        exc.context.setdefault("site", site.name)
        raise


def poll_image(w: ImageWatch, rbds: Mapping[str, RbdMirror], clock: Clock) -> None:
    """List the secondary (and the primary when needed) once, updating ``w``.

    A poll counts (``polls``, ``last_polled_at``) only once its points are computed. Raises the
    adapter's :class:`StandbyError` when a listing fails (the caller counts it).
    """
    raw = _list(rbds, w.secondary, w.image)
    listed_at = clock.now()  # read after the listing returned: an upper bound of every completion it shows
    text = json.dumps(raw, sort_keys=True)
    if text != w.last_listing:  # an unchanged listing adds nothing: a later time only loosens a bound
        b_snaps = parse_snap_ls(raw, tz=w.secondary.timezone)
        created = [s.created_at for s in b_snaps if s.non_primary and s.created_at is not None]
        if created and max(created) > listed_at:
            # B created a listed snapshot after our clock says the listing returned: this worker's
            # clock is behind the cluster's. Use B's time, so no bound is early by that skew.
            w.skew_clamps += 1
            listed_at = max(created)
        wanted = {s.primary_snap_id for s in b_snaps if s.non_primary and s.primary_snap_id is not None}
        if wanted - set(w.primary_times):
            a_snaps = parse_snap_ls(_list(rbds, w.primary, w.image), tz=w.primary.timezone)
            w.primary_listings += 1
            latest = {s.id: s.created_at for s in a_snaps if s.created_at is not None and not s.non_primary}
            w.primary_times = {i: t for i, t in w.primary_times.items() if i in wanted} | latest
        found = points_from_snapshots(
            b_snaps, w.primary_times, listed_at, known=w.points, tz=w.secondary.timezone
        )
        before = {p.data_time: p.completed_at for p in w.points}
        fresh = [p for p in found if p.data_time not in before or before[p.data_time] != p.completed_at]
        w.pending += [_point_row(w, p, listed_at) for p in fresh if p.completed_at is not None]
        w.points = remember(found)
        w.last_listing = text
        progress = [s.id for s in b_snaps if s.non_primary and not s.complete]
        if not progress:
            w.syncing = None
        elif w.syncing is None or w.syncing[0] != progress[-1]:
            w.syncing = (progress[-1], listed_at)
    w.polls += 1
    w.last_polled_at = listed_at


@dataclass(frozen=True)
class WatchReport:
    """What one watcher run did."""

    started: datetime
    ended: datetime
    images: tuple[dict[str, Any], ...]
    keys: tuple[str, ...]
    unwritten_rows: int
    slow_rounds: int = 0

    @property
    def polls(self) -> int:
        """Listings of the secondary over all images."""
        return sum(int(i["polls"]) for i in self.images)

    def to_json(self) -> dict[str, Any]:
        """What ``standby rpo watch --json`` prints."""
        return {
            "started": self.started.isoformat(),
            "ended": self.ended.isoformat(),
            "polls": self.polls,
            "images": list(self.images),
            "keys": list(self.keys),
            "unwritten_rows": self.unwritten_rows,
            "slow_rounds": self.slow_rounds,
        }


def _flush(
    watches: Sequence[ImageWatch], records: SampleStore | None, now: datetime, keys: list[str]
) -> str | None:
    """Append every pending row, per secondary site; the error text of the first failed site."""
    if records is None:
        for w in watches:
            w.written += len(w.pending)
            w.pending.clear()
        return None
    problem = None
    for w in watches:
        if (row := _coverage_row(w)) is not None:
            w.pending.append(row)
    for site in sorted({w.secondary.name for w in watches}):
        group = [w for w in watches if w.secondary.name == site and w.pending]
        rows = [r for w in group for r in w.pending]
        if not rows:
            continue
        if site not in records.sites:
            problem = problem or f"no object store for site {site}"
            continue
        try:
            key = records.append(site, rows, now)
        except StandbyError as exc:  # kept pending: the next flush tries again
            problem = problem or str(exc)
            continue
        if key:
            keys.append(key)
        for w in group:
            w.written += sum(1 for r in w.pending if r["kind"] == "point")
            w.pending.clear()
    return problem


def run_watch(
    config: StandbyConfig,
    rbds: Mapping[str, RbdMirror],
    *,
    records: SampleStore | None,
    clock: Clock,
    duration: timedelta,
    every: timedelta = DEFAULT_EVERY,
    busy_every: timedelta = DEFAULT_BUSY_EVERY,
    flush_every: timedelta = DEFAULT_FLUSH_EVERY,
    apps: Sequence[str] | None = None,
    on_flush: Callable[[Sequence[ImageWatch]], None] | None = None,
    placements: Mapping[str, Placement] | None = None,
) -> WatchReport:
    """Poll every ``every`` for ``duration``, flushing points every ``flush_every`` (see module doc).

    While a sync is in progress on any watched image, rounds come every ``busy_every`` instead: the
    completion is near, and the faster poll tightens its bound. A round that takes longer than
    ``every`` (many images, slow calls) is counted in ``slow_rounds``.
    """
    if every <= timedelta(0) or busy_every <= timedelta(0) or duration <= timedelta(0):
        raise ConfigError(
            f"rpo watch: every ({every.total_seconds()} s) and duration ({duration.total_seconds()} s)"
            " must be positive",
            hint="e.g. --every 1s --for 10m",
        )
    watches = watches_for(config, apps, placements=placements)
    if not watches:
        raise ConfigError("rpo watch: the configuration protects no volume", hint="add apps with volumes")
    missing = sorted({s.name for w in watches for s in (w.primary, w.secondary)} - set(rbds))
    if missing:
        raise ConfigError(
            f"rpo watch: no rbd access to site {', '.join(missing)}",
            hint="give the site a ceph section (standby config check shows it)",
        )
    started = clock.now()
    deadline = started + duration
    next_flush = started + flush_every
    keys: list[str] = []
    problem: str | None = None
    slow_rounds = 0
    try:
        while True:
            tick = clock.now()
            for w in watches:
                try:
                    poll_image(w, rbds, clock)
                except StandbyError as exc:
                    w.failures += 1
                    w.error = exc
            now = clock.now()
            if now >= next_flush:
                problem = _flush(watches, records, now, keys)
                next_flush = now + flush_every
                if on_flush is not None:
                    on_flush(watches)
            if now >= deadline:
                break
            elapsed = (now - tick).total_seconds()
            slow_rounds += elapsed > every.total_seconds()
            period = (busy_every if any(w.busy for w in watches) else every).total_seconds()
            clock.sleep(min(period, max(0.0, period - elapsed)))
    finally:
        problem = _flush(watches, records, clock.now(), keys)
    unwritten = sum(1 for w in watches for r in w.pending if r["kind"] == "point")
    report = WatchReport(
        started=started,
        ended=clock.now(),
        images=tuple(w.summary() for w in watches),
        keys=tuple(keys),
        unwritten_rows=unwritten,
        slow_rounds=slow_rounds,
    )
    ended = report.ended
    failing = [w for w in watches if w.last_polled_at is None or ended - w.last_polled_at > flush_every]
    if failing:  # the other images' points are written: nothing observed is lost
        first = failing[0]
        hint = first.error.hint if first.error is not None else ""
        detail = "; ".join(
            f"{w.label}: {w.last_error} (last good listing:"
            f" {w.last_polled_at.isoformat() if w.last_polled_at else 'never'})"
            for w in failing
        )
        raise StandbyError(
            f"rpo watch: {len(failing)} of {len(watches)} images could not be listed at the end of the"
            f" run ({sum(w.failures for w in failing)} failed tries): {detail}",
            hint=hint or "check rbd access to both sites (standby config check)",
            context={"site": first.secondary.name, "image": first.image},
        )
    if unwritten:
        raise StandbyError(
            f"rpo watch: {unwritten} observed points could not be written: {problem}",
            hint="check the sites' S3 bucket and credentials; the next run observes again",
            context={"sites": ",".join(sorted({w.secondary.name for w in watches if w.pending}))},
        )
    return report


def watch(
    config: StandbyConfig,
    rbds: Mapping[str, RbdMirror],
    request: RpoWatchRequest,
    *,
    records: SampleStore | None,
    clock: Clock,
    on_flush: Callable[[Sequence[ImageWatch]], None] | None = None,
    placements: Mapping[str, Placement] | None = None,
) -> WatchReport:
    """The watch use case (flow and CLI): :func:`run_watch` as ``request`` asks, the roles from
    ``placements``."""
    return run_watch(
        config,
        rbds,
        records=records,
        clock=clock,
        duration=timedelta(minutes=request.minutes),
        every=timedelta(seconds=request.every_seconds),
        busy_every=timedelta(seconds=request.busy_every_seconds),
        apps=[request.app] if request.app else None,
        on_flush=on_flush,
        placements=placements,
    )
