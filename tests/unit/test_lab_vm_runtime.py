"""The lab's VM runtime without Ceph: the front-end's monitor and the guest's disks and canary.

The real thing (librbd on mirrored images, a VM on a non-primary image) is in
``tests/lab/test_opennebula_lab.py``.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest

from lab.nexus_sim.device import DeviceReadOnly, FileDevice
from lab.opennebula import guest
from lab.opennebula.codes import ACTIVE, DONE, LCM_RUNNING, LCM_UNKNOWN, POWEROFF
from lab.opennebula.oned import Oned
from lab.opennebula.runtime import ERROR, GONE, RUNNING, rbd_disks
from lab.opennebula.seeds import seed_for
from lab.opennebula.template import from_json
from tests.labhelpers import free_port


class ScriptedRuntime:
    """A runtime whose VMs report what the test sets in ``status``; it records every call."""

    def __init__(self) -> None:
        self.status: dict[int, tuple[str, str]] = {}
        self.calls: list[tuple[str, int]] = []
        self.disks: dict[int, list[str]] = {}

    def start(self, vm: Mapping[str, Any]) -> Mapping[str, str] | None:
        self.calls.append(("start", vm["id"]))
        self.disks[vm["id"]] = rbd_disks(vm)
        return {"HEALTH_URL": f"http://127.0.0.1:1/{vm['id']}/health"}

    def stop(self, vm: Mapping[str, Any], action: str) -> None:
        self.calls.append(("stop", vm["id"]))

    def check(self, vm: Mapping[str, Any]) -> tuple[str, str]:
        return self.status.get(vm["id"], (RUNNING, ""))


def user_attrs(oned: Oned, vm_id: int) -> dict[str, Any]:
    return dict(from_json(oned.snapshot()["vms"][str(vm_id)]["user_template"]))


def state(oned: Oned, vm_id: int) -> tuple[int, int]:
    vm = oned.snapshot()["vms"][str(vm_id)]
    return vm["state"], vm["lcm_state"]


def test_seeded_vms_start_on_their_rbd_disks_and_carry_where_their_guest_answers(tmp_path: Path) -> None:
    runtime = ScriptedRuntime()
    oned = Oned(tmp_path, site="site-a", seed=seed_for("site-a"), runtime=runtime)
    assert runtime.disks == {0: ["one/one-0"], 1: ["one/one-1"]}  # the ISO of db-0 is not opened
    assert user_attrs(oned, 0)["HEALTH_URL"] == "http://127.0.0.1:1/0/health"


def test_monitor_moves_a_vm_in_error_to_unknown_and_a_gone_one_to_poweroff(tmp_path: Path) -> None:
    runtime = ScriptedRuntime()
    oned = Oned(tmp_path, site="site-a", seed=seed_for("site-a"), runtime=runtime)
    assert oned.monitor() == []
    runtime.status = {0: (ERROR, "I/O error on rbd:site-b/one/one-0: read-only"), 1: (GONE, "killed")}
    assert sorted(oned.monitor()) == [0, 1]
    assert state(oned, 0) == (ACTIVE, LCM_UNKNOWN)
    assert state(oned, 1) == (POWEROFF, 0)
    assert "read-only" in user_attrs(oned, 0)["ERROR"] and "killed" in user_attrs(oned, 1)["ERROR"]
    assert oned.monitor() == []  # only running VMs are polled
    # From UNKNOWN, resume boots the VM again (its error cleared); terminate stops its process.
    runtime.status = {}
    oned.vm_action("resume", 0)
    assert state(oned, 0) == (ACTIVE, LCM_RUNNING) and "ERROR" not in user_attrs(oned, 0)
    runtime.status = {0: (ERROR, "again")}
    oned.monitor()
    runtime.calls.clear()
    oned.vm_action("terminate", 0)
    assert runtime.calls == [("stop", 0)] and state(oned, 0)[0] == DONE


def test_a_restarted_front_end_starts_its_running_vms_again(tmp_path: Path) -> None:
    Oned(tmp_path, site="site-a", seed=seed_for("site-a"), runtime=ScriptedRuntime()).vm_action("poweroff", 1)
    runtime = ScriptedRuntime()
    again = Oned(tmp_path, site="site-a", seed=seed_for("site-a"), runtime=runtime)
    assert again.boot_running() == []
    assert runtime.calls == [("start", 0)]  # db-0 was powered off: it stays off


class ReadOnlyDisk(FileDevice):
    """A disk whose writes fail as librbd's do on a non-primary image."""

    def write(self, offset: int, data: bytes) -> None:
        raise DeviceReadOnly(f"{self.description} is read-only (demoted?): [errno 30] RBD read-only image")


def disk_file(tmp_path: Path, name: str) -> str:
    path = tmp_path / name
    path.write_bytes(b"")
    path.write_bytes(b"\0" * (4 << 20))
    return str(path)


def test_guest_heartbeat_and_canary_live_on_its_disk(tmp_path: Path) -> None:
    path = disk_file(tmp_path, "d0")
    vm = guest.Guest("web-0", [FileDevice(path)])
    vm.beat()
    vm.canary_put("c1", b"written on A")
    assert vm.health()[0] == 200 and vm.health()[1]["beats"] == 1
    vm.close()
    # Another VM booted from the same disk (B after a failover) reads the canary from the disk.
    other = guest.Guest("web-0", [FileDevice(path)])
    assert other.canary_get("c1") == b"written on A" and other.canary_get("c2") is None
    other.close()


def test_guest_on_a_read_only_disk_fails_its_io_for_good(tmp_path: Path) -> None:
    vm = guest.Guest("db-0", [ReadOnlyDisk(disk_file(tmp_path, "d1"))])
    vm.beat()
    code, doc = vm.health()
    assert code == 503 and doc["status"] == "io-error" and "read-only" in doc["error"]
    with pytest.raises(guest.DeviceError):
        vm.canary_get("c1")
    vm.close()


def test_guest_process_serves_health_and_canary_over_http(tmp_path: Path) -> None:
    import threading

    port = free_port()
    base = f"http://127.0.0.1:{port}"
    # In the lab the guest is a process (guest.run); here its handler is served on a thread.
    server = guest.ThreadingHTTPServer(("127.0.0.1", port), guest._Handler)
    server.guest = guest.Guest("t", [FileDevice(disk_file(tmp_path, "d3"))])  # type: ignore[attr-defined]
    serving = threading.Thread(target=server.serve_forever, daemon=True)
    serving.start()
    try:
        request = urllib.request.Request(f"{base}/canary/c1", data=b"blob", method="PUT")
        assert urllib.request.urlopen(request, timeout=5).status == 204
        assert urllib.request.urlopen(f"{base}/canary/c1", timeout=5).read() == b"blob"
        with urllib.request.urlopen(f"{base}/health", timeout=5) as reply:
            assert json.loads(reply.read())["status"] == "running"
        big = urllib.request.Request(f"{base}/canary/c2", data=b"x" * 2000, method="PUT")
        with pytest.raises(urllib.error.HTTPError) as err:
            urllib.request.urlopen(big, timeout=5)
        assert err.value.code == 413
    finally:
        server.shutdown()
        server.server_close()
