"""The lab's OpenNebula half on real Ceph: front-ends that pyone reads, VMs that are processes on
mirrored RBD images of pool ``one``, a canary that crosses to B, a VM that fails on a non-primary
disk, and a frozen site's VMs.

Every Ceph wait is bounded (a minute at most): a journal-mode image replays within seconds, a
snapshot-mode one as soon as the mirror snapshot taken here is copied.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from drkit.adapters.opennebula import PyoneFrontend
from drkit.adapters.opennebula.records import OneVm
from lab import ceph
from lab import lab as lab_mod
from lab.opennebula import control as one_control
from lab.opennebula import seeds as one_seeds
from lab.procs import read_pid, stopped
from tests.lab.conftest import Lab
from tests.labhelpers import poll

pytestmark = pytest.mark.lab

ROOT = Path(__file__).resolve().parents[2]
SYSTEM_PYTHON = "/usr/bin/python3"


def frontend(lab: Lab, site: str) -> PyoneFrontend:
    info = one_control.frontend_info(lab.root, site, lab_mod.Ports(lab_mod.port_base()).opennebula(site))
    return PyoneFrontend(
        site, info.endpoint, f"{info.user}:{info.password_file.read_text().strip()}", timeout=10
    )


def get(url: str) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=5) as reply:
            return int(reply.status), reply.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def put(url: str, data: bytes) -> int:
    request = urllib.request.Request(url, data=data, method="PUT")
    with urllib.request.urlopen(request, timeout=10) as reply:
        return int(reply.status)


def health(vm: OneVm) -> tuple[int, dict[str, Any]]:
    code, body = get(vm.user_template["HEALTH_URL"])  # type: ignore[arg-type]
    return code, json.loads(body)


def read_canary_on(lab: Lab, site: str, image: str, name: str) -> bytes | None:
    """The canary ``name`` as ``site``'s copy of ``one/<image>`` holds it now (librbd, read-only)."""
    cs = lab.sites[site]
    code = (
        "import sys\n"
        "from lab.nexus_sim.device import RbdTarget\n"
        "from lab.opennebula.guest import read_canary\n"
        f"found = read_canary(RbdTarget({one_seeds.POOL!r}, {image!r}, {str(cs.conf)!r}, {cs.cluster!r},"
        f" 'admin', {str(cs.keyring)!r}), {name!r})\n"
        "sys.stdout.write('' if found is None else found.hex())\n"
    )
    proc = subprocess.run(
        [SYSTEM_PYTHON, "-c", code], capture_output=True, text=True, timeout=60, cwd=ROOT, check=False
    )
    assert proc.returncode == 0, proc.stderr
    return bytes.fromhex(proc.stdout) if proc.stdout else None


def image_info(lab: Lab, site: str, image: str) -> dict[str, Any]:
    info: dict[str, Any] = ceph.run_json(
        lab.sites[site].cli("info", f"{one_seeds.POOL}/{image}", "--format", "json"), timeout=30
    )
    return info


def test_front_ends_answer_pyone_and_site_a_runs_its_vms_on_pool_one(lab: Lab) -> None:
    a, b = frontend(lab, "site-a"), frontend(lab, "site-b")
    assert a.version() == b.version() == "6.10.3"
    vms = {vm.name: vm for vm in a.vms_labelled(one_seeds.LABEL_KEY, one_seeds.LABEL_VALUE)}
    assert set(vms) == set(one_seeds.SEEDED_VMS)
    assert b.vms_labelled(one_seeds.LABEL_KEY, one_seeds.LABEL_VALUE) == []
    for name, vm in vms.items():
        assert vm.running, (name, vm.state, vm.lcm_state)
        sources = [d.source for d in vm.disks if d.type == "RBD"]
        code, doc = health(vm)
        assert code == 200 and doc["status"] == "running", doc
        assert doc["disks"] == [f"rbd:site-a/{s}" for s in sources]
        pid = read_pid(one_control.state_dir(lab.root, "site-a") / "vms" / f"vm-{vm.id}.pid")
        assert pid is not None
    assert [d.source for d in vms["web-0"].disks if d.type == "RBD"] == ["one/one-0"]
    # Ceph and the seeds agree: both images in pool one on both sites, primary on A, in the seeds' modes.
    for image, mode in one_seeds.RBD_IMAGES.items():
        on_a, on_b = image_info(lab, "site-a", image), image_info(lab, "site-b", image)
        assert on_a["mirroring"]["mode"] == mode and on_a["mirroring"]["primary"] is True
        assert on_b["mirroring"]["primary"] is False
        assert on_a["size"] == one_seeds.DISK_MB << 20
        assert ("journaling" in on_a["features"]) == (mode == "journal")


