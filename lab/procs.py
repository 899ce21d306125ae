"""Daemons of the lab, tracked by PID files so that `up` never duplicates and `down` stops by PID."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from drkit.domain.errors import StandbyError


class LabError(StandbyError):
    """The lab could not be brought up or down; the message says what and where to look."""


def read_pid(pid_file: Path) -> int | None:
    """The PID in ``pid_file`` if that process is alive (and not a zombie), else None."""
    try:
        pid = int(pid_file.read_text().strip())
    except (OSError, ValueError):
        return None
    return pid if alive(pid) else None


def alive(pid: int) -> bool:
    """Whether ``pid`` runs (zombies count as dead)."""
    try:
        with open(f"/proc/{pid}/stat") as fh:
            state = fh.read().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state not in ("Z", "X")


def start_daemon(
    name: str,
    argv: Sequence[str],
    run_dir: Path,
    *,
    env: Mapping[str, str] | None = None,
    cwd: Path | None = None,
) -> int:
    """Start ``argv`` detached, logging to ``run_dir/<name>.log``; record and return its PID.

    When the PID file names a live process, nothing is started and that PID is returned.
    """
    run_dir.mkdir(parents=True, exist_ok=True)
    pid_file = run_dir / f"{name}.pid"
    pid = read_pid(pid_file)
    if pid is not None:
        return pid
    log = open(run_dir / f"{name}.log", "ab")  # noqa: SIM115 - handed to the child
    try:
        proc = subprocess.Popen(
            list(argv),
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            env={**os.environ, **(env or {})},
            cwd=cwd,
            start_new_session=True,
        )
    finally:
        log.close()
    pid_file.write_text(f"{proc.pid}\n")
    return proc.pid


def stop_daemon(pid_file: Path, *, timeout: float = 15.0) -> bool:
    """SIGTERM the process named by ``pid_file``, SIGKILL after ``timeout``; True if one was running."""
    pid = read_pid(pid_file)
    if pid is None:
        pid_file.unlink(missing_ok=True)
        return False
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        pass
    deadline = time.monotonic() + timeout
    while alive(pid) and time.monotonic() < deadline:
        reap(pid)
        time.sleep(0.1)
    if alive(pid):
        os.kill(pid, signal.SIGKILL)
        reap(pid)
    pid_file.unlink(missing_ok=True)
    return True


def reap(pid: int) -> None:
    """Collect ``pid`` if it is our exited child (so it does not linger as a zombie)."""
    try:
        os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        pass


def answers(url: str, timeout: float = 2.0, verify: Any = True) -> bool:
    """Whether ``url`` answers 200 within ``timeout`` seconds (a refused or hung one: False);
    ``verify`` is httpx's (the CA of an HTTPS server)."""
    import httpx

    try:
        return httpx.get(url, timeout=timeout, verify=verify).status_code == 200
    except httpx.HTTPError:
        return False


def port_in_use(port: int, host: str = "127.0.0.1") -> bool:
    """Whether something already listens on ``host:port``."""
    import socket

    with socket.socket() as sock:
        sock.settimeout(0.5)
        return sock.connect_ex((host, port)) == 0


def start_service(
    name: str,
    argv: Sequence[str],
    run_dir: Path,
    *,
    port: int,
    ready: Callable[[], bool],
    env: Mapping[str, str] | None = None,
    cwd: Path | None = None,
    timeout: float = 30.0,
) -> int:
    """Start a daemon that serves ``port`` (unless ours already runs) and wait until ``ready``.

    A port held by a process that is not ours is an error naming the port, never a silent reuse
    of a stranger (for example a lab left running in another folder).
    """
    pid_file = run_dir / f"{name}.pid"
    if read_pid(pid_file) is None and port_in_use(port):
        raise LabError(
            f"port {port} needed by the lab's {name} is used by another process",
            hint="stop the other lab (`standby lab down --lab-dir DIR`) or set STANDBY_LAB_PORT_BASE",
            context={"port": port},
        )
    pid = start_daemon(name, argv, run_dir, env=env, cwd=cwd)
    log_file = run_dir / f"{name}.log"

    def check() -> bool:
        if not alive(pid):
            raise LabError(f"the lab's {name} exited at start", hint=f"read {log_file}")
        return ready()

    wait_until(check, timeout=timeout, what=f"the lab's {name}", log_file=log_file, fatal=LabError)
    return pid


def wait_until(
    check: Callable[[], bool],
    *,
    timeout: float,
    what: str,
    log_file: Path | None = None,
    fatal: type[Exception] | None = None,
) -> None:
    """Poll ``check`` until it is true; raise a LabError naming ``what`` and the log after ``timeout``.

    Exceptions of type ``fatal`` raised by ``check`` end the wait at once; others mean "not yet".
    """
    deadline = time.monotonic() + timeout
    delay = 0.05
    while time.monotonic() < deadline:
        try:
            if check():
                return
        except Exception as exc:
            if fatal is not None and isinstance(exc, fatal):
                raise
        time.sleep(delay)
        delay = min(delay * 1.5, 1.0)
    where = f"; read {log_file}" if log_file else ""
    raise LabError(f"timed out after {timeout:.0f}s waiting for {what}{where}")


def _stat_fields(pid: int) -> list[str] | None:
    """The fields of ``/proc/<pid>/stat`` after the command name (state first), or None."""
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None


def start_time(pid: int) -> int | None:
    """When ``pid`` started (clock ticks since boot): with the PID, it names one process for good."""
    fields = _stat_fields(pid)
    return int(fields[19]) if fields and len(fields) > 19 else None


def stopped(pid: int) -> bool:
    """Whether ``pid`` is stopped by a signal (SIGSTOP): state ``T`` in ``/proc/<pid>/stat``."""
    fields = _stat_fields(pid)
    return fields is not None and fields[:1] == ["T"]


def descendants(pid: int) -> list[int]:
    """The live children of ``pid``, their children and so on (from ``/proc``, parents first)."""
    parents: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        fields = _stat_fields(int(entry.name))
        if fields and len(fields) > 1 and fields[0] not in ("Z", "X"):
            parents.setdefault(int(fields[1]), []).append(int(entry.name))
    found: list[int] = []
    todo = sorted(parents.get(pid, []))
    while todo:
        child = todo.pop(0)
        found.append(child)
        todo.extend(sorted(parents.get(child, [])))
    return found
