"""Losing a site: `standby lab site down|up` freezes a whole site (SIGSTOP) and continues it (SIGCONT).

The memstore OSD keeps its data in RAM, so the site must come back with its data: the Nexus image
is still on site-a and an artifact uploaded before the outage downloads byte-identical after it.
The outage lasts longer than the mgr's 60 s service-daemon grace, after which the mgr forgets
rbd-mirror's status: site-a's rbd-mirror must report healthy again after `site up`.
The unknown-site test needs no lab; the others are marked ``lab`` one by one.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest

from drkit.adapters.nexus import HttpNexus
from lab import ceph, seeds
from lab import lab as lab_mod
from lab import rbac as lab_rbac
from lab.opennebula import control as one_control
from lab.procs import answers, read_pid, stopped
from tests.lab.conftest import Lab
from tests.labhelpers import poll

ROOT = Path(__file__).resolve().parents[2]
STANDBY = str(ROOT / ".venv" / "bin" / "standby")
IMAGE = f"{seeds.POOL}/{seeds.IMAGE_NAME}"
OUTAGE_S = 65.0  # past mgr_service_beacon_grace (60 s)


def standby(lab: Lab, *args: str, timeout: float = 60) -> tuple[subprocess.CompletedProcess[str], float]:
    """Run ``standby ARGS --lab-dir LAB``; return the result and how long it took."""
    env = {**os.environ, "STANDBY_LAB_PORT_BASE": str(lab_mod.port_base())}
    started = time.monotonic()
    res = subprocess.run(
        [STANDBY, *args, "--lab-dir", str(lab.root)],
        capture_output=True,
        text=True,
        env=env,
        timeout=timeout,
        check=False,
        cwd=ROOT,
    )
    return res, time.monotonic() - started


def mirror_status(lab: Lab, site: str) -> dict[str, Any]:
    out: dict[str, Any] = ceph.run_json(
        lab.sites[site].cli("mirror", "image", "status", IMAGE, "--format", "json"), timeout=10
    )
    return out


def mirror_daemon_healthy(lab: Lab, site: str) -> bool:
    """Whether a live rbd-mirror daemon of ``site`` reports OK (what `lab up` waits for)."""
    out = ceph.run_json(
        lab.sites[site].cli("mirror", "pool", "status", seeds.POOL, "--verbose", "--format", "json"),
        timeout=10,
    )
    return any(d.get("health") == "OK" and d.get("instance_id") for d in out.get("daemons", []))


@pytest.mark.lab
def test_site_a_lost_and_regained_with_its_data(lab: Lab) -> None:
    ports = lab_mod.Ports(lab_mod.port_base())
    kube_a = f"{lab_mod.kube_url(ports, 'site-a')}/version"
    kube_b = f"{lab_mod.kube_url(ports, 'site-b')}/version"
    ca = lab_rbac.ca_context(lab.root)
    nexus_url = poll("Nexus on site-a", lambda: lab_mod.status(lab.root).nexus_urls["site-a"], timeout=90)
    password = lab_mod.read_admin_password(lab.root, "site-a")
    assert password
    payload = os.urandom(64 * 1024) + b"written on site-a before the outage"
    path = f"outage/{time.time_ns()}.bin"
    with HttpNexus(nexus_url, username="admin", password=password, site="site-a") as nexus:
        nexus.ensure_raw_repository("outage")
        nexus.upload("outage", path, payload)
    others = {
        # site B's S3 (its own daemon in the per-site layout, else the shared one)
        read_pid(
            next(p for p in (lab.root / "run" / "s3-site-b.pid", lab.root / "run" / "s3.pid") if p.exists())
        ),
        read_pid(lab.root / "run" / "kube-site-b.pid"),
        read_pid(one_control.pid_file(lab.root, "site-b")),
        *ceph.ceph_status(lab.root)["site-b"].values(),
    }
    assert None not in others

    lines: list[str] = []
    down_at = time.monotonic()
    frozen = lab_mod.site_down(lab.root, "site-a", log=lines.append)
    timings: dict[str, float] = {"site_down": time.monotonic() - down_at}
    try:
        whats = {p.what for p in frozen}
        site_a = {"apiserver", "nexus", "opennebula", "ceph-mon", "ceph-osd", "ceph-mgr", "rbd-mirror"}
        assert site_a <= whats, whats
        assert all(stopped(p.pid) for p in frozen)
        assert not others & {p.pid for p in frozen}, "neither S3 nor site-b is frozen"
        assert all(not stopped(pid) for pid in others if pid is not None)
        assert len(lines) == len(frozen) + 1, lines  # one line per process, then a summary
        assert (lab.root / "run" / "site-a.frozen").is_file()

        started = time.monotonic()
        assert not answers(kube_a, timeout=2.0, verify=ca), "site-a's apiserver must not answer while frozen"
        assert time.monotonic() - started < 3
        assert answers(kube_b, verify=ca), "site-b's apiserver still answers"

        again = lab_mod.site_down(lab.root, "site-a", log=lambda m: None)
        assert {p.pid for p in again} == {p.pid for p in frozen}, "down twice is harmless"

        res, timings["status --json (site-a down)"] = standby(lab, "lab", "status", "--json")
        assert res.returncode == 0, res.stderr
        assert timings["status --json (site-a down)"] < 15
        data = json.loads(res.stdout)
        assert set(data) == {"running", "kubeconfig", "config", "s3", "sites"}
        per_site = data["s3"].get("layout") == "per-site"  # then each site names its own store
        assert set(data["sites"]["site-a"]) == {"ceph_conf", "nexus_url", "mirror", "down", "opennebula"} | (
            {"s3"} if per_site else set()
        )
        assert data["running"] is True
        assert data["sites"]["site-a"]["down"] is True
        assert data["sites"]["site-a"]["nexus_url"] is None
        assert data["sites"]["site-a"]["mirror"] == "frozen"
        assert data["sites"]["site-b"]["down"] is False

        res, timings["status (site-a down)"] = standby(lab, "lab", "status")
        assert res.returncode == 0, res.stderr
        assert "site-a DOWN (frozen)" in res.stdout
        assert "site-b DOWN" not in res.stdout

        time.sleep(max(0.0, OUTAGE_S - (time.monotonic() - down_at)))
        assert not answers(kube_a, timeout=1.0, verify=ca) and answers(kube_b, verify=ca), (
            "still only site-a is down"
        )
    finally:
        started = time.monotonic()
        continued = lab_mod.site_up(lab.root, "site-a", log=lambda m: None)
        timings["site_up"] = time.monotonic() - started
        back = time.monotonic()

    assert {p.pid for p in continued} == {p.pid for p in frozen}
    assert not any(stopped(p.pid) for p in continued)
    assert not (lab.root / "run" / "site-a.frozen").exists()
    poll("site-a's apiserver to answer", lambda: answers(kube_a, verify=ca), timeout=30)
    timings["apiserver answers after up"] = time.monotonic() - back
    poll("Nexus on site-a to answer", lambda: answers(f"{nexus_url}/service/rest/v1/status"), timeout=90)
    timings["Nexus answers after up"] = time.monotonic() - back
    poll("rbd mirror image status on site-a", lambda: mirror_status(lab, "site-a").get("state"), timeout=90)
    timings["rbd mirror image status works after up"] = time.monotonic() - back
    poll("site-a's rbd-mirror to report OK", lambda: mirror_daemon_healthy(lab, "site-a"), timeout=60)
    timings["site-a rbd-mirror healthy after up"] = time.monotonic() - back
    poll(
        "site-b to replay the Nexus image again",
        lambda: str(mirror_status(lab, "site-b").get("state")).startswith("up+replaying"),
        timeout=90,
    )
    timings["site-b up+replaying after up"] = time.monotonic() - back

    info = ceph.run_json(lab.sites["site-a"].cli("info", IMAGE, "--format", "json"), timeout=30)
    assert info["mirroring"]["primary"] is True, "the Nexus image is still on site-a, still primary"
    with HttpNexus(nexus_url, username="admin", password=password, site="site-a") as nexus:
        assert nexus.download("outage", path) == payload, "the artifact survived the outage"
    res, _ = standby(lab, "lab", "status", "--json")
    assert res.returncode == 0, res.stderr
    assert json.loads(res.stdout)["sites"]["site-a"]["down"] is False
    assert lab_mod.site_up(lab.root, "site-a", log=lambda m: None) == [], "up when not down is harmless"
    print("\nsite outage timings: " + ", ".join(f"{k} {v:.2f}s" for k, v in timings.items()))


def osd_up_from(lab: Lab, site: str) -> int:
    dump = ceph.run_json(lab.sites[site].ceph_cli("osd", "dump", "--format", "json"), timeout=30)
    return int(dump["osds"][0]["up_from"])


@pytest.mark.lab
def test_a_freeze_past_half_the_read_lease_gets_new_pg_intervals_on_up(lab: Lab) -> None:
    """A lab PG has one OSD, which Ceph 16.2 leaves laggy for good (parking every op) once a freeze
    outlasts its read lease: the lab's lease outlasts the tests' freezes, and `site up` after a
    longer one marks the OSD down so that every PG starts a new interval.

    The freeze here lasts seconds; its record is back-dated to half the lease before `site up`.
    """
    site = lab.sites["site-a"]
    assert f"read lease ratio = {ceph.READ_LEASE_RATIO:g}" in site.conf.read_text()
    before = osd_up_from(lab, "site-a")
    lab_mod.site_down(lab.root, "site-a", log=lambda m: None)
    record = lab.root / "run" / "site-a.frozen"
    data = json.loads(record.read_text())
    data["frozen_at"] -= ceph.READ_LEASE_S / 2
    record.write_text(json.dumps(data))
    said: list[str] = []
    lab_mod.site_up(lab.root, "site-a", log=said.append)
    assert any("re-peered osd.0" in line for line in said), said
    poll("osd.0 on site-a to boot again", lambda: osd_up_from(lab, "site-a") > before, timeout=60)
    probe = f"{seeds.POOL}/lease-probe-{os.getpid()}"
    poll(
        "site-a to take a write",
        lambda: ceph.run(site.cli("create", probe, "--size", "1M"), 30, check=False).returncode == 0,
        timeout=60,
    )
    ceph.run(site.cli("rm", probe), 60)
    poll("site-a's rbd-mirror to report OK", lambda: mirror_daemon_healthy(lab, "site-a"), timeout=90)


@pytest.mark.lab
def test_lab_down_stops_a_frozen_site_then_up_restores_the_lab(lab: Lab) -> None:
    """`lab down` continues a frozen site before stopping it (SIGTERM waits on a stopped process).

    It stops the session's lab, so it brings it up again for whatever test runs next.
    """
    frozen = lab_mod.site_down(lab.root, "site-b", log=lambda m: None)
    timings: dict[str, float] = {}
    try:
        res, timings["lab down (site-b frozen)"] = standby(lab, "lab", "down", timeout=240)
        assert res.returncode == 0, res.stderr
        assert "site-b: continued" in res.stderr
        assert not any(p.current() for p in frozen), "every frozen process is stopped"
        assert ceph.lab_processes(lab.root) == []
        assert not (lab.root / "run" / "site-b.frozen").exists()
        assert not lab_mod.status(lab.root).down["site-b"]
        assert one_control.vm_pid_files(lab.root, "site-a") == []  # the VM processes stopped too
    finally:
        started = time.monotonic()
        assert lab_mod.up(lab.root, log=lambda m: None).running
        timings["lab up again"] = time.monotonic() - started
    # `lab up` starts again the VMs its front-ends hold as running: site A's two.
    pids = [read_pid(f) for f in one_control.vm_pid_files(lab.root, "site-a")]
    assert len(pids) == 2 and None not in pids
    print("\nlab down with a frozen site: " + ", ".join(f"{k} {v:.2f}s" for k, v in timings.items()))


@pytest.mark.parametrize("action", ["down", "up"])
def test_unknown_site_is_one_line_naming_it(tmp_path: Path, action: str) -> None:
    res = subprocess.run(
        [STANDBY, "lab", "site", action, "site-z", "--lab-dir", str(tmp_path / "lab")],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        cwd=ROOT,
    )
    assert res.returncode != 0
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1, res.stderr
    assert "site-z" in lines[0] and "site-a" in lines[0]
    assert "Traceback" not in res.stderr
    assert not (tmp_path / "lab").exists()
