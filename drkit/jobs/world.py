"""The world an operation sees: one adapter bundle per site, the placement record, an observation.

* :class:`World` is built once per run (:func:`build_world`) from the configuration: each site's
  ``ClusterApi``, ``RbdMirror`` and ``ObjectStore``. Jobs take it as an argument, so tests hand
  them fakes.
* The placement record is read from every site's store (the highest epoch wins, so a failover
  works while the lost site's store is down) and written by compare-and-swap to each of them
  (:func:`read_placement`, :func:`write_placement`). With a key (:attr:`World.key`) each copy is
  signed, and a copy whose MAC fails is reported and not used (:mod:`drkit.domain.signed_state`);
  without one, the run says once that its state is unauthenticated (:meth:`World.state_key`).
* :func:`observe_app` asks both sites what they say of an app's images (role, mirror state) and
  measures the secondary's lag from its status: the input of plans and of ``standby status``;
  :func:`observe_placed` reads the placement at the same time.
* Plans and ``standby status`` observe through :meth:`World.probing`: the same world whose calls
  are bounded by each site's ``probe_timeout`` (:mod:`drkit.adapters.probes`), so what does not answer
  is shown unreachable instead of being waited for. Sites and stores are asked in parallel.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable
from contextlib import suppress
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import cast

from drkit.adapters.clock import Clock, SystemClock
from drkit.adapters.kube import ClusterApi
from drkit.adapters.objectstore import ObjectStore
from drkit.adapters.probes import Probe, SpareStore, bounded, in_parallel
from drkit.adapters.rbd import RbdMirror
from drkit.adapters.volumes import VolumeControl, volumes_for
from drkit.domain import crypto
from drkit.domain.errors import (
    Conflict,
    IntegrityError,
    NotFound,
    PreconditionFailed,
    StandbyError,
    TransientError,
)
from drkit.domain.layout import StoreLayout
from drkit.domain.models import ProtectedApp, Site, StandbyConfig
from drkit.domain.placement import AppView, Placement, Role, SiteView, home_placement
from drkit.domain.rbd_status import parse_image_status
from drkit.domain.rpo import exact_lag, image_lag
from drkit.domain.signed_state import UNAUTHENTICATED, placement_context, seal, unseal
from drkit.jobs.drivers.nexus import NexusFactory

log = logging.getLogger("standby.security")


class SiteBundle:
    """A site's adapters, built once per run; the Kubernetes client and ``rbd`` only when first used
    (reading the placement needs only the store)."""

    def __init__(
        self, site: Site, store: ObjectStore, cluster: ClusterApi | None = None, rbd: RbdMirror | None = None,
        *, timeout: float | None = None,
    ) -> None:  # fmt: skip
        self.site = site
        self.store = store
        self._cluster = cluster
        self._rbd = rbd
        self._timeout = timeout
        self._quick_store: ObjectStore | None = None
        self._spare_store: ObjectStore | None = None
        self._lock = threading.RLock()  # probes build the adapters from several threads

    @property
    def cluster(self) -> ClusterApi:
        """The site's Kubernetes API (a bad kubeconfig is a ``ConfigError`` here)."""
        with self._lock:
            if self._cluster is None:
                from drkit.jobs.sites import cluster_for

                cluster = cluster_for(self.site)
                if self._timeout is not None:
                    cluster.timeout = self._timeout
                self._cluster = cluster
            return self._cluster

    @property
    def rbd(self) -> RbdMirror:
        """The site's ``rbd`` (local, or through the toolbox pod of :attr:`cluster`)."""
        with self._lock:
            if self._rbd is None:
                from drkit.adapters.kube import KubeCluster
                from drkit.jobs.sites import rbd_for

                kube = self.cluster if self.site.ceph.mode == "rook-toolbox" else None
                rbd = rbd_for(self.site, kube if isinstance(kube, KubeCluster) else None)
                if self._timeout is not None:
                    rbd.timeout = self._timeout
                self._rbd = rbd
            return self._rbd

    def probing(self) -> SiteBundle:
        """This site's adapters for one observation, each call bounded by the site's ``probe_timeout``.

        A fresh :class:`~drkit.adapters.probes.Probe` per adapter, so what stopped answering is given up
        for the rest of the observation only. The real ``rbd`` and S3 adapters are also copied with
        that timeout (one attempt for S3), so a call given up does not run on for minutes.
        """
        from drkit.adapters.objectstore import S3ObjectStore

        seconds, name, store = self.site.probe_timeout.total_seconds(), self.site.name, self.store
        quick = (lambda: self._probe_store(seconds)) if isinstance(store, S3ObjectStore) else None
        return _ProbingBundle(
            self,
            store=bounded(store, Probe(f"object store of {name}", name, seconds), quick=quick),
            cluster=Probe(f"Kubernetes API of {name}", name, seconds),
            rbd=Probe(f"rbd of {name}", name, seconds),
        )

    def spare_store(self) -> ObjectStore:
        """The store for spare copies: a real S3 store again with :data:`SPARE_TIMEOUT` and one attempt
        (built once); any other store as it is."""
        from drkit.adapters.objectstore import S3ObjectStore

        if not isinstance(self.store, S3ObjectStore):
            return self.store
        with self._lock:
            if self._spare_store is None:
                from drkit.jobs.sites import store_for

                self._spare_store = store_for(
                    self.site, max_attempts=1, connect_timeout=SPARE_TIMEOUT, read_timeout=SPARE_TIMEOUT
                )
            return self._spare_store

    def _probe_store(self, seconds: float) -> ObjectStore:
        """The S3 store again with ``seconds`` as its timeouts and one attempt (built once)."""
        with self._lock:
            if self._quick_store is None:
                from drkit.jobs.sites import store_for

                self._quick_store = store_for(
                    self.site, max_attempts=1, connect_timeout=seconds, read_timeout=seconds
                )
            return self._quick_store

    @property
    def layout(self) -> StoreLayout:
        """The site's object-store layout."""
        return StoreLayout(self.site.s3.prefix)


