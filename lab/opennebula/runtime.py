"""The seam between the fake front-end's state and whatever runs a VM.

The front-end calls its :class:`VmRuntime` when a VM starts running (``deploy``, ``resume``) and
when it stops (``poweroff``, ``terminate``, ``undeploy``, ``stop``, ``suspend``), and its monitor
asks it how each running VM is (:meth:`VmRuntime.check`), as oned polls its hypervisors. A
runtime that cannot start a VM raises :class:`RuntimeFailure`; the front-end then answers the call
with an ACTION error and leaves the VM where it was.

* :class:`NoRuntime` (the default): a VM is only a record.
* :class:`ProcessRuntime` (the lab): a VM is a process (:mod:`lab.opennebula.guest`) that opens
  each of its RBD disks (``SOURCE`` = ``POOL/IMAGE``) through librbd on the site's cluster, writes
  and reads them, and answers ``/health`` and ``/canary/NAME`` on a port of the site's VM range.
  Its PID file and log are ``<state dir>/vms/vm-<ID>.pid|.log``.
"""

from __future__ import annotations

import contextlib
import json
import time
import urllib.error
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

#: What :meth:`VmRuntime.check` answers: the VM runs; its guest reports an error (I/O on a disk
#: that is not primary); its process is gone.
RUNNING, ERROR, GONE = "running", "error", "gone"
SYSTEM_PYTHON = "/usr/bin/python3"
ROOT = Path(__file__).resolve().parent.parent.parent


class RuntimeFailure(Exception):
    """The runtime could not start or stop a VM; the message is returned to the caller."""


class VmRuntime(Protocol):
    """What the front-end calls when a VM enters or leaves ``RUNNING``, and how it monitors one.

    ``vm`` is a copy of the VM's record: ``id``, ``name``, ``template`` (the expanded ``TEMPLATE``
    as ``(key, value)`` pairs, see :mod:`lab.opennebula.template`, whose ``DISK`` vectors carry
    ``SOURCE``, ``POOL_NAME`` and ``IMAGE_ID``) and ``user_template``. ``start`` returns attributes the front-end sets in
    the VM's ``USER_TEMPLATE`` (where its guest answers), or None.
    """

    def start(self, vm: Mapping[str, Any]) -> Mapping[str, str] | None: ...

    def stop(self, vm: Mapping[str, Any], action: str) -> None: ...

    def check(self, vm: Mapping[str, Any]) -> tuple[str, str]: ...


class NoRuntime:
    """The default: a VM is only a record."""

    def start(self, vm: Mapping[str, Any]) -> Mapping[str, str] | None:
        return None

    def stop(self, vm: Mapping[str, Any], action: str) -> None:
        return None

    def check(self, vm: Mapping[str, Any]) -> tuple[str, str]:
        return RUNNING, ""


@dataclass(frozen=True)
class CephAccess:
    """How a site's VMs reach its cluster (the admin user, as the lab's simulators do)."""

    conf: str
    cluster: str
    keyring: str
    client_id: str = "admin"


def rbd_disks(vm: Mapping[str, Any]) -> list[str]:
    """The VM's RBD disks (``POOL/IMAGE``, from each ``DISK``'s ``SOURCE``), in disk order; CD-ROMs
    and file disks are not opened."""
    out = []
    for key, value in vm.get("template") or []:
        if key != "DISK" or not isinstance(value, list):
            continue
        disk = {k: v for k, v in value}
        if disk.get("TYPE") == "RBD" and disk.get("SOURCE"):
            out.append(str(disk["SOURCE"]))
    return out


