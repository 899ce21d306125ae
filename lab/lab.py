"""The two-site lab: real Ceph for site A and site B, a fake kube-apiserver and a fake OpenNebula
front-end per site, moto S3.

Everything lives in one folder (``$STANDBY_LAB_DIR``, default ``./.lab``)::

    lab.json            the lab's record: its S3 layout and whether it was seeded
    ceph/<site>/        the site's Ceph (conf, keyrings, daemons' data, logs)
    kube/<site>/        the site's apiserver state; kube/<site>.log its log
    s3/credentials      AWS-style credentials of the shared S3 (per site: s3/credentials-<site>)
    s3/state/<daemon>/  the objects an S3 daemon saved when it was stopped
    nexus/<site>.*      the Nexus simulator started by the site's Nexus controller
    web/<site>.*        the plain HTTP app's simulator (the second protected app, config only)
    opennebula/<site>/  the site's OpenNebula front-end state (oned.json; seeded on its first
                        start), and vms/vm-<ID>.pid|.log of its running VMs' processes;
                        opennebula/<site>.password (0600), .pid and .log beside it
    run/                PID files and logs of the apiservers and S3; run/<site>.frozen while a
                        site is down (``site_down``: its processes SIGSTOPped, data kept in RAM)
    kubeconfig          contexts site-a and site-b, as the lab's admin (kube/admin-token)
    kubeconfig-standby  the same contexts with the standby ServiceAccount's tokens (see lab.rbac)
    standby.yaml        a Standby configuration for the lab (it uses kubeconfig-standby)

``up`` is idempotent and never starts a second copy of a daemon; it seeds a fresh lab only, and
brings a used one back as it was left (the apiservers, S3 and the OSDs keep their data across
``down``); ``down`` stops what ``up`` started, by PID, and is harmless when nothing runs;
``reset`` puts a lab back to its seeds without rebuilding Ceph. S3 is ``shared`` (one endpoint
and bucket for both sites) or ``per-site`` (one each), chosen by ``$STANDBY_LAB_S3`` when the lab
is first brought up (default :data:`DEFAULT_S3_LAYOUT`) and recorded. Ports start at
``$STANDBY_LAB_PORT_BASE`` (default 16800): Ceph mons at +0/+1 and +10/+11, apiservers at
+100/+101, S3 at +102 (per site: +102 site-a, +103 site-b), Nexus at +110/+111, the plain HTTP
app at +112/+113, the OpenNebula front-ends at +114/+115, their VMs' health endpoints at +120-139
(site-a) and +140-159 (site-b). ``site_down``/``site_up`` lose and regain one site by freezing and continuing
its processes (SIGSTOP/SIGCONT), so no in-memory data is lost.
"""

from __future__ import annotations

import concurrent.futures
import json
import os
import re
import secrets
import shutil
import signal
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import httpx

from lab import ceph, rbac, seeds
from lab.kubeapi.persistence import STATE_FILE as KUBE_STATE_FILE
from lab.opennebula import control as one_control
from lab.opennebula import seeds as one_seeds
from lab.opennebula.runtime import CephAccess
from lab.procs import (
    LabError,
    alive,
    descendants,
    read_pid,
    start_service,
    start_time,
    stop_daemon,
    stopped,
    wait_until,
)
from lab.s3 import ACCESS_KEY, SECRET_KEY, credentials_file_text

SITES = ("site-a", "site-b")
BUCKET = "standby"
#: How the lab lays out S3: ``shared``, one endpoint and bucket for both sites; ``per-site``, one
#: endpoint, bucket and keys per site. A fresh lab takes ``$STANDBY_LAB_S3``, else this default,
#: and records it in ``lab.json``; a later ``up`` keeps what is recorded.
S3_LAYOUTS = ("shared", "per-site")
DEFAULT_S3_LAYOUT = "per-site"
S3_ENV = "STANDBY_LAB_S3"
RECORD = "lab.json"
ROOT = Path(__file__).resolve().parent.parent
Log = Callable[[str], None]


def lab_dir(explicit: Path | None = None) -> Path:
    """The lab folder: ``explicit``, else ``$STANDBY_LAB_DIR``, else ``./.lab`` (absolute)."""
    path = explicit or Path(os.environ.get("STANDBY_LAB_DIR") or ".lab")
    return path.absolute()


def port_base() -> int:
    """First port of the lab (``$STANDBY_LAB_PORT_BASE``, default 16800)."""
    return int(os.environ.get("STANDBY_LAB_PORT_BASE", "16800"))


@dataclass(frozen=True)
class Ports:
    """The lab's ports, derived from the base."""

    base: int

    def kube(self, site: str) -> int:
        return self.base + 100 + SITES.index(site)

    @property
    def s3(self) -> int:
        """The shared S3 (and site-a's, per site)."""
        return self.base + 102

    def s3_of(self, site: str) -> int:
        """A site's own S3 when each site has one (site-a +102, site-b +103)."""
        return self.base + 102 + SITES.index(site)

    def nexus(self, site: str) -> int:
        return self.base + 110 + SITES.index(site)

    def web(self, site: str) -> int:
        return self.base + 112 + SITES.index(site)

    def opennebula(self, site: str) -> int:
        """A site's OpenNebula front-end (XML-RPC at ``http://127.0.0.1:PORT/RPC2``)."""
        return self.base + 114 + SITES.index(site)

    def vms(self, site: str) -> tuple[int, int]:
        """The first port and the number of ports of a site's VM health endpoints (site-a +120,
        site-b +140, 20 each; VM ``ID`` answers on ``first + ID % 20``)."""
        return self.base + 120 + 20 * SITES.index(site), 20


@dataclass(frozen=True)
class S3Store:
    """One S3 of the lab: the daemon serving it, its bucket and its keys."""

    daemon: str
    port: int
    bucket: str
    access_key: str
    secret_key: str
    credentials_file: Path

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def to_json(self) -> dict[str, Any]:
        return {
            "endpoint": self.endpoint,
            "bucket": self.bucket,
            "access_key": self.access_key,
            "secret_key": self.secret_key,
            "credentials_file": str(self.credentials_file),
        }


def s3_stores(root: Path, ports: Ports, layout: str) -> dict[str, S3Store]:
    """Each site's S3 in ``layout``: the same store for both sites when ``shared``."""
    if layout == "shared":
        shared = S3Store("s3", ports.s3, BUCKET, ACCESS_KEY, SECRET_KEY, root / "s3" / "credentials")
        return {site: shared for site in SITES}
    return {
        site: S3Store(
            f"s3-{site}",
            ports.s3_of(site),
            f"{BUCKET}-{site}",
            f"{ACCESS_KEY}-{site}",
            f"{SECRET_KEY}-{site}",
            root / "s3" / f"credentials-{site}",
        )
        for site in SITES
    }


def _daemons_of(stores: dict[str, S3Store]) -> list[S3Store]:
    """The distinct S3 daemons (one when shared)."""
    return list({st.daemon: st for st in stores.values()}.values())


