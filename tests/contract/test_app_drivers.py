"""Contract of the app drivers: every registered kind implements :class:`AppDriver`, and a new kind
is one registration away from running an operation, with no change to the steps.

The suite runs each registered driver on the fake two-site world (:func:`drkit.testing.dr.fake_dr`,
whose site A runs the app); what needs a real HTTP server (the plain-HTTP driver's checks) is in
``tests/unit/test_app_knowledge.py``.
"""

from __future__ import annotations

import inspect
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, ClassVar

import pytest

from drkit.adapters.kube import ClusterApi
from drkit.domain import crypto
from drkit.domain.drill import canary_check
from drkit.domain.errors import ConfigError, NotFound, PreconditionFailed
from drkit.domain.models import KindRef, ProtectedApp, Site
from drkit.domain.operations import Approval
from drkit.jobs.backup import run_backup
from drkit.jobs.drivers import DRIVERS, AppDriver, Restore, SmokeResult, driver_for, kinds, register
from drkit.jobs.operations import Timeouts, approve, execute, prepare
from drkit.jobs.world import World, read_placement
from drkit.testing.dr import FakeDr, fake_dr
from drkit.testing.vm_dr import fake_vm_dr

KEY = crypto.MasterKey(bytes(range(32)))
PROTOCOL = [
    name for name in dir(AppDriver) if not name.startswith("_") and callable(getattr(AppDriver, name))
]
assert len(PROTOCOL) == 12, PROTOCOL  # every method of the protocol is checked


def _with_kind(dr: FakeDr, kind: str) -> ProtectedApp:
    """The fake world's app, served by the driver of ``kind`` (the world's config changed to match)."""
    app = dr.world.config.app("nexus")
    app = app.model_copy(update={"checks": app.checks.model_copy(update={"kind": kind})})
    dr.world.config = dr.world.config.model_copy(update={"apps": (app,)})
    return app


def _driver(dr: FakeDr, kind: str, site: str = "site-a") -> AppDriver:
    b = dr.world.bundle(site)
    return driver_for(_with_kind(dr, kind), b.site, b.cluster, dr.world)


def test_the_shipped_kinds_are_registered() -> None:
    assert {"http", "nexus", "opennebula"} <= set(kinds())


def test_the_vm_driver_implements_the_protocol_on_the_vm_world() -> None:
    dr = fake_vm_dr()
    b = dr.world.bundle("site-a")
    driver = driver_for(dr.world.config.app("vms"), b.site, b.cluster, dr.world)
    assert isinstance(driver, AppDriver) and driver.kind == "opennebula" and driver.canary is False
    for name in PROTOCOL:
        want = list(inspect.signature(getattr(AppDriver, name)).parameters)[1:]
        assert list(inspect.signature(getattr(driver, name)).parameters) == want, name
    assert driver.workload_object() is not None and driver.writable()
    assert driver.stop() is True and driver.workload_object() is None and driver.stop() is False


@pytest.mark.parametrize("kind", sorted(DRIVERS))
def test_every_registered_driver_implements_the_protocol(kind: str) -> None:
    driver = _driver(fake_dr(), kind)
    assert isinstance(driver, AppDriver)
    assert driver.kind == kind and isinstance(driver.canary, bool)
    for name in PROTOCOL:  # same parameters as the protocol's (steps call them by keyword too)
        want = list(inspect.signature(getattr(AppDriver, name)).parameters)[1:]
        assert list(inspect.signature(getattr(driver, name)).parameters) == want, name


KUBERNETES_KINDS = sorted(k for k in DRIVERS if k != "opennebula")
"""The kinds whose app runs as a Kubernetes workload (the VM driver's own checks are below)."""


@pytest.mark.parametrize("kind", KUBERNETES_KINDS)
def test_every_driver_stops_and_starts_the_app_from_what_it_restores(kind: str) -> None:
    dr = fake_dr()
    driver = _driver(dr, kind)
    workload = driver.app.workload.kind
    assert driver.workload_object() is not None
    assert all(isinstance(k, KindRef) for k in driver.backup_kinds())
    assert workload in driver.backup_kinds()
    assert isinstance(driver.quiesce(), bool)
    assert driver.stop() is True and driver.workload_object() is None and driver.url() is None
    assert driver.stop() is False  # already stopped: stopping again is a no-op
    asked: list[tuple[str, ...]] = []
    driver.start(asked.append)
    assert asked == [(workload.kind,)]


