"""Helpers the lab and server tests share: polling, syncing the mirror now, the app's roles and its Nexus.

They work on a running lab (see ``tests/labfixture.py``) through the jobs' :class:`World`, as
Standby itself sees the sites.
"""

from __future__ import annotations

import base64
import time
from collections.abc import Callable
from typing import Any

import pytest

from drkit.adapters.clock import SystemClock
from drkit.adapters.nexus import HttpNexus
from drkit.domain import crypto
from drkit.domain.models import KindRef
from drkit.domain.rbd_status import parse_snap_ls
from drkit.jobs import backup as backups
from drkit.jobs.world import World, placed_config
from lab import seeds

NEXUS = KindRef(group="operator.alaudadevops.io", version="v1alpha1", kind="Nexus")
SECRET = KindRef(version="v1", kind="Secret")


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


def master_key(monkeypatch: pytest.MonkeyPatch, text: str, var: str = "STANDBY_BACKUP_KEY") -> crypto.MasterKey:
    """Set ``$var`` to the base64 key ``text`` and read it back as the jobs do."""
    monkeypatch.setenv(var, text)
    found = backups.key_from_env(var)
    assert found is not None
    return found


def sync_now(world: World, primary: str, secondary: str, timeout: float = 90.0) -> None:
    """Take a mirror snapshot on ``primary`` and wait until ``secondary`` holds it complete."""
    pa, pb = world.bundle(primary), world.bundle(secondary)
    pa.rbd.mirror_snapshot(pa.site.pool, seeds.IMAGE_NAME)
    newest = max(s.id for s in parse_snap_ls(pa.rbd.snapshots(pa.site.pool, seeds.IMAGE_NAME), tz="UTC")
                 if not s.non_primary)  # fmt: skip
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


def fresh_backup(world: World, site: str, key: crypto.MasterKey) -> str:
    """Back the app up from ``site``, which must be its placed primary; the new run's id."""
    app = placed_config(world).app("nexus")
    assert app.primary_site == site
    b = world.bundle(site)
    summary = backups.run_backup(app, b.site, b.cluster, b.store, key=key, clock=SystemClock())
    assert summary.status == "complete", summary
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