def read_record(root: Path) -> dict[str, Any]:
    """The lab's own record (``lab.json``): its S3 layout and whether it was seeded; {} when none."""
    try:
        data = json.loads((root / RECORD).read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _write_record(root: Path, **changes: Any) -> dict[str, Any]:
    record = {**read_record(root), **changes}
    tmp = root / f"{RECORD}.tmp"
    tmp.write_text(json.dumps(record, indent=2, sort_keys=True) + "\n")
    tmp.replace(root / RECORD)
    return record


def requested_layout() -> str | None:
    """The S3 layout ``$STANDBY_LAB_S3`` asks for (None when unset); a wrong value is a LabError."""
    wanted = (os.environ.get(S3_ENV) or "").strip()
    if not wanted:
        return None
    if wanted not in S3_LAYOUTS:
        raise LabError(
            f"{S3_ENV}={wanted!r} is not an S3 layout of the lab",
            hint=f"set {S3_ENV} to {' or '.join(S3_LAYOUTS)}, or unset it (default {DEFAULT_S3_LAYOUT})",
            context={"value": wanted},
        )
    return wanted


def s3_layout(root: Path) -> str:
    """The lab's S3 layout: what its record says, else what a fresh ``up`` would choose."""
    recorded = read_record(root).get("s3")
    if recorded in S3_LAYOUTS:
        return str(recorded)
    return requested_layout() or DEFAULT_S3_LAYOUT


@dataclass
class LabStatus:
    """What the lab runs, for people (``describe``) and scripts (``to_json``)."""

    dir: Path
    running: bool
    kubeconfig: Path
    config: Path
    s3_endpoint: str
    ceph_confs: dict[str, Path]
    nexus_urls: dict[str, str | None] = field(default_factory=dict)
    mirror: dict[str, str] = field(default_factory=dict)
    daemons: dict[str, bool] = field(default_factory=dict)
    down: dict[str, bool] = field(default_factory=dict)
    s3_layout: str = DEFAULT_S3_LAYOUT
    s3: dict[str, S3Store] = field(default_factory=dict)
    """Each site's S3 (the same one for both sites when the layout is ``shared``)."""
    opennebula: dict[str, one_control.FrontendInfo] = field(default_factory=dict)
    """Each site's OpenNebula front-end whose daemon runs (frozen or not)."""

    def to_json(self) -> dict[str, Any]:
        """The stable JSON shape of ``standby lab status --json``.

        ``s3.layout`` is ``shared`` or ``per-site``; each site's own store is ``sites.<site>.s3``.
        With the shared layout ``s3`` also holds that one store's endpoint, bucket and keys.
        ``sites.<site>.opennebula`` is the site's front-end (endpoint, user, password file), null
        when it does not run.
        """
        top: dict[str, Any] = {"layout": self.s3_layout}
        if self.s3_layout == "shared" and self.s3:
            top.update(self.s3[SITES[0]].to_json())
        return {
            "running": self.running,
            "kubeconfig": str(self.kubeconfig),
            "config": str(self.config),
            "s3": top,
            "sites": {
                s: {
                    "ceph_conf": str(self.ceph_confs[s]),
                    "nexus_url": self.nexus_urls.get(s),
                    "mirror": self.mirror.get(s),
                    "down": self.down.get(s, False),
                    "s3": self.s3[s].to_json() if s in self.s3 else None,
                    "opennebula": _frontend_json(self.opennebula.get(s)),
                }
                for s in SITES
            },
        }


def _frontend_json(info: one_control.FrontendInfo | None) -> dict[str, str] | None:
    if info is None:
        return None
    return {"endpoint": info.endpoint, "user": info.user, "password_file": str(info.password_file)}


def describe(st: LabStatus) -> str:
    """A short human summary of the lab."""
    lines = [f"lab {'UP' if st.running else 'DOWN'} in {st.dir}"]
    down = [name for name, ok in st.daemons.items() if not ok]
    if down:
        lines.append(f"  not running: {', '.join(down)}")
    lines.append(f"  kubeconfig: {st.kubeconfig}  (contexts site-a, site-b)")
    lines.append(f"  config:     {st.config}")
    if st.s3_layout == "shared" and st.s3:
        one = st.s3[SITES[0]]
        lines.append(
            f"  s3:         {one.endpoint} bucket {one.bucket}, shared by both sites "
            f"(credentials in {one.credentials_file})"
        )
    else:
        lines.append("  s3:         one store per site")
    for s in SITES:
        lines.append(f"  {s}{' DOWN (frozen)' if st.down.get(s) else ''}: ceph {st.ceph_confs[s]}")
        if st.s3_layout != "shared" and s in st.s3:
            mine = st.s3[s]
            lines.append(
                f"    s3: {mine.endpoint} bucket {mine.bucket} (credentials in {mine.credentials_file})"
            )
        lines.append(f"    nexus: {st.nexus_urls.get(s) or '-'}")
        fe = st.opennebula.get(s)
        lines.append(
            f"    opennebula: {fe.endpoint} (user {fe.user}, password in {fe.password_file})"
            if fe
            else "    opennebula: -"
        )
        lines.append(f"    mirror {seeds.POOL}/{seeds.IMAGE_NAME}: {st.mirror.get(s) or '-'}")
    if any(st.nexus_urls.values()):
        lines.append(f"  nexus admin password: Secret {seeds.NAMESPACE}/{seeds.ADMIN_SECRET}, key 'password'")
    return "\n".join(lines)


# ------------------------------------------------------------------------------------------- up/down


def up(root: Path, log: Log = print) -> LabStatus:
    """Bring both sites up; idempotent.

    A fresh lab is seeded (:mod:`lab.seeds`); a used one comes back exactly as it was left: its
    apiservers reload their objects, S3 its saved objects, and nothing is seeded, promoted or
    started that its objects do not already ask for. Only when a site's Ceph lost its data (a
    memstore OSD killed without a clean stop) is the lab rebuilt from its seeds, which is logged.
    """
    missing = ceph.missing_packages()
    if missing:
        raise LabError(
            f"the lab needs Ceph packages that are missing: {', '.join(missing)}",
            hint="run `make lab-up` as root, or: apt-get install -y --no-install-recommends "
            "ceph-mon ceph-osd ceph-mgr rbd-mirror ceph-common python3-rbd python3-rados",
        )
    ports = Ports(port_base())
    root.mkdir(parents=True, exist_ok=True)
    fresh = _is_fresh(root)
    layout = _settle_layout(root, fresh)
    for site in SITES:
        if _frozen_file(root, site).exists():
            log(f"lab: {site} was down (frozen); continuing it first")
            site_up(root, site, log)
    started = time.monotonic()
    log("lab: starting Ceph for site-a and site-b")
    before = _fsids(root)
    cs = _ceph_up(root, ports)
    lost = [s for s in SITES if before.get(s) and _fsids(root).get(s) != before[s]]
    if lost and not fresh:
        log(
            f"lab: warning: the Ceph of {' and '.join(lost)} lost its data; the lab cannot come back as it "
            "was left and starts again from its seeds (Ceph, apiservers and S3)"
        )
        _stop_workloads(root, log)
        ceph.ceph_down(root)
        shutil.rmtree(root / "ceph", ignore_errors=True)
        _forget_objects(root)
        fresh = True
        cs = _ceph_up(root, ports)
    if fresh:
        _write_record(root, seeded=False)
        _create_seeded_images(cs)
    log(
        f"lab: Ceph up ({time.monotonic() - started:.0f}s); starting S3 ({layout}), apiservers "
        "and OpenNebula front-ends"
    )
    stores = s3_stores(root, ports, layout)
    _start_s3(root, stores)
    for site in SITES:
        _start_apiserver(root, ports, site, cs[site])
    _start_frontends(root, ports, cs)
    _write_kubeconfig(root, ports)
    _write_config(root, stores)
    if fresh:
        _seed(root)
        _write_record(root, seeded=True)
    else:
        log("lab: a used lab: nothing seeded; its sites run what their apiservers hold")
    _install_standby_access(root, ports)
    if fresh:
        _wait_nexus(root, "site-a")
        log(
            f"lab: Nexus runs on site-a ({time.monotonic() - started:.0f}s); waiting for site-b to report up+replaying"
        )
        try:
            # rbd-mirror writes its first status about 20 s after an image appears, then every 30 s.
            wait_until(lambda: _mirror_state(cs["site-b"]).startswith("up+replaying"), timeout=120, what="")
        except LabError:
            log(f"lab: warning: site-b does not report up+replaying yet ({_mirror_state(cs['site-b'])})")
    else:
        _wait_placed_nexus(root, log)
    log(f"lab: up in {time.monotonic() - started:.0f}s")
    return status(root)


def _ceph_up(root: Path, ports: Ports) -> dict[str, ceph.CephSite]:
    try:
        return ceph.ceph_up(root, ports.base, pool=seeds.POOL, extra_pools=(one_seeds.POOL,))
    except ceph.CephLabError as exc:
        raise LabError(str(exc), hint="read the log named, then `standby lab down` and retry") from None


def _create_seeded_images(cs: dict[str, ceph.CephSite], *, apps: bool = True) -> None:
    """Create the seeded RBD images (idempotent), all at once: each snapshot-mode image waits for
    rbd-mirror to create site-b's copy before its schedule is added there, and those waits overlap.

    Nexus's and the web app's images (``apps``) in the lab's pool; the OpenNebula seeds' disks in
    pool ``one``, journal-mode ones enabled and left to rbd-mirror."""
    jobs = [(one_seeds.POOL, image, one_seeds.DISK_MB, mode) for image, mode in one_seeds.RBD_IMAGES.items()]
    if apps:
        jobs = [
            (seeds.POOL, seeds.IMAGE_NAME, 64, "snapshot"),
            (seeds.POOL, seeds.WEB_IMAGE, 16, "snapshot"),
            *jobs,
        ]
    with concurrent.futures.ThreadPoolExecutor(max_workers=len(jobs)) as pool:
        futures = [
            pool.submit(
                ceph.create_mirrored_image, cs["site-a"], cs["site-b"], p, image, size_mb=mb, mode=mode
            )
            for p, image, mb, mode in jobs
        ]
        for future in futures:
            future.result()


def _fsids(root: Path) -> dict[str, str]:
    """Each site's Ceph fsid (a new one after ``up``: the site was recreated, its data lost)."""
    out = {}
    for site, cs in ceph.sites(root).items():
        try:
            fsid = json.loads((cs.dir / "site.json").read_text()).get("fsid")
        except (OSError, ValueError):
            continue
        if fsid:
            out[site] = str(fsid)
    return out


def _is_fresh(root: Path) -> bool:
    """Whether the lab has yet to be seeded: its record says so, or (no record) no apiserver has state."""
    record = read_record(root)
    if "seeded" in record:
        return not record["seeded"]
    return not any((root / "kube" / s / KUBE_STATE_FILE).exists() for s in SITES)


def _settle_layout(root: Path, fresh: bool) -> str:
    """The S3 layout ``up`` uses: the recorded one; a fresh lab takes ``$STANDBY_LAB_S3`` or the default."""
    recorded = read_record(root).get("s3")
    wanted = requested_layout()
    if recorded in S3_LAYOUTS and not fresh:
        if wanted and wanted != recorded:
            raise LabError(
                f"the lab in {root} was set up with {recorded} S3, and {S3_ENV}={wanted} asks for {wanted}",
                hint=f"unset {S3_ENV} to keep it, or switch with `{S3_ENV}={wanted} standby lab reset` "
                "(a reset empties S3)",
                context={"lab_dir": str(root), "s3": recorded},
            )
        return str(recorded)
    layout = wanted or (str(recorded) if recorded in S3_LAYOUTS else DEFAULT_S3_LAYOUT)
    _write_record(root, s3=layout)
    return layout


def _wait_placed_nexus(root: Path, log: Log) -> None:
    """On a used lab: wait for Nexus wherever a site holds its CR (a warning if it does not run)."""
    ports = Ports(port_base())
    for site in SITES:
        if site_is_down(root, site) or not _has_nexus_cr(ports, site, root):
            continue
        try:
            _wait_nexus(root, site)
            log(f"lab: Nexus runs on {site}, as its Nexus CR asks")
        except LabError as exc:
            log(f"lab: warning: {site} holds a Nexus CR but Nexus does not run there: {exc}")


def down(root: Path, log: Log = print) -> None:
    """Stop everything the lab started, by PID; harmless when nothing runs.

    The apiservers save their objects and S3 its bucket(s) in the lab folder, and the memstore
    OSDs their data, so the next ``up`` finds the lab as it was.
    """
    _thaw_all(root, log)  # a SIGSTOPped process would not act on SIGTERM
    _stop_workloads(root, log)
    if root.exists():
        ceph.ceph_down(root)
        log("lab: Ceph stopped")


#: Names of every S3 daemon the lab may run, whatever its layout.
S3_DAEMONS = ("s3", *(f"s3-{s}" for s in SITES))


def _stop_workloads(root: Path, log: Log) -> None:
    """Stop the apiservers (first: their controllers would restart a simulator stopped before them),
    S3 (which saves its bucket), the apps' simulators and the OpenNebula front-ends (their state is
    on disk already)."""
    run = root / "run"
    for name in ("kube-site-a", "kube-site-b"):
        if stop_daemon(run / f"{name}.pid"):
            log(f"lab: stopped {name}")
    for name in S3_DAEMONS:
        if stop_daemon(run / f"{name}.pid", timeout=120):
            log(f"lab: stopped {name} (its objects saved)")
    for site in SITES:
        if stop_daemon(root / "nexus" / f"{site}.pid"):
            log(f"lab: stopped nexus on {site}")
        if stop_daemon(root / "web" / f"{site}.pid"):
            log(f"lab: stopped the web app on {site}")
        if one_control.stop_frontend(root, site):
            log(f"lab: stopped the OpenNebula front-end of {site} (its state kept)")


def _forget_objects(root: Path) -> None:
    """Drop what the apiservers, S3 and the OpenNebula front-ends saved (the apiservers and S3 start
    empty, the front-ends seeded again); audit logs, tokens and passwords stay."""
    for site in SITES:
        (root / "kube" / site / KUBE_STATE_FILE).unlink(missing_ok=True)
        one_control.forget_state(root, site)
    shutil.rmtree(root / "s3" / "state", ignore_errors=True)
    _write_record(root, seeded=False)


# ------------------------------------------------------------------------------------------- reset


def reset(root: Path, log: Log = print) -> LabStatus:
    """Bring a lab back to its seeded state without rebuilding Ceph.

    * Frozen sites are continued; the apiservers, both sites' app simulators and S3 are stopped.
    * Each seeded image (Nexus's, the web app's, the OpenNebula VMs' ``one/one-0`` and
      ``one/one-1``) is made primary on site-a and secondary on
      site-b (:func:`_image_home`): handed back with a demote and a plain promote when site-b
      holds it, else site-a's copy wins and site-b resyncs from it. Image contents are kept
      (what Nexus stored stays); other images in the pool are left alone. Client blocklists are
      cleared on both sites.
    * Both apiservers lose every object and are seeded again (audit logs and tokens stay), so
      their controllers start Nexus and the web app on site-a only.
    * Every S3 bucket is emptied: placement records, operation journals and locks, backups, RPO
      samples. ``$STANDBY_LAB_S3`` may switch the S3 layout here.
    * Both OpenNebula front-ends and their VM processes are stopped, lose their state and start
      again from their seeds (their passwords stay), site-a's two VMs running.
    * It returns once Nexus runs on site-a and both images report healthy mirroring (site-a
      ``up+stopped``, site-b ``up+replaying``).
    """
    if not (root / "ceph").is_dir():
        raise LabError(
            f"there is no lab in {root} to reset",
            hint="bring one up: `standby lab up --lab-dir DIR`",
            context={"lab_dir": str(root)},
        )
    started = time.monotonic()
    ports = Ports(port_base())
    layout = requested_layout() or s3_layout(root)
    _thaw_all(root, log)
    log("lab: reset: stopping the apiservers, S3 and the apps")
    _stop_workloads(root, log)
    before = _fsids(root)
    cs = _ceph_up(root, ports)
    if all(before.get(s) and _fsids(root).get(s) == before[s] for s in SITES):
        _create_seeded_images(cs, apps=False)  # a lab made before the VM images existed gets them
        for pool, image in _SEEDED_IMAGES:
            _image_home(cs, image, log, pool=pool)
        for site in SITES:
            ceph.run(cs[site].ceph_cli("osd", "blocklist", "clear"), 30, check=False, site=site)
    _forget_objects(root)
    _write_record(root, s3=layout)
    back = up(root, log)
    for pool, image in _SEEDED_IMAGES:
        _wait_mirroring_home(cs, image, pool=pool)
    log(f"lab: reset to its seeds in {time.monotonic() - started:.0f}s")
    return back


#: Every seeded image (pool, name): Nexus's, the web app's and the OpenNebula VMs' disks.
_SEEDED_IMAGES = (
    (seeds.POOL, seeds.IMAGE_NAME),
    (seeds.POOL, seeds.WEB_IMAGE),
    *((one_seeds.POOL, image) for image in one_seeds.RBD_IMAGES),
)


def _primary(cs: ceph.CephSite, image: str, pool: str = seeds.POOL) -> bool | None:
    """Whether ``image`` is primary on ``cs`` (None: the site has no such image)."""
    proc = ceph.run(cs.cli("info", f"{pool}/{image}", "--format", "json"), 30, check=False, site=cs.name)
    if proc.returncode != 0:
        return None
    return bool((json.loads(proc.stdout).get("mirroring") or {}).get("primary"))


def _peer_demotion_synced(cs: ceph.CephSite, image: str, pool: str = seeds.POOL) -> bool:
    """Whether ``cs`` holds, complete, the peer's demotion snapshot of ``image`` (newest mirror snapshot)."""
    try:
        snaps = ceph.run_json(cs.cli("snap", "ls", "--all", f"{pool}/{image}", "--format", "json"), 30)
    except ceph.CephLabError:
        return False
    mirror = [s for s in snaps or [] if (s.get("namespace") or {}).get("type") == "mirror"]
    if not mirror:
        return False
    newest = max(mirror, key=lambda s: int(s["id"]))["namespace"]
    return "primary_snap_id" in newest and newest.get("state") == "demoted" and bool(newest.get("complete"))


def _image_home(cs: dict[str, ceph.CephSite], image: str, log: Log, pool: str = seeds.POOL) -> None:
    """Make ``image`` primary on site-a and secondary on site-b (the seeded roles). A journal-mode
    image has no demotion snapshot to wait for: its plain promote is retried until rbd-mirror lets go."""
    a, b = cs["site-a"], cs["site-b"]
    spec = f"{pool}/{image}"
    on_a, on_b = _primary(a, image, pool), _primary(b, image, pool)
    journal = one_seeds.RBD_IMAGES.get(image) == "journal" and pool == one_seeds.POOL
    if on_a is None or on_b is None:
        raise LabError(
            f"image {spec} is missing on {'site-a' if on_a is None else 'site-b'}: the lab cannot be reset",
            hint="rebuild it: `standby lab down`, remove the lab folder, `standby lab up`",
            context={"image": spec},
        )
    if on_a and not on_b:
        log(f"lab: reset: {spec} is already primary on site-a")
        return
    resync_b = bool(on_a and on_b)  # split-brain: site-a's copy wins
    if on_b:
        ceph.run(b.cli("mirror", "image", "demote", spec), 60, site=b.name)
    if not on_a:
        try:
            if not journal:
                wait_until(
                    lambda: _peer_demotion_synced(a, image, pool),
                    timeout=120,
                    what=f"site-a to copy site-b's demotion of {spec}",
                )
            # rbd-mirror may still hold the image for a moment (EROFS, EBUSY): try again, as a controller would.
            wait_until(
                lambda: (
                    ceph.run(
                        a.cli("mirror", "image", "promote", spec), 60, check=False, site=a.name
                    ).returncode
                    == 0
                ),
                timeout=90,
                what=f"a plain promote of {spec} on site-a",
            )
            log(f"lab: reset: handed {spec} back to site-a (demoted on site-b, promoted on site-a)")
        except LabError:
            ceph.run(a.cli("mirror", "image", "promote", "--force", spec), 60, site=a.name)
            resync_b = True
            log(f"lab: reset: {spec} force-promoted on site-a (a plain promote did not succeed)")
    if resync_b:
        ceph.run(b.cli("mirror", "image", "resync", spec), 60, site=b.name)
        log(f"lab: reset: {spec} on site-b resyncs from site-a")


def _wait_mirroring_home(
    cs: dict[str, ceph.CephSite], image: str, timeout: float = 240, pool: str = seeds.POOL
) -> None:
    """Wait until ``image`` mirrors site-a to site-b (resyncing site-b again if it reports split-brain)."""
    a, b = cs["site-a"], cs["site-b"]
    spec = f"{pool}/{image}"

    def healthy() -> bool:
        sa, sb = (
            ceph.mirror_image_status(a, pool, image),
            ceph.mirror_image_status(b, pool, image),
        )
        if sb.get("state") == "up+error" and "split-brain" in str(sb.get("description", "")):
            ceph.run(b.cli("mirror", "image", "resync", spec), 60, check=False, site=b.name)
        return str(sb.get("state")) == "up+replaying" and str(sa.get("state")) == "up+stopped"

    wait_until(healthy, timeout=timeout, what=f"{spec} to mirror site-a to site-b (up+stopped, up+replaying)")


def status(root: Path) -> LabStatus:
    """What runs now; cheap enough for scripts."""
    ports = Ports(port_base())
    cs = ceph.sites(root, ports.base)
    layout = s3_layout(root)
    stores = s3_stores(root, ports, layout)
    daemons: dict[str, bool] = {}
    for site, procs in ceph.ceph_status(root).items():
        for daemon, pid in procs.items():
            daemons[f"{site}/{daemon}"] = pid is not None
    for name in ("kube-site-a", "kube-site-b", *(st.daemon for st in _daemons_of(stores))):
        daemons[name] = read_pid(root / "run" / f"{name}.pid") is not None
    for site in SITES:
        daemons[f"opennebula-{site}"] = one_control.running(root, site)
    st = LabStatus(
        dir=root,
        running=bool(daemons) and all(daemons.values()),
        kubeconfig=root / "kubeconfig",
        config=root / "standby.yaml",
        s3_endpoint=stores[SITES[0]].endpoint,
        ceph_confs={s: cs[s].conf for s in SITES},
        daemons=daemons,
        down={s: site_is_down(root, s) for s in SITES},
        s3_layout=layout,
        s3=stores,
        opennebula={
            s: one_control.frontend_info(root, s, ports.opennebula(s))
            for s in SITES
            if daemons[f"opennebula-{s}"]
        },
    )
    if not st.running:
        return st
    with concurrent.futures.ThreadPoolExecutor(max_workers=len(SITES)) as pool:
        views = {s: pool.submit(_site_view, ports, cs[s], st.down[s], root) for s in SITES}
        for site, view in views.items():
            st.nexus_urls[site], st.mirror[site] = view.result()
    return st


def _site_view(ports: Ports, cs: ceph.CephSite, down: bool, root: Path) -> tuple[str | None, str]:
    """A site's Nexus URL and image mirror state, with short timeouts; nothing is asked of a frozen site."""
    if down:
        return None, "frozen"
    return _nexus_url(ports, cs.name, root), _mirror_state(cs, timeout=10)


# ------------------------------------------------------------------------------------ losing a site


@dataclass(frozen=True)
class SiteProcess:
    """One process of a site: what it is, its PID, and its start time (which guards against PID reuse)."""

    what: str
    pid: int
    start: int

    def current(self) -> bool:
        """Whether this very process still exists (same PID, same start time, not a zombie)."""
        return alive(self.pid) and start_time(self.pid) == self.start


def site_down(root: Path, site: str, log: Log = print) -> list[SiteProcess]:
    """Lose ``site``: SIGSTOP every process of it, keeping its in-memory data; idempotent.

    Frozen: its apiserver and the processes it started (exec'd ``rbd``, the Nexus simulator), its
    Nexus simulator, its OpenNebula front-end and its VM processes and its Ceph daemons
    (rbd-mirror, mgr, memstore OSD, mon), in that order, so no frozen consumer ever sees its Ceph
    frozen first; with per-site S3, the site's S3 too. A
    shared S3 and the other site run on.
    The frozen processes are recorded in ``run/<site>.frozen`` for :func:`site_up`.
    """
    _check_site(site)
    started = time.monotonic()
    frozen = {p.pid: p for p in _read_frozen(root, site) if p.current()}
    since = (_frozen_since(root, site) if frozen else None) or time.time()
    newly = 0
    for _ in range(3):  # a process started while freezing (by a parent not frozen yet) is caught next round
        fresh = [p for p in _site_processes(root, site) if p.pid not in frozen]
        if not fresh:
            break
        frozen.update((p.pid, p) for p in fresh)
        _write_frozen(root, site, list(frozen.values()), since)  # recorded first: site_up can always undo
        for p in fresh:
            if _signal(p.pid, signal.SIGSTOP):
                newly += 1
                log(f"lab: {site}: froze {p.what} (pid {p.pid})")
    frozen = {pid: p for pid, p in frozen.items() if p.current()}
    if not frozen:
        _frozen_file(root, site).unlink(missing_ok=True)
        raise LabError(
            f"no process of {site} runs in {root}: there is no site to take down",
            hint="bring the lab up first: `standby lab up --lab-dir DIR`",
            context={"site": site, "lab_dir": str(root)},
        )
    _write_frozen(root, site, list(frozen.values()), since)
    if not newly:
        log(f"lab: {site} was already down (frozen); nothing more to freeze")
    log(f"lab: {site} DOWN (frozen): {len(frozen)} processes in {time.monotonic() - started:.2f}s")
    return list(frozen.values())


def site_up(root: Path, site: str, log: Log = print, *, fail_over_mgr: bool = True) -> list[SiteProcess]:
    """Regain ``site``: SIGCONT exactly the processes :func:`site_down` froze; harmless when it is up.

    Ceph continues first (mon, OSD, mgr, rbd-mirror), then the OpenNebula front-end, then Nexus,
    then the apiserver. After a
    freeze long enough for the mgr to forget rbd-mirror's status, the mgr is failed over (see
    :func:`_fail_over_mgr`) unless ``fail_over_mgr`` is false.
    """
    _check_site(site)
    if not _frozen_file(root, site).exists():
        log(f"lab: {site} is not down; nothing to continue")
        return []
    started = time.monotonic()
    frozen_for = time.time() - (_frozen_since(root, site) or time.time())
    continued = []
    for p in reversed(_read_frozen(root, site)):
        if p.current() and _signal(p.pid, signal.SIGCONT):
            continued.append(p)
            log(f"lab: {site}: continued {p.what} (pid {p.pid})")
        else:
            log(f"lab: {site}: {p.what} (pid {p.pid}) is gone; not continued")
    if fail_over_mgr and frozen_for >= MGR_FORGETS_AFTER and any(p.what == "ceph-mgr" for p in continued):
        _fail_over_mgr(root, site, frozen_for, log)
    if frozen_for >= ceph.READ_LEASE_S / 2 and any(p.what == "ceph-osd" for p in continued):
        _repeer_osd(root, site, frozen_for, log)
    _frozen_file(root, site).unlink(missing_ok=True)
    log(
        f"lab: {site} UP again after {frozen_for:.0f}s down: "
        f"{len(continued)} processes in {time.monotonic() - started:.2f}s"
    )
    return continued


#: Seconds of freeze after which the mgr may have dropped rbd-mirror's status: it prunes a service
#: daemon silent for ``mgr_service_beacon_grace`` (60 s, by the wall clock); with a margin.
MGR_FORGETS_AFTER = 30.0


def _fail_over_mgr(root: Path, site: str, frozen_for: float, log: Log) -> None:
    """``ceph mgr fail`` on ``site``: the mgr respawns in place (same PID) and every daemon reconnects.

    After a stall past ``mgr_service_beacon_grace`` the mgr has pruned rbd-mirror's status, and
    rbd-mirror re-sends it only on a new mgr session, so `rbd mirror pool status` would report its
    daemon UNKNOWN for good (and `lab up` would find the site unhealthy). A real site that comes back
    restarts its daemons; this gives the same fresh sessions without losing anything in RAM.
    """
    _after_freeze(
        root,
        site,
        log,
        ("mgr", "fail", "x"),
        done=f"failed over ceph-mgr (down {frozen_for:.0f}s): rbd-mirror reports its status again",
        failed="could not fail over ceph-mgr ({}); rbd-mirror may report UNKNOWN",
    )


def _repeer_osd(root: Path, site: str, frozen_for: float, log: Log) -> None:
    """``ceph osd down 0`` on ``site``: the OSD re-asserts itself and every PG starts a new interval.

    A freeze this long may have outlasted the PGs' read lease, and a single-OSD PG of Ceph 16.2
    then stays "laggy" and parks every op (see :data:`lab.ceph.READ_LEASE_RATIO`). A new interval
    clears it within seconds; a real site that comes back restarts its OSDs, with the same effect.
    """
    _after_freeze(
        root,
        site,
        log,
        ("osd", "down", "0"),
        done=f"re-peered osd.0 (down {frozen_for:.0f}s, past half its PGs' read lease)",
        failed="could not re-peer osd.0 ({}); its PGs may stay laggy",
    )


def _after_freeze(root: Path, site: str, log: Log, args: tuple[str, ...], *, done: str, failed: str) -> None:
    """``ceph ARGS`` on ``site``, logging ``done``; or a warning, ``failed`` with the error, if it fails."""
    cs = ceph.sites(root)[site]
    try:
        ceph.run(cs.ceph_cli(*args, "--connect-timeout", "10"), timeout=20, site=site)
    except ceph.CephLabError as exc:
        log(f"lab: {site}: warning: {failed.format(exc)}")
        return
    log(f"lab: {site}: {done}")


def site_is_down(root: Path, site: str) -> bool:
    """Whether ``site`` is frozen by :func:`site_down` (a recorded process still exists)."""
    return any(p.current() for p in _read_frozen(root, site))


def _check_site(site: str) -> None:
    if site not in SITES:
        raise LabError(
            f"unknown lab site {site!r}",
            hint=f"the lab's sites are {' and '.join(SITES)}",
            context={"site": site},
        )


def _site_processes(root: Path, site: str) -> list[SiteProcess]:
    """Every live process of ``site``, parents before their children, in freezing order.

    Found by PID files (apiserver, Nexus simulator, OpenNebula front-end and VMs, Ceph daemons, checked
    against their argv by :func:`lab.ceph.ceph_status`), plus any Ceph daemon of this site's conf
    whose PID file is missing, plus the descendants of each; the site's own S3 when each site has
    one. Never a shared S3 nor the other site.
    """
    cs = ceph.sites(root)[site]
    daemons = ceph.ceph_status(root)[site]
    roots: list[tuple[str, int | None]] = [
        ("apiserver", read_pid(root / "run" / f"kube-{site}.pid")),
        ("nexus", read_pid(root / "nexus" / f"{site}.pid")),
        ("nexus", read_pid(root / "nexus" / f"{site}.sim.pid")),
        ("webapp", read_pid(root / "web" / f"{site}.pid")),
        ("webapp", read_pid(root / "web" / f"{site}.sim.pid")),
        ("opennebula", read_pid(one_control.pid_file(root, site))),
        *(("opennebula vm", read_pid(f)) for f in one_control.vm_pid_files(root, site)),
        *((_DAEMON_NAMES[d], daemons.get(d)) for d in ceph.STOP_ORDER),
    ]
    if s3_layout(root) == "per-site":
        roots.append(("s3", read_pid(root / "run" / f"s3-{site}.pid")))
    binaries = {os.path.basename(cs.daemon_argv(d)[0]): d for d in ceph.STOP_ORDER}
    for other, argv in ceph.lab_processes(root):
        daemon = binaries.get(os.path.basename(argv[0])) if argv else None
        if daemon and str(cs.conf) in argv:
            roots.append((_DAEMON_NAMES[daemon], other))
    # A root (say the Nexus simulator, a child of the apiserver) keeps its own name.
    names = {pid: what for what, pid in reversed(roots) if pid is not None}
    found: dict[int, SiteProcess] = {}
    for what, root_pid in roots:
        if root_pid is None or root_pid in found:
            continue
        for member in (root_pid, *descendants(root_pid)):
            label = names.get(member) or f"{what} child ({_comm(member)})"
            begun = start_time(member)
            if member not in found and begun is not None:
                found[member] = SiteProcess(what=label, pid=member, start=begun)
    return list(found.values())


_DAEMON_NAMES = {"mon": "ceph-mon", "osd": "ceph-osd", "mgr": "ceph-mgr", "rbd-mirror": "rbd-mirror"}


def _comm(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/comm").read_text().strip()
    except OSError:
        return "?"


def _signal(pid: int, sig: signal.Signals) -> bool:
    try:
        os.kill(pid, sig)
    except ProcessLookupError:
        return False
    return True


def _frozen_file(root: Path, site: str) -> Path:
    return root / "run" / f"{site}.frozen"


def _read_frozen(root: Path, site: str) -> list[SiteProcess]:
    """The processes recorded by :func:`site_down` (empty without a readable record)."""
    try:
        data = json.loads(_frozen_file(root, site).read_text())
        return [SiteProcess(str(p["what"]), int(p["pid"]), int(p["start"])) for p in data["processes"]]
    except (OSError, ValueError, KeyError, TypeError):
        return []


def _frozen_since(root: Path, site: str) -> float | None:
    """When :func:`site_down` first froze ``site`` (seconds since the epoch), if it is recorded."""
    try:
        return float(json.loads(_frozen_file(root, site).read_text())["frozen_at"])
    except (OSError, ValueError, KeyError, TypeError):
        return None


def _write_frozen(root: Path, site: str, processes: list[SiteProcess], since: float) -> None:
    path = _frozen_file(root, site)
    path.parent.mkdir(parents=True, exist_ok=True)
    record = {
        "site": site,
        "since": time.strftime("%Y-%m-%dT%H:%M:%S%z", time.localtime(since)),
        "frozen_at": since,
        "processes": [{"what": p.what, "pid": p.pid, "start": p.start} for p in processes],
    }
    tmp = path.with_suffix(".frozen.tmp")
    tmp.write_text(json.dumps(record, indent=2) + "\n")
    tmp.replace(path)


def _thaw_all(root: Path, log: Log) -> None:
    """Continue every frozen site, and any stopped process of a site whose record is lost."""
    for site in SITES:
        if _frozen_file(root, site).exists():
            site_up(root, site, log, fail_over_mgr=False)
        if not (root / "ceph").is_dir():
            continue
        for p in _site_processes(root, site):
            if stopped(p.pid) and _signal(p.pid, signal.SIGCONT):
                log(f"lab: {site}: continued stopped {p.what} (pid {p.pid})")


# ------------------------------------------------------------------------------------------ pieces


def _answers_below_500(url: str) -> bool:
    return httpx.get(url, timeout=2).status_code < 500


def _start_s3(root: Path, stores: dict[str, S3Store]) -> None:
    """Start the lab's S3 daemon(s), each with its saved objects back, and write the credentials files."""
    run = root / "run"
    (root / "s3").mkdir(exist_ok=True)
    for store in _daemons_of(stores):
        ready_file = run / f"{store.daemon}.ready"
        running = read_pid(run / f"{store.daemon}.pid") is not None
        if not running:
            ready_file.unlink(missing_ok=True)
        url = f"{store.endpoint}/{store.bucket}"
        # A daemon started now is ready once it has put its saved objects back; one already running
        # (perhaps started before ready files existed) once it answers.
        ready: Callable[[], bool] = ready_file.exists
        if running:
            ready = partial(_answers_below_500, url)
        argv = [
            sys.executable,
            "-m",
            "lab.s3",
            "--port",
            str(store.port),
            "--bucket",
            store.bucket,
            "--access-key",
            store.access_key,
            "--secret-key",
            store.secret_key,
            "--state-dir",
            str(root / "s3" / "state" / store.daemon),
            "--ready-file",
            str(ready_file),
        ]
        start_service(store.daemon, argv, run, port=store.port, ready=ready, cwd=ROOT, timeout=120)
        store.credentials_file.write_text(credentials_file_text(store.access_key, store.secret_key))
        store.credentials_file.chmod(0o600)


def _start_frontends(
    root: Path, ports: Ports, cs: dict[str, ceph.CephSite] | None = None
) -> dict[str, one_control.FrontendInfo]:
    """Start each site's OpenNebula front-end (seeded as that site on its first start; a running one
    is left alone) and wait until it answers with the site's password. With ``cs`` (``lab up``)
    its VMs are processes on the site's Ceph (:class:`lab.opennebula.runtime.ProcessRuntime`):
    the seeded ones start with site-a's front-end, and a used lab's front-end starts again those
    recorded as running; without, VMs are records only."""
    return {
        site: one_control.start_frontend(
            root,
            site,
            ports.opennebula(site),
            ceph=None
            if cs is None
            else CephAccess(str(cs[site].conf), cs[site].cluster, str(cs[site].keyring)),
            vm_ports=ports.vms(site),
            timeout=90.0,
        )
        for site in SITES
    }


def _start_apiserver(root: Path, ports: Ports, site: str, cs: ceph.CephSite) -> None:
    run = root / "run"
    port = ports.kube(site)
    exec_env = dict(cs.env())
    # Rook's toolbox has the cluster's pool as rbd's default pool: `rbd mirror pool status` works bare.
    exec_env["CEPH_ARGS"] = f"{exec_env.get('CEPH_ARGS', '')} --rbd-default-pool {seeds.POOL}".strip()
    # python3 in the toolbox is the system one, with python3-rbd (a drill's scratch copy uses librbd),
    # never a virtualenv's that happens to be first on the PATH.
    exec_env["PATH"] = f"/usr/bin:/bin:{os.environ.get('PATH', '')}".rstrip(":")
    env_args = [a for k, v in exec_env.items() for a in ("--exec-env", f"{k}={v}")]
    argv = [
        sys.executable,
        "-m",
        "lab.kubeapi",
        "serve",
        "--port",
        str(port),
        "--state-dir",
        str(root / "kube" / site),
        "--exec-allow",
        "rbd,ceph,python3",
        "--exec-pod-label",
        f"app={seeds.TOOLBOX}",
        *env_args,
        "--controllers",
        "lab.controllers:install",
        "--admin-token-file",
        str(rbac.admin_token_file(root)),
        "--tls-dir",
        str(rbac.tls_dir(root)),
    ]
    env = {
        "STANDBY_LAB_DIR": str(root),
        "STANDBY_LAB_SITE": site,
        "STANDBY_LAB_NEXUS_PORT": str(ports.nexus(site)),
        "STANDBY_LAB_WEB_PORT": str(ports.web(site)),
        "STANDBY_LAB_PORT_BASE": str(ports.base),
    }
    url = kube_url(ports, site)
    start_service(
        f"kube-{site}",
        argv,
        run,
        port=port,
        ready=lambda: httpx.get(f"{url}/version", timeout=2, verify=rbac.ca_context(root)).status_code == 200,
        env=env,
        cwd=ROOT,
    )


def _write_kubeconfig(root: Path, ports: Ports) -> None:
    from lab.kubeapi.kubeconfig import write_kubeconfig

    clusters = {s: kube_url(ports, s) for s in SITES}
    token = rbac.admin_token(root)
    write_kubeconfig(
        root / rbac.ADMIN_KUBECONFIG,
        clusters,
        "site-a",
        {s: token for s in SITES},
        "admin",
        rbac.ca_file(root),
    )


def _install_standby_access(root: Path, ports: Ports) -> None:
    """Apply the shipped RBAC to each site (as the admin), mint the standby ServiceAccount's tokens,
    and write the kubeconfig Standby's configuration uses (see :mod:`lab.rbac`)."""
    from lab.kubeapi.kubeconfig import write_kubeconfig

    tokens = {}
    for site in SITES:
        client = dynamic_client(root, site)
        rbac.apply(client, rbac.site_manifests(site))
        tokens[site] = rbac.mint_token(client)
    clusters = {s: kube_url(ports, s) for s in SITES}
    write_kubeconfig(
        root / rbac.STANDBY_KUBECONFIG, clusters, "site-a", tokens, "standby", rbac.ca_file(root)
    )


def kube_url(ports: Ports, site: str) -> str:
    """A site's apiserver URL (HTTPS: kubectl sends credentials only over TLS; CA in ``kube/tls.crt``)."""
    return f"https://127.0.0.1:{ports.kube(site)}"


#: The S3 block of site-a in ``standby.example.yaml`` (site-b's is ``s3: *s3``).
_EXAMPLE_S3 = """    s3: &s3
      endpoint: http://127.0.0.1:16902
      bucket: standby
"""
_EXAMPLE_S3_CREDENTIALS = "      credentials_file: .lab/s3/credentials\n"


def _s3_yaml(store: S3Store, anchor: str) -> str:
    """A site's ``s3:`` block for ``store``, as in the example (``anchor``: "" or " &s3")."""
    return (
        f"    s3:{anchor}\n      endpoint: {store.endpoint}\n      bucket: {store.bucket}\n      prefix: standby\n"
        "      path_style: true\n      region: us-east-1\n      verify_tls: false\n"
        f"      credentials_file: {store.credentials_file}\n"
    )


NEXUS_URL_FIELD = "      url_field: status.url            # the Nexus CR reports its URL there\n"
"""The nexus app's ``checks.url_field`` line in ``standby.example.yaml``; the lab adds ``urls`` after it."""


LAB_PROBE_TIMEOUT = "10s"
"""``probe_timeout`` of each lab site (the default, 3 s, is for a site's own control plane)."""


def _write_config(root: Path, stores: dict[str, S3Store]) -> None:
    """``standby.yaml``: the example with the lab's ports and paths, and each site's S3."""
    text = (ROOT / "standby.example.yaml").read_text()
    if _EXAMPLE_S3 not in text or _EXAMPLE_S3_CREDENTIALS not in text or "    s3: *s3\n" not in text:
        raise LabError(
            "standby.example.yaml no longer has the S3 blocks the lab rewrites",
            hint="update lab.lab._write_config along with the example",
        )
    a, b = stores["site-a"], stores["site-b"]
    text = text.replace(_EXAMPLE_S3, f"    s3: &s3\n      endpoint: {a.endpoint}\n      bucket: {a.bucket}\n")
    text = text.replace(_EXAMPLE_S3_CREDENTIALS, f"      credentials_file: {a.credentials_file}\n")
    if b != a:
        text = text.replace("    s3: *s3\n", _s3_yaml(b, ""))
    ports = Ports(port_base())
    for site in SITES:  # the plain app's URL on each site (example ports: base 16800)
        text = text.replace(
            f"http://127.0.0.1:{Ports(16800).web(site)}", f"http://127.0.0.1:{ports.web(site)}"
        )
    # The lab's Nexus serves plain http on loopback: its URLs are named in the configuration, since the
    # admin password is sent only to an https URL or a configured one (never to an http status.url).
    nexus_urls = "".join(f"        {s}: http://127.0.0.1:{ports.nexus(s)}\n" for s in SITES)
    if NEXUS_URL_FIELD not in text:
        raise LabError(
            "standby.example.yaml: the nexus app's checks.url_field line moved; update lab._write_config"
        )
    text = text.replace(NEXUS_URL_FIELD, f"{NEXUS_URL_FIELD}      urls:\n{nexus_urls}", 1)
    text = text.replace(".lab/kubeconfig,", f".lab/{rbac.STANDBY_KUBECONFIG},")
    # Each site's probe_timeout: the lab shares a small machine with its tests (two labs, Prefect and
    # a browser under `make test`), where site B's rbd, run through the toolbox exec, can take more
    # than the 3 s default to answer; a plan would then show a healthy site as unreachable.
    if text.count("    timezone: UTC\n") != len(SITES):
        raise LabError(
            "standby.example.yaml: each site's `timezone: UTC` line moved; update lab._write_config"
        )
    text = text.replace("    timezone: UTC\n", f"    timezone: UTC\n    probe_timeout: {LAB_PROBE_TIMEOUT}\n")
    # The example's relative paths (".lab/..."), not the absolute ones written above: a lab folder
    # named ".lab" (make demo's) has ".lab/" inside its own absolute paths too.
    text = re.sub(r"(?<![/\w])\.lab/", lambda _: f"{root}/", text)
    (root / "standby.yaml").write_text(text)


def dynamic_client(root: Path, site: str) -> Any:
    """A kubernetes ``DynamicClient`` for a lab site (discovery cached in the lab folder)."""
    from kubernetes import config, dynamic

    api = config.new_client_from_config(config_file=str(root / "kubeconfig"), context=site)
    return dynamic.DynamicClient(api, cache_file=str(root / "run" / f"discovery-{site}.json"))


def apply_missing(client: Any, objects: list[dict[str, Any]]) -> None:
    """Create each object that does not exist yet (seeding is idempotent)."""
    from kubernetes.dynamic.exceptions import NotFoundError

    for obj in objects:
        res = client.resources.get(api_version=obj["apiVersion"], kind=obj["kind"])
        meta = obj["metadata"]
        try:
            res.get(name=meta["name"], namespace=meta.get("namespace"))
        except NotFoundError:
            res.create(body=obj, namespace=meta.get("namespace"))


def read_admin_password(root: Path, site: str) -> str | None:
    """The Nexus admin password, read from the site's Secret as an operator would."""
    import base64

    from kubernetes.dynamic.exceptions import NotFoundError

    client = dynamic_client(root, site)
    try:
        secret = client.resources.get(api_version="v1", kind="Secret").get(
            name=seeds.ADMIN_SECRET, namespace=seeds.NAMESPACE
        )
    except NotFoundError:
        return None
    return base64.b64decode(secret.data["password"]).decode()


def _seed(root: Path) -> None:
    password = read_admin_password(root, "site-a") or secrets.token_urlsafe(18)
    for site in SITES:
        apply_missing(dynamic_client(root, site), seeds.common(password))
    apply_missing(dynamic_client(root, "site-a"), seeds.primary_app("http://nexus-ddrs.lab.local"))
    apply_missing(dynamic_client(root, "site-a"), seeds.web_app())


def _nexus_cr(ports: Ports, site: str, root: Path) -> dict[str, Any] | None:
    """The site's Nexus CR; None when it has none (or does not answer in 2 s)."""
    url = kube_url(ports, site)
    path = f"/apis/operator.alaudadevops.io/v1alpha1/namespaces/{seeds.NAMESPACE}/nexuses/{seeds.NEXUS_NAME}"
    try:
        resp = httpx.get(url + path, timeout=2, headers=_admin_headers(root), verify=rbac.ca_context(root))
    except httpx.HTTPError:
        return None
    if resp.status_code != 200:
        return None
    found = resp.json()
    return found if isinstance(found, dict) else None


def _has_nexus_cr(ports: Ports, site: str, root: Path) -> bool:
    return _nexus_cr(ports, site, root) is not None


def _nexus_url(ports: Ports, site: str, root: Path) -> str | None:
    """The URL in the site's Nexus CR status when it is Running; None if not (or no answer in 2 s)."""
    status = (_nexus_cr(ports, site, root) or {}).get("status") or {}
    return status.get("url") if status.get("phase") == "Running" else None


def _admin_headers(root: Path) -> dict[str, str]:
    """The lab admin's bearer token, for the lab's own plain-HTTP calls to its apiservers."""
    path = root / "kube" / "admin-token"
    return {"Authorization": f"Bearer {path.read_text().strip()}"} if path.exists() else {}


def _wait_nexus(root: Path, site: str) -> None:
    ports = Ports(port_base())
    wait_until(
        lambda: _nexus_url(ports, site, root) is not None,
        timeout=90,
        what=f"Nexus on {site}",
        log_file=root / "nexus" / f"{site}.log",
    )


def _mirror_state(cs: ceph.CephSite, timeout: float = 20) -> str:
    try:
        out = ceph.run_json(
            cs.cli("mirror", "image", "status", f"{seeds.POOL}/{seeds.IMAGE_NAME}", "--format", "json"),
            timeout=timeout,
        )
    except ceph.CephLabError:
        return "unknown (rbd mirror image status failed)"
    return f"{out.get('state')} ({out.get('description', '')[:60]})"
