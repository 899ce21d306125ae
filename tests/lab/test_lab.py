"""The two-site lab as an operator meets it: kubectl, `standby lab`, and a Nexus artifact from A to B.

The round trip follows the Alauda procedure by hand: write on A, take a mirror snapshot, stop
Nexus on A and demote its image (VolumeReplication -> secondary), restore PV/PVC on B, promote B
(VolumeReplication -> primary), start Nexus on B, download. Then it reverts, so that the lab is
left as it was found: A primary, B replaying.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from kubernetes.dynamic.exceptions import NotFoundError

from drkit.adapters.nexus import HttpNexus
from lab import ceph, seeds
from lab import lab as lab_mod
from lab.opennebula import control as one_control
from tests.lab.conftest import Lab
from tests.labhelpers import poll

pytestmark = pytest.mark.lab

VR_API = "replication.storage.openshift.io/v1alpha1"
NEXUS_API = "operator.alaudadevops.io/v1alpha1"
ROOT = Path(__file__).resolve().parents[2]


def image_status(lab: Lab, site: str) -> dict[str, Any]:
    spec = f"{seeds.POOL}/{seeds.IMAGE_NAME}"
    out: dict[str, Any] = ceph.run_json(
        lab.sites[site].cli("mirror", "image", "status", spec, "--format", "json")
    )
    return out


def is_primary(lab: Lab, site: str) -> bool:
    info = ceph.run_json(lab.sites[site].cli("info", f"{seeds.POOL}/{seeds.IMAGE_NAME}", "--format", "json"))
    return bool(info["mirroring"]["primary"])


def test_kubectl_lists_the_app_on_site_a(lab: Lab) -> None:
    res = lab.kubectl("site-a", "get", "pv,pvc,volumereplication,nexus", "-A")
    assert res.returncode == 0, res.stderr
    for name in (seeds.PV_NAME, seeds.PVC_NAME, seeds.NEXUS_NAME):
        assert name in res.stdout
    assert "Bound" in res.stdout
    site_b = lab.kubectl("site-b", "get", "pvc", "-n", seeds.NAMESPACE, "-o", "json")
    assert site_b.returncode == 0, site_b.stderr
    assert json.loads(site_b.stdout)["items"] == []  # hot data, cold compute


def test_kubectl_exec_runs_rbd_in_the_toolbox(lab: Lab) -> None:
    for site in ("site-a", "site-b"):
        res = lab.kubectl(
            site,
            "exec",
            "-n",
            "rook-ceph",
            "deploy/rook-ceph-tools",
            "--",
            "rbd",
            "mirror",
            "pool",
            "status",
            "--format",
            "json",
        )
        assert res.returncode == 0, res.stderr
        summary = json.loads(res.stdout)["summary"]
        assert summary["health"] in ("OK", "WARNING"), summary
    refused = lab.kubectl(
        "site-a", "exec", "-n", "rook-ceph", "deploy/rook-ceph-tools", "--", "sh", "-c", "id"
    )
    assert refused.returncode != 0


def test_lab_status_shows_image_replaying_on_b(lab: Lab) -> None:
    env = {**os.environ, "STANDBY_LAB_PORT_BASE": str(lab_mod.port_base())}
    argv = [sys.executable, "-m", "standby.cli", "lab", "status", "--json", "--lab-dir", str(lab.root)]

    def replaying() -> dict[str, Any] | None:
        res = subprocess.run(argv, capture_output=True, text=True, env=env, timeout=60, check=False, cwd=ROOT)
        assert res.returncode == 0, res.stderr
        data: dict[str, Any] = json.loads(res.stdout)
        return data if (data["sites"]["site-b"]["mirror"] or "").startswith("up+replaying") else None

    data = poll("the Nexus image to be up+replaying on site-b", replaying, timeout=120, interval=3)
    assert data["kubeconfig"] == str(lab.kubeconfig)
    assert Path(data["config"]).is_file()
    stores = {site: data["sites"][site]["s3"] for site in ("site-a", "site-b")}
    if data["s3"]["layout"] == "shared":
        assert data["s3"]["bucket"] == "standby"
        assert data["s3"]["endpoint"].startswith("http://127.0.0.1:")
        assert stores["site-a"] == stores["site-b"]
    else:
        assert data["s3"]["layout"] == "per-site"
        assert {s: st["bucket"] for s, st in stores.items()} == {
            "site-a": "standby-site-a",
            "site-b": "standby-site-b",
        }
        assert stores["site-a"]["endpoint"] != stores["site-b"]["endpoint"]
    for store in stores.values():
        assert store["endpoint"].startswith("http://127.0.0.1:") and Path(store["credentials_file"]).is_file()
    assert data["sites"]["site-a"]["nexus_url"].startswith("http://127.0.0.1:")
    assert data["sites"]["site-b"]["nexus_url"] is None
    assert data["sites"]["site-a"]["mirror"].startswith("up+stopped")
    for site in ("site-a", "site-b"):  # each site's OpenNebula front-end answers with its own password
        one = data["sites"][site]["opennebula"]
        password = Path(one["password_file"]).read_text().strip()
        assert one_control.answers(one["endpoint"], f"{one['user']}:{password}"), site
    # The generated config is valid for Standby itself.
    check = subprocess.run(
        [sys.executable, "-m", "standby.cli", "config", "check", data["config"]],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        cwd=ROOT,
    )
    assert check.returncode == 0, check.stderr


def test_lab_up_again_starts_no_duplicate(lab: Lab) -> None:
    def pids() -> dict[str, int]:
        found = {}
        for pid_file in sorted(lab.root.rglob("*.pid")):
            text = pid_file.read_text().strip()
            if text.isdigit():
                found[str(pid_file.relative_to(lab.root))] = int(text)
        return found

    before = pids()
    again = lab_mod.up(lab.root, log=lambda m: None)
    assert again.running
    assert pids() == before
    ceph_procs = [argv for _, argv in ceph.lab_processes(lab.root) if argv and "rbd-mirror" in argv[0]]
    assert len(ceph_procs) == 2


def test_lab_down_when_nothing_is_up(tmp_path: Path) -> None:
    lab_mod.down(tmp_path / "never-up", log=lambda m: None)
    res = subprocess.run(
        [sys.executable, "-m", "standby.cli", "lab", "down", "--lab-dir", str(tmp_path / "empty")],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        cwd=ROOT,
    )
    assert res.returncode == 0, res.stderr


# ----------------------------------------------------------------------------------- the round trip


def _resource(client: Any, api_version: str, kind: str) -> Any:
    return client.resources.get(api_version=api_version, kind=kind)


def _nexus_url(client: Any) -> str | None:
    try:
        cr = _resource(client, NEXUS_API, "Nexus").get(name=seeds.NEXUS_NAME, namespace=seeds.NAMESPACE)
    except NotFoundError:
        return None
    status = cr.to_dict().get("status") or {}
    return status.get("url") if status.get("phase") == "Running" else None


def _set_state(client: Any, state: str) -> None:
    _resource(client, VR_API, "VolumeReplication").patch(
        name=seeds.PVC_NAME,
        namespace=seeds.NAMESPACE,
        body={"spec": {"replicationState": state}},
        content_type="application/merge-patch+json",
    )


def _vr_state(client: Any) -> str | None:
    vr = _resource(client, VR_API, "VolumeReplication").get(name=seeds.PVC_NAME, namespace=seeds.NAMESPACE)
    return (vr.to_dict().get("status") or {}).get("state")


def _restore_objects(client_a: Any) -> list[dict[str, Any]]:
    """PV (claimRef and bind annotations removed, Retain), PVC, VR and Nexus CR, as the procedure does."""
    out = []
    for api, kind, name, ns in (
        ("v1", "PersistentVolume", seeds.PV_NAME, None),
        ("v1", "PersistentVolumeClaim", seeds.PVC_NAME, seeds.NAMESPACE),
        (VR_API, "VolumeReplication", seeds.PVC_NAME, seeds.NAMESPACE),
    ):
        obj = _resource(client_a, api, kind).get(name=name, namespace=ns).to_dict()
        meta = obj["metadata"]
        obj["metadata"] = {k: v for k, v in meta.items() if k in ("name", "namespace", "labels")}
        obj.pop("status", None)
        if kind == "PersistentVolume":
            obj["spec"].pop("claimRef", None)
            obj["spec"]["persistentVolumeReclaimPolicy"] = "Retain"
        out.append(obj)
    return out


def _wait_mirror_synced(lab: Lab) -> None:
    """Wait until B holds a complete copy of A's newest mirror snapshot (exact, from `rbd snap ls`)."""
    spec = f"{seeds.POOL}/{seeds.IMAGE_NAME}"
    snaps_a = ceph.run_json(lab.sites["site-a"].cli("snap", "ls", "--all", spec, "--format", "json"))
    newest = max(s["id"] for s in snaps_a if s.get("namespace", {}).get("type") == "mirror")

    def synced() -> bool:
        snaps_b = ceph.run_json(lab.sites["site-b"].cli("snap", "ls", "--all", spec, "--format", "json"))
        return any(
            s.get("namespace", {}).get("primary_snap_id") == newest and s["namespace"].get("complete")
            for s in snaps_b
        )

    poll(f"site-b to complete mirror snapshot {newest} of {spec}", synced, timeout=120, interval=1)


