"""Measured RPO use cases (no Prefect): sample both sites, measure each app, record, evaluate breaches.

One sample of a site is **one** ``rbd mirror pool status POOL --verbose --format json`` call per
pool, never one call per image. A sample that fails (malformed or truncated JSON, an rbd timeout,
a non-zero exit, a document of the wrong shape) is kept as an *invalid* :class:`SiteSampling` with
its reason; :func:`sample_sites` fails only when no site at all could be sampled, and its error
names every site and the command that failed.

Per-app lag (:func:`measure_apps`) comes from the secondary's status (``source="status"``, an upper
bound at most one 30 s status cadence behind the truth) or, in *exact mode*, from the complete
``.mirror.non_primary.*`` snapshots listed by ``rbd snap ls --all`` on the secondary, matched with
the primary's snapshot creation times (``source="exact"``). Exact mode runs on demand, when a
breach is suspected (status lag over ``suspect_ratio`` x target) or when the status cannot give a
figure (daemon down, stale status): the snapshot listing does not need rbd-mirror to be running, so
a stopped daemon still shows a lag that grows. Split-brain and error states never get a lag.
B prunes its snapshots once the next one is synced, so the sampler keeps each image's newest exact
points in the app's memory (:attr:`RpoMemory.points`): a later listing or status tightens their
completion bounds, and every run records the merged points, from which ``rpo-report`` rebuilds
the sawtooth (the smallest bound per point wins).

Samples go to parquet files per site and UTC day (:class:`RpoRecords`), compacted per day, and are
read back per window for reports. Breach hysteresis (:func:`~drkit.domain.rpo.evaluate_breach`)
is persisted as a small JSON per app so ``standby.rpo.breach`` / ``standby.rpo.recovered`` are
emitted once per crossing, and ``standby.mirror.unhealthy`` once per image entering down, error
or split-brain. Jobs return :class:`RpoEvent` values; the Prefect task emits them.
"""

from __future__ import annotations

import io
import json
import secrets
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pandas as pd

from drkit.adapters.objectstore import ObjectStore
from drkit.adapters.rbd import RbdMirror
from drkit.domain.errors import NotFound, ParseError, StandbyError, TransientError
from drkit.domain.layout import StoreLayout
from drkit.domain.models import ProtectedApp, Site, StandbyConfig
from drkit.domain.rbd_status import (
    DEFAULT_STALE_AFTER,
    MirrorSample,
    PoolStatus,
    parse_pool_status,
    parse_snap_ls,
)
from drkit.domain.rpo import (
    AppLag,
    BreachState,
    ImageLag,
    SyncedPoint,
    app_lag,
    evaluate_breach,
    exact_lag,
    image_lag,
    points_from_snapshots,
    remember,
)
from drkit.jobs.requests import ExactMode, RpoSampleRequest, default

UNHEALTHY = frozenset({"down", "error", "split-brain"})
"""Image healths that emit ``standby.mirror.unhealthy``."""
BREACH_EVENT = "standby.rpo.breach"
RECOVERED_EVENT = "standby.rpo.recovered"
UNHEALTHY_EVENT = "standby.mirror.unhealthy"

_KNOWN_POOL_KEYS = frozenset({"summary", "daemons", "images"})
_KNOWN_IMAGE_KEYS = frozenset(
    {"name", "global_id", "state", "description", "daemon_service", "last_update", "peer_sites", "snapshots"}
)


def pool_status_command(pool: str) -> str:
    """The command a sample runs on a pool (for messages)."""
    return f"rbd mirror pool status {pool} --verbose --format json"


# --------------------------------------------------------------------------------------- sampling


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


def _unknown_keys(doc: Mapping[str, Any]) -> tuple[str, ...]:
    extra = sorted(set(doc) - _KNOWN_POOL_KEYS)
    images = doc.get("images")
    if isinstance(images, list):
        extra += sorted({k for img in images if isinstance(img, Mapping) for k in img} - _KNOWN_IMAGE_KEYS)
    return tuple(extra)