class _ProbingBundle(SiteBundle):
    """A site's bounded adapters (see :meth:`SiteBundle.probing`); built on first use like the base's."""

    def __init__(self, base: SiteBundle, *, store: ObjectStore, cluster: Probe, rbd: Probe) -> None:
        super().__init__(base.site, store)
        self._base, self._cluster_probe, self._rbd_probe = base, cluster, rbd

    @property
    def cluster(self) -> ClusterApi:
        """The base's Kubernetes API, bounded."""
        with self._lock:
            if self._cluster is None:
                self._cluster = bounded(self._base.cluster, self._cluster_probe)
            return self._cluster

    @property
    def rbd(self) -> RbdMirror:
        """The base's ``rbd``, bounded (a real one runs with the probe timeout)."""
        from drkit.adapters.rbd import RbdCli

        with self._lock:
            if self._rbd is None:
                rbd = self._base.rbd
                if isinstance(rbd, RbdCli):
                    rbd = replace(rbd, timeout=min(rbd.timeout, self._rbd_probe.timeout))
                self._rbd = bounded(rbd, self._rbd_probe)
            return self._rbd


@dataclass
class World:
    """Everything a job touches: the configuration, a bundle per site, and the clock."""

    config: StandbyConfig
    sites: dict[str, SiteBundle]
    clock: Clock = field(default_factory=SystemClock)
    nexus_factory: NexusFactory | None = None
    """How to reach an app's Nexus from its URL; HTTP when None (tests hand a fake's)."""
    unanswered: dict[str, float] = field(default_factory=dict)
    """Stores that did not answer a spare call, and when: left alone for a while (see :meth:`spare`)."""
    key: crypto.MasterKey | None = None
    """The backup key (a ring after a rotation): it signs and checks the state read and written
    through this world (placement records, journals, drill reports); None: unauthenticated."""
    notices: list[str] = field(default_factory=list)
    """Security warnings already said in this run (each is said once: see :meth:`warn`)."""
    on_warning: Callable[[str], None] | None = None
    """How :meth:`warn` says a line (the CLI prints it on stderr); None: logger ``standby.security``."""

    def use_key(self, key: crypto.MasterKey | None) -> World:
        """This world, signing and checking its state with ``key`` from now on (None: unchanged).

        The jobs given a key (operations, resume, abort, drills) call it first, so everything they
        read is checked; the CLI and the flows load the key before their first read."""
        if key is not None:
            self.key = key
        return self

    def state_key(self) -> crypto.MasterKey | None:
        """:attr:`key`; when there is none, the run says once that its state is unauthenticated."""
        if self.key is None:
            self.warn(UNAUTHENTICATED)
        return self.key

    def warn(self, line: str) -> None:
        """Say ``line`` once per run (:attr:`on_warning`, else logger ``standby.security``); kept in
        :attr:`notices`."""
        if line not in self.notices:
            self.notices.append(line)
            if self.on_warning is not None:
                self.on_warning(line)
            else:
                log.warning("%s", line)

    def spare(self, ref: StoreRef) -> StoreRef:
        """``ref`` for a copy the run can do without: the journal, placement record or backup run
        written (or read) beside the store that must hold it.

        Each call gets one attempt with :data:`SPARE_TIMEOUT`; a store that did not answer (a call
        that failed only after the site's ``probe_timeout``: a timeout, not a refusal) is not asked
        again for two minutes, so a lost site's store that swallows requests costs one timeout every
        two minutes, not one per step. The next run, or ``verify-backup``, catches the copy up.
        """
        bundle = self.sites.get(ref.name)
        store = bundle.spare_store() if bundle is not None else ref.store
        slow = bundle.site.probe_timeout.total_seconds() if bundle is not None else SPARE_TIMEOUT
        spare = SpareStore(store, f"object store of {ref.name}", self.unanswered, slow_after=slow)
        return StoreRef(ref.name, ref.sites, cast(ObjectStore, spare), ref.layout)

    def probing(self) -> World:
        """This world for one observation (a plan, a status): every call of every site is bounded by
        that site's ``probe_timeout``, and what did not answer is not asked again (see
        :mod:`drkit.adapters.probes`). Use it to look, never to act."""
        sites = {name: b.probing() for name, b in self.sites.items()}
        return World(config=self.config, sites=sites, clock=self.clock, nexus_factory=self.nexus_factory,
                     key=self.key, notices=self.notices, on_warning=self.on_warning)  # fmt: skip

    def bundle(self, site: str) -> SiteBundle:
        """The bundle of ``site`` (a ``ConfigError`` names the known sites)."""
        self.config.site(site)
        return self.sites[site]

    def volumes(self, app: ProtectedApp, site: str, *, auto_resync: bool = False) -> VolumeControl:
        """The app's volume control on ``site``, by its ``mirroring.control``."""
        b = self.bundle(site)
        return volumes_for(app, b.cluster, b.rbd, b.site.pool, auto_resync=auto_resync)

    def stores(self, first: str | None = None) -> list[StoreRef]:
        """Each distinct store once (sites sharing endpoint, bucket and prefix share one); the store
        of site ``first`` comes first."""
        refs: dict[tuple[str | None, str, str], StoreRef] = {}
        for name, b in self.sites.items():
            ident = (b.site.s3.endpoint, b.site.s3.bucket, b.site.s3.prefix)
            ref = refs.get(ident)
            refs[ident] = StoreRef(name, (name,), b.store, b.layout) if ref is None else ref.also(name)
        return sorted(refs.values(), key=lambda r: first not in r.sites)