class ProcessRuntime:
    """A VM is a :mod:`lab.opennebula.guest` process on its site's Ceph.

    ``first_port``/``ports``: the site's range of guest ports (VM ``ID`` takes ``first_port + ID %
    ports``). A VM whose process already runs (a front-end restarted under running VMs) is adopted.
    """

    def __init__(
        self,
        state_dir: Path,
        ceph: CephAccess,
        first_port: int,
        ports: int,
        *,
        python: str = SYSTEM_PYTHON,
        boot_timeout: float = 20.0,
    ) -> None:
        self.run_dir = Path(state_dir) / "vms"
        self.ceph = ceph
        self.first_port = first_port
        self.ports = ports
        self.python = python
        self.boot_timeout = boot_timeout

    def port(self, vm: Mapping[str, Any]) -> int:
        return self.first_port + int(vm["id"]) % self.ports

    def pid_file(self, vm: Mapping[str, Any]) -> Path:
        return self.run_dir / f"vm-{vm['id']}.pid"

    def urls(self, vm: Mapping[str, Any]) -> dict[str, str]:
        base = f"http://127.0.0.1:{self.port(vm)}"
        return {"HEALTH_URL": f"{base}/health", "CANARY_URL": f"{base}/canary"}

    def start(self, vm: Mapping[str, Any]) -> Mapping[str, str] | None:
        from lab.procs import alive, read_pid, reap, start_daemon

        disks = rbd_disks(vm)
        if not disks:
            raise RuntimeFailure(f"VM {vm['id']} has no RBD disk to boot from")
        if read_pid(self.pid_file(vm)) is not None:
            return self.urls(vm)
        argv = [
            self.python,
            "-m",
            "lab.opennebula.guest",
            "--name",
            str(vm["name"]),
            "--port",
            str(self.port(vm)),
        ]
        argv += [a for d in disks for a in ("--disk", d)]
        argv += ["--ceph-conf", self.ceph.conf, "--ceph-cluster", self.ceph.cluster]
        argv += ["--ceph-id", self.ceph.client_id, "--keyring", self.ceph.keyring]
        log_file = self.run_dir / f"vm-{vm['id']}.log"
        pid = start_daemon(f"vm-{vm['id']}", argv, self.run_dir, cwd=ROOT)
        deadline = time.monotonic() + self.boot_timeout
        while time.monotonic() < deadline:
            reap(pid)
            if not alive(pid):
                self.pid_file(vm).unlink(missing_ok=True)
                raise RuntimeFailure(f"the VM process exited: {_last_line(log_file)}")
            if _probe(self.urls(vm)["HEALTH_URL"])[0] is not None:
                return self.urls(vm)
            time.sleep(0.2)
        self._kill(vm)
        raise RuntimeFailure(f"the VM process did not answer within {self.boot_timeout:.0f}s")

    def stop(self, vm: Mapping[str, Any], action: str) -> None:
        self._kill(vm)

    def _kill(self, vm: Mapping[str, Any]) -> None:
        from lab.procs import stop_daemon

        stop_daemon(self.pid_file(vm), timeout=10.0)

    def check(self, vm: Mapping[str, Any]) -> tuple[str, str]:
        from lab.procs import read_pid, reap

        with contextlib.suppress(OSError, ValueError):
            reap(int(self.pid_file(vm).read_text()))
        if read_pid(self.pid_file(vm)) is None:
            log_file = self.run_dir / f"vm-{vm['id']}.log"
            return GONE, f"the VM process is gone: {_last_line(log_file)}"
        code, doc = _probe(self.urls(vm)["HEALTH_URL"])
        if code == 503:
            return ERROR, str(doc.get("error") or "the guest reports an error")
        return RUNNING, ""  # a slow answer is not a failure: the process runs


def _probe(url: str, timeout: float = 2.0) -> tuple[int | None, dict[str, Any]]:
    """The status code and JSON body of ``url`` (None when nothing answers)."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as reply:
            return int(reply.status), json.loads(reply.read() or b"{}")
    except urllib.error.HTTPError as exc:
        try:
            return exc.code, json.loads(exc.read() or b"{}")
        except ValueError:
            return exc.code, {}
    except (OSError, ValueError):
        return None, {}


def _last_line(path: Path) -> str:
    try:
        lines = [line for line in path.read_text(errors="replace").splitlines() if line.strip()]
    except OSError:
        return "(no log)"
    return lines[-1] if lines else "(empty log)"
