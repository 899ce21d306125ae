"""The world a run sees: one adapter bundle per site, the apps' placement, an observation.

* :class:`World` is built once per run (:func:`build_world`) from the resolved configuration, which
  it keeps (:attr:`World.config`): each site's ``ObjectStore``, and its ``ClusterApi``,
  ``RbdMirror`` and OpenNebula front-end (``OneFrontend``) when first used. Jobs and tasks take it (or the part they need) as an argument,
  never a configuration path, so tests hand them fakes. This module and :mod:`drkit.jobs.sites` are
  the only places that build clients.
* Where each app runs *now* is its placement record, read once per run (:meth:`World.placement`);
  the configuration names only its home. The record is read and written by
  :mod:`drkit.jobs.placement` (its names are also importable from here).
* :func:`observe_app` asks both sites what they say of an app's images (role, mirror state) and
  measures the secondary's lag from its status: the input of plans and of ``standby status``;
  :func:`observe_placed` reads the placement at the same time.
* Plans and ``standby status`` observe through :meth:`World.probing`: the same world whose calls
  are bounded by each site's ``probe_timeout`` (:mod:`drkit.adapters.probes`), so what does not answer
  is shown unreachable instead of being waited for. Sites and stores are asked in parallel.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any, cast

from drkit.adapters.clock import Clock, SystemClock
from drkit.adapters.kube import ClusterApi
from drkit.adapters.objectstore import ObjectStore
from drkit.adapters.opennebula import OneFrontend
from drkit.adapters.probes import Probe, SpareStore, bounded, in_parallel
from drkit.adapters.rbd import RbdMirror
from drkit.adapters.volumes import VolumeControl, volumes_for
from drkit.domain import crypto
from drkit.domain.errors import IntegrityError, StandbyError
from drkit.domain.layout import StoreLayout
from drkit.domain.models import ProtectedApp, Site, StandbyConfig
from drkit.domain.placement import AppView, Placement, Role, SiteView, home_placement
from drkit.domain.rbd_status import parse_image_status
from drkit.domain.rpo import exact_lag, image_lag
from drkit.domain.signed_state import UNAUTHENTICATED
from drkit.jobs.placement import (
    PlacementRead,
    read_placement,
    sign_placement,
    update_placement,
    write_placement,
)

__all__ = [
    "SPARE_TIMEOUT",
    "PlacementRead",
    "SiteBundle",
    "StoreRef",
    "World",
    "build_world",
    "observe_app",
    "observe_placed",
    "read_placement",
    "secondary_lag",
    "sign_placement",
    "site_views",
    "update_placement",
    "write_placement",
]

log = logging.getLogger("standby.security")


class SiteBundle:
    """A site's adapters, built once per run; the Kubernetes client and ``rbd`` only when first used
    (reading the placement needs only the store)."""

    def __init__(
        self,
        site: Site,
        store: ObjectStore,
        cluster: ClusterApi | None = None,
        rbd: RbdMirror | None = None,
        *,
        timeout: float | None = None,
        opennebula: OneFrontend | None = None,
    ) -> None:
        self.site = site
        self.store = store
        self._cluster = cluster
        self._rbd = rbd
        self._opennebula = opennebula
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

    @property
    def opennebula(self) -> OneFrontend:
        """The site's OpenNebula front-end (a ``PyoneFrontend`` with the site's session; a site with no
        ``opennebula`` section or no session is a ``ConfigError`` here)."""
        with self._lock:
            if self._opennebula is None:
                from drkit.jobs.sites import frontend_for

                self._opennebula = frontend_for(self.site, timeout=self._timeout)
            return self._opennebula

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
    def opennebula(self) -> OneFrontend:
        """The base's front-end (each of its calls has the access's own timeout)."""
        return self._base.opennebula

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
    app_clients: dict[str, Any] = field(default_factory=dict)
    """Per ``checks.kind``, how that kind's driver reaches its app (e.g. the Nexus client made from
    its URL); a driver uses its own default (HTTP) when its kind is absent. Tests hand fakes here."""
    unanswered: dict[str, float] = field(default_factory=dict)
    """Stores that did not answer a spare call, and when: left alone for a while (see :meth:`spare`)."""
    key: crypto.MasterKey | None = None
    """The backup key (a ring after a rotation): it signs and checks the state read and written
    through this world (placement records, journals, drill reports); None: unauthenticated."""
    notices: list[str] = field(default_factory=list)
    """Security warnings already said in this run (each is said once: see :meth:`warn`)."""
    on_warning: Callable[[str], None] | None = None
    """How :meth:`warn` says a line (the CLI prints it on stderr); None: logger ``standby.security``."""
    placements_read: dict[str, Placement] = field(default_factory=dict)
    """Each app's placement as this run knows it: read once (:meth:`placement`), then as written."""

    def use_key(self, key: crypto.MasterKey | None) -> World:
        """This world, signing and checking its state with ``key`` from now on (None: unchanged).

        The jobs given a key (operations, resume, abort, drills) call it first, so everything they
        read is checked; the CLI and the flows load the key before their first read."""
        if key is not None:
            self.key = key
        return self

    def placement(self, app: str) -> Placement:
        """Where ``app`` runs now (its primary and secondary), read once per run from the stores.

        Backups, verify, restore, the RPO jobs and status all take the roles from here; a record
        this run writes replaces it (:func:`~drkit.jobs.placement.write_placement`). Without a
        record the app is on its home; a record that cannot be read (no store answers, or no copy
        passes its integrity check) is warned about once and the app taken to be on its home site.
        """
        chosen = self.config.app(app)
        if app not in self.placements_read:
            try:
                record = read_placement(self, chosen).record
            except IntegrityError as error:
                self.warn(f"{error.message}; app {app} is taken to be on its home site {chosen.home_site}")
                record = home_placement(chosen)
            except StandbyError as error:
                self.warn(
                    f"placement of app {app} not read ({error.message});"
                    f" it is taken to be on its home site {chosen.home_site}"
                )
                record = home_placement(chosen)
            self.placements_read.setdefault(app, record)
        return self.placements_read[app]

    def placements(self) -> dict[str, Placement]:
        """:meth:`placement` of every configured app, by name."""
        return {a.name: self.placement(a.name) for a in self.config.apps}

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
        return World(
            config=self.config,
            sites=sites,
            clock=self.clock,
            app_clients=self.app_clients,
            key=self.key,
            notices=self.notices,
            on_warning=self.on_warning,
            placements_read=self.placements_read,
        )

    def bundle(self, site: str) -> SiteBundle:
        """The bundle of ``site`` (a ``ConfigError`` names the known sites)."""
        self.config.site(site)
        return self.sites[site]

    def volumes(self, app: ProtectedApp, site: str, *, auto_resync: bool = False) -> VolumeControl:
        """The app's volume control on ``site``, by its ``mirroring.control``."""
        b = self.bundle(site)
        return volumes_for(app, b.cluster, b.rbd, app.pool_on(b.site), auto_resync=auto_resync)

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
    config: StandbyConfig,
    *,
    clock: Clock | None = None,
    timeout: float | None = None,
    key: crypto.MasterKey | None = None,
) -> World:
    """Real adapters for every site of ``config`` (``timeout`` overrides each call's timeout); ``key``
    signs and checks the state (see :attr:`World.key`)."""
    from drkit.jobs.sites import store_for

    bundles = {site.name: SiteBundle(site, store_for(site), timeout=timeout) for site in config.sites}
    return World(config=config, sites=bundles, clock=clock or SystemClock(), key=key)


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


