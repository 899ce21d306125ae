"""Helpers the lab and server tests share: polling, syncing the mirror now, the app's roles and its Nexus.

Most work on a running lab (see ``tests/labfixture.py``) through the jobs' :class:`World`, as
Standby itself sees the sites. Two start a real process without the lab: :func:`nexus_simulator`
(the Nexus simulator on a plain file) and :func:`prefect_server` (a real ``prefect server``).
"""

from __future__ import annotations

import base64
import contextlib
import os
import secrets
import shutil
import socket
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from drkit.adapters.clock import SystemClock
from drkit.adapters.nexus import HttpNexus
from drkit.config import load_config
from drkit.domain import crypto
from drkit.domain.models import KindRef
from drkit.domain.placement import Placement
from drkit.domain.rbd_status import parse_snap_ls
from drkit.jobs import backup as backups
from drkit.jobs.world import World, build_world, read_placement
from lab import seeds
from lab.controllers import SYSTEM_PYTHON
from lab.procs import answers, start_service, stop_daemon
from tests import prefect_db

ROOT = Path(__file__).resolve().parents[1]
NEXUS = KindRef(group="operator.alaudadevops.io", version="v1alpha1", kind="Nexus")
SECRET = KindRef(version="v1", kind="Secret")


def free_port() -> int:
    """A TCP port on loopback that nothing listens on now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def poll(what: str, probe: Callable[[], Any], timeout: float, interval: float = 0.5) -> Any:
    """Poll ``probe`` until it returns a truthy value; fail naming ``what`` after ``timeout``."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        try:
            last = probe()
        except Exception as exc:
            last = exc
        else:
            if last:
                return last
        time.sleep(interval)
    pytest.fail(f"timed out after {timeout:.0f}s waiting for {what}; last: {last!r}")


def master_key(
    monkeypatch: pytest.MonkeyPatch, text: str, var: str = "STANDBY_BACKUP_KEY"
) -> crypto.MasterKey:
    """Set ``$var`` to the base64 key ``text`` and read it back as the jobs do."""
    monkeypatch.setenv(var, text)
    found = backups.key_from_env(var)
    assert found is not None
    return found


def key_of(text: str, var: str = "STANDBY_BACKUP_KEY") -> crypto.MasterKey:
    """The base64 key ``text`` read as the jobs read ``$var``, without touching the environment."""
    found = backups.key_from_env(var, environ={var: text})
    assert found is not None
    return found


def sync_now(world: World, primary: str, secondary: str, timeout: float = 90.0) -> None:
    """Take a mirror snapshot on ``primary`` and wait until ``secondary`` holds it complete."""
    pa, pb = world.bundle(primary), world.bundle(secondary)
    pa.rbd.mirror_snapshot(pa.site.pool, seeds.IMAGE_NAME)
    newest = max(
        s.id
        for s in parse_snap_ls(pa.rbd.snapshots(pa.site.pool, seeds.IMAGE_NAME), tz="UTC")
        if not s.non_primary
    )
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        synced = parse_snap_ls(pb.rbd.snapshots(pb.site.pool, seeds.IMAGE_NAME), tz="UTC")
        if any(s.primary_snap_id == newest and s.complete for s in synced):
            return
        time.sleep(0.5)
    raise AssertionError(f"{secondary} did not complete snapshot {newest} of {primary} in {timeout}s")


def roles(world: World) -> dict[str, bool]:
    """Whether the Nexus image is primary, per site, as ``rbd info`` says."""
    out = {}
    for site in ("site-a", "site-b"):
        b = world.bundle(site)
        out[site] = bool(b.rbd.image_info(b.site.pool, seeds.IMAGE_NAME)["mirroring"]["primary"])
    return out


def runs_nexus(world: World, site: str) -> bool:
    """Whether ``site`` holds a Nexus CR in the app's namespace."""
    return any(world.bundle(site).cluster.list(NEXUS, seeds.NAMESPACE))


LAB_KEY_TEXT = base64.b64encode(bytes(range(210, 242))).decode()
"""The backup key of every test that uses the session's lab: the lab's placement record, journals
and backup indexes are signed with the key in use, and a key the next test does not hold would make
it refuse them as forged (as it should). A test of a wrong key uses another one on purpose."""


def fresh_backup(world: World, site: str, key: crypto.MasterKey, *, every_store: bool = True) -> str:
    """Back the app up from ``site``, which must be its placed primary, into every site's store; the
    new run's id.

    Every store is required here (``spare=False``): the nightly backup lets a store that is slow to
    answer miss a run and catches it up later, but a test that plans an operation next needs the
    target's own store to hold this run, and a loaded machine must not turn that into a refused plan.
    ``every_store=False`` (a site and its store are down): the other stores are spare copies, as in
    the nightly backup, and only the source's own store must take the run.
    """
    app = world.config.app("nexus")
    assert read_placement(world, app).record.primary == site
    b = world.bundle(site)
    stores = backups.app_stores(world, app, site, spare=not every_store)
    summary = backups.run_backup(app, b.site, b.cluster, stores, key=key, clock=SystemClock())
    assert summary.status == "complete", "\n".join(summary.lines())
    assert not every_store or not summary.missed, "\n".join(summary.lines())
    assert f"/backups/{site}/nexus/" in summary.index_key
    return summary.run_id