def test_a_canary_written_through_a_vm_on_a_reaches_b_for_both_mirror_modes(lab: Lab) -> None:
    a = frontend(lab, "site-a")
    vms = {vm.name: vm for vm in a.vms_labelled(one_seeds.LABEL_KEY, one_seeds.LABEL_VALUE)}
    name = f"canary-{time.time_ns()}"
    written = {}
    for vm in vms.values():
        written[vm.name] = os.urandom(32) + vm.name.encode()
        assert put(f"{vm.user_template['CANARY_URL']}/{name}", written[vm.name]) == 204
        code, back = get(f"{vm.user_template['CANARY_URL']}/{name}")
        assert (code, back) == (200, written[vm.name])
    # The journal-mode image (web-0's one-0) replays on its own; the snapshot-mode one (db-0's one-1)
    # is copied at its next mirror snapshot, taken now rather than waiting for the schedule.
    ceph.run(lab.sites["site-a"].cli("mirror", "image", "snapshot", f"{one_seeds.POOL}/one-1"), 60)
    for vm_name, image in (("web-0", "one-0"), ("db-0", "one-1")):
        poll(
            f"the canary of {vm_name} on site-b's {image}",
            lambda image=image, vm_name=vm_name: (
                read_canary_on(lab, "site-b", image, name) == written[vm_name]
            ),
            timeout=60,
            interval=2,
        )


def test_a_vm_started_on_b_on_a_non_primary_image_fails_as_qemu_would(lab: Lab) -> None:
    b = frontend(lab, "site-b")
    image_id = b.allocate_image(
        'NAME = "db-0-disk-probe"\nTYPE = "OS"\nPERSISTENT = "YES"\nSOURCE = "one/one-1"\n'
        'SIZE = "2048"\nFORMAT = "raw"\n',
        one_seeds.CEPH_DS_B,
    )
    vm_id = b.allocate_vm(
        f'NAME = "db-0-probe"\nCPU = "1"\nMEMORY = "256"\nDISK = [ IMAGE_ID = "{image_id}" ]\n'
        'NIC = [ NETWORK = "lan-b" ]\n'
    )
    pid_file = one_control.state_dir(lab.root, "site-b") / "vms" / f"vm-{vm_id}.pid"
    try:
        b.deploy_vm(vm_id, 0)  # it boots: the image opens, its first write fails
        failed = poll(
            "the VM on a non-primary image to leave RUNNING",
            lambda: next((vm for vm in [b.vm(vm_id)] if vm.lcm_state == "UNKNOWN"), None),
            timeout=30,
        )
        assert failed.state == "ACTIVE"
        assert "read-only" in failed.user_template["ERROR"], failed.user_template
        code, doc = health(failed)
        assert code == 503 and doc["status"] == "io-error" and "site-b/one/one-1" in doc["error"]
        assert read_pid(pid_file) is not None  # qemu stays up, paused on the error
        assert image_info(lab, "site-b", "one-1")["mirroring"]["primary"] is False  # nothing promoted
    finally:
        b.vm_action(vm_id, "terminate-hard")
        b.delete_image(image_id)
    assert read_pid(pid_file) is None  # terminating the VM stopped its process
    assert b.vm(vm_id).state == "DONE"


def test_site_down_freezes_site_a_front_end_and_its_vms(lab: Lab) -> None:
    a = frontend(lab, "site-a")
    vms = a.vms_labelled(one_seeds.LABEL_KEY, one_seeds.LABEL_VALUE)
    vm_pids = {read_pid(one_control.state_dir(lab.root, "site-a") / "vms" / f"vm-{vm.id}.pid") for vm in vms}
    frontend_pid = read_pid(one_control.pid_file(lab.root, "site-a"))
    assert None not in vm_pids and frontend_pid is not None
    frozen = lab_mod.site_down(lab.root, "site-a", log=lambda _: None)
    try:
        by_pid = {p.pid: p.what for p in frozen}
        assert by_pid[frontend_pid] == "opennebula"
        assert {by_pid[pid] for pid in vm_pids} == {"opennebula vm"}  # type: ignore[index]
        assert all(stopped(pid) for pid in (*vm_pids, frontend_pid))  # type: ignore[arg-type]
    finally:
        lab_mod.site_up(lab.root, "site-a", log=lambda _: None)
    # Back: the same processes run on, and the VMs are still RUNNING and healthy.
    assert {
        read_pid(one_control.state_dir(lab.root, "site-a") / "vms" / f"vm-{vm.id}.pid") for vm in vms
    } == vm_pids
    for vm in vms:
        poll(f"{vm.name} healthy after the outage", lambda vm=vm: health(vm)[0] == 200, timeout=60)
        assert a.vm(vm.id).running