SPARE_TIMEOUT = 10.0
"""Seconds a spare copy's store call may take (connect, then read), one attempt (see :meth:`World.spare`)."""


@dataclass(frozen=True)
class StoreRef:
    """One object store and the sites that use it."""

    name: str
    sites: tuple[str, ...]
    store: ObjectStore
    layout: StoreLayout

    def also(self, site: str) -> StoreRef:
        """The same store, used by ``site`` too."""
        return StoreRef(self.name, (*self.sites, site), self.store, self.layout)


def build_world(
    config: StandbyConfig, *, clock: Clock | None = None, timeout: float | None = None,
    key: crypto.MasterKey | None = None,
) -> World:  # fmt: skip
    """Real adapters for every site of ``config`` (``timeout`` overrides each call's timeout); ``key``
    signs and checks the state (see :attr:`World.key`)."""
    from drkit.jobs.sites import store_for

    bundles = {site.name: SiteBundle(site, store_for(site), timeout=timeout) for site in config.sites}
    return World(config=config, sites=bundles, clock=clock or SystemClock(), key=key)


# --------------------------------------------------------------------------------------- placement


@dataclass(frozen=True)
class PlacementRead:
    """The placement record as read, with each store's ETag (None: no record there)."""

    record: Placement
    etags: dict[str, str | None]
    errors: dict[str, str]
    refused: dict[str, str] = field(default_factory=dict)
    """Stores whose copy failed its integrity check, and why: not used; the next write replaces it."""


