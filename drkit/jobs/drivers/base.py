"""The app-driver protocol: what the steps of an operation or a drill ask of a protected app.

Steps never look at an app's kind: they build the app's driver on a site (:func:`drkit.jobs.drivers.driver_for`)
and call this protocol. A driver answers for one app on one site:

* *reading*: the object the app runs as (kept by the stop step so an abort can start it again),
  its URL there, whether anything answers at a URL, whether it is up and writable;
* *fence/stop* (:meth:`AppDriver.stop`), with *quiesce* before it and *release* after a start
  where the app has them (a read-only freeze: a no-op for an app without one);
* *start from the restored state* (:meth:`AppDriver.start`): the driver names what to restore
  from the backup to start the app, the step restores it (or, given a :class:`FromBackup`, the
  driver reads the saved records it starts the app from);
* *smoke* after a move, and the drill's *canary* written on the primary and read on the replica;
* *what it needs backed up* (:meth:`AppDriver.backup_kinds`).

A driver is cheap to build (no I/O until called), so a step builds one per call.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar, Protocol, runtime_checkable

from drkit.adapters.kube import ClusterApi
from drkit.domain.models import KindRef, ProtectedApp, Site

if TYPE_CHECKING:
    from drkit.jobs.world import World

Restore = Callable[[tuple[str, ...]], None]
"""Restores the named kinds of the app's backup into the app's namespace on the driver's site."""
Saved = Callable[[tuple[str, ...]], list[dict[str, Any]]]
"""Reads the named kinds' objects from the app's backup, checked, without applying them."""


START_CONVERGES = "start_converges"
"""An optional class attribute of a driver: True when its :meth:`AppDriver.start` may run again
while the app is present but not writable (it creates only what is missing, e.g. the second of two
VMs after a kill), so the start step calls it again instead of :meth:`AppDriver.release`."""


@runtime_checkable
class Preflight(Protocol):
    """An optional capability of a driver: what its site would refuse of the app's saved definition,
    known before any change (a VM whose network has no counterpart, an image name taken by another
    ``SOURCE``). The plan turns a non-empty answer into a failed guard, so the operation is refused
    while the app still runs where it is."""

    def refusals(self, saved: Saved) -> tuple[str, ...]:
        """One line per thing the site would refuse (empty: the app can start there)."""
        ...


@runtime_checkable
class Leftovers(Protocol):
    """An optional capability of a driver: what the app leaves on a site it moved away from, and
    removing it (a VM app's stale copies on the site it failed over to). The tidy step of an
    operation asks a driver that has it instead of looking for Kubernetes objects."""

    def leftovers(self) -> list[str]:
        """What is left on the site once the app runs elsewhere (empty: nothing)."""
        ...

    def tidy(self) -> None:
        """Remove :meth:`leftovers` (the app's data, its mirrored images, stays)."""
        ...


@runtime_checkable
class ScratchDrill(Protocol):
    """An optional capability of a driver: it starts an isolated drill's app itself, from the
    scratch copies of the app's images (``<image>-drill``, made by the drill), on its own control
    plane and marked as the drill's, instead of in the drill's Kubernetes namespace; and it finds
    and removes what drills left there. Only the drill's steps use it."""

    scratch_what: ClassVar[str]
    """What the drill starts, in a few words for the plan (e.g. its VMs and images)."""
    no_canary: ClassVar[str]
    """Why the drill's canary is not checked for this app ('' : the driver has a canary)."""

    def start_scratch(self, saved: Saved, copies: Mapping[str, str], drill: str) -> tuple[str, ...]:
        """Start what the backup's saved records describe on the scratch copies (``copies``: image ->
        its scratch copy), marked with ``drill``; creates only what is missing. Returns the decisions
        made on the way (one line each, for the journal)."""
        ...

    def scratch_refusals(self, saved: Saved, copies: Mapping[str, str]) -> tuple[str, ...]:
        """What the site would refuse of :meth:`start_scratch`, known before any change (one line
        each; empty: it can start): the drill's plan turns it into a failed guard."""
        ...

    def scratch_missing(self, saved: Saved) -> tuple[str, ...]:
        """What of the saved app is not yet running from the scratch copies (empty: all runs)."""
        ...

    def scratch_smoke(self, tag: str) -> SmokeResult:
        """The smoke test of what the drill started."""
        ...

    def scratch_started(self) -> tuple[str, ...]:
        """What drills of the app started that still stands on the site (one line each)."""
        ...

    def scratch_left(self) -> tuple[str, ...]:
        """What drills of the app left on the site (one line each; empty: nothing)."""
        ...

    def stop_scratch(self) -> None:
        """Stop and remove what drills of the app started (not their images)."""
        ...

    def remove_scratch(self) -> None:
        """Remove what drills of the app registered (once nothing uses it)."""
        ...