def sample_site(
    rbd: RbdMirror,
    site: Site,
    now: datetime | None = None,
    *,
    pools: Sequence[str] | None = None,
    stale_after: timedelta = DEFAULT_STALE_AFTER,
) -> tuple[SiteSampling, ...]:
    """Sample ``site``: one pool-status call per pool; a failure becomes an invalid sampling.

    The sample is judged at ``now`` when given (tests), else at the wall clock read after the call.
    """
    out: list[SiteSampling] = []
    for pool in pools or (site.pool,):
        command = pool_status_command(pool)
        started = datetime.now(UTC)
        try:
            doc = rbd.pool_status(pool)
            taken = now or datetime.now(UTC)
            if not isinstance(doc, Mapping):
                raise ParseError(f"expected a JSON object from `{command}`, got {type(doc).__name__}")
            status = parse_pool_status(
                doc, now=taken, tz=site.timezone, site=site.name, pool=pool, stale_after=stale_after
            )
        except StandbyError as exc:
            out.append(
                SiteSampling(
                    site=site.name,
                    pool=pool,
                    taken_at=now or datetime.now(UTC),
                    command=command,
                    error=f"{type(exc).__name__}: {exc}",
                    transient=isinstance(exc, TransientError),
                    seconds=(datetime.now(UTC) - started).total_seconds(),
                )
            )
            continue
        extra = _unknown_keys(doc)
        notes = (
            (f"ignored fields rbd printed that Standby does not know: {', '.join(extra)}",) if extra else ()
        )
        out.append(
            SiteSampling(
                site=site.name,
                pool=pool,
                taken_at=taken,
                command=command,
                status=status,
                notes=notes,
                seconds=(datetime.now(UTC) - started).total_seconds(),
            )
        )
    return tuple(out)


def sample_sites(
    rbds: Mapping[str, RbdMirror],
    config: StandbyConfig,
    now: datetime | None = None,
    *,
    stale_after: timedelta = DEFAULT_STALE_AFTER,
) -> tuple[SiteSampling, ...]:
    """Sample every site in ``rbds``; raise when no site could be sampled at all.

    The error names each site with its command and reason. It is a :class:`TransientError` (so
    Prefect retries) when every failure was transient (timeouts, EBUSY), else a
    :class:`StandbyError`.
    """
    samplings: list[SiteSampling] = []
    for name, rbd in rbds.items():
        samplings += sample_site(rbd, config.site(name), now, stale_after=stale_after)
    if samplings and not any(s.valid for s in samplings):
        detail = "; ".join(f"{s.site}: `{s.command}`: {s.error}" for s in samplings)
        error_type = TransientError if all(s.transient for s in samplings) else StandbyError
        raise error_type(
            f"no site could be sampled: {detail}",
            hint="check rbd access to the sites (ceph.conf, keyring or the toolbox pod) and their health",
            context={"sites": [s.site for s in samplings], "commands": [s.command for s in samplings]},
        )
    return tuple(samplings)


# ---------------------------------------------------------------------------------- measurement


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


def choose_sample(samplings: Iterable[SiteSampling], app: ProtectedApp, image: str) -> MirrorSample | None:
    """The sample describing ``image``'s copy on the app's secondary site.

    Any split-brain or error seen from either side wins (never a healthy lag then). Otherwise the
    secondary's own status is preferred to the primary's ``peer_sites`` view of it.
    """
    found = [s for sampling in samplings for s in sampling.samples if s.image == image]
    bad = [s for s in found if s.health in ("split-brain", "error")]
    if bad:
        return bad[0]
    own = [s for s in found if s.site == app.secondary_site and not s.from_peer]
    peer = [s for s in found if s.site == app.secondary_site and s.from_peer]
    other = [s for s in found if s.site != app.secondary_site]
    for group in (own, peer, other):
        if group:
            return group[0]
    return None


