"""Start and stop one site's fake front-end as a lab daemon, the way the lab runs its other servers.

Layout under the lab folder::

    opennebula/<site>/oned.json   the front-end's state (kept across stop and start)
    opennebula/<site>/vms/vm-<ID>.pid|.log   a running VM's process (lab.opennebula.guest)
    opennebula/<site>.password    the site's oneadmin password (0600, made on first start)
    opennebula/<site>.pid|.log    the daemon's PID file and log

:func:`start_frontend` is idempotent (a running front-end is left alone, a port held by a stranger
is a :class:`lab.procs.LabError`); :func:`stop_frontend` stops it and its VM processes by PID. :mod:`lab.lab` runs one
per site on :meth:`lab.lab.Ports.opennebula`: ``lab up`` starts them, ``lab down`` stops them,
``lab site down`` freezes the PID in :func:`pid_file` (and its children) with the site's other
processes, ``lab status`` lists them (:func:`frontend_info`) and ``lab reset`` drops their state
(:func:`forget_state`), so they start again from the seeds.
"""

from __future__ import annotations

import secrets
import sys
import xmlrpc.client
from dataclasses import dataclass
from pathlib import Path

from lab.opennebula.runtime import CephAccess
from lab.opennebula.store import STATE_FILE
from lab.procs import read_pid, start_service, stop_daemon

USER = "oneadmin"
ROOT = Path(__file__).resolve().parent.parent.parent


@dataclass(frozen=True)
class FrontendInfo:
    """Where a site's front-end answers and which credentials it takes (the password by file)."""

    site: str
    endpoint: str
    user: str
    password_file: Path
    state_dir: Path


def folder(root: Path) -> Path:
    return root / "opennebula"


def pid_file(root: Path, site: str) -> Path:
    return folder(root) / f"{site}.pid"


def state_dir(root: Path, site: str) -> Path:
    """The folder of the site's front-end state (``oned.json``)."""
    return folder(root) / site


def password_path(root: Path, site: str) -> Path:
    """Where the site's password file is (nothing is made)."""
    return folder(root) / f"{site}.password"


def password_file(root: Path, site: str) -> Path:
    """The site's password file, made with a random password the first time."""
    path = password_path(root, site)
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(secrets.token_urlsafe(18) + "\n")
        path.chmod(0o600)
    return path


def answers(endpoint: str, session: str, timeout: float = 2.0) -> bool:
    """Whether ``one.system.version`` succeeds at ``endpoint`` with ``session``."""

    class _Transport(xmlrpc.client.Transport):
        def make_connection(self, host: str | tuple[str, dict[str, str]]) -> object:  # type: ignore[override]
            conn = super().make_connection(host)
            conn.timeout = timeout
            return conn

    try:
        reply = xmlrpc.client.ServerProxy(endpoint, transport=_Transport()).one.system.version(session)
    except (OSError, xmlrpc.client.Error):
        return False
    return bool(isinstance(reply, list) and reply and reply[0] is True)


def vm_pid_files(root: Path, site: str) -> list[Path]:
    """The PID files of ``site``'s VM processes (``<state dir>/vms/vm-<ID>.pid``)."""
    return sorted((state_dir(root, site) / "vms").glob("vm-*.pid"))


def start_frontend(
    root: Path,
    site: str,
    port: int,
    *,
    timeout: float = 30.0,
    ceph: CephAccess | None = None,
    vm_ports: tuple[int, int] | None = None,
) -> FrontendInfo:
    """Start ``site``'s front-end on ``port`` (seeded as ``site`` on first start) and wait until it answers.

    With ``ceph`` and ``vm_ports`` (first port, count) its VMs are processes on that cluster
    (:class:`lab.opennebula.runtime.ProcessRuntime`); it starts again those recorded as running."""
    base = folder(root)
    pwd_file = password_file(root, site)
    session = f"{USER}:{pwd_file.read_text().strip()}"
    endpoint = endpoint_of(port)
    argv = [
        sys.executable,
        "-m",
        "lab.opennebula",
        "--state",
        str(state_dir(root, site)),
        "--port",
        str(port),
        "--user",
        USER,
        "--password-file",
        str(pwd_file),
        "--site",
        site,
    ]
    if ceph is not None and vm_ports is not None:
        argv += ["--ceph-conf", ceph.conf, "--ceph-cluster", ceph.cluster, "--keyring", ceph.keyring]
        argv += ["--vm-ports", f"{vm_ports[0]}:{vm_ports[1]}"]
    start_service(
        site,
        argv,
        base,
        port=port,
        ready=lambda: answers(endpoint, session),
        cwd=ROOT,
        timeout=timeout,
    )
    return frontend_info(root, site, port)


def frontend_info(root: Path, site: str, port: int) -> FrontendInfo:
    """Where ``site``'s front-end answers on ``port`` and its credentials (nothing is started or made)."""
    return FrontendInfo(site, endpoint_of(port), USER, password_path(root, site), state_dir(root, site))


def endpoint_of(port: int) -> str:
    """The XML-RPC endpoint of a lab front-end on ``port``."""
    return f"http://127.0.0.1:{port}/RPC2"


def stop_frontend(root: Path, site: str) -> bool:
    """Stop ``site``'s front-end, then its VM processes (state kept: the next start boots the VMs
    recorded as running again); True if the front-end was running."""
    was = stop_daemon(pid_file(root, site))
    for path in vm_pid_files(root, site):
        stop_daemon(path, timeout=10.0)
    return was


def running(root: Path, site: str) -> bool:
    return read_pid(pid_file(root, site)) is not None


def forget_state(root: Path, site: str) -> bool:
    """Drop ``site``'s front-end state (a stopped front-end's), so that its next start seeds it again;
    the password file and the log stay. True if there was a state."""
    path = state_dir(root, site) / STATE_FILE
    existed = path.exists()
    path.unlink(missing_ok=True)
    return existed
