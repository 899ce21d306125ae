"""The two-site lab: real Ceph for site A and site B, a fake kube-apiserver per site, moto S3.

Everything lives in one folder (``$STANDBY_LAB_DIR``, default ``./.lab``)::

    ceph/<site>/        the site's Ceph (conf, keyrings, daemons' data, logs)
    kube/<site>/        the site's apiserver state; kube/<site>.log its log
    s3/credentials      AWS-style credentials of the lab's S3
    nexus/<site>.*      the Nexus simulator started by the site's Nexus controller
    run/                PID files and logs of the apiservers and S3
    kubeconfig          contexts site-a and site-b
    standby.yaml        a Standby configuration for the lab

``up`` is idempotent and never starts a second copy of a daemon; ``down`` stops what ``up``
started, by PID, and is harmless when nothing runs. Ports start at ``$STANDBY_LAB_PORT_BASE``
(default 16800): Ceph mons at +0/+1 and +10/+11, apiservers at +100/+101, S3 at +102,
Nexus at +110/+111.
"""

from __future__ import annotations

import os
import secrets
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from lab import ceph, seeds
from lab.procs import LabError, read_pid, start_service, stop_daemon, wait_until
from lab.s3 import ACCESS_KEY, SECRET_KEY, credentials_file_text

SITES = ("site-a", "site-b")
BUCKET = "standby"
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
        return self.base + 102

    def nexus(self, site: str) -> int:
        return self.base + 110 + SITES.index(site)


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

    def to_json(self) -> dict[str, Any]:
        """The stable JSON shape of ``standby lab status --json``."""
        return {
            "running": self.running,
            "kubeconfig": str(self.kubeconfig),
            "config": str(self.config),
            "s3": {
                "endpoint": self.s3_endpoint,
                "bucket": BUCKET,
                "access_key": ACCESS_KEY,
                "secret_key": SECRET_KEY,
            },
            "sites": {
                s: {
                    "ceph_conf": str(self.ceph_confs[s]),
                    "nexus_url": self.nexus_urls.get(s),
                    "mirror": self.mirror.get(s),
                }
                for s in SITES
            },
        }


def describe(st: LabStatus) -> str:
    """A short human summary of the lab."""
    lines = [f"lab {'UP' if st.running else 'DOWN'} in {st.dir}"]
    down = [name for name, ok in st.daemons.items() if not ok]
    if down:
        lines.append(f"  not running: {', '.join(down)}")
    lines.append(f"  kubeconfig: {st.kubeconfig}  (contexts site-a, site-b)")
    lines.append(f"  config:     {st.config}")
    lines.append(
        f"  s3:         {st.s3_endpoint} bucket {BUCKET} (credentials in {st.dir / 's3' / 'credentials'})"
    )
    for s in SITES:
        lines.append(f"  {s}: ceph {st.ceph_confs[s]}")
        lines.append(f"    nexus: {st.nexus_urls.get(s) or '-'}")
        lines.append(f"    mirror {seeds.POOL}/{seeds.IMAGE_NAME}: {st.mirror.get(s) or '-'}")
    if any(st.nexus_urls.values()):
        lines.append(f"  nexus admin password: Secret {seeds.NAMESPACE}/{seeds.ADMIN_SECRET}, key 'password'")
    return "\n".join(lines)


# ------------------------------------------------------------------------------------------- up/down


def up(root: Path, log: Log = print) -> LabStatus:
    """Bring both sites up; idempotent."""
    missing = ceph.missing_packages()
    if missing:
        raise LabError(
            f"the lab needs Ceph packages that are missing: {', '.join(missing)}",
            hint="run `make lab-up` as root, or: apt-get install -y --no-install-recommends "
            "ceph-mon ceph-osd ceph-mgr rbd-mirror ceph-common python3-rbd python3-rados",
        )
    ports = Ports(port_base())
    root.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    log("lab: starting Ceph for site-a and site-b")
    try:
        cs = ceph.ceph_up(root, ports.base, pool=seeds.POOL)
    except ceph.CephLabError as exc:
        raise LabError(str(exc), hint="read the log named, then `standby lab down` and retry") from None
    ceph.create_mirrored_image(
        cs["site-a"], cs["site-b"], seeds.POOL, seeds.IMAGE_NAME, size_mb=64, mode="snapshot"
    )
    log(f"lab: Ceph up ({time.monotonic() - started:.0f}s); starting S3 and apiservers")
    _start_s3(root, ports)
    for site in SITES:
        _start_apiserver(root, ports, site, cs[site])
    _write_kubeconfig(root, ports)
    _write_config(root, ports)
    _seed(root)
    _wait_nexus(root, "site-a")
    log(
        f"lab: Nexus runs on site-a ({time.monotonic() - started:.0f}s); waiting for site-b to report up+replaying"
    )
    try:
        # rbd-mirror writes its first status about 20 s after an image appears, then every 30 s.
        wait_until(lambda: _mirror_state(cs["site-b"]).startswith("up+replaying"), timeout=120, what="")
    except LabError:
        log(f"lab: warning: site-b does not report up+replaying yet ({_mirror_state(cs['site-b'])})")
    log(f"lab: up in {time.monotonic() - started:.0f}s")
    return status(root)