def test_the_canary_round_trips_where_the_driver_has_one() -> None:
    dr = fake_dr()
    for kind in sorted(DRIVERS):
        driver = _driver(dr, kind)
        if driver.canary:
            driver.write_canary("standby-drill/t/canary.bin", b"canary")
            assert driver.read_canary("standby-drill/t/canary.bin") == b"canary"
            assert driver.read_canary("standby-drill/t/other.bin") is None
        else:
            with pytest.raises(PreconditionFailed, match=f"checks.kind '{kind}' has no canary"):
                driver.write_canary("standby-drill/t/canary.bin", b"canary")


@pytest.mark.parametrize("kind", ["http", "nexus"])
def test_the_drill_gate_agrees_with_the_shipped_drivers_canary(kind: str) -> None:
    dr = fake_dr()
    driver = _driver(dr, kind)
    assert canary_check(driver.app).ok is driver.canary


def test_an_unknown_kind_is_refused_naming_the_app_the_kind_and_the_known_kinds() -> None:
    dr = fake_dr()
    with pytest.raises(ConfigError) as caught:
        _driver(dr, "opennebula-vm")
    message = caught.value.message
    assert "app nexus" in message and "'opennebula-vm'" in message
    assert all(k in message for k in kinds()) and "\n" not in message
    assert "checks.kind" in caught.value.hint


# ------------------------------------------------------------------------------ a new kind


@dataclass
class ToyDriver:
    """A driver written from the protocol alone: the app runs while its workload object exists."""

    kind: ClassVar[str] = "toy"
    canary: ClassVar[bool] = False
    app: ProtectedApp
    site: Site
    cluster: ClusterApi
    calls: ClassVar[list[tuple[str, str]]] = []
    seen: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def build(
        cls, app: ProtectedApp, site: Site, cluster: ClusterApi, world: World | None = None
    ) -> ToyDriver:
        return cls(app=app, site=site, cluster=cluster)

    def _note(self, call: str) -> None:
        self.calls.append((call, self.site.name))

    def workload_object(self) -> dict[str, Any] | None:
        try:
            return self.cluster.get(self.app.workload.kind, self.app.workload.name, self.app.namespace)
        except NotFound:
            return None

    def url(self) -> str | None:
        return f"toy://{self.site.name}" if self.workload_object() is not None else None

    def answers(self, url: str) -> bool:
        return self.workload_object() is not None

    def writable(self) -> bool:
        return self.workload_object() is not None

    def quiesce(self) -> bool:
        self._note("quiesce")
        return True

    def release(self) -> None:
        self._note("release")

    def stop(self) -> bool:
        self._note("stop")
        return self.cluster.delete(self.app.workload.kind, self.app.workload.name, self.app.namespace)

    def start(self, restore: Restore) -> None:
        self._note("start")
        restore((self.app.workload.kind.kind,))

    def smoke(self, tag: str) -> SmokeResult:
        self._note("smoke")
        return SmokeResult(True, True, True, "", "", True)

    def write_canary(self, path: str, data: bytes) -> None:
        raise PreconditionFailed("toy apps keep no canary")

    def read_canary(self, path: str) -> bytes | None:
        raise PreconditionFailed("toy apps keep no canary")

    def backup_kinds(self) -> tuple[KindRef, ...]:
        return tuple(self.app.backup.kinds)


@pytest.fixture
def toy() -> Iterator[None]:
    register("toy", ToyDriver.build)
    ToyDriver.calls.clear()
    try:
        yield
    finally:
        DRIVERS.pop("toy", None)


def test_a_new_kind_is_registered_and_relocated_without_touching_the_steps(toy: None) -> None:
    dr = fake_dr()
    app = _with_kind(dr, "toy")
    assert isinstance(driver_for(app, dr.world.config.site("site-a"), dr.clusters["site-a"]), ToyDriver)
    b = dr.world.bundle("site-a")
    run_backup(app, b.site, b.cluster, b.store, key=KEY, clock=dr.clock)
    prepared = prepare(dr.world, "nexus", "relocate", "site-b", key=KEY)
    assert prepared.plan.runnable, [c for c in prepared.plan.checks if not c.ok]
    approval = Approval(approver="tester", reason="unit", at=datetime(2026, 11, 30, tzinfo=UTC))
    done = execute(
        dr.world,
        approve(dr.world, prepared, approval, "nexus"),
        key=KEY,
        timeouts=Timeouts(default=30.0, poll=1.0),
    )
    assert done.status == "completed", done.error
    assert read_placement(dr.world, app).record.primary == "site-b"
    assert ("quiesce", "site-a") in ToyDriver.calls and ("stop", "site-a") in ToyDriver.calls
    assert ToyDriver.calls.index(("stop", "site-a")) < ToyDriver.calls.index(("start", "site-b"))
    assert ("smoke", "site-b") in ToyDriver.calls
    assert dr.clusters["site-b"].get(app.workload.kind, app.workload.name, app.namespace)
