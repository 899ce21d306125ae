"""The lab never acts on its own: ``lab down``/``lab up`` bring a used lab back exactly as it was
left, and ``lab reset`` puts it back to its seeds without rebuilding Ceph.

Both tests leave the lab at home (``lab reset``): Nexus primary and running on site A only, the
placement record at home, site B replaying.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime

import httpx
import pytest

from drkit.adapters.volumes import VR_KIND
from drkit.config import load_config
from drkit.domain import crypto
from drkit.domain.errors import NotFound
from drkit.domain.models import KindRef
from drkit.domain.operations import Approval, Journal
from drkit.jobs.operations import approve, execute, prepare
from drkit.jobs.world import World, build_world
from lab import ceph, seeds
from lab import lab as lab_mod
from tests.lab.conftest import Lab
from tests.labhelpers import (
    LAB_KEY_TEXT,
    assert_home,
    fresh_backup,
    home_world,
    key_of,
    nexus_client,
    placement,
    roles,
    runs_nexus,
)

pytestmark = pytest.mark.lab
KEY_TEXT = LAB_KEY_TEXT  # the lab's one key (tests/labhelpers.py)
PVC = KindRef(version="v1", kind="PersistentVolumeClaim")
CONFIG_MAP = KindRef(version="v1", kind="ConfigMap")


def _operate(world: World, kind: str, target: str, key: crypto.MasterKey) -> Journal:
    prepared = prepare(world, "nexus", kind, target, key=key)  # type: ignore[arg-type]
    assert prepared.plan.runnable, prepared.plan.refusals
    approval = Approval(approver="lab-test", reason=f"lab {kind}", at=datetime.now(UTC))
    return execute(world, approve(world, prepared, approval, "nexus"), key=key)


def _app_objects(lab: Lab, site: str) -> dict[str, list[str]]:
    """The Nexus app's objects on ``site`` that seeding would add: Nexus CR, VR, PVC, PV (read as the admin)."""
    cluster = lab.admin_cluster(site)
    found = {
        kind.kind: sorted(o["metadata"]["name"] for o in cluster.list(kind, seeds.NAMESPACE))
        for kind in (
            KindRef(group="operator.alaudadevops.io", version="v1alpha1", kind="Nexus"),
            VR_KIND,
            PVC,
        )
    }
    try:
        cluster.get(KindRef(version="v1", kind="PersistentVolume"), seeds.PV_NAME)
        found["PersistentVolume"] = [seeds.PV_NAME]
    except NotFound:
        found["PersistentVolume"] = []
    return found


def _vr_asks(world: World, site: str) -> str | None:
    try:
        vr = world.bundle(site).cluster.get(VR_KIND, seeds.PVC_NAME, seeds.NAMESPACE)
    except NotFound:
        return None
    return str(vr["spec"]["replicationState"])


def _world(lab: Lab) -> World:
    return build_world(load_config(lab.root / "standby.yaml"), timeout=20.0)


@pytest.mark.timeout(1500)
def test_down_and_up_keep_a_relocated_nexus_where_it_was_left(lab: Lab) -> None:
    key = key_of(KEY_TEXT)
    world = home_world(lab.root)
    try:
        fresh_backup(world, "site-a", key)
        there = _operate(world, "relocate", "site-b", key)
        assert there.status == "completed", there.error
        assert roles(world) == {"site-a": False, "site-b": True}
        left = {site: _app_objects(lab, site) for site in ("site-a", "site-b")}
        assert left["site-a"] == {
            "Nexus": [],
            "VolumeReplication": [],
            "PersistentVolumeClaim": [],
            "PersistentVolume": [],
        }

        lab_mod.down(lab.root, log=print)
        lab_mod.up(lab.root, log=print)

        world = _world(lab)
        record = placement(world)  # S3 kept the placement record across down and up
        seen = {
            "placement": (record.primary, record.operation),
            # Nothing seeded again: site A holds no Nexus, no claim and no VR asking for primary.
            "objects": {site: _app_objects(lab, site) for site in ("site-a", "site-b")},
            "vr asks": {site: _vr_asks(world, site) for site in ("site-a", "site-b")},
            "primary": roles(world),  # exactly one primary: site-b
            "nexus": {site: runs_nexus(world, site) for site in ("site-a", "site-b")},
            "simulator on site-a": (lab.root / "nexus" / "site-a.pid").exists(),
        }
        assert seen == {
            "placement": ("site-b", None),
            "objects": left,
            "vr asks": {"site-a": None, "site-b": "primary"},
            "primary": {"site-a": False, "site-b": True},
            "nexus": {"site-a": False, "site-b": True},
            "simulator on site-a": False,
        }
        with nexus_client(world, "site-b") as api:
            assert api.writable()
    finally:
        lab_mod.reset(lab.root, log=print)
    assert_home(_world(lab))


def _s3_keys(lab: Lab) -> list[str]:
    world = _world(lab)
    keys: list[str] = []
    for ref in world.stores():
        keys += [o.key for o in ref.store.list("")]
    return keys


@pytest.mark.timeout(900)
def test_reset_puts_a_messed_up_lab_back_to_its_seeds(lab: Lab) -> None:
    world = home_world(lab.root)
    a, b = lab.admin_cluster("site-a"), lab.admin_cluster("site-b")
    # A mess no operation would leave: Nexus gone from A, an extra object on each site, a stray
    # object in S3, and site-b's image force-promoted while site-a's is primary (split-brain).
    a.delete(
        KindRef(group="operator.alaudadevops.io", version="v1alpha1", kind="Nexus"),
        seeds.NEXUS_NAME,
        seeds.NAMESPACE,
    )
    for cluster in (a, b):
        cluster.create(
            {
                "apiVersion": "v1",
                "kind": "ConfigMap",
                "metadata": {"name": "left-behind", "namespace": seeds.NAMESPACE},
                "data": {"x": "1"},
            }
        )
    ref = world.stores()[0]
    ref.store.put("standby/left-behind.json", json.dumps({"junk": True}).encode())
    spec = f"{seeds.POOL}/{seeds.IMAGE_NAME}"
    ceph.run(lab.sites["site-b"].cli("mirror", "image", "promote", "--force", spec), 60)
    assert roles(world) == {"site-a": True, "site-b": True}

    lab_mod.reset(lab.root, log=print)

    world = _world(lab)
    assert_home(world)
    for cluster in (a, b):
        assert not any(
            o["metadata"]["name"] == "left-behind" for o in cluster.list(CONFIG_MAP, seeds.NAMESPACE)
        )
    assert _s3_keys(lab) == [], "reset empties S3"
    assert lab_mod.read_record(lab.root)["seeded"] is True
    for site, want in (("site-a", "up+stopped"), ("site-b", "up+replaying")):
        for image in (seeds.IMAGE_NAME, seeds.WEB_IMAGE):
            assert ceph.mirror_image_status(lab.sites[site], seeds.POOL, image)["state"] == want, (
                site,
                image,
            )
    # The seeds' apps run on site-a only: Nexus (writable) and the web app.
    with nexus_client(world, "site-a") as api:
        assert api.writable()
    ports = lab_mod.Ports(lab_mod.port_base())
    assert _answers(f"http://127.0.0.1:{ports.web('site-a')}/healthz")
    assert not _answers(f"http://127.0.0.1:{ports.web('site-b')}/healthz")


def _answers(url: str) -> bool:
    try:
        return httpx.get(url, timeout=3).status_code == 200
    except httpx.HTTPError:
        return False