def exact_points(
    secondary: RbdMirror,
    primary: RbdMirror,
    pool: str,
    image: str,
    *,
    secondary_tz: str,
    primary_tz: str,
    listed_at: datetime | None = None,
    known: Sequence[SyncedPoint] = (),
    status: MirrorSample | None = None,
) -> tuple[SyncedPoint, ...]:
    """Synced points of ``image``: ``rbd snap ls --all`` on the secondary and on the primary.

    ``known`` are the points kept from earlier samples (their bounds may tighten now) and ``status``
    B's status of the image in this run (see :func:`~drkit.domain.rpo.points_from_snapshots`).
    ``listed_at`` defaults to the wall clock read after both listings returned.
    """
    b_snaps = parse_snap_ls(secondary.snapshots(pool, image), tz=secondary_tz)
    a_snaps = parse_snap_ls(primary.snapshots(pool, image), tz=primary_tz)
    listed = listed_at or datetime.now(UTC)
    primary_times = {s.id: s.created_at for s in a_snaps if s.created_at is not None and not s.non_primary}
    return points_from_snapshots(b_snaps, primary_times, listed, known=known, status=status, tz=secondary_tz)


def _unknown_lag(sample: MirrorSample | None, image: str, pool: str, site: str, now: datetime) -> ImageLag:
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


def measure_apps(
    config: StandbyConfig,
    samplings: Sequence[SiteSampling],
    now: datetime | None = None,
    *,
    rbds: Mapping[str, RbdMirror] | None = None,
    exact: ExactMode = default(RpoSampleRequest, "exact"),
    suspect_ratio: float = 0.8,
    apps: Sequence[str] | None = None,
    known: Mapping[str, Mapping[str, Sequence[SyncedPoint]]] | None = None,
) -> tuple[AppReading, ...]:
    """Per-app lag from the samplings; exact mode for the images that need it (see module doc).

    ``known`` holds, per app and image, the exact points kept from earlier runs
    (:attr:`RpoMemory.points`): a new listing can tighten their completion bounds, and the
    reading's ``exact_points`` are the merged set.

    Every lag is evaluated at one instant: ``now`` when given (tests), else the wall clock read
    AFTER the last rbd call. Evaluating no earlier than the data was read keeps every figure an
    upper bound: ``t - T(read) >= t - T(t)`` because the synced point only moves forward.
    """
    chosen = [a for a in config.apps if not apps or a.name in apps]
    probe_at = max((s.taken_at for s in samplings), default=now or datetime.now(UTC))
    points: dict[tuple[str, str], tuple[SyncedPoint, ...]] = {}
    errors: dict[tuple[str, str], str] = {}
    for app in chosen:
        secondary, primary = config.site(app.secondary_site), config.site(app.primary_site)
        for volume in app.volumes:
            sample = choose_sample(samplings, app, volume.image)
            probe = _unknown_lag(sample, volume.image, secondary.pool, secondary.name, probe_at)
            if probe.health in ("split-brain", "error") or exact == "never" or rbds is None:
                continue
            if exact == "auto" and probe.lag is not None and probe.lag <= app.rpo_target * suspect_ratio:
                continue
            a, b = rbds.get(primary.name), rbds.get(secondary.name)
            if a is None or b is None:
                errors[(app.name, volume.image)] = "exact mode needs rbd access to both sites"
                continue
            try:
                points[(app.name, volume.image)] = exact_points(
                    b,
                    a,
                    secondary.pool,
                    volume.image,
                    secondary_tz=secondary.timezone,
                    primary_tz=primary.timezone,
                    listed_at=now or datetime.now(UTC),
                    known=(known or {}).get(app.name, {}).get(volume.image, ()),
                    status=sample if sample is not None and sample.site == secondary.name else None,
                )
            except StandbyError as exc:
                errors[(app.name, volume.image)] = f"exact mode failed: {exc}"
    at = now or datetime.now(UTC)
    readings: list[AppReading] = []
    for app in chosen:
        secondary = config.site(app.secondary_site)
        lags: list[ImageLag] = []
        for volume in app.volumes:
            sample = choose_sample(samplings, app, volume.image)
            lag = _unknown_lag(sample, volume.image, secondary.pool, secondary.name, at)
            pts = points.get((app.name, volume.image))
            if pts is not None:
                ex = exact_lag(volume.image, pts, at)
                if ex.lag is not None:
                    health = lag.health if lag.health in ("down", "stale", "syncing") else "ok"
                    reason = ex.reason if health == "ok" else f"{lag.reason}; {ex.reason}"
                    lag = ex.model_copy(
                        update={
                            "pool": secondary.pool,
                            "site": secondary.name,
                            "health": health,
                            "reason": reason,
                            "raw_state": lag.raw_state,
                        }
                    )
            lags.append(lag)
        readings.append(
            AppReading(
                app=app.name,
                target=app.rpo_target,
                lag=app_lag(app.name, lags, at),
                secondary_site=secondary.name,
                pool=secondary.pool,
                exact_points={i: p for (a, i), p in points.items() if a == app.name},
                exact_errors={i: e for (a, i), e in errors.items() if a == app.name},
            )
        )
    return tuple(readings)