def test_nexus_artifact_round_trip_a_to_b_is_byte_identical(lab: Lab) -> None:
    client_a = lab_mod.dynamic_client(lab.root, "site-a")
    client_b = lab_mod.dynamic_client(lab.root, "site-b")
    password = lab_mod.read_admin_password(lab.root, "site-a")
    assert password, "the admin password is read from the Secret on site-a"
    url_a = poll("Nexus on site-a", lambda: _nexus_url(client_a), timeout=90)
    payload = os.urandom(256 * 1024) + b"written on site-a"
    path = f"round-trip/{time.time_ns()}.bin"

    with HttpNexus(url_a, username="admin", password=password, site="site-a") as nexus_a:
        nexus_a.ensure_raw_repository("dr-smoke")
        nexus_a.upload("dr-smoke", path, payload)
        assert nexus_a.download("dr-smoke", path) == payload

    # 1. A mirror snapshot now, and wait for B to hold all of it.
    ceph.run(lab.sites["site-a"].cli("mirror", "image", "snapshot", f"{seeds.POOL}/{seeds.IMAGE_NAME}"))
    _wait_mirror_synced(lab)

    # 2. Stop Nexus on A, demote A through its VolumeReplication.
    nexus_cr = (
        _resource(client_a, NEXUS_API, "Nexus")
        .get(name=seeds.NEXUS_NAME, namespace=seeds.NAMESPACE)
        .to_dict()
    )
    restore = _restore_objects(client_a)
    _resource(client_a, NEXUS_API, "Nexus").delete(name=seeds.NEXUS_NAME, namespace=seeds.NAMESPACE)
    poll(
        "the simulator on site-a to stop",
        lambda: not (lab.root / "nexus" / "site-a.pid").exists(),
        timeout=60,
    )
    _set_state(client_a, "secondary")
    poll("site-a's VolumeReplication to be Secondary", lambda: _vr_state(client_a) == "Secondary", timeout=60)
    assert not is_primary(lab, "site-a")

    try:
        # 3. Restore PV, PVC and VolumeReplication (primary) on B; the controller promotes B.
        for obj in restore:
            _resource(client_b, obj["apiVersion"], obj["kind"]).create(
                body=obj, namespace=obj["metadata"].get("namespace")
            )
        poll(
            "site-b's VolumeReplication to be Primary", lambda: _vr_state(client_b) == "Primary", timeout=120
        )
        assert is_primary(lab, "site-b")
        pvc = _resource(client_b, "v1", "PersistentVolumeClaim").get(
            name=seeds.PVC_NAME, namespace=seeds.NAMESPACE
        )
        assert pvc.status.phase == "Bound"

        # 4. Nexus on B, from the same CR; the artifact is there, byte for byte.
        cr = {k: v for k, v in nexus_cr.items() if k != "status"}
        cr["metadata"] = {k: v for k, v in cr["metadata"].items() if k in ("name", "namespace", "labels")}
        _resource(client_b, NEXUS_API, "Nexus").create(body=cr, namespace=seeds.NAMESPACE)
        url_b = poll("Nexus on site-b", lambda: _nexus_url(client_b), timeout=90)
        with HttpNexus(url_b, username="admin", password=password, site="site-b") as nexus_b:
            assert nexus_b.download("dr-smoke", path) == payload
            assets = nexus_b.search("dr-smoke")
            assert path in [a.path.lstrip("/") for a in assets]
    finally:
        _revert(lab, client_a, client_b, nexus_cr)


