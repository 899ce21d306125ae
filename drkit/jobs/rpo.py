"""The RPO sampler without Prefect: sample both sites, measure each app, record, remember, alert.

One sample of a site is one ``rbd mirror pool status --verbose`` call per pool. A failed call is
kept as an invalid :class:`SiteSampling` with its reason; :func:`sample_sites` fails only when no
site could be sampled. Each app's lag comes from the secondary's status, or from both sites'
snapshot listings (exact mode) when :func:`~drkit.domain.rpo_reading.needs_exact` says so; a
journal-mode image's figure is an estimate (:func:`~drkit.domain.rpo.journal_lag_estimate`). Time
comes from the injected :class:`~drkit.adapters.clock.Clock`; rows and memory go to a
:class:`~drkit.adapters.rpo_store.SampleStore`; alerts are returned, the Prefect task emits them.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime, timedelta

from drkit.adapters.clock import Clock
from drkit.adapters.objectstore import ObjectStore
from drkit.adapters.rbd import RbdMirror
from drkit.adapters.rpo_store import COLUMNS, ParquetSampleStore, SampleStore, rows_for
from drkit.domain.errors import ParseError, StandbyError, TransientError
from drkit.domain.layout import StoreLayout
from drkit.domain.models import Site, StandbyConfig
from drkit.domain.placement import Placement, roles
from drkit.domain.rbd_models import MirrorSample
from drkit.domain.rbd_status import DEFAULT_STALE_AFTER, parse_pool_status, parse_snap_ls
from drkit.domain.rpo import ImageLag, app_lag, exact_lag
from drkit.domain.rpo_points import SyncedPoint, points_from_snapshots
from drkit.domain.rpo_reading import (
    AppReading,
    ExactMode,
    RpoAlert,
    RpoMemory,
    SampleRun,
    SiteSampling,
    choose_sample,
    evaluate,
    merge_exact,
    needs_exact,
    status_lag,
    unknown_keys,
)
from drkit.jobs.requests import RpoSampleRequest, default

RpoRecords = ParquetSampleStore
"""The former name of :class:`~drkit.adapters.rpo_store.ParquetSampleStore`."""

__all__ = [
    "COLUMNS",
    "AppReading",
    "ExactMode",
    "RpoAlert",
    "RpoMemory",
    "RpoRecords",
    "SampleRun",
    "SiteSampling",
    "evaluate",
    "evaluate_and_remember",
    "exact_points",
    "known_points",
    "measure_apps",
    "pool_status_command",
    "record",
    "records_for",
    "run_sample",
    "sample_site",
    "sample_sites",
]


def pool_status_command(pool: str) -> str:
    """The command a sample runs on a pool (for messages)."""
    return f"rbd mirror pool status {pool} --verbose --format json"


# --------------------------------------------------------------------------------------- sampling


def site_pools(config: StandbyConfig, site: Site) -> tuple[str, ...]:
    """The pools to sample on ``site``: its own, then every other pool an app on it keeps images in
    (a VM app's image pool); one ``rbd mirror pool status`` call each."""
    pools = [site.pool]
    for app in config.apps:
        if site.name in (app.home_site, app.secondary_site) and app.pool_on(site) not in pools:
            pools.append(app.pool_on(site))
    return tuple(pools)


def sample_site(
    rbd: RbdMirror,
    site: Site,
    *,
    clock: Clock,
    pools: Sequence[str] | None = None,
    stale_after: timedelta = DEFAULT_STALE_AFTER,
) -> tuple[SiteSampling, ...]:
    """Sample ``site``: one pool-status call per pool, judged at the clock read after the call.

    A failure becomes an invalid sampling with its reason.
    """
    out: list[SiteSampling] = []
    for pool in pools or (site.pool,):
        command = pool_status_command(pool)
        started = clock.monotonic()
        try:
            doc = rbd.pool_status(pool)
            taken = clock.now()
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
                    taken_at=clock.now(),
                    command=command,
                    error=f"{type(exc).__name__}: {exc}",
                    transient=isinstance(exc, TransientError),
                    seconds=clock.monotonic() - started,
                )
            )
            continue
        extra = unknown_keys(doc)
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
                seconds=clock.monotonic() - started,
            )
        )
    return tuple(out)


