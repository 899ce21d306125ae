"""Two real Ceph clusters (site-a, site-b) with RBD mirroring, on loopback, for the lab.

Each site runs one mon (``a``), one mgr (``x``), one memstore OSD (``osd.0``) and one rbd-mirror
daemon (``client.rbd-mirror.local``), all as plain processes started from the Debian packages:
no systemd, no containers, no kernel modules. Both pools mirror in ``image`` mode, with two-way
(``rx-tx``) peers made from a bootstrap token. The facts this module relies on are in
``reference/ceph-lab.md``.

Layout of the lab folder::

    <lab_dir>/ceph/
        home/.ceph/site-a.conf -> ../../site-a/site-a.conf   # HOME for rbd-mirror (it ignores -c)
        home/.ceph/site-b.conf -> ../../site-b/site-b.conf
        peers.json                                           # which fsids were peered together
        site-a/
            site-a.conf  site.json  keyring.*  monmap  (keyring.client.standby: Standby's own user)
            mon/  osd/  mgr/  run/  (our pid files: run/lab-<daemon>.pid)  log/

Every public function is idempotent. Only the standard library is used, so the module can be
imported by any Python (the project venv, Debian's python3, tests).
"""

from __future__ import annotations

import base64
import concurrent.futures
import contextlib
import fcntl
import glob
import json
import logging
import os
import shutil
import signal
import socket
import struct
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

log = logging.getLogger("lab.ceph")

T = TypeVar("T")

SITE_NAMES: tuple[str, str] = ("site-a", "site-b")
DEFAULT_POOL = "replicapool"
MIRROR_CLIENT_ID = "rbd-mirror.local"
START_ORDER: tuple[str, ...] = ("mon", "osd", "mgr", "rbd-mirror")
STANDBY_CLIENT_ID = "standby"
"""The cephx user Standby runs ``rbd`` as in the lab (never ``client.admin``): see :func:`standby_caps`."""


def standby_caps(pool: str, *more: str) -> tuple[tuple[str, str], ...]:
    """The least cephx capabilities Standby's ``rbd`` calls need on ``pool``, measured in the lab
    (Ceph 16.2): ``profile rbd`` (mon) and ``profile rbd pool=<pool>`` (osd) for image status,
    info, promote, demote, resync, mirror snapshots and the librbd scratch copy; ``profile rbd
    pool=<pool>`` (mgr) for ``rbd mirror snapshot schedule ls``; and the mon commands ``service
    dump`` and ``service status``, without which ``rbd mirror pool status --verbose`` lists no
    rbd-mirror daemon ("failed to query services: (13) Permission denied"). ``more`` pools get
    the same grants."""
    grants = ", ".join(f"profile rbd pool={p}" for p in (pool, *more))
    return (
        ("mon", 'profile rbd, allow command "service dump", allow command "service status"'),
        ("osd", grants),
        ("mgr", grants),
    )


def standby_keyring(site: CephSite) -> Path:
    """The lab's keyring of ``client.standby`` on ``site`` (mode 600)."""
    return site.dir / f"keyring.client.{STANDBY_CLIENT_ID}"


STOP_ORDER: tuple[str, ...] = ("rbd-mirror", "mgr", "osd", "mon")

#: mgr modules that are not always-on: never loaded, which halves the mgr's memory.
#: ``rbd_support`` (snapshot schedules) is always-on and stays.
MGR_DISABLED_MODULES: tuple[str, ...] = (
    "alerts",
    "cephadm",
    "dashboard",
    "diskprediction_local",
    "influx",
    "insights",
    "iostat",
    "k8sevents",
    "localpool",
    "mds_autoscaler",
    "mirroring",
    "nfs",
    "osd_perf_query",
    "osd_support",
    "prometheus",
    "restful",
    "rook",
    "selftest",
    "snap_schedule",
    "stats",
    "telegraf",
    "test_orchestrator",
    "zabbix",
)

#: Debian package -> something on disk that proves it is installed.
REQUIRED: tuple[tuple[str, str], ...] = (
    ("ceph-mon", "bin:ceph-mon"),
    ("ceph-osd", "bin:ceph-osd"),
    ("ceph-mgr", "bin:ceph-mgr"),
    ("rbd-mirror", "bin:rbd-mirror"),
    ("ceph-common", "bin:ceph"),
    ("ceph-common", "bin:rbd"),
    ("ceph-common", "bin:monmaptool"),
    ("ceph-common", "bin:ceph-authtool"),
    ("python3-rbd", "glob:/usr/lib/python3/dist-packages/rbd.cpython-*.so"),
    ("python3-rados", "glob:/usr/lib/python3/dist-packages/rados.cpython-*.so"),
)

#: Seconds given to a daemon after SIGTERM before SIGKILL. The OSD writes memstore to disk on a
#: clean shutdown, so it gets the longest grace.
STOP_GRACE: Mapping[str, float] = {"rbd-mirror": 15.0, "mgr": 15.0, "osd": 45.0, "mon": 15.0}

POLL = 0.5


class CephLabError(RuntimeError):
    """The Ceph lab could not do what was asked. The message says what, on which site, and where to look."""

    def __init__(self, message: str, *, site: str | None = None, log_file: Path | str | None = None) -> None:
        self.message = message
        self.site = site
        self.log_file = str(log_file) if log_file else None
        text = f"{site}: {message}" if site else message
        if self.log_file:
            text = f"{text} (read {self.log_file})"
        super().__init__(text)