def _placement_name(app: str, store: str) -> str:
    return f"placement record of app {app} in the store of {store}"


def read_placement(world: World, app: ProtectedApp) -> PlacementRead:
    """The record with the highest epoch among the reachable stores' authenticated copies, or the
    home placement when no store holds one.

    With a key (:attr:`World.key`), a copy whose MAC fails (forged, copied from another app,
    written without the key) is not used: it is named in :attr:`PlacementRead.refused` and warned
    about once. :class:`IntegrityError` when copies were found but none passes (the primary is
    not decided from a forgery); :class:`TransientError` when no store answers.
    """
    key = world.state_key()
    found: list[Placement] = []
    etags: dict[str, str | None] = {}
    errors: dict[str, str] = {}
    refused: dict[str, str] = {}
    hints: list[str] = []
    refs = world.stores()
    if len(refs) > 1:  # the highest epoch wins among those that answer: each one is a spare
        refs = [world.spare(ref) for ref in refs]

    def read(ref: StoreRef) -> tuple[bytes, str] | StandbyError:
        try:
            return ref.store.read(ref.layout.placement_key(app.name))
        except StandbyError as error:
            return error

    for ref, answer in zip(refs, in_parallel(*(lambda r=r: read(r) for r in refs)), strict=True):
        name, layout = ref.name, ref.layout
        if isinstance(answer, NotFound):
            etags[name] = None
            continue
        if isinstance(answer, StandbyError):
            errors[name] = str(answer)
            continue
        data, etag = answer
        etags[name] = etag
        try:
            body = unseal(json.loads(data), key, what="placement", context=placement_context(app.name),
                          name=_placement_name(app.name, name))  # fmt: skip
            found.append(Placement.model_validate(body))
        except IntegrityError as error:
            refused[name] = error.message
            hints.append(error.hint)
            world.warn(f"{error.message}; that copy is not used (the next write of the record replaces it)")
        except ValueError as error:
            raise StandbyError(
                f"placement record of app {app.name} in the store of {name} is not valid: {str(error)[:200]}",
                hint=f"inspect {layout.placement_key(app.name)}; delete it to fall back to the home site",
                context={"site": name, "app": app.name},
            ) from None
    if not etags:
        raise TransientError(
            f"no object store answered for the placement of app {app.name}: " + "; ".join(errors.values()),
            hint="check the sites' s3 settings and endpoints; nothing was changed",
            context={"app": app.name},
        )
    if refused and not found:
        raise IntegrityError(
            "; ".join(refused.values()) + f"; no copy passes, so the primary of app {app.name} is not decided",
            hint=f"nothing was changed; {hints[0]} (see \"integrity check failed\" in the operator's guide)",
            context={"app": app.name, "stores": ", ".join(refused)},
        )
    record = max(found, key=lambda p: p.epoch) if found else home_placement(app)
    return PlacementRead(record=record, etags=etags, errors=errors, refused=refused)


def write_placement(
    world: World, app: ProtectedApp, read: PlacementRead, new: Placement, *, required: str
) -> PlacementRead:
    """Write ``new`` by compare-and-swap to every store that answered ``read``.

    The store of site ``required`` must take it; a :class:`Conflict` anywhere means another writer
    got there first and nothing more is written. Other stores that fail are named in ``errors``.
    """
    if new.epoch <= read.record.epoch:
        return read
    key = world.state_key()
    sealed = seal(new.model_dump(mode="json"), key, what="placement", context=placement_context(app.name))
    body = json.dumps(sealed, indent=2).encode()
    etags: dict[str, str | None] = {}
    errors = dict(read.errors)
    for ref in world.stores(first=required):
        must = required in ref.sites
        if not must:
            ref = world.spare(ref)
        name, store, layout = ref.name, ref.store, ref.layout
        where = layout.placement_key(app.name)
        if name not in read.etags:
            if not must:
                continue
            etag = _etag_now(world, store, layout.placement_key(app.name), app, name, new)  # it must take it: ask again
        else:
            etag = read.etags[name]
        try:
            if etag is None:
                etags[name] = store.put(where, body, if_none_match=True, content_type="application/json")
            else:
                etags[name] = store.put(where, body, if_match=etag, content_type="application/json")
        except Conflict:
            raise
        except StandbyError as error:
            if required in ref.sites:
                raise
            errors[name] = str(error)
    return PlacementRead(record=new, etags=etags, errors=errors)