@dataclass(frozen=True)
class FromBackup:
    """What the start step hands :meth:`AppDriver.start`: a :data:`Restore` (calling it restores
    the named kinds, as a Kubernetes app's driver does), which also reads the backup's saved
    records (:attr:`saved`) for a driver that starts its app from them (a VM app's)."""

    restore: Restore
    saved: Saved

    def __call__(self, kinds: tuple[str, ...]) -> None:
        self.restore(kinds)


@dataclass(frozen=True)
class SmokeResult:
    """What a smoke test saw (no secret in it)."""

    readable: bool
    writable: bool
    login: bool
    path: str
    sha256: str
    round_trip: bool
    failed: tuple[str, ...] = ()
    """The configured HTTP checks that did not pass, e.g. ``GET /healthz``."""

    @property
    def ok(self) -> bool:
        """Every check passed."""
        return self.readable and self.writable and self.login and self.round_trip and not self.failed


@runtime_checkable
class AppDriver(Protocol):
    """Stop, start, smoke-test and canary one protected app on one site."""

    kind: ClassVar[str]
    """The ``checks.kind`` this driver serves."""
    canary: ClassVar[bool]
    """Whether :meth:`write_canary` and :meth:`read_canary` work (the drill needs them)."""
    app: ProtectedApp
    site: Site

    def workload_object(self) -> dict[str, Any] | None:
        """The object the app runs as on the site (None: absent, the app is not there)."""
        ...

    def url(self) -> str | None:
        """Where the app answers on the site, while it runs there."""
        ...

    def answers(self, url: str) -> bool:
        """Whether anything still answers at ``url`` (a stopped app must not)."""
        ...

    def writable(self) -> bool:
        """Whether the app is up and writable (every health check passes)."""
        ...

    def quiesce(self) -> bool:
        """Make the app read-only before it stops; False when it has no such state or cannot be reached."""
        ...

    def release(self) -> None:
        """Lift a quiesce carried over in the replicated data (no-op when there is none)."""
        ...

    def stop(self) -> bool:
        """Stop (fence) the app on the site; False when it was already stopped."""
        ...

    def start(self, restore: Restore) -> None:
        """Start the app from the restored state, restoring through ``restore`` what it runs as."""
        ...

    def smoke(self, tag: str) -> SmokeResult:
        """The health and smoke checks; ``tag`` names what a check writes."""
        ...

    def write_canary(self, path: str, data: bytes) -> None:
        """Store ``data`` at ``path`` in the app (the drill's canary)."""
        ...

    def read_canary(self, path: str) -> bytes | None:
        """The data stored at ``path`` in the app (None: not there)."""
        ...

    def backup_kinds(self) -> tuple[KindRef, ...]:
        """The kinds the app's backup holds."""
        ...


DriverFactory = Callable[[ProtectedApp, Site, ClusterApi, "World | None"], AppDriver]
"""Builds the driver of an app on a site: ``(app, site, cluster, world)``; ``world`` (the run's,
when there is one) is where a driver takes the clients a test hands it."""