def test_nexus_reconnects_when_its_ceph_client_is_blocklisted(lab: Lab) -> None:
    """A site frozen and continued may find Nexus's client fenced (the OSD forgot its watch, another
    client broke the image's lock and blocklisted it): Nexus carries on through a new connection,
    with the artifacts it had, as the web app does (``test_second_app_lab``)."""
    client_a = lab_mod.dynamic_client(lab.root, "site-a")
    password = lab_mod.read_admin_password(lab.root, "site-a")
    url = poll("Nexus on site-a", lambda: _nexus_url(client_a), timeout=90)
    log = lab.root / "nexus" / "site-a.log"
    before, after = os.urandom(64 * 1024), os.urandom(64 * 1024)
    stamp = time.time_ns()
    with HttpNexus(url, username="admin", password=password, site="site-a") as nexus:
        nexus.ensure_raw_repository("dr-smoke")
        nexus.upload("dr-smoke", f"fence/{stamp}-before.bin", before)
        said = log.read_text()  # the current client: from the ready line or an earlier reconnect
        fenced = re.findall(r"(?:client=|reconnected as client )(\d+\.\d+\.\d+\.\d+:\d+/\d+)", said)[-1]
        ceph.run(lab.sites["site-a"].ceph_cli("osd", "blocklist", "add", fenced, "600"), 60)
        nexus.upload("dr-smoke", f"fence/{stamp}-after.bin", after)
        assert nexus.download("dr-smoke", f"fence/{stamp}-before.bin") == before
        assert nexus.download("dr-smoke", f"fence/{stamp}-after.bin") == after
    reconnects = log.read_text().count("reconnected as client")
    assert reconnects == said.count("reconnected as client") + 1, "exactly one reconnect, after the blocklist"