# --------------------------------------------------------------------------------------------
# Helpers
# --------------------------------------------------------------------------------------------


def _tail(text: str, lines: int = 15, chars: int = 2000) -> str:
    return "\n".join(text.strip().splitlines()[-lines:])[-chars:]


def run(
    argv: Sequence[str],
    timeout: float = 60.0,
    *,
    env: Mapping[str, str] | None = None,
    check: bool = True,
    input: str | None = None,
    site: str | None = None,
    log_file: Path | str | None = None,
) -> subprocess.CompletedProcess[str]:
    """Run ``argv`` and return the completed process (text mode, output captured).

    Raises :class:`CephLabError` naming the command, its exit code and the tail of its stderr when it
    fails (unless ``check`` is false) or when it runs longer than ``timeout`` seconds.
    """
    full_env = None if env is None else {**os.environ, **env}
    try:
        proc = subprocess.run(
            list(argv),
            capture_output=True,
            text=True,
            timeout=timeout,
            env=full_env,
            input=input,
            check=False,
        )
    except subprocess.TimeoutExpired as exc:
        raise CephLabError(
            f"`{' '.join(argv)}` timed out after {timeout:.0f}s", site=site, log_file=log_file
        ) from exc
    except FileNotFoundError as exc:
        raise CephLabError(
            f"`{argv[0]}` not found; install: apt-get install --no-install-recommends "
            + " ".join(missing_packages() or ["ceph-common"]),
            site=site,
        ) from exc
    if check and proc.returncode != 0:
        detail = _tail(proc.stderr) or _tail(proc.stdout)
        raise CephLabError(
            f"`{' '.join(argv)}` failed with rc={proc.returncode}: {detail}", site=site, log_file=log_file
        )
    return proc


def run_json(argv: Sequence[str], timeout: float = 60.0, **kwargs: Any) -> Any:
    """Run a command that prints JSON (``--format json``) and return the parsed value."""
    proc = run(argv, timeout, **kwargs)
    try:
        return json.loads(proc.stdout) if proc.stdout.strip() else None
    except json.JSONDecodeError as exc:
        raise CephLabError(f"`{' '.join(argv)}` printed no JSON: {proc.stdout[:300]!r}") from exc


def wait_for(
    predicate: Callable[[], T | None],
    timeout: float,
    interval: float = POLL,
    what: str = "condition",
    *,
    site: str | None = None,
    log_file: Path | str | None = None,
    abort: Callable[[], str | None] | None = None,
) -> T:
    """Call ``predicate`` every ``interval`` seconds until it returns a truthy value, and return it.

    A :class:`CephLabError` raised by the predicate counts as "not yet" (its text is kept for the
    timeout message). ``abort`` may return a reason to give up early (for example "the daemon died").
    Raises :class:`CephLabError` after ``timeout`` seconds.
    """
    deadline = time.monotonic() + timeout
    last_error = ""
    while True:
        try:
            result = predicate()
            if result:
                return result
        except CephLabError as exc:
            last_error = str(exc)
        if abort is not None:
            reason = abort()
            if reason:
                raise CephLabError(f"gave up waiting for {what}: {reason}", site=site, log_file=log_file)
        if time.monotonic() >= deadline:
            extra = f"; last error: {_tail(last_error, 3, 500)}" if last_error else ""
            raise CephLabError(
                f"timed out after {timeout:.0f}s waiting for {what}{extra}", site=site, log_file=log_file
            )
        time.sleep(interval)


def _gen_key() -> str:
    """A cephx secret, as ``ceph-authtool --gen-print-key`` makes it (type AES, creation time, 16 bytes)."""
    now = time.time()
    header = struct.pack("<HIIH", 1, int(now), int((now % 1) * 1e9), 16)
    return base64.b64encode(header + os.urandom(16)).decode()


def _port_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def _read_json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _write_json(path: Path, data: Mapping[str, Any]) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n")
    tmp.replace(path)


def _parallel(fn: Callable[..., T], *arg_lists: Sequence[Any]) -> list[T]:
    """Run ``fn`` once per argument tuple in threads; return results in order; re-raise the first error."""
    with concurrent.futures.ThreadPoolExecutor(max_workers=max(1, len(arg_lists))) as pool:
        futures = [pool.submit(fn, *args) for args in arg_lists]
        return [f.result() for f in futures]