def sample_sites(
    rbds: Mapping[str, RbdMirror],
    config: StandbyConfig,
    *,
    clock: Clock,
    stale_after: timedelta = DEFAULT_STALE_AFTER,
) -> tuple[SiteSampling, ...]:
    """Sample every site in ``rbds``; raise when no site could be sampled at all.

    The error names each site with its command and reason. It is a :class:`TransientError` (so
    Prefect retries) when every failure was transient (timeouts, EBUSY), else a
    :class:`StandbyError`.
    """
    samplings: list[SiteSampling] = []
    for name, rbd in rbds.items():
        site = config.site(name)
        samplings += sample_site(
            rbd, site, clock=clock, pools=site_pools(config, site), stale_after=stale_after
        )
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


def exact_points(
    secondary: RbdMirror,
    primary: RbdMirror,
    pool: str,
    image: str,
    *,
    secondary_tz: str,
    primary_tz: str,
    clock: Clock,
    known: Sequence[SyncedPoint] = (),
    status: MirrorSample | None = None,
) -> tuple[SyncedPoint, ...]:
    """Synced points of ``image``: ``rbd snap ls --all`` on the secondary and on the primary.

    ``known`` are the points kept from earlier samples (their bounds may tighten now) and ``status``
    B's status of the image in this run (see :func:`~drkit.domain.rpo_points.points_from_snapshots`).
    The listing time is the clock read after both listings returned (an upper bound).
    """
    b_snaps = parse_snap_ls(secondary.snapshots(pool, image), tz=secondary_tz)
    a_snaps = parse_snap_ls(primary.snapshots(pool, image), tz=primary_tz)
    listed = clock.now()
    primary_times = {s.id: s.created_at for s in a_snaps if s.created_at is not None and not s.non_primary}
    return points_from_snapshots(b_snaps, primary_times, listed, known=known, status=status, tz=secondary_tz)


def measure_apps(
    config: StandbyConfig,
    samplings: Sequence[SiteSampling],
    *,
    clock: Clock,
    rbds: Mapping[str, RbdMirror] | None = None,
    exact: ExactMode = default(RpoSampleRequest, "exact"),
    suspect_ratio: float = 0.8,
    apps: Sequence[str] | None = None,
    known: Mapping[str, Mapping[str, Sequence[SyncedPoint]]] | None = None,
    placements: Mapping[str, Placement] | None = None,
) -> tuple[AppReading, ...]:
    """Per-app lag from the samplings; exact mode for the images that need it.

    The lag is the current secondary's, from the current primary: the roles are the apps'
    ``placements`` (:meth:`World.placements <drkit.jobs.world.World.placements>`); an app without
    one is on its home.

    ``known`` holds, per app and image, the exact points kept from earlier runs
    (:attr:`RpoMemory.points`): a new listing can tighten their completion bounds, and the
    reading's ``exact_points`` are the merged set.

    Every lag is evaluated at one instant, the clock read AFTER the last rbd call. Evaluating no
    earlier than the data was read keeps every figure an upper bound: ``t - T(read) >= t - T(t)``
    because the synced point only moves forward.
    """
    chosen = [a for a in config.apps if not apps or a.name in apps]
    probe_at = max((s.taken_at for s in samplings), default=None) or clock.now()
    points: dict[tuple[str, str], tuple[SyncedPoint, ...]] = {}
    errors: dict[tuple[str, str], str] = {}
    for app in chosen:
        primary_name, secondary_name = roles(app, placements)
        secondary, primary = config.site(secondary_name), config.site(primary_name)
        for volume in app.volumes:
            pool = app.pool_on(secondary)
            sample = choose_sample(samplings, secondary.name, volume.image, pool)
            probe = status_lag(sample, volume.image, pool, secondary.name, probe_at)
            if rbds is None or not needs_exact(probe, exact, app.rpo_target, suspect_ratio):
                continue
            a, b = rbds.get(primary.name), rbds.get(secondary.name)
            if a is None or b is None:
                errors[(app.name, volume.image)] = "exact mode needs rbd access to both sites"
                continue
            try:
                points[(app.name, volume.image)] = exact_points(
                    b,
                    a,
                    pool,
                    volume.image,
                    secondary_tz=secondary.timezone,
                    primary_tz=primary.timezone,
                    clock=clock,
                    known=(known or {}).get(app.name, {}).get(volume.image, ()),
                    status=sample if sample is not None and sample.site == secondary.name else None,
                )
            except StandbyError as exc:
                errors[(app.name, volume.image)] = f"exact mode failed: {exc}"
    at = clock.now()
    readings: list[AppReading] = []
    for app in chosen:
        secondary = config.site(roles(app, placements)[1])
        pool = app.pool_on(secondary)
        lags: list[ImageLag] = []
        for volume in app.volumes:
            sample = choose_sample(samplings, secondary.name, volume.image, pool)
            lag = status_lag(sample, volume.image, pool, secondary.name, at)
            pts = points.get((app.name, volume.image))
            if pts is not None:
                lag = merge_exact(lag, exact_lag(volume.image, pts, at), pool, secondary.name)
            lags.append(lag)
        readings.append(
            AppReading(
                app=app.name,
                target=app.rpo_target,
                lag=app_lag(app.name, lags, at),
                secondary_site=secondary.name,
                pool=pool,
                exact_points={i: p for (a, i), p in points.items() if a == app.name},
                exact_errors={i: e for (a, i), e in errors.items() if a == app.name},
                max_entries_behind=app.rpo_max_entries_behind,
            )
        )
    return tuple(readings)