# ---------------------------------------------------------------------------------------- events


@dataclass(frozen=True)
class RpoEvent:
    """A Prefect event to emit: name, resource labels and payload (plain JSON values)."""

    event: str
    resource: Mapping[str, str]
    payload: Mapping[str, Any]


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
) -> tuple[RpoMemory, list[RpoEvent]]:
    """Breach hysteresis and unhealthy transitions of one app: the new memory and the events."""
    decision = evaluate_breach(memory.breach, reading.lag, reading.target, clear_ratio)
    lag = reading.lag
    resource = {
        "prefect.resource.id": f"standby.app.{reading.app}",
        "prefect.resource.name": reading.app,
        "standby.app": reading.app,
        "standby.site": reading.secondary_site,
    }
    events: list[RpoEvent] = []
    if decision.event is not None:
        events.append(
            RpoEvent(
                event=BREACH_EVENT if decision.event == "breach" else RECOVERED_EVENT,
                resource=resource,
                payload={
                    "app": reading.app,
                    "lag_seconds": lag.lag_seconds,
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
            events.append(
                RpoEvent(
                    event=UNHEALTHY_EVENT,
                    resource={
                        "prefect.resource.id": f"standby.rbd-image.{reading.pool}.{img.image}",
                        "prefect.resource.name": f"{reading.pool}/{img.image}",
                        "standby.app": reading.app,
                        "standby.site": img.site or reading.secondary_site,
                    },
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
    return RpoMemory(breach=decision.state, health=health, points=points), events


# --------------------------------------------------------------------------------------- records

COLUMNS = (
    "kind",
    "sampled_at",
    "site",
    "observed_from",
    "pool",
    "app",
    "image",
    "health",
    "state",
    "source",
    "lag_seconds",
    "target_seconds",
    "local_snapshot_time",
    "last_update",
    "data_time",
    "completed_at",
    "reason",
    "command",
)
"""Columns of the sample parquet files. ``kind`` is status, point, app or invalid."""
_TIME_COLUMNS = ("sampled_at", "local_snapshot_time", "last_update", "data_time", "completed_at")


def rows_for(
    samplings: Sequence[SiteSampling], readings: Sequence[AppReading]
) -> dict[str, list[dict[str, Any]]]:
    """The parquet rows of one sampler run, grouped by the site whose partition holds them.

    Status rows go to the sampled site; app rows and exact points to the app's secondary site.
    """
    rows: dict[str, list[dict[str, Any]]] = {}

    def add(partition: str, **values: Any) -> None:
        rows.setdefault(partition, []).append({c: values.get(c) for c in COLUMNS})

    for s in samplings:
        if not s.valid:
            add(s.site, kind="invalid", sampled_at=s.taken_at, site=s.site, observed_from=s.site, pool=s.pool,
                reason=s.error, command=s.command)  # fmt: skip
        for m in s.samples:
            lag = image_lag(m, s.taken_at)
            add(s.site, kind="status", sampled_at=s.taken_at, site=m.site, observed_from=s.site, pool=m.pool,
                image=m.image, health=lag.health, state=m.raw_state, source=m.source, lag_seconds=lag.lag_seconds,
                local_snapshot_time=m.local_snapshot_time, last_update=m.last_update, reason=lag.reason)  # fmt: skip
    for r in readings:
        add(r.secondary_site, kind="app", sampled_at=r.lag.at, site=r.secondary_site, pool=r.pool, app=r.app,
            image=r.lag.worst_image, health=None, source=r.lag.source, lag_seconds=r.lag.lag_seconds,
            target_seconds=r.target.total_seconds(), reason=r.lag.reason)  # fmt: skip
        for img in r.lag.images:
            add(r.secondary_site, kind="image", sampled_at=img.at, site=img.site, pool=r.pool, app=r.app,
                image=img.image, health=img.health, state=img.raw_state, source=img.source,
                lag_seconds=img.lag_seconds, target_seconds=r.target.total_seconds(), reason=img.reason)  # fmt: skip
        for image, pts in r.exact_points.items():
            for p in pts:
                add(r.secondary_site, kind="point", sampled_at=r.lag.at, site=r.secondary_site, pool=r.pool,
                    app=r.app, image=image, source="exact", data_time=p.data_time, completed_at=p.completed_at)  # fmt: skip
    return rows


def _frame(rows: Sequence[Mapping[str, Any]]) -> pd.DataFrame:
    df = pd.DataFrame(list(rows), columns=list(COLUMNS))
    for col in _TIME_COLUMNS:
        df[col] = pd.to_datetime(df[col], utc=True)
    for col in ("lag_seconds", "target_seconds"):
        df[col] = pd.to_numeric(df[col]).astype("float64")
    for col in COLUMNS:
        if col not in _TIME_COLUMNS and col not in ("lag_seconds", "target_seconds"):
            df[col] = df[col].astype("string")
    return df


def _parquet(df: pd.DataFrame) -> bytes:
    buf = io.BytesIO()
    df.to_parquet(buf, index=False, engine="pyarrow")
    return buf.getvalue()


class RpoRecords:
    """The sample partitions and the breach memory in the sites' object stores.

    ``stores`` and ``layouts`` are per site: a site's samples live in its own store under its own
    prefix. Breach memory lives in the store of ``state_site`` (by default the first site given).
    """

    def __init__(
        self,
        stores: Mapping[str, ObjectStore],
        layouts: Mapping[str, StoreLayout],
        *,
        state_site: str | None = None,
    ) -> None:
        self.stores = dict(stores)
        self.layouts = dict(layouts)
        self.state_site = state_site or next(iter(self.stores))

    @staticmethod
    def part_name(now: datetime) -> str:
        """A unique part name, ordered by time: ``20261121T223000Z-a1b2c3``."""
        return f"{now.astimezone(UTC):%Y%m%dT%H%M%SZ}-{secrets.token_hex(3)}"

    def append(self, site: str, rows: Sequence[Mapping[str, Any]], now: datetime) -> str | None:
        """Write ``rows`` as a new part of ``site``'s partition of ``now``'s UTC day; its key."""
        if not rows:
            return None
        day = now.astimezone(UTC).date()
        key = self.layouts[site].rpo_samples_key(site, day, self.part_name(now))
        self.stores[site].put(key, _parquet(_frame(rows)), content_type="application/vnd.apache.parquet")
        return key

    def day_keys(self, site: str, day: date) -> list[str]:
        """Keys of the parquet parts of one site and day."""
        prefix = self.layouts[site].rpo_day_prefix(site, day)
        return [o.key for o in self.stores[site].list(prefix) if o.key.endswith(".parquet")]

    def read_day(self, site: str, day: date) -> pd.DataFrame:
        """Every row of one site and day (duplicates from an interrupted compaction removed)."""
        frames = [pd.read_parquet(io.BytesIO(self.stores[site].get(k))) for k in self.day_keys(site, day)]
        if not frames:
            return _frame([])
        return pd.concat(frames, ignore_index=True).drop_duplicates().reset_index(drop=True)

    def compact(self, site: str, day: date) -> str | None:
        """Merge a day's parts into one; the merged part is written before the parts are deleted."""
        keys = self.day_keys(site, day)
        if len(keys) < 2:
            return None
        df = self.read_day(site, day).sort_values("sampled_at", kind="stable")
        stamp = datetime.combine(day, datetime.max.time(), tzinfo=UTC).replace(microsecond=0)
        key = self.layouts[site].rpo_samples_key(site, day, f"compacted-{self.part_name(stamp)}")
        self.stores[site].put(key, _parquet(df), content_type="application/vnd.apache.parquet")
        self.stores[site].delete(keys)
        return key

    def read(self, start: datetime, end: datetime, sites: Iterable[str] | None = None) -> pd.DataFrame:
        """Rows of ``sites`` (default: all) sampled within ``[start, end]``."""
        frames: list[pd.DataFrame] = []
        for site in sites or self.stores:
            day = start.astimezone(UTC).date()
            while day <= end.astimezone(UTC).date():
                frames.append(self.read_day(site, day))
                day += timedelta(days=1)
        frames = [f for f in frames if not f.empty]
        if not frames:
            return _frame([])
        df = pd.concat(frames, ignore_index=True)
        mask = (df["sampled_at"] >= pd.Timestamp(start)) & (df["sampled_at"] <= pd.Timestamp(end))
        return df[mask].sort_values("sampled_at", kind="stable").reset_index(drop=True)

    def load_memory(self, app: str) -> RpoMemory:
        """The breach memory of ``app`` (empty when none was saved)."""
        key = self.layouts[self.state_site].rpo_state_key(app)
        try:
            data = json.loads(self.stores[self.state_site].get(key))
        except NotFound:
            return RpoMemory()
        return RpoMemory.from_json(data if isinstance(data, Mapping) else {})

    def save_memory(self, app: str, memory: RpoMemory) -> None:
        """Persist the breach memory of ``app``."""
        key = self.layouts[self.state_site].rpo_state_key(app)
        body = json.dumps(memory.to_json(), sort_keys=True).encode()
        self.stores[self.state_site].put(key, body, content_type="application/json")


def record(
    records: RpoRecords, samplings: Sequence[SiteSampling], readings: Sequence[AppReading], now: datetime
) -> list[str]:
    """Append this run's rows to each site's partition; the keys written."""
    keys = []
    for site, rows in rows_for(samplings, readings).items():
        if site in records.stores:
            key = records.append(site, rows, now)
            if key:
                keys.append(key)
    return keys


def known_points(records: RpoRecords, apps: Iterable[str]) -> dict[str, dict[str, tuple[SyncedPoint, ...]]]:
    """The exact points each app's memory kept, for :func:`measure_apps` (none when unreadable)."""
    out: dict[str, dict[str, tuple[SyncedPoint, ...]]] = {}
    for app in apps:
        try:
            out[app] = dict(records.load_memory(app).points)
        except (StandbyError, ValueError):  # a lost memory costs tightness, never the sample
            out[app] = {}
    return out


def evaluate_and_remember(records: RpoRecords, readings: Sequence[AppReading]) -> list[RpoEvent]:
    """Evaluate each app against its saved memory, save the new memory, return the events."""
    events: list[RpoEvent] = []
    for reading in readings:
        memory, new = evaluate(reading, records.load_memory(reading.app))
        records.save_memory(reading.app, memory)
        events += new
    return events


# ------------------------------------------------------------------------------------- reporting


def reading_rows(readings: Sequence[AppReading]) -> list[dict[str, Any]]:
    """One row per app image: what ``standby rpo sample`` prints and the flow's table shows."""
    out = []
    for r in readings:
        for img in r.lag.images:
            out.append(
                {
                    "app": r.app,
                    "image": img.image,
                    "site": img.site,
                    "health": img.health,
                    "lag_seconds": None if img.lag_seconds is None else round(img.lag_seconds, 1),
                    "source": img.source,
                    "target_seconds": r.target.total_seconds(),
                    "app_lag_seconds": None if r.lag.lag_seconds is None else round(r.lag.lag_seconds, 1),
                    "reason": img.reason,
                }
            )
    return out


def sampling_rows(samplings: Sequence[SiteSampling]) -> list[dict[str, Any]]:
    """One row per pool-status call: valid or not, and why."""
    return [
        {
            "site": s.site,
            "pool": s.pool,
            "valid": s.valid,
            "images": len(s.samples),
            "seconds": round(s.seconds, 3),
            "command": s.command,
            "reason": s.error or "; ".join(s.notes) or "ok",
        }
        for s in samplings
    ]


# ------------------------------------------------------------------------------------- wiring


def records_for(
    config: StandbyConfig, stores: Mapping[str, ObjectStore], state_site: str | None = None
) -> RpoRecords:
    """:class:`RpoRecords` over the sites' stores, each with its own prefix.

    The breach memory is kept with the first app's secondary site, which survives the loss of the
    primary, unless ``state_site`` says otherwise.
    """
    layouts = {name: StoreLayout(config.site(name).s3.prefix) for name in stores}
    home = state_site or (config.apps[0].secondary_site if config.apps[0].secondary_site in stores else None)
    return RpoRecords(stores, layouts, state_site=home)


@dataclass(frozen=True)
class SampleRun:
    """Everything one sampler run produced."""

    at: datetime
    samplings: tuple[SiteSampling, ...]
    readings: tuple[AppReading, ...]
    keys: tuple[str, ...] = ()
    events: tuple[RpoEvent, ...] = ()

    def to_json(self) -> dict[str, Any]:
        """What ``standby rpo sample --json`` prints."""
        return {
            "at": self.at.isoformat(),
            "sites": sampling_rows(self.samplings),
            "apps": [
                {
                    "app": r.app,
                    "lag_seconds": r.lag.lag_seconds,
                    "target_seconds": r.target.total_seconds(),
                    "source": r.lag.source,
                    "worst_image": r.lag.worst_image,
                    "reason": r.lag.reason,
                    "images": [row for row in reading_rows([r])],
                }
                for r in self.readings
            ],
            "events": [{"event": e.event, "payload": dict(e.payload)} for e in self.events],
            "keys": list(self.keys),
        }


def run_sample(
    config: StandbyConfig,
    rbds: Mapping[str, RbdMirror],
    now: datetime | None = None,
    *,
    records: RpoRecords | None = None,
    exact: ExactMode = default(RpoSampleRequest, "exact"),
    apps: Sequence[str] | None = None,
) -> SampleRun:
    """One sampler run without Prefect: sample, measure, and (with ``records``) record and evaluate."""
    samplings = sample_sites(rbds, config, now)
    known = known_points(records, apps or [a.name for a in config.apps]) if records is not None else None
    readings = measure_apps(config, samplings, now, rbds=rbds, exact=exact, apps=apps, known=known)
    at = readings[0].lag.at if readings else now or datetime.now(UTC)
    if records is None:
        return SampleRun(at=at, samplings=samplings, readings=readings)
    keys = record(records, samplings, readings, at)
    events = evaluate_and_remember(records, readings)
    return SampleRun(at=at, samplings=samplings, readings=readings, keys=tuple(keys), events=tuple(events))
