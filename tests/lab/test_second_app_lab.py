"""A second app, protected by configuration alone: a plain StatefulSet with one claim on a mirrored
RBD image and an HTTP health check (``web`` in the lab's configuration; the lab runs it as
:mod:`lab.webapp_sim`, keeping its files inside the image).

On site A a file is written to the app; its image is sampled by the RPO sampler; the app is backed
up. Then it moves as an operator would with Standby's parts: the app is stopped on A and its image
demoted through its VolumeReplication, and the backup is restored on B, VolumeReplication included,
so B's VolumeReplication promotes the image. The configured health check passes on B, on B's URL,
and the file written on A is there. The test then puts everything back as seeded.
"""

from __future__ import annotations

import re
import secrets
import time
from collections.abc import Callable, Iterator

import httpx
import pytest

from drkit.config import load_config
from drkit.domain.models import KindRef, StandbyConfig
from drkit.jobs.drivers import AppDriver, driver_for
from drkit.jobs.requests import RestoreRequest
from drkit.jobs.restore import run_restore
from drkit.jobs.world import World, build_world
from flows.backup import backup
from flows.restore import restore
from flows.rpo_sample import rpo_sample
from lab import ceph, seeds
from tests.lab.conftest import Lab

pytestmark = pytest.mark.lab
APP = "web"
RESTORED_ON_B = ("StatefulSet", "Service", "VolumeReplication", "PersistentVolumeClaim")


def _wait(what: str, ok: Callable[[], bool], timeout: float = 180.0) -> None:
    deadline = time.monotonic() + timeout
    while not ok():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(1.0)


@pytest.fixture
def config(lab: Lab) -> StandbyConfig:
    return load_config(lab.root / "standby.yaml")


@pytest.fixture
def world(lab: Lab, config: StandbyConfig) -> Iterator[World]:
    world = build_world(config)
    yield world
    # Back as seeded: the app runs on A, B holds only the namespace (and the image, secondary). The
    # clean-up runs as the lab's admin, so that only what Standby itself did is audited as Standby's.
    admin_config = lab.admin_config()
    admin = build_world(admin_config)
    app, volume = config.app(APP), config.app(APP).volumes[0]
    b, a = admin.bundle("site-b").cluster, admin.bundle("site-a").cluster
    b.delete(KindRef(group="apps", version="v1", kind="StatefulSet"), seeds.WEB_NAME, seeds.WEB_NAMESPACE)
    on_b, on_a = admin.volumes(app, "site-b"), admin.volumes(app, "site-a")
    if on_b.role(volume) == "primary":
        # A must be B's replica before B is demoted, or A never gets B's demotion snapshot and no
        # orderly promote of A is possible (both sides demoted: only a forced promote would do).
        _wait(
            "site-a replaying web from site-b",
            lambda: on_a.mirror_state(volume)[0].startswith("up+replaying"),
        )
        on_b.demote(volume)
        _wait("web image secondary on site-b", lambda: on_b.settled(volume, "secondary")[0])
    on_a.promote(volume, force=False)
    _wait("web image primary on site-a", lambda: on_a.settled(volume, "primary")[0])
    for kind in RESTORED_ON_B:
        ref = next(k for k in app.backup.kinds if k.kind == kind)
        for obj in b.list(ref, seeds.WEB_NAMESPACE):
            b.delete(ref, obj["metadata"]["name"], seeds.WEB_NAMESPACE)
    b.delete(KindRef(version="v1", kind="PersistentVolume"), seeds.WEB_PV)
    sts = KindRef(group="apps", version="v1", kind="StatefulSet")
    if not a.list(sts, seeds.WEB_NAMESPACE):  # the test got as far as stopping it on A
        run_restore(admin, RestoreRequest(app=APP, target_site="site-a", source_site="site-a"), key=None)
    _wait("web healthy on site-a again", lambda: driver_for(app, admin.bundle("site-a").site, a).writable())


def _driver(config: StandbyConfig, world: World, site: str) -> AppDriver:
    return driver_for(config.app(APP), config.site(site), world.bundle(site).cluster)


