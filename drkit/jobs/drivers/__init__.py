"""App drivers: one per ``checks.kind``, all implementing :class:`~drkit.jobs.drivers.base.AppDriver`.

Steps build an app's driver with :func:`driver_for` and call the protocol; nothing outside this
package names an app kind. :data:`DRIVERS` maps each kind to its factory; a new kind (a virtual
machine on another control plane, say) is a module with a driver class and one :func:`register`
call (and the kind in the configuration's ``checks.kind``), with no change to the steps.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from drkit.adapters.kube import ClusterApi
from drkit.domain.errors import ConfigError
from drkit.domain.models import ProtectedApp, Site
from drkit.jobs.drivers.base import (
    AppDriver,
    DriverFactory,
    FromBackup,
    Leftovers,
    Preflight,
    Restore,
    Saved,
    ScratchDrill,
    SmokeResult,
)
from drkit.jobs.drivers.http import HttpDriver
from drkit.jobs.drivers.nexus import NexusDriver
from drkit.jobs.drivers.opennebula import OpenNebulaDriver

if TYPE_CHECKING:
    from drkit.jobs.world import World

__all__ = [
    "DRIVERS",
    "AppDriver",
    "DriverFactory",
    "FromBackup",
    "Leftovers",
    "Preflight",
    "Restore",
    "Saved",
    "ScratchDrill",
    "SmokeResult",
    "drill_without_canary",
    "driver_for",
    "kinds",
    "register",
]

DRIVERS: dict[str, DriverFactory] = {
    HttpDriver.kind: HttpDriver.build,
    NexusDriver.kind: NexusDriver.build,
    OpenNebulaDriver.kind: OpenNebulaDriver.build,
}
"""Each ``checks.kind`` and the factory of its driver."""


def register(kind: str, factory: DriverFactory) -> None:
    """Serve apps of ``checks.kind: kind`` with the drivers ``factory`` builds (replaces an earlier one)."""
    DRIVERS[kind] = factory


def kinds() -> tuple[str, ...]:
    """The kinds a driver serves, sorted."""
    return tuple(sorted(DRIVERS))


def driver_for(app: ProtectedApp, site: Site, cluster: ClusterApi, world: World | None = None) -> AppDriver:
    """The driver of ``app`` on ``site`` (``world``: the run's, whose clients a driver may use);
    :class:`ConfigError` naming the app, its kind and the known kinds when no driver serves it."""
    factory = DRIVERS.get(app.checks.kind)
    if factory is None:
        raise ConfigError(
            f"app {app.name}: no driver for checks.kind {app.checks.kind!r} (known kinds: {', '.join(kinds())})",
            hint=f"set apps[{app.name}].checks.kind to one of: {', '.join(kinds())}",
            context={"app": app.name, "kind": app.checks.kind},
        )
    return factory(app, site, cluster, world)


def drill_without_canary(app: ProtectedApp) -> str:
    """Why ``app``'s driver runs its isolated drill without a canary (its
    :attr:`~drkit.jobs.drivers.base.ScratchDrill.no_canary`), read from the driver's class without
    building it ('': the driver has a canary, or cannot be drilled without one)."""
    owner = getattr(DRIVERS.get(app.checks.kind), "__self__", None)
    if isinstance(owner, type) and callable(getattr(owner, "start_scratch", None)):
        return str(getattr(owner, "no_canary", ""))
    return ""