@contextlib.contextmanager
def _locked(root: Path) -> Iterator[None]:
    """Serialise ceph_up/ceph_down of one lab folder across processes (flock on ``<root>/.lock``)."""
    root.mkdir(parents=True, exist_ok=True)
    with open(root / ".lock", "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


# --------------------------------------------------------------------------------------------
# Sites
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class CephSite:
    """One lab Ceph cluster, addressed by its cluster name and its own conf file."""

    name: str
    cluster: str
    dir: Path
    conf: Path
    keyring: Path
    mon_v2_port: int
    mon_v1_port: int

    @property
    def mon_host(self) -> str:
        """The ``mon host`` value: ``[v2:127.0.0.1:P,v1:127.0.0.1:P+1]``."""
        return f"[v2:127.0.0.1:{self.mon_v2_port},v1:127.0.0.1:{self.mon_v1_port}]"

    def _base(self, tool: str, args: Sequence[str]) -> list[str]:
        return [tool, "--cluster", self.cluster, "-c", str(self.conf), *args]

    def cli(self, *args: str) -> list[str]:
        """argv of an ``rbd`` command on this site: ``rbd --cluster S -c S.conf ARGS``."""
        return self._base("rbd", args)

    def ceph_cli(self, *args: str) -> list[str]:
        """argv of a ``ceph`` command on this site."""
        return self._base("ceph", args)

    def env(self) -> dict[str, str]:
        """Environment variables that make a plain ``rbd ...`` / ``ceph ...`` address this site.

        Merge them into ``os.environ`` (they are only the additions). ``CEPH_ARGS`` is split on
        whitespace by Ceph, so the lab folder must not contain spaces.
        """
        return {"CEPH_ARGS": f"--cluster {self.cluster} -c {self.conf}", "CEPH_CONF": str(self.conf)}

    def pid_file(self, daemon: str) -> Path:
        """Our own pid file of ``daemon`` (mon, osd, mgr or rbd-mirror)."""
        return self.dir / "run" / f"lab-{daemon}.pid"

    def log_file(self, daemon: str) -> Path:
        """Ceph's log file of ``daemon``; ``<daemon>.out`` next to it holds its stdout/stderr."""
        names = {"mon": "mon.a", "osd": "osd.0", "mgr": "mgr.x", "rbd-mirror": "rbd-mirror"}
        return self.dir / "log" / f"{names.get(daemon, daemon)}.log"

    def daemon_argv(self, daemon: str) -> list[str]:
        """argv that runs ``daemon`` in the foreground (we track its pid ourselves)."""
        ids = {
            "mon": ["-i", "a"],
            "osd": ["-i", "0"],
            "mgr": ["-i", "x"],
            "rbd-mirror": ["--id", MIRROR_CLIENT_ID],
        }
        binary = {"mon": "ceph-mon", "osd": "ceph-osd", "mgr": "ceph-mgr", "rbd-mirror": "rbd-mirror"}[daemon]
        return self._base(binary, [*ids[daemon], "-f"])


def sites(lab_dir: Path, port_base: int = 16800) -> dict[str, CephSite]:
    """The two :class:`CephSite` of a lab folder (nothing is started)."""
    root = Path(lab_dir).absolute() / "ceph"
    result = {}
    for index, name in enumerate(SITE_NAMES):
        site_dir = root / name
        result[name] = CephSite(
            name=name,
            cluster=name,
            dir=site_dir,
            conf=site_dir / f"{name}.conf",
            keyring=site_dir / "keyring.client.admin",
            mon_v2_port=port_base + 10 * index,
            mon_v1_port=port_base + 10 * index + 1,
        )
    return result


#: A PG's read lease is this many times ``osd_heartbeat_grace`` (20 s): 600 s, renewed every 300 s,
#: so a freeze shorter than half of it never outlasts a lease (see the comment in :func:`_conf_text`).
READ_LEASE_RATIO = 30.0
READ_LEASE_S = 20.0 * READ_LEASE_RATIO


def _conf_text(site: CephSite, fsid: str) -> str:
    d = site.dir
    return f"""# Generated by lab/ceph.py for the Standby lab ({site.name}).
[global]
fsid = {fsid}
mon host = {site.mon_host}
mon initial members = a
public addr = 127.0.0.1
auth cluster required = cephx
auth service required = cephx
auth client required = cephx
auth allow insecure global id reclaim = false
mon allow pool size one = true
mon allow pool delete = true
mon warn on pool no redundancy = false
mon data avail warn = 2
mon data avail crit = 1
osd pool default size = 1
osd pool default min size = 1
osd pool default pg num = 8
osd pool default pgp num = 8
osd pool default pg autoscale mode = off
osd crush chooseleaf type = 0
# Each PG here has one OSD, so no peer ever acks its read lease, and Ceph 16.2 then never clears
# a PG's "laggy" state once the lease has run out: after a freeze (`lab site down`) longer than
# half the lease (16 s by default) a PG that took an op before renewing its lease parked every
# later op for good. The lease only guards reads across OSDs; here it outlasts any lab freeze.
osd pool default read lease ratio = {READ_LEASE_RATIO:g}
run dir = {d}/run
pid file = {d}/run/$name.pid
admin socket = {d}/run/$name.asok
log file = {d}/log/$name.log
keyring = {d}/keyring.client.admin
mon data = {d}/mon
mgr data = {d}/mgr
osd data = {d}/osd
osd objectstore = memstore
memstore device bytes = 4294967296
osd fast shutdown = false
mgr disabled modules = {",".join(MGR_DISABLED_MODULES)}

[mon]
keyring = {d}/keyring.mon

[mgr]
keyring = {d}/keyring.mgr.x

[osd]
keyring = {d}/keyring.osd.0

[client]
admin socket =
log file = {d}/log/client.log
client mount timeout = 15
rados osd op timeout = 30
rados mon op timeout = 30

[client.{STANDBY_CLIENT_ID}]
keyring = {d}/keyring.client.{STANDBY_CLIENT_ID}

[client.{MIRROR_CLIENT_ID}]
keyring = {d}/keyring.client.{MIRROR_CLIENT_ID}
admin socket = {d}/run/rbd-mirror.asok
log file = {d}/log/rbd-mirror.log
# rbd-mirror notices a resync request, a deleted image and a new one within seconds rather than
# 30 s each (Ceph's defaults suit many images): a resync after split-brain then replays in about
# 25 s instead of 85 s. What it replicates, and how, is unchanged.
rbd mirror image state check interval = 5
rbd mirror pool replayers refresh interval = 5
rbd mirror delete retry interval = 5
"""


_KEYS: tuple[tuple[str, tuple[tuple[str, str], ...]], ...] = (
    ("mon.", (("mon", "allow *"),)),
    ("client.admin", (("mon", "allow *"), ("osd", "allow *"), ("mgr", "allow *"), ("mds", "allow *"))),
    ("mgr.x", (("mon", "allow profile mgr"), ("osd", "allow *"), ("mds", "allow *"))),
    ("osd.0", (("mon", "allow profile osd"), ("mgr", "allow profile osd"), ("osd", "allow *"))),
    (f"client.{MIRROR_CLIENT_ID}", (("mon", "profile rbd-mirror"), ("osd", "profile rbd"))),
)


def _keyring_entry(entity: str, key: str, caps: Sequence[tuple[str, str]]) -> str:
    lines = [f"[{entity}]", f"\tkey = {key}"]
    lines += [f'\tcaps {service} = "{cap}"' for service, cap in caps]
    return "\n".join(lines) + "\n"


# --------------------------------------------------------------------------------------------
# Processes
# --------------------------------------------------------------------------------------------


def _proc_alive(pid: int, conf: Path, binary: str | None = None) -> bool:
    """True when ``pid`` runs (not a zombie) and its argv names ``conf`` (guards against pid reuse)."""
    try:
        os.waitpid(pid, os.WNOHANG)  # reap it if it is our own dead child
    except (ChildProcessError, OSError):
        pass
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return False
    state = stat.rsplit(")", 1)[-1].split()[0]
    if state in ("Z", "X", "x"):
        return False
    if str(conf).encode() not in argv:
        return False
    return binary is None or os.path.basename(argv[0].decode(errors="replace")) == binary


def _daemon_pid(site: CephSite, daemon: str) -> int | None:
    """The pid of a live ``daemon`` of ``site``, or None."""
    try:
        pid = int(site.pid_file(daemon).read_text().strip())
    except (OSError, ValueError):
        return None
    binary = site.daemon_argv(daemon)[0]
    return pid if _proc_alive(pid, site.conf, binary) else None


def lab_processes(lab_dir: Path) -> list[tuple[int, list[str]]]:
    """Every live process whose argv mentions a conf file of this lab (daemons and CLI calls)."""
    confs = [str(s.conf).encode() for s in sites(lab_dir).values()]
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            argv = (entry / "cmdline").read_bytes().split(b"\0")
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        if stat.rsplit(")", 1)[-1].split()[0] in ("Z", "X") or not any(c in argv for c in confs):
            continue
        found.append((int(entry.name), [a.decode(errors="replace") for a in argv if a]))
    return sorted(found)


def _start_daemon(site: CephSite, daemon: str, home: Path) -> int:
    """Start ``daemon`` detached (own session, re-parented to init) and record its pid."""
    pid = _daemon_pid(site, daemon)
    if pid is not None:
        return pid
    out = site.log_file(daemon).with_suffix(".out")
    env = {**os.environ, "LAB_OUT": str(out)}
    if daemon == "rbd-mirror":
        env["HOME"] = str(home)  # rbd-mirror reads $HOME/.ceph/<cluster>.conf, not -c
    env.pop("CEPH_ARGS", None)
    env.pop("CEPH_CONF", None)
    script = '"$@" </dev/null >>"$LAB_OUT" 2>&1 & echo $!'
    proc = subprocess.run(
        ["/bin/sh", "-c", script, "sh", *site.daemon_argv(daemon)],
        capture_output=True,
        text=True,
        env=env,
        start_new_session=True,
        timeout=30,
        check=False,
    )
    if proc.returncode != 0 or not proc.stdout.strip().isdigit():
        raise CephLabError(f"could not start {daemon}: {proc.stderr.strip()}", site=site.name, log_file=out)
    pid = int(proc.stdout.strip())
    site.pid_file(daemon).write_text(f"{pid}\n")
    log.info("%s: started %s (pid %d)", site.name, daemon, pid)
    return pid


def _died(site: CephSite, daemon: str) -> Callable[[], str | None]:
    def check() -> str | None:
        if _daemon_pid(site, daemon) is None:
            out = site.log_file(daemon).with_suffix(".out")
            detail = _tail(out.read_text(errors="replace"), 5, 600) if out.exists() else ""
            return f"{daemon} exited" + (f": {detail}" if detail else "")
        return None

    return check


def _stop_pids(targets: Sequence[tuple[CephSite, str]]) -> None:
    """SIGTERM the given daemons together, wait for them, SIGKILL the ones past their grace."""
    pending: list[tuple[CephSite, str, int]] = []
    for site, daemon in targets:
        pid = _daemon_pid(site, daemon)
        if pid is None:
            site.pid_file(daemon).unlink(missing_ok=True)
            continue
        try:
            os.kill(pid, signal.SIGTERM)
        except ProcessLookupError:
            continue
        pending.append((site, daemon, pid))
    start = time.monotonic()
    while pending:
        still = []
        for site, daemon, pid in pending:
            if not _proc_alive(pid, site.conf):
                site.pid_file(daemon).unlink(missing_ok=True)
                log.info("%s: stopped %s (pid %d) in %.1fs", site.name, daemon, pid, time.monotonic() - start)
            elif time.monotonic() - start > STOP_GRACE.get(daemon, 15.0):
                log.warning("%s: %s (pid %d) ignored SIGTERM; sending SIGKILL", site.name, daemon, pid)
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                deadline = time.monotonic() + 10
                while _proc_alive(pid, site.conf) and time.monotonic() < deadline:
                    time.sleep(0.1)
                site.pid_file(daemon).unlink(missing_ok=True)
            else:
                still.append((site, daemon, pid))
        pending = still
        if pending:
            time.sleep(0.1)


# --------------------------------------------------------------------------------------------
# Bring-up of one site
# --------------------------------------------------------------------------------------------


def _ceph_json(site: CephSite, *args: str, timeout: float = 30.0) -> Any:
    return run_json(site.ceph_cli(*args, "--format", "json"), timeout, site=site.name)


def _mon_ready(site: CephSite) -> Any:
    return _ceph_json(site, "mon", "stat", "--connect-timeout", "5", timeout=20)


def _osd_up(site: CephSite) -> bool:
    stat = _ceph_json(site, "osd", "stat")
    return bool(stat and stat.get("num_up_osds", 0) >= 1 and stat.get("num_in_osds", 0) >= 1)


def _pgs_active(site: CephSite) -> bool:
    stat = _ceph_json(site, "pg", "stat") or {}
    summary = stat.get("pg_summary", stat)
    total = int(summary.get("num_pgs", 0))
    states = summary.get("num_pg_by_state", [])
    active = sum(int(s.get("num", 0)) for s in states if "active" in str(s.get("name", "")).split("+"))
    return bool(stat.get("pg_ready", True)) and active == total


def _pool_exists(site: CephSite, pool: str) -> bool:
    return pool in (_ceph_json(site, "osd", "pool", "ls") or [])


def _wipe(site: CephSite) -> None:
    _stop_pids([(site, d) for d in STOP_ORDER])
    if site.dir.exists():
        shutil.rmtree(site.dir)


def _create_site(site: CephSite, home: Path, port_base: int) -> str:
    """Make a brand-new cluster for ``site`` (mkfs of mon and OSD) and start mon, mgr and OSD."""
    _wipe(site)
    for port in (site.mon_v2_port, site.mon_v1_port):
        if not _port_free(port):
            raise CephLabError(
                f"port {port} on 127.0.0.1 is already in use; pick another port_base", site=site.name
            )
    for sub in ("run", "log", "mon", "osd", "mgr"):
        (site.dir / sub).mkdir(parents=True, exist_ok=True)
    fsid = str(uuid.uuid4())
    site.conf.write_text(_conf_text(site, fsid))
    keys = {entity: _gen_key() for entity, _ in _KEYS}
    for entity, caps in _KEYS:
        name = "mon" if entity == "mon." else entity
        (site.dir / f"keyring.{name}").write_text(_keyring_entry(entity, keys[entity], caps))
    # The mon's initial keyring holds every key, so all auth entities exist from the first start.
    (site.dir / "keyring.mon").write_text("".join(_keyring_entry(e, keys[e], caps) for e, caps in _KEYS))
    for path in site.dir.glob("keyring.*"):
        path.chmod(0o600)
    monmap = site.dir / "monmap"
    run(
        ["monmaptool", "--create", "--fsid", fsid, "--addv", "a", site.mon_host, "--clobber", str(monmap)],
        30,
        site=site.name,
    )
    run(
        site._base(
            "ceph-mon",
            ["--mkfs", "-i", "a", "--monmap", str(monmap), "--keyring", str(site.dir / "keyring.mon")],
        ),
        60,
        site=site.name,
        log_file=site.log_file("mon"),
    )
    _start_mon(site, home)
    _start_daemon(site, "mgr", home)
    osd_uuid = str(uuid.uuid4())
    run(site.ceph_cli("osd", "new", osd_uuid, "0"), 30, site=site.name)
    run(
        site._base("ceph-osd", ["--mkfs", "-i", "0", "--osd-uuid", osd_uuid]),
        60,
        site=site.name,
        log_file=site.log_file("osd"),
    )
    _write_json(site.dir / "site.json", {"fsid": fsid, "port_base": port_base, "pool_ready": []})
    _start_daemon(site, "osd", home)
    log.info("%s: created cluster %s", site.name, fsid)
    return fsid


def _start_mon(site: CephSite, home: Path) -> None:
    """Start the site's mon and wait until it answers."""
    _start_daemon(site, "mon", home)
    wait_for(
        lambda: _mon_ready(site),
        30,
        POLL,
        "the mon to answer",
        site=site.name,
        log_file=site.log_file("mon"),
        abort=_died(site, "mon"),
    )


def _restart_site(site: CephSite, home: Path) -> None:
    """Start the dead daemons (mon, mgr, osd) of an existing site and wait for its mon."""
    _start_mon(site, home)
    _start_daemon(site, "mgr", home)
    _start_daemon(site, "osd", home)


def _wait_osd_and_pgs(site: CephSite, timeout: float) -> None:
    osd_log = site.log_file("osd")
    wait_for(
        lambda: _osd_up(site),
        timeout,
        POLL,
        "osd.0 to be up and in",
        site=site.name,
        log_file=osd_log,
        abort=_died(site, "osd"),
    )
    wait_for(
        lambda: _pgs_active(site),
        timeout,
        POLL,
        "every PG to be active",
        site=site.name,
        log_file=osd_log,
        abort=_died(site, "osd"),
    )


def _ensure_pools(site: CephSite, pools: Sequence[str]) -> None:
    """Create, initialise and mirror (image mode) each of ``pools`` not ready yet: created together,
    so their PGs peer in one wait."""
    state = _read_json(site.dir / "site.json")
    todo = [p for p in pools if p not in state.get("pool_ready", [])]
    if not todo:
        return
    for pool in todo:
        if not _pool_exists(site, pool):
            run(site.ceph_cli("osd", "pool", "create", pool), 60, site=site.name)
    wait_for(
        lambda: _pgs_active(site),
        60,
        POLL,
        f"the PGs of pool(s) {', '.join(todo)} to be active",
        site=site.name,
        log_file=site.log_file("osd"),
    )
    for pool in todo:
        run(site.cli("pool", "init", pool), 60, site=site.name)
        run(site.cli("mirror", "pool", "enable", pool, "image", "--site-name", site.name), 60, site=site.name)
        state["pool_ready"] = sorted({*state.get("pool_ready", []), pool})
        _write_json(site.dir / "site.json", state)


def _bring_site_up(site: CephSite, home: Path, pools: Sequence[str], port_base: int) -> tuple[str, bool]:
    """Make ``site`` serve ``pools`` with image-mode mirroring. Returns (fsid, recreated)."""
    state = _read_json(site.dir / "site.json")
    fresh = not state.get("fsid") or not site.conf.exists()
    recreated = False
    if fresh:
        fsid = _create_site(site, home, port_base)
        _wait_osd_and_pgs(site, 60)
    else:
        fsid = str(state["fsid"])
        was_down = _daemon_pid(site, "osd") is None
        _restart_site(site, home)
        try:
            _wait_osd_and_pgs(site, 45 if was_down else 60)
        except CephLabError as exc:
            log.warning(
                "%s: OSD data did not survive the restart (%s); wiping the site and recreating it",
                site.name,
                " ".join(str(exc).split())[:400],
            )
            fsid = _create_site(site, home, port_base)
            _wait_osd_and_pgs(site, 60)
            recreated = True
    _ensure_pools(site, pools)
    return fsid, recreated


def _ensure_standby_user(site: CephSite, pools: Sequence[str]) -> None:
    """Create (or set the caps of) ``client.standby`` and write its keyring; idempotent. A site made
    before the user existed gets the ``[client.standby]`` section of its ceph.conf added."""
    entity = f"client.{STANDBY_CLIENT_ID}"
    caps = [part for service, cap in standby_caps(*pools) for part in (service, cap)]
    keyring = standby_keyring(site)
    run(site.ceph_cli("auth", "caps", entity, *caps), 30, check=False)  # an existing user: caps as now
    run(site.ceph_cli("auth", "get-or-create", entity, *caps, "-o", str(keyring)), 30, site=site.name)
    keyring.chmod(0o600)
    conf = site.conf.read_text()
    if f"[{entity}]" not in conf:
        site.conf.write_text(conf + f"\n[{entity}]\nkeyring = {keyring}\n")


# --------------------------------------------------------------------------------------------
# Mirroring between the sites
# --------------------------------------------------------------------------------------------


def _mirror_pool_status(site: CephSite, pool: str, verbose: bool = False) -> dict[str, Any]:
    args = ["mirror", "pool", "status", pool, "--format", "json"] + (["--verbose"] if verbose else [])
    status = run_json(site.cli(*args), 30, site=site.name)
    return status if isinstance(status, dict) else {}


def _peered(marker: Mapping[str, Any], fsids: Mapping[str, str] | None = None) -> set[str]:
    """The pools ``peers.json`` says are peered (between ``fsids``, when given)."""
    if fsids is not None and any(marker.get(k) != v for k, v in fsids.items()):
        return set()
    return {str(p) for p in marker.get("pools", [])} | (
        {str(marker["pool"])} if marker.get("pool") else set()
    )


def _peer(
    site_a: CephSite, site_b: CephSite, pools: Sequence[str], lab_root: Path, fsids: Mapping[str, str]
) -> bool:
    """Make two-way peers from a bootstrap token for each of ``pools`` that these fsids do not
    already peer. True if any was (re)done."""
    marker = lab_root / "peers.json"
    done = _peered(_read_json(marker), fsids)
    todo = [p for p in pools if p not in done]
    for pool in todo:
        _peer_pool(site_a, site_b, pool, lab_root)
    if not todo:
        return False
    peered = sorted(done | set(todo))
    _write_json(marker, {"pool": pools[0], **fsids, **({"pools": peered} if len(peered) > 1 else {})})
    return True


def _peer_pool(site_a: CephSite, site_b: CephSite, pool: str, lab_root: Path) -> None:
    for site in (site_a, site_b):
        info = run_json(site.cli("mirror", "pool", "info", pool, "--format", "json"), 30, site=site.name)
        for peer in (info or {}).get("peers", []):
            log.info("%s: removing stale peer %s", site.name, peer.get("site_name"))
            run(site.cli("mirror", "pool", "peer", "remove", pool, str(peer["uuid"])), 30, site=site.name)
    token = run(
        site_a.cli("mirror", "pool", "peer", "bootstrap", "create", "--site-name", site_a.name, pool),
        60,
        site=site_a.name,
    ).stdout.strip()
    token_file = lab_root / "bootstrap-token"
    token_file.write_text(token + "\n")
    token_file.chmod(0o600)
    run(
        site_b.cli(
            "mirror",
            "pool",
            "peer",
            "bootstrap",
            "import",
            "--site-name",
            site_b.name,
            "--direction",
            "rx-tx",
            pool,
            str(token_file),
        ),
        60,
        site=site_b.name,
    )
    token_file.unlink()
    log.info("peered %s <-> %s on pool %s (rx-tx)", site_a.name, site_b.name, pool)


def _mirror_healthy(site: CephSite, pool: str) -> bool:
    """True when a live rbd-mirror daemon of ``site`` reports OK in ``rbd mirror pool status``.

    After a restart, the previous daemon instance stays listed (``not reporting status``, so the
    summary says WARNING, then UNKNOWN) until the mgr drops it about 60 s later; that is ignored.
    """
    status = _mirror_pool_status(site, pool, verbose=True)
    return any(d.get("health") == "OK" and d.get("instance_id") for d in status.get("daemons", []))


# --------------------------------------------------------------------------------------------
# Public API
# --------------------------------------------------------------------------------------------


def missing_packages() -> list[str]:
    """Debian packages whose binaries or modules are missing (empty when the lab can run)."""
    missing: list[str] = []
    for package, probe in REQUIRED:
        kind, target = probe.split(":", 1)
        present = shutil.which(target) is not None if kind == "bin" else bool(glob.glob(target))
        if not present and package not in missing:
            missing.append(package)
    return missing


def ceph_up(
    lab_dir: Path, port_base: int = 16800, pool: str = DEFAULT_POOL, extra_pools: Sequence[str] = ()
) -> dict[str, CephSite]:
    """Bring up site-a and site-b with two-way image-mode mirroring of ``pool`` (and of each of
    ``extra_pools``, peered likewise); return the sites.

    Idempotent: with everything up it only checks ``rbd mirror pool status`` on both sites. After
    :func:`ceph_down` it restarts on the existing data; a site whose memstore OSD lost its PGs is
    wiped and recreated (logged), and the peers are made again. Returns when both sites answer and
    both rbd-mirror daemons report healthy. Raises :class:`CephLabError` on failure.
    """
    missing = missing_packages()
    if missing:
        raise CephLabError(
            "missing Debian packages; run: apt-get install --no-install-recommends " + " ".join(missing)
        )
    with _locked(Path(lab_dir).absolute() / "ceph"):
        return _ceph_up(lab_dir, port_base, pool, tuple(extra_pools))


def _ceph_up(lab_dir: Path, port_base: int, pool: str, extra_pools: tuple[str, ...]) -> dict[str, CephSite]:
    pools = (pool, *extra_pools)
    started = time.monotonic()
    lab_sites = sites(lab_dir, port_base)
    site_a, site_b = lab_sites["site-a"], lab_sites["site-b"]
    root = site_a.dir.parent
    home = root / "home"
    (home / ".ceph").mkdir(parents=True, exist_ok=True)
    for site in (site_a, site_b):
        link = home / ".ceph" / f"{site.cluster}.conf"
        if not link.is_symlink():
            link.unlink(missing_ok=True)
            link.symlink_to(site.conf)

    for site in (site_a, site_b):
        created_with = _read_json(site.dir / "site.json").get("port_base")
        if created_with not in (None, port_base):
            raise CephLabError(
                f"this lab was created with port_base {created_with}, not {port_base}; "
                "pass the same port_base, or ceph_down and delete the folder",
                site=site.name,
            )
    alive = all(_daemon_pid(s, d) is not None for s in (site_a, site_b) for d in START_ORDER)
    ready = all(
        set(pools) <= set(_read_json(s.dir / "site.json").get("pool_ready", [])) for s in (site_a, site_b)
    )
    peers = _read_json(root / "peers.json")
    if alive and ready and set(pools) <= _peered(peers):
        try:
            _parallel(
                lambda s: wait_for(
                    lambda: _mirror_healthy(s, pool),
                    60,
                    1.0,
                    "rbd-mirror to be healthy",
                    site=s.name,
                    log_file=s.log_file("rbd-mirror"),
                ),
                (site_a,),
                (site_b,),
            )
            for site in (site_a, site_b):
                _ensure_standby_user(site, _standby_pools(peers, pools))
            log.info("ceph lab already up (%.1fs)", time.monotonic() - started)
            return lab_sites
        except CephLabError as exc:
            log.warning("ceph lab looked up but is not healthy (%s); repairing", exc)

    results = _parallel(lambda s: _bring_site_up(s, home, pools, port_base), (site_a,), (site_b,))
    fsids = {site_a.name: results[0][0], site_b.name: results[1][0]}
    if _peer(site_a, site_b, pools, root, fsids):
        # rbd-mirror only re-reads the peers every 30 s: restart any that run with the old ones.
        _stop_pids([(s, "rbd-mirror") for s in (site_a, site_b)])
    for site in (site_a, site_b):
        _ensure_standby_user(site, _standby_pools(_read_json(root / "peers.json"), pools))
        _start_daemon(site, "rbd-mirror", home)
    _parallel(
        lambda s: wait_for(
            lambda: _mirror_healthy(s, pool),
            90,
            1.0,
            "rbd-mirror to report healthy",
            site=s.name,
            log_file=s.log_file("rbd-mirror"),
            abort=_died(s, "rbd-mirror"),
        ),
        (site_a,),
        (site_b,),
    )
    log.info(
        "ceph lab up in %.1fs (%s)",
        time.monotonic() - started,
        ", ".join(f"{k} {v}" for k, v in fsids.items()),
    )
    return lab_sites


def _standby_pools(marker: Mapping[str, Any], pools: Sequence[str]) -> list[str]:
    """The pools Standby's user gets: ``pools`` first, then any other peered pool (a caller that
    names fewer pools never takes a grant away)."""
    return [*pools, *sorted(_peered(marker) - set(pools))]


def ceph_down(lab_dir: Path) -> None:
    """Stop every lab daemon by pid, in the order rbd-mirror, mgr, osd, mon (both sites per step).

    A clean stop lets the memstore OSDs save their data for the next :func:`ceph_up`. Harmless when
    nothing runs or the folder does not exist.
    """
    root = Path(lab_dir).absolute() / "ceph"
    if not root.is_dir():
        return
    lab_sites = list(sites(lab_dir).values())  # pid files and conf paths do not depend on ports
    started = time.monotonic()
    with _locked(root):
        for daemon in STOP_ORDER:
            _stop_pids([(s, daemon) for s in lab_sites])
    log.info("ceph lab down in %.1fs", time.monotonic() - started)


def ceph_status(lab_dir: Path) -> dict[str, dict[str, int | None]]:
    """Per site, the pid of each live daemon (None when not running). Reads only pid files and /proc."""
    return {
        name: {daemon: _daemon_pid(site, daemon) for daemon in START_ORDER}
        for name, site in sites(lab_dir).items()
    }


def _image_info(site: CephSite, pool: str, image: str) -> dict[str, Any] | None:
    proc = run(site.cli("info", f"{pool}/{image}", "--format", "json"), 30, check=False, site=site.name)
    if proc.returncode == 2:  # ENOENT
        return None
    if proc.returncode != 0:
        raise CephLabError(
            f"`rbd info {pool}/{image}` failed rc={proc.returncode}: {_tail(proc.stderr)}", site=site.name
        )
    info = json.loads(proc.stdout)
    return info if isinstance(info, dict) else None


def _ensure_schedule(site: CephSite, pool: str, image: str, interval: str) -> None:
    proc = run(
        site.cli(
            "mirror", "snapshot", "schedule", "ls", "--pool", pool, "--image", image, "--format", "json"
        ),
        30,
        check=False,
        site=site.name,
    )
    if proc.returncode not in (0, 2):  # 2 (ENOENT): no schedule yet
        raise CephLabError(
            f"listing the snapshot schedules of {pool}/{image} failed: {_tail(proc.stderr)}", site=site.name
        )
    listed = json.loads(proc.stdout) if proc.returncode == 0 and proc.stdout.strip() else []
    if any(entry.get("interval") == interval for entry in listed):
        return
    run(
        site.cli("mirror", "snapshot", "schedule", "add", "--pool", pool, "--image", image, interval),
        30,
        site=site.name,
    )


def create_mirrored_image(
    site_a: CephSite,
    site_b: CephSite,
    pool: str,
    image: str,
    size_mb: int = 64,
    mode: str = "snapshot",
    schedule: str | None = "1m",
    secondary_timeout: float = 120.0,
) -> None:
    """Create ``pool/image`` on ``site_a`` and mirror it to ``site_b`` in ``mode`` (snapshot or journal).

    In snapshot mode the mirror-snapshot schedule (if any) is added on both sites, because schedules
    are stored per cluster and a new primary takes no snapshots otherwise. The secondary's schedule
    can only be added once rbd-mirror has created the image there, so this waits for that (up to
    ``secondary_timeout`` seconds). Idempotent.
    """
    if mode not in ("snapshot", "journal"):
        raise CephLabError(f"mirror mode must be snapshot or journal, not {mode!r}")
    features = "layering,exclusive-lock" + (",journaling" if mode == "journal" else "")
    info = _image_info(site_a, pool, image)
    if info is None:
        run(
            site_a.cli("create", f"{pool}/{image}", "--size", f"{size_mb}M", "--image-feature", features),
            60,
            site=site_a.name,
        )
        info = _image_info(site_a, pool, image) or {}
    mirroring = info.get("mirroring") or {}
    if mirroring.get("state") != "enabled":
        run(site_a.cli("mirror", "image", "enable", f"{pool}/{image}", mode), 60, site=site_a.name)
    elif mirroring.get("mode") != mode:
        raise CephLabError(
            f"{pool}/{image} already mirrors in {mirroring.get('mode')} mode, not {mode}", site=site_a.name
        )
    if mode != "snapshot" or not schedule:
        return
    _ensure_schedule(site_a, pool, image, schedule)
    wait_for(
        lambda: _image_info(site_b, pool, image) is not None,
        secondary_timeout,
        1.0,
        f"rbd-mirror to create {pool}/{image}",
        site=site_b.name,
        log_file=site_b.log_file("rbd-mirror"),
    )
    _ensure_schedule(site_b, pool, image, schedule)


def mirror_image_status(site: CephSite, pool: str, image: str) -> dict[str, Any]:
    """``rbd mirror image status --format json`` of ``pool/image`` on ``site``."""
    status = run_json(
        site.cli("mirror", "image", "status", f"{pool}/{image}", "--format", "json"), 30, site=site.name
    )
    return status if isinstance(status, dict) else {}


if __name__ == "__main__":  # pragma: no cover - manual use: python -m lab.ceph up|down|status DIR
    import sys

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    command, folder = sys.argv[1], Path(sys.argv[2])
    if command == "up":
        for lab_site in ceph_up(folder, int(sys.argv[3]) if len(sys.argv) > 3 else 16800).values():
            print(lab_site.name, lab_site.conf)
    elif command == "down":
        ceph_down(folder)
    else:
        print(json.dumps(ceph_status(folder), indent=2))
