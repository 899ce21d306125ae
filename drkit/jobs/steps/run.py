"""One run of a plan (:class:`Run`), and the protocol every step implements (:class:`Step`).

A step implements :class:`Step`: ``observe`` reads (never acts) and returns a small JSON-able
dict that goes into the journal; ``satisfied`` is pure; ``act`` is called only when the step is not
satisfied, and may be called again on the next poll, so it is idempotent (it looks before it acts).
A step reaches the app only through its driver (:meth:`Run.driver`) and the volumes only through
the run's volume path (:meth:`Run.volumes`): it never looks at the app's kind or the plan's.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from drkit.adapters.volumes import VolumeControl
from drkit.domain import crypto
from drkit.domain.errors import NotFound
from drkit.domain.models import KindRef, ProtectedApp
from drkit.domain.operations import Plan, StepSpec
from drkit.jobs.drivers import AppDriver, driver_for
from drkit.jobs.restore import restore_backup, saved_reader
from drkit.jobs.world import World

Seen = dict[str, Any]
PV = KindRef(version="v1", kind="PersistentVolume")
PVC = KindRef(version="v1", kind="PersistentVolumeClaim")
NAMESPACE = KindRef(version="v1", kind="Namespace")
ROUTING_KINDS = ("Service", "Ingress")
RoutingHook = Callable[[ProtectedApp, str], None]
"""Called by the ``routing`` step with the app and its new site (``routing.mode: webhook``)."""
VolumePath = Callable[[World, ProtectedApp, str], VolumeControl]
"""How a run drives the app's volumes on a site: ``(world, app, site) -> VolumeControl``."""


def app_volumes(world: World, app: ProtectedApp, site: str) -> VolumeControl:
    """The app's own volume path (its ``mirroring.control``): the default of a run."""
    return world.volumes(app, site)


@dataclass
class Run:
    """One run of a plan: the world, the app, the backup to restore from, and per-run memory."""

    world: World
    app: ProtectedApp
    plan: Plan
    op_id: str
    key: crypto.MasterKey | None
    backup_run: str | None
    routing_hook: RoutingHook | None = None
    memo: dict[str, Any] = field(default_factory=dict)
    seen: dict[str, Seen] = field(default_factory=dict)
    """What each finished step observed last (from the journal: it outlives the process)."""
    ticks: list[Callable[[], None]] = field(default_factory=list)
    """Called on every poll of a step (the drill's availability probe)."""
    volume_path: VolumePath = app_volumes
    """How this run drives volumes (see :func:`drkit.jobs.steps.new_run`: a drill drives ``rbd``)."""

    def tick(self) -> None:
        """Run the per-poll callbacks."""
        for callback in self.ticks:
            callback()

    def other(self, site: str) -> str:
        """The app's other site."""
        return self.app.secondary_site if site == self.app.home_site else self.app.home_site

    def volumes(self, site: str) -> VolumeControl:
        """Volume control on ``site``, by the run's volume path."""
        return self.volume_path(self.world, self.app, site)

    def driver(self, site: str, app: ProtectedApp | None = None) -> AppDriver:
        """The app driver on ``site`` (of ``app``, by default the run's app)."""
        b = self.world.bundle(site)
        return driver_for(app or self.app, b.site, b.cluster, self.world)

    def restore(
        self,
        site: str,
        *,
        include: tuple[str, ...] | None = None,
        exclude: tuple[str, ...] = (),
        namespace: str | None = None,
        rewrite: Callable[[dict[str, Any]], dict[str, Any]] | None = None,
    ) -> None:
        """Restore the plan's backup (taken on the plan's ``backup_site``, else its source) into ``site``;
        existing objects are kept.

        ``namespace`` and ``rewrite``: see :func:`~drkit.jobs.restore.restore_backup`."""
        run_id = self.restore_run
        if run_id is None:
            raise NotFound(
                f"no backup of app {self.app.name} to restore on {site}",
                hint=f"run: standby backup run --app {self.app.name}",
            )
        source = self.world.config.site(self.plan.backup_site or self.plan.source)
        b = self.world.bundle(site)
        ref = self.world.stores(first=site)[0]  # the target's own store only
        restore_backup(
            ref.store,
            source,
            self.app,
            b.cluster,
            b.site,
            key=self.key,
            run_id=run_id,
            include_kinds=include,
            exclude_kinds=exclude,
            namespace=namespace,
            rewrite=rewrite,
            clock=self.world.clock,
            layout=ref.layout,
            store_name="/".join(ref.sites),
        )

    def saved(self, site: str, kinds: tuple[str, ...]) -> list[dict[str, Any]]:
        """The objects of ``kinds`` in the backup :meth:`restore` would restore, read from ``site``'s
        own store and checked (a driver starting the app from saved records reads them here)."""
        run_id = self.restore_run
        if run_id is None:
            raise NotFound(
                f"no backup of app {self.app.name} to start it from on {site}",
                hint=f"run: standby backup run --app {self.app.name}",
            )
        source = self.plan.backup_site or self.plan.source
        return saved_reader(self.world, self.app, source, site, run_id, self.key)(kinds)

    @property
    def restore_run(self) -> str | None:
        """The backup this run restores: the final backup it took (a planned move), else the plan's."""
        taken = self.memo.get("final-backup") or (self.seen.get("final-backup") or {}).get("run")
        return str(taken) if taken else self.backup_run


class Step(Protocol):
    """Observe, judge, act."""

    def observe(self, run: Run, spec: StepSpec) -> Seen:
        """Read the state the step cares about (never act)."""
        ...

    def satisfied(self, seen: Seen) -> bool:
        """Whether the step's goal holds (pure)."""
        ...

    def act(self, run: Run, spec: StepSpec, seen: Seen) -> None:
        """Move towards the goal (idempotent)."""
        ...