def _etag_now(world: World, store: ObjectStore, key: str, app: ProtectedApp, name: str, new: Placement) -> str | None:
    """The ETag of the record in a store that did not answer the read (None: no record there);
    :class:`Conflict` when its record is already as new as ``new`` (another writer got there). A
    copy failing its integrity check is replaced whatever its epoch (it was reported)."""
    try:
        data, etag = store.read(key)
    except NotFound:
        return None
    try:
        body = unseal(json.loads(data), world.key, what="placement", context=placement_context(app.name),
                      name=_placement_name(app.name, name))  # fmt: skip
        epoch = int(body.get("epoch", 0))
    except IntegrityError as error:
        world.warn(f"{error.message}; that copy is not used (the next write of the record replaces it)")
        return etag
    except (ValueError, TypeError):
        epoch = 0
    if epoch >= new.epoch:
        raise Conflict(
            f"placement record of app {app.name} in the store of {name} has epoch {epoch}, not older than {new.epoch}",
            hint="another writer got there first; plan again",
            context={"app": app.name, "site": name},
        )
    return etag


def update_placement(
    world: World, app: ProtectedApp, change: Callable[[Placement], Placement], *, required: str
) -> Placement:
    """Read the record, apply ``change``, write it back by compare-and-swap."""
    read = read_placement(world, app)
    return write_placement(world, app, read, change(read.record), required=required).record


def sign_placement(world: World, app: ProtectedApp) -> Placement | None:
    """Sign the app's placement record as it stands, once checked against both sites: the way to
    adopt a record written before the key was used (or without it). None when a copy passes (or
    there is none): the next write replaces the copies that fail.

    :class:`PreconditionFailed` (nothing written) without a key, when an operation holds the app
    (finish or abort it first), or when a site does not answer or says otherwise than the record
    (a forged primary is not signed). The record is written with its epoch grown by one, by
    compare-and-swap, to every store that answers: copies failing their check are replaced.
    """
    from drkit.domain.placement import disagreements

    if world.key is None:
        raise PreconditionFailed(
            f"placement record of app {app.name}: no key is loaded to sign it with",
            hint="load the backup key (--key-env VAR, STANDBY_BACKUP_KEY by default) and run this again",
        )
    with suppress(IntegrityError):
        read_placement(world, app)
        return None  # a copy passes (or there is none): nothing to adopt
    unchecked = replace(world, key=None, notices=[UNAUTHENTICATED], on_warning=None)  # said: it is on purpose
    read = read_placement(unchecked, app)
    record = read.record
    if record.operation:
        raise PreconditionFailed(
            f"placement record of app {app.name} is held by {record.operation_kind} {record.operation}; not signed",
            hint=f"finish or abort that operation with the Standby that started it, then sign the record:"
            f" standby operation sign-placement --app {app.name}",
        )
    view = observe_app(world.probing(), app, record)
    wrong = disagreements(record, view) + [f"{s} does not answer" for s in view.unreachable()]
    if wrong:
        raise PreconditionFailed(
            f"placement record of app {app.name} (primary {record.primary}, epoch {record.epoch}) is not signed: "
            + "; ".join(wrong),
            hint="check the record against the sites (standby status); a forged record is deleted, not signed",
        )
    new = record.model_copy(update={"epoch": record.epoch + 1, "updated_at": world.clock.now()})
    return write_placement(world, app, read, new, required=record.primary).record


def placed_config(world: World) -> StandbyConfig:
    """The configuration with each app's primary and secondary as its placement says now.

    Backups read from the current primary and the RPO is measured from the current primary to
    the current secondary; an app without a readable record keeps its configured home (a record
    refused by its integrity check is warned about, see :func:`read_placement`).
    """
    apps = []
    for app in world.config.apps:
        try:
            record = read_placement(world, app).record
        except IntegrityError as error:
            world.warn(f"{error.message}; app {app.name} is taken to be on its home site {app.primary_site}")
            record = home_placement(app)
        except StandbyError:
            record = home_placement(app)
        apps.append(app.model_copy(update={"primary_site": record.primary, "secondary_site": record.secondary}))
    return world.config.model_copy(update={"apps": tuple(apps)})