def secondary_lag(
    world: World, app: ProtectedApp, secondary: str, *, exact_first: bool = False
) -> float | None:
    """The secondary's lag in seconds (its oldest image); None when unknown.

    From the secondary's status (an upper bound: rbd-mirror writes it every 30 s, so it can show
    minutes after a restart), else from both sites' snapshot listings (exact mode); with
    ``exact_first`` (plans, a drill's recovery point) the other way round, falling back to the
    status when the primary cannot be listed (a lost site).
    """
    from drkit.jobs.rpo import exact_points

    b = world.bundle(secondary)
    primary = world.bundle(app.other_site(secondary))

    def exact(image: str) -> float | None:
        points = exact_points(
            b.rbd,
            primary.rbd,
            app.pool_on(b.site),
            image,
            secondary_tz=b.site.timezone,
            primary_tz=primary.site.timezone,
            clock=world.clock,
        )
        return exact_lag(image, points, world.clock.now()).lag_seconds

    def status(image: str) -> tuple[float | None, bool]:
        pool = app.pool_on(b.site)
        doc = b.rbd.image_status(pool, image)
        now = world.clock.now()
        sample = parse_image_status(doc, now=now, tz=b.site.timezone, site=secondary, pool=pool)
        # journal mode has no measured lag: its estimate stands in (labelled where the RPO shows it)
        return image_lag(sample, now).lag_or_estimate_seconds, sample.health in ("split-brain", "error")

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
    names = (app.home_site, app.secondary_site)
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