# --------------------------------------------------------------------------- records and memory


def record(
    records: SampleStore, samplings: Sequence[SiteSampling], readings: Sequence[AppReading], now: datetime
) -> list[str]:
    """Append this run's rows to each site's partition of ``now``'s day; the keys written."""
    keys = []
    for site, rows in rows_for(samplings, readings).items():
        if site in records.sites:
            key = records.append(site, rows, now)
            if key:
                keys.append(key)
    return keys


def known_points(records: SampleStore, apps: Iterable[str]) -> dict[str, dict[str, tuple[SyncedPoint, ...]]]:
    """The exact points each app's memory kept, for :func:`measure_apps` (none when unreadable)."""
    out: dict[str, dict[str, tuple[SyncedPoint, ...]]] = {}
    for app in apps:
        try:
            out[app] = dict(records.load_memory(app).points)
        except (StandbyError, ValueError):  # a lost memory costs tightness, never the sample
            out[app] = {}
    return out


def evaluate_and_remember(records: SampleStore, readings: Sequence[AppReading]) -> list[RpoAlert]:
    """Evaluate each app against its saved memory, save the new memory, return the alerts."""
    alerts: list[RpoAlert] = []
    for reading in readings:
        memory, new = evaluate(reading, records.load_memory(reading.app))
        records.save_memory(reading.app, memory)
        alerts += new
    return alerts


# ------------------------------------------------------------------------------------- wiring


def records_for(
    config: StandbyConfig,
    stores: Mapping[str, ObjectStore],
    state_site: str | None = None,
    *,
    placements: Mapping[str, Placement] | None = None,
) -> ParquetSampleStore:
    """The sample store over the sites' object stores, each with its own prefix.

    The memory is kept with the first app's current secondary site (its ``placements``; its
    home's other site without one), which survives the loss of the primary, unless
    ``state_site`` says otherwise.
    """
    layouts = {name: StoreLayout(config.site(name).s3.prefix) for name in stores}
    secondary = roles(config.apps[0], placements)[1]
    home = state_site or (secondary if secondary in stores else None)
    return ParquetSampleStore(stores, layouts, state_site=home)


def run_sample(
    config: StandbyConfig,
    rbds: Mapping[str, RbdMirror],
    *,
    clock: Clock,
    records: SampleStore | None = None,
    exact: ExactMode = default(RpoSampleRequest, "exact"),
    apps: Sequence[str] | None = None,
    placements: Mapping[str, Placement] | None = None,
) -> SampleRun:
    """One sampler run: sample, measure, and (with ``records``) record, remember and alert; the
    roles are the apps' ``placements`` (see :func:`measure_apps`)."""
    samplings = sample_sites(rbds, config, clock=clock)
    known = known_points(records, apps or [a.name for a in config.apps]) if records is not None else None
    readings = measure_apps(
        config, samplings, clock=clock, rbds=rbds, exact=exact, apps=apps, known=known, placements=placements
    )
    at = readings[0].lag.at if readings else clock.now()
    if records is None:
        return SampleRun(at=at, samplings=samplings, readings=readings)
    keys = record(records, samplings, readings, at)
    alerts = evaluate_and_remember(records, readings)
    return SampleRun(at=at, samplings=samplings, readings=readings, keys=tuple(keys), alerts=tuple(alerts))