# --------------------------------------------------------------------------------------- observing


def _site_view(world: World, app: ProtectedApp, site: str) -> SiteView:
    control = world.volumes(app, site)
    roles: dict[str, Role] = {}
    states: dict[str, str] = {}
    descriptions: dict[str, str] = {}
    try:
        for volume in app.volumes:
            roles[volume.image] = control.role(volume)
            if roles[volume.image] != "absent":
                states[volume.image], descriptions[volume.image] = control.mirror_state(volume)
    except StandbyError as error:
        return SiteView(site=site, reachable=False, error=str(error)[:300])
    return SiteView(site=site, reachable=True, roles=roles, states=states, descriptions=descriptions)


def secondary_lag(world: World, app: ProtectedApp, secondary: str, *, exact_first: bool = False) -> float | None:
    """The secondary's lag in seconds (its oldest image); None when unknown.

    From the secondary's status (an upper bound: rbd-mirror writes it every 30 s, so it can show
    minutes after a restart), else from both sites' snapshot listings (exact mode); with
    ``exact_first`` (plans, a drill's recovery point) the other way round, falling back to the
    status when the primary cannot be listed (a lost site).
    """
    from drkit.jobs.rpo import exact_points

    b = world.bundle(secondary)
    primary = world.bundle(app.primary_site if secondary == app.secondary_site else app.secondary_site)

    def exact(image: str) -> float | None:
        points = exact_points(b.rbd, primary.rbd, b.site.pool, image, secondary_tz=b.site.timezone,
                              primary_tz=primary.site.timezone, clock=world.clock)  # fmt: skip
        return exact_lag(image, points, world.clock.now()).lag_seconds

    def status(image: str) -> tuple[float | None, bool]:
        doc = b.rbd.image_status(b.site.pool, image)
        now = world.clock.now()
        sample = parse_image_status(doc, now=now, tz=b.site.timezone, site=secondary, pool=b.site.pool)
        return image_lag(sample, now).lag_seconds, sample.health in ("split-brain", "error")

    worst = 0.0
    for volume in app.volumes:
        lag: float | None = None
        broken = False
        order = (True, False) if exact_first else (False, True)
        for use_exact in order:
            try:
                if use_exact and not broken:
                    lag = exact(volume.image)
                elif not use_exact:
                    lag, broken = status(volume.image)
            except StandbyError:
                lag = None
            if lag is not None:
                break
        if lag is None:
            return None
        worst = max(worst, lag)
    return worst


def site_views(world: World, app: ProtectedApp) -> dict[str, SiteView]:
    """What each of the app's two sites says of its images, both asked at the same time."""
    names = (app.primary_site, app.secondary_site)
    views = in_parallel(*(lambda n=n: _site_view(world, app, n) for n in names))
    return dict(zip(names, views, strict=True))


def observe_placed(world: World, app: ProtectedApp) -> tuple[PlacementRead, AppView]:
    """The placement record and both sites' view of ``app``, read at the same time (the sites do
    not wait for the stores), then the lag of the record's secondary."""
    read, sites = in_parallel(lambda: read_placement(world, app), lambda: site_views(world, app))
    return read, observe_app(world, app, read.record, sites=sites)


def observe_app(
    world: World, app: ProtectedApp, record: Placement, *, sites: dict[str, SiteView] | None = None
) -> AppView:
    """Both sites' view of ``app``'s images (``sites`` when already read), and the lag of the
    record's secondary."""
    sites = site_views(world, app) if sites is None else sites
    reachable = sites[record.secondary].reachable
    lag = secondary_lag(world, app, record.secondary, exact_first=True) if reachable else None
    return AppView(
        app=app.name,
        images=tuple(v.image for v in app.volumes),
        sites=sites,
        lag_seconds=lag,
        observed_at=world.clock.now(),
    )


def load_placed_config(
    path: Path | StandbyConfig | None = None, *, key: crypto.MasterKey | None = None
) -> StandbyConfig:
    """Load the configuration file (or take a loaded one) and apply each app's placement (see
    :func:`placed_config`), checked with ``key`` when given."""
    from drkit.config import load_config

    config = load_config(path)
    return placed_config(build_world(config, key=key))