def _revert(lab: Lab, client_a: Any, client_b: Any, nexus_cr: dict[str, Any]) -> None:
    """Back to the seeded state: Nexus and data on A, B replaying (the drill's cleanup, by hand)."""
    for api, kind, name, ns in ((NEXUS_API, "Nexus", seeds.NEXUS_NAME, seeds.NAMESPACE),):
        try:
            _resource(client_b, api, kind).delete(name=name, namespace=ns)
        except NotFoundError:
            pass
    poll(
        "the simulator on site-b to stop",
        lambda: not (lab.root / "nexus" / "site-b.pid").exists(),
        timeout=60,
    )
    # Fail back only once A replays from B: rbd-mirror starts A's replayer only while B is primary,
    # so demoting B earlier would leave A without B's demotion snapshot (and a forced promote).
    poll(
        "site-a to replay from site-b (up+replaying) before site-b is demoted",
        lambda: image_status(lab, "site-a")["state"] == "up+replaying",
        timeout=150,
        interval=2,
    )
    try:
        _set_state(client_b, "secondary")
        poll(
            "site-b's VolumeReplication to be Secondary",
            lambda: _vr_state(client_b) == "Secondary",
            timeout=60,
        )
    except NotFoundError:
        pass
    for api, kind, name, ns in (
        (VR_API, "VolumeReplication", seeds.PVC_NAME, seeds.NAMESPACE),
        ("v1", "PersistentVolumeClaim", seeds.PVC_NAME, seeds.NAMESPACE),
        ("v1", "PersistentVolume", seeds.PV_NAME, None),
    ):
        try:
            _resource(client_b, api, kind).delete(name=name, namespace=ns)
        except NotFoundError:
            pass
    _set_state(client_a, "primary")
    poll("site-a's VolumeReplication to be Primary", lambda: _vr_state(client_a) == "Primary", timeout=120)
    cr = {k: v for k, v in nexus_cr.items() if k != "status"}
    cr["metadata"] = {k: v for k, v in cr["metadata"].items() if k in ("name", "namespace", "labels")}
    try:
        _resource(client_a, NEXUS_API, "Nexus").create(body=cr, namespace=seeds.NAMESPACE)
    except Exception:
        pass
    poll("Nexus back on site-a", lambda: _nexus_url(client_a), timeout=90)
    poll(
        "mirroring healthy again (A up+stopped, B up+replaying)",
        lambda: (
            image_status(lab, "site-b")["state"] == "up+replaying"
            and image_status(lab, "site-a")["state"] == "up+stopped"
        ),
        timeout=150,
        interval=3,
    )