def down(root: Path, log: Log = print) -> None:
    """Stop everything the lab started, by PID; harmless when nothing runs."""
    run = root / "run"
    # The apiservers first: their Nexus controllers would restart a simulator stopped before them.
    for name in ("kube-site-a", "kube-site-b", "s3"):
        if stop_daemon(run / f"{name}.pid"):
            log(f"lab: stopped {name}")
    for site in SITES:
        if stop_daemon(root / "nexus" / f"{site}.pid"):
            log(f"lab: stopped nexus on {site}")
    if root.exists():
        ceph.ceph_down(root)
        log("lab: Ceph stopped")


def status(root: Path) -> LabStatus:
    """What runs now; cheap enough for scripts."""
    ports = Ports(port_base())
    cs = ceph.sites(root, ports.base)
    daemons: dict[str, bool] = {}
    for site, procs in ceph.ceph_status(root).items():
        for daemon, pid in procs.items():
            daemons[f"{site}/{daemon}"] = pid is not None
    for name in ("kube-site-a", "kube-site-b", "s3"):
        daemons[name] = read_pid(root / "run" / f"{name}.pid") is not None
    st = LabStatus(
        dir=root,
        running=bool(daemons) and all(daemons.values()),
        kubeconfig=root / "kubeconfig",
        config=root / "standby.yaml",
        s3_endpoint=f"http://127.0.0.1:{ports.s3}",
        ceph_confs={s: cs[s].conf for s in SITES},
        daemons=daemons,
    )
    if not st.running:
        return st
    for site in SITES:
        st.nexus_urls[site] = _nexus_url(ports, site)
        st.mirror[site] = _mirror_state(cs[site])
    return st


# ------------------------------------------------------------------------------------------ pieces


def _start_s3(root: Path, ports: Ports) -> None:
    run = root / "run"
    url = f"http://127.0.0.1:{ports.s3}"
    start_service(
        "s3",
        [sys.executable, "-m", "lab.s3", "--port", str(ports.s3), "--bucket", BUCKET],
        run,
        port=ports.s3,
        ready=lambda: httpx.get(f"{url}/{BUCKET}", timeout=2).status_code < 500,
        cwd=ROOT,
    )
    (root / "s3").mkdir(exist_ok=True)
    creds = root / "s3" / "credentials"
    creds.write_text(credentials_file_text())
    creds.chmod(0o600)


def _start_apiserver(root: Path, ports: Ports, site: str, cs: ceph.CephSite) -> None:
    run = root / "run"
    port = ports.kube(site)
    exec_env = dict(cs.env())
    # Rook's toolbox has the cluster's pool as rbd's default pool: `rbd mirror pool status` works bare.
    exec_env["CEPH_ARGS"] = f"{exec_env.get('CEPH_ARGS', '')} --rbd-default-pool {seeds.POOL}".strip()
    env_args = [a for k, v in exec_env.items() for a in ("--exec-env", f"{k}={v}")]
    argv = [
        sys.executable, "-m", "lab.kubeapi", "serve",
        "--port", str(port),
        "--state-dir", str(root / "kube" / site),
        "--exec-allow", "rbd,ceph",
        "--exec-pod-label", f"app={seeds.TOOLBOX}",
        *env_args,
        "--controllers", "lab.controllers:install",
    ]  # fmt: skip
    env = {
        "STANDBY_LAB_DIR": str(root),
        "STANDBY_LAB_SITE": site,
        "STANDBY_LAB_NEXUS_PORT": str(ports.nexus(site)),
        "STANDBY_LAB_PORT_BASE": str(ports.base),
    }
    url = f"http://127.0.0.1:{port}"
    start_service(
        f"kube-{site}",
        argv,
        run,
        port=port,
        ready=lambda: httpx.get(f"{url}/version", timeout=2).status_code == 200,
        env=env,
        cwd=ROOT,
    )


def _write_kubeconfig(root: Path, ports: Ports) -> None:
    from lab.kubeapi.kubeconfig import write_kubeconfig

    clusters = {s: f"http://127.0.0.1:{ports.kube(s)}" for s in SITES}
    write_kubeconfig(root / "kubeconfig", clusters, "site-a")


def _write_config(root: Path, ports: Ports) -> None:
    text = (ROOT / "standby.example.yaml").read_text()
    text = text.replace("http://127.0.0.1:16902", f"http://127.0.0.1:{ports.s3}")
    text = text.replace(".lab/", f"{root}/")
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


def _nexus_url(ports: Ports, site: str) -> str | None:
    url = f"http://127.0.0.1:{ports.kube(site)}"
    path = f"/apis/operator.alaudadevops.io/v1alpha1/namespaces/{seeds.NAMESPACE}/nexuses/{seeds.NEXUS_NAME}"
    try:
        resp = httpx.get(url + path, timeout=5)
    except httpx.HTTPError:
        return None
    if resp.status_code != 200:
        return None
    status = resp.json().get("status") or {}
    return status.get("url") if status.get("phase") == "Running" else None


def _wait_nexus(root: Path, site: str) -> None:
    ports = Ports(port_base())
    wait_until(
        lambda: _nexus_url(ports, site) is not None,
        timeout=90,
        what=f"Nexus on {site}",
        log_file=root / "nexus" / f"{site}.log",
    )


def _mirror_state(cs: ceph.CephSite) -> str:
    try:
        out = ceph.run_json(
            cs.cli("mirror", "image", "status", f"{seeds.POOL}/{seeds.IMAGE_NAME}", "--format", "json"),
            timeout=20,
        )
    except ceph.CephLabError:
        return "unknown (rbd mirror image status failed)"
    return f"{out.get('state')} ({out.get('description', '')[:60]})"