@pytest.mark.timeout(600)
def test_second_app_by_config_only_moves_from_a_to_b_with_its_data(
    lab: Lab, prefect_harness: None, config: StandbyConfig, world: World
) -> None:
    cfg = str(lab.root / "standby.yaml")
    app = config.app(APP)
    volume = app.volumes[0]
    on_a = _driver(config, world, "site-a")

    # 1. The app runs on A; its configured health check passes; a file goes onto its volume.
    _wait("web healthy on site-a", on_a.writable, timeout=120)
    url_a = on_a.url()
    assert url_a is not None
    marker = secrets.token_hex(16).encode()
    assert httpx.put(f"{url_a}/files/marker.txt", content=marker, timeout=10).status_code == 201

    # 2. The RPO sampler measures its image, through configuration alone.
    sampled = rpo_sample(config=cfg, app=APP)
    assert isinstance(sampled["apps"].get(APP), float | int), sampled

    # 3. Backup on A: the StatefulSet, its claim and PV, its VolumeReplication and Service.
    state = backup(app=APP, config=cfg, return_state=True)
    assert state.is_completed(), state.message
    done = state.result()
    assert done["status"] == "complete" and done["objects"] == 6, done

    # 4. Stop on A (delete the workload: nothing answers), take a last mirror snapshot, demote.
    on_a.stop()
    _wait("web stopped on site-a", lambda: not on_a.answers(url_a), timeout=60)
    control_a = world.volumes(app, "site-a")
    control_a.demote(volume)
    _wait("web image secondary on site-a", lambda: control_a.settled(volume, "secondary")[0])

    # 5. Restore on B, VolumeReplication included: B's VR promotes the image, then the app starts.
    restored = restore(app=APP, target_site="site-b", source_site="site-a", config=cfg, bound_timeout=120)
    assert f"{seeds.WEB_NAMESPACE}/{seeds.WEB_PVC}" in restored["bound_pvcs"]
    control_b = world.volumes(app, "site-b")
    _wait("web image primary on site-b", lambda: control_b.settled(volume, "primary")[0], timeout=240)
    on_b = _driver(config, world, "site-b")
    _wait("web healthy on site-b", on_b.writable, timeout=120)

    # 6. B's URL, the smoke checks pass, the file written on A is there, the transform applied.
    url_b = on_b.url()
    assert url_b is not None and url_b != url_a
    assert on_b.smoke("lab").ok
    got = httpx.get(f"{url_b}/files/marker.txt", timeout=10)
    assert got.status_code == 200 and got.content == marker
    sts = on_b.workload_object()
    assert sts is not None and sts["metadata"]["annotations"]["standby-restored"] == "true"


def test_web_app_reconnects_when_its_ceph_client_is_blocklisted(lab: Lab, config: StandbyConfig) -> None:
    """A site frozen and continued (``site_down``/``site_up``) may find its app's client fenced: the
    OSD forgot the app's watch, another client broke the image's lock and blocklisted it. The app
    carries on through a new connection, with its earlier files, as a kernel RBD mount would."""
    admin = build_world(lab.admin_config())
    on_a = driver_for(config.app(APP), config.site("site-a"), admin.bundle("site-a").cluster)
    _wait("web healthy on site-a", on_a.writable, timeout=120)
    url = on_a.url()
    assert url is not None
    before = secrets.token_hex(8).encode()
    assert httpx.put(f"{url}/files/before-fence.txt", content=before, timeout=10).status_code == 201
    log = lab.root / "web" / "site-a.log"
    client = re.findall(r" as client (\S+)", log.read_text())[-1]
    ceph.run(lab.sites["site-a"].ceph_cli("osd", "blocklist", "add", client, "600"), 60)
    after = secrets.token_hex(8).encode()
    assert httpx.put(f"{url}/files/after-fence.txt", content=after, timeout=30).status_code == 201
    assert httpx.get(f"{url}/files/before-fence.txt", timeout=10).content == before
    assert httpx.get(f"{url}/files/after-fence.txt", timeout=10).content == after
    assert re.findall(r" as client (\S+)", log.read_text())[-1] != client
