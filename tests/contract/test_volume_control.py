"""Contract suite of ``VolumeControl``: both paths (rbd, VolumeReplication) on the fake two-site world
and on the lab's real Ceph, on an image of its own (never the Nexus image).

Every implementation must read roles from Ceph, hand an image over in order (demote, then a plain
promote that succeeds once the peer's demotion is synced, never a split-brain), refuse a snapshot
on the secondary, and report an image that does not exist as ``absent``.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import pytest

from drkit.adapters.volumes import VolumeControl, Want, volumes_for
from drkit.domain.errors import CommandFailed, TransientError
from drkit.domain.models import ProtectedApp, Volume
from drkit.jobs.world import build_world
from drkit.testing.dr import fake_dr, seed_app
from tests.labfixture import Lab, delete_mirrored_image

POOL = "replicapool"
NS = "vc-contract"


@dataclass
class Pair:
    """The same volume seen through one path on both sites."""

    a: VolumeControl
    b: VolumeControl
    volume: Volume
    timeout: float

    def settle(self, control: VolumeControl, want: Want, act: Callable[[], None]) -> None:
        """Act (again while it is transient) until ``control`` reports ``want``."""
        deadline = time.monotonic() + self.timeout
        seen = ""
        while time.monotonic() < deadline:
            try:
                act()
            except TransientError as error:
                seen = str(error)
            ok, seen = control.settled(self.volume, want)
            if ok:
                return
            time.sleep(0.5)
        raise AssertionError(f"{control.site} not {want} after {self.timeout}s: {seen}")

    def wait(self, check: Callable[[], bool]) -> None:
        """Poll until ``check()``, at most ``timeout``."""
        deadline = time.monotonic() + self.timeout
        while not check():
            assert time.monotonic() < deadline, f"not so after {self.timeout}s"
            time.sleep(0.5)


def _fake(control: str) -> Pair:
    dr = fake_dr(control=control)
    dr.clusters["site-b"].seed(
        *(o for o in seed_app() if o["kind"] in ("PersistentVolume", "PersistentVolumeClaim"))
    )
    app = dr.world.config.app("nexus")
    return Pair(dr.world.volumes(app, "site-a"), dr.world.volumes(app, "site-b"), app.volumes[0], timeout=5.0)


@pytest.fixture(scope="module")
def lab_volume(lab: Lab) -> Iterator[tuple[ProtectedApp, Volume]]:
    """A mirrored image of this suite with a namespace, PV and PVC on both sites (for the VR path)."""
    from lab import ceph

    a, b = lab.sites["site-a"], lab.sites["site-b"]
    image = f"vc-{uuid.uuid4().hex[:8]}"
    ceph.create_mirrored_image(a, b, POOL, image, size_mb=16, schedule=None)
    ceph.run(a.cli("mirror", "image", "snapshot", f"{POOL}/{image}"))
    ceph.wait_for(
        lambda: ceph.mirror_image_status(b, POOL, image).get("state") == "up+replaying",
        120,
        1.0,
        f"{image} replaying on site-b",
    )
    config = lab.admin_config()
    base = config.app("nexus")
    volume = Volume(pvc="vc-data", image=image)
    app = base.model_copy(update={"name": "vc", "namespace": NS, "volumes": (volume,)})
    world = build_world(config)
    for site in ("site-a", "site-b"):
        cluster = world.bundle(site).cluster
        cluster.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NS}})
        cluster.create(
            {
                "apiVersion": "v1",
                "kind": "PersistentVolume",
                "metadata": {"name": f"pv-{image}"},
                "spec": {
                    "capacity": {"storage": "16Mi"},
                    "accessModes": ["ReadWriteOnce"],
                    "persistentVolumeReclaimPolicy": "Retain",
                    "storageClassName": "ceph-rbd",
                    "csi": {
                        "driver": "rook-ceph.rbd.csi.ceph.com",
                        "volumeHandle": image,
                        "volumeAttributes": {"pool": POOL, "imageName": image},
                    },
                },
            }
        )
        cluster.create(
            {
                "apiVersion": "v1",
                "kind": "PersistentVolumeClaim",
                "metadata": {"name": "vc-data", "namespace": NS},
                "spec": {
                    "accessModes": ["ReadWriteOnce"],
                    "resources": {"requests": {"storage": "16Mi"}},
                    "storageClassName": "ceph-rbd",
                    "volumeName": f"pv-{image}",
                },
            }
        )
    yield app, volume
    from drkit.adapters.volumes import PVC_KIND, VR_KIND
    from drkit.domain.models import KindRef

    for site in ("site-a", "site-b"):
        cluster = world.bundle(site).cluster
        cluster.delete(VR_KIND, "vc-data", NS)
        cluster.delete(PVC_KIND, "vc-data", NS)
        cluster.delete(KindRef(version="v1", kind="PersistentVolume"), f"pv-{image}")
        cluster.delete(KindRef(version="v1", kind="Namespace"), NS)
    delete_mirrored_image(lab, image)


@pytest.fixture(
    params=[
        "fake-rbd",
        "fake-vr",
        pytest.param("lab-rbd", marks=pytest.mark.lab),
        pytest.param("lab-vr", marks=pytest.mark.lab),
    ]
)
def pair(request: pytest.FixtureRequest) -> Pair:
    kind, _, path = request.param.partition("-")
    control = "rbd" if path == "rbd" else "volume-replication"
    if kind == "fake":
        return _fake(control)
    lab: Lab = request.getfixturevalue("lab")
    app, volume = request.getfixturevalue("lab_volume")
    app = app.model_copy(update={"mirroring": app.mirroring.model_copy(update={"control": control})})
    world = build_world(lab.admin_config())
    sides = [
        volumes_for(app, world.bundle(s).cluster, world.bundle(s).rbd, POOL) for s in ("site-a", "site-b")
    ]
    return Pair(sides[0], sides[1], volume, timeout=90.0)


def test_roles_come_from_ceph(pair: Pair) -> None:
    assert pair.a.role(pair.volume) == "primary"
    assert pair.b.role(pair.volume) == "secondary"
    assert pair.a.mirror_state(pair.volume)[0] == "up+stopped"


def test_a_missing_image_is_absent(pair: Pair) -> None:
    gone = Volume(pvc="no-such-claim", image="no-such-image-here")
    assert pair.a.role(gone) == "absent"
    assert pair.b.mirror_state(gone)[0] == "absent"


def test_snapshot_on_the_primary_only(pair: Pair) -> None:
    pair.a.snapshot(pair.volume)
    with pytest.raises(CommandFailed) as caught:
        pair.b.snapshot(pair.volume)
    assert "snapshot" in str(caught.value)


def test_planned_handover_both_ways_never_makes_two_primaries(pair: Pair) -> None:
    for old, new in ((pair.a, pair.b), (pair.b, pair.a)):
        pair.settle(old, "secondary", lambda old=old: old.demote(pair.volume))  # type: ignore[misc]
        assert new.role(pair.volume) == "secondary"  # nobody primary for a moment, never two
        pair.settle(new, "primary", lambda new=new: new.promote(pair.volume, force=False))  # type: ignore[misc]
        assert old.role(pair.volume) == "secondary"
        pair.wait(lambda old=old: old.mirror_state(pair.volume)[0].startswith("up+replaying"))  # type: ignore[misc]
    assert pair.a.role(pair.volume) == "primary" and pair.b.role(pair.volume) == "secondary"
