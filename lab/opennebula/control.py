"""Start and stop one site's fake front-end as a lab daemon, the way the lab runs its other servers.

Layout under the lab folder::

    opennebula/<site>/oned.json   the front-end's state (kept across stop and start)
    opennebula/<site>.password    the site's oneadmin password (0600, made on first start)
    opennebula/<site>.pid|.log    the daemon's PID file and log

:func:`start_frontend` is idempotent (a running front-end is left alone, a port held by a stranger
is a :class:`lab.procs.LabError`); :func:`stop_frontend` stops it by PID. Freezing a site
(``lab site down``) should SIGSTOP the PID in :func:`pid_file` with the site's other processes.
"""

from __future__ import annotations

import secrets
import sys
import xmlrpc.client
from dataclasses import dataclass
from pathlib import Path

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


def password_file(root: Path, site: str) -> Path:
    """The site's password file, made with a random password the first time."""
    path = folder(root) / f"{site}.password"
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


def start_frontend(root: Path, site: str, port: int, *, timeout: float = 30.0) -> FrontendInfo:
    """Start ``site``'s front-end on ``port`` (seeded as ``site`` on first start) and wait until it answers."""
    base = folder(root)
    pwd_file = password_file(root, site)
    session = f"{USER}:{pwd_file.read_text().strip()}"
    endpoint = f"http://127.0.0.1:{port}/RPC2"
    argv = [
        sys.executable,
        "-m",
        "lab.opennebula",
        "--state",
        str(base / site),
        "--port",
        str(port),
        "--user",
        USER,
        "--password-file",
        str(pwd_file),
        "--site",
        site,
    ]
    start_service(
        site,
        argv,
        base,
        port=port,
        ready=lambda: answers(endpoint, session),
        cwd=ROOT,
        timeout=timeout,
    )
    return FrontendInfo(site, endpoint, USER, pwd_file, base / site)


def stop_frontend(root: Path, site: str) -> bool:
    """Stop ``site``'s front-end (state kept); True if one was running."""
    return stop_daemon(pid_file(root, site))


def running(root: Path, site: str) -> bool:
    return read_pid(pid_file(root, site)) is not None