def nexus_client(world: World, site: str) -> HttpNexus:
    """A client of the Nexus running on ``site``: its URL from the CR's status, the admin Secret's password."""
    b = world.bundle(site)
    cr = b.cluster.get(NEXUS, seeds.NEXUS_NAME, seeds.NAMESPACE)
    url = (cr.get("status") or {}).get("url")
    assert url, f"Nexus on {site} has no URL: {cr.get('status')}"
    secret = b.cluster.get(SECRET, seeds.ADMIN_SECRET, seeds.NAMESPACE)
    password = base64.b64decode(secret["data"]["password"]).decode()
    return HttpNexus(url, username="admin", password=password, site=site)


def placement(world: World) -> Placement:
    """The placement record of the app ``nexus``, as the jobs read it."""
    return read_placement(world, world.config.app("nexus")).record


def assert_home(world: World) -> None:
    """The lab as a test must find and leave it: Nexus primary and running on site-a only."""
    record = placement(world)
    assert record.primary == "site-a" and record.operation is None, record
    assert roles(world) == {"site-a": True, "site-b": False}
    assert runs_nexus(world, "site-a") and not runs_nexus(world, "site-b")


def home_world(lab_root: Path) -> World:
    """The jobs' world of the lab at ``lab_root`` (its ``standby.yaml``), checked to be at home."""
    world = build_world(load_config(lab_root / "standby.yaml"), timeout=20.0)
    assert_home(world)
    return world


@contextlib.contextmanager
def nexus_simulator(tmp: Path, password: str) -> Iterator[str]:
    """The project's Nexus simulator on a plain 16 MiB file in ``tmp`` (the lab runs it on an RBD image).

    Yields its URL once ``/service/rest/v1/status`` answers; the admin's password is ``password``.
    Stopped on exit; its log is ``tmp/run/nexus-sim.log``.
    """
    volume = tmp / "volume.img"
    with open(volume, "wb") as fh:
        fh.truncate(16 * 1024 * 1024)
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    argv = [SYSTEM_PYTHON, "-m", "lab.nexus_sim", "--port", str(port), "--file", str(volume)]
    env = {"NEXUS_ADMIN_PASSWORD": password, "PYTHONPATH": str(ROOT)}
    run = tmp / "run"
    try:
        start_service(
            "nexus-sim",
            argv,
            run,
            port=port,
            env=env,
            cwd=ROOT,
            timeout=30,
            ready=lambda: answers(f"{url}/service/rest/v1/status", timeout=1),
        )
        yield url
    finally:
        stop_daemon(run / "nexus-sim.pid", timeout=30)


@contextlib.contextmanager
def prefect_server(*, ui: bool = False, port: int | None = None) -> Iterator[str]:
    """A real ``prefect server`` on loopback with its own ``PREFECT_HOME``; yields its base URL (API at ``/api``).

    ``ui``: serve the UI too, told where the API is. ``port``: a free one when None. Stopped and
    its home removed on exit.

    Its API needs authentication, as the lab's own server (``deployments/server.py``): a random
    auth string (``PREFECT_SERVER_API_AUTH_STRING``) that, while the server runs, is this process's
    ``PREFECT_API_AUTH_STRING``, in its environment (subprocesses started with ``os.environ``
    inherit it) and in its Prefect settings (clients made meanwhile send it); see :func:`api_auth`.
    """
    from prefect.settings import PREFECT_API_AUTH_STRING, temporary_settings

    home = Path(tempfile.mkdtemp(prefix="standby-prefect-"))
    prefect_db.seed(home / "prefect.db")  # its default database, already migrated
    port = port or free_port()
    base = f"http://127.0.0.1:{port}"
    auth = f"standby-test:{secrets.token_urlsafe(18)}"
    argv = [
        str(Path(sys.executable).with_name("prefect")),
        "server",
        "start",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
    ]
    env = {
        "PREFECT_HOME": str(home),
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "DO_NOT_TRACK": "1",
        "PREFECT_UI_ENABLED": "true" if ui else "false",
        "PREFECT_SERVER_API_AUTH_STRING": auth,
    }
    if ui:  # without it the UI calls the API on port 4200, whatever the server's port
        env["PREFECT_UI_API_URL"] = f"{base}/api"
    before = os.environ.get("PREFECT_API_AUTH_STRING")
    try:
        start_service(
            "prefect-server",
            argv,
            home / "run",
            port=port,
            env=env,
            cwd=ROOT,
            timeout=120,
            ready=lambda: answers(f"{base}/api/health"),
        )
        os.environ["PREFECT_API_AUTH_STRING"] = auth
        with temporary_settings({PREFECT_API_AUTH_STRING: auth}):
            yield base
    finally:
        _drain_prefect_workers()  # while the server still answers
        if before is None:
            os.environ.pop("PREFECT_API_AUTH_STRING", None)
        else:
            os.environ["PREFECT_API_AUTH_STRING"] = before
        stop_daemon(home / "run" / "prefect-server.pid", timeout=20)
        shutil.rmtree(home, ignore_errors=True)


def _drain_prefect_workers(timeout: float = 30.0) -> None:
    """Send this process's queued events and logs before their server stops.

    Runs started in this process against a test's own server leave events and logs queued in
    Prefect's process-wide workers. Left there, they are sent at the session's end to a server
    that is gone: the harness's teardown drains every worker with no time limit, and each event
    waits out its connection retries (a worker's teardown hung 300 s so, under ``make test``).
    """
    from prefect.events.worker import EventsWorker
    from prefect.logging.handlers import APILogWorker

    for worker in (APILogWorker, EventsWorker):
        with contextlib.suppress(Exception):  # nothing started: nothing to send
            worker.drain_all(timeout=timeout)


def api_auth() -> str:
    """The auth string of the :func:`prefect_server` running now (what the UI's login form takes)."""
    auth = os.environ.get("PREFECT_API_AUTH_STRING")
    assert auth, "no prefect_server() is running"
    return auth
