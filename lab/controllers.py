"""The lab's own controllers, loaded into a site's fake apiserver.

The apiserver loads them with ``--controllers lab.controllers:install``.

* **VolumeReplication** (csi-addons): ``spec.replicationState`` is made true on the site's real
  Ceph by running ``rbd mirror image promote|demote|resync`` on the image behind the PVC, and the
  status (``state``, conditions, ``lastSync*``) follows what ``rbd`` reports. A promote is only
  tried once the peer's demotion snapshot is fully synced here (a planned relocation), and never
  forced: until then the VR reports ``FailedToPromote`` and the controller keeps waiting. A
  forced promote is never this controller's own decision, on a timer or otherwise; whoever wants
  one (Standby's failover, a test) forces it with ``rbd mirror image promote --force`` and then
  asks for ``primary``, which the controller then finds done. Nothing in the lab writes a VR's
  ``replicationState`` but Standby and tests: ``lab up`` seeds a fresh lab only.
  ``lastSyncTime`` is refreshed every half scheduling interval, as ceph-csi does, so it is stale
  by up to that much: measured RPO must come from ``rbd``, not from this CR.
* **Nexus** (Alauda operator): a Nexus CR whose PVC ``nexus-data-<name>-nxrm-ha-0`` is Bound gets
  a Nexus simulator on the RBD image behind that PVC, with the admin password from the Secret
  ``nexus-root-password``. ``status.phase``/``status.url`` report it. The simulator refuses to
  start on a non-primary image, which shows as ``phase: Failed`` with its reason; the controller
  retries with a back-off, as a crash-looping pod would. Deleting the CR stops the simulator.

* **Plain HTTP app**: a StatefulSet annotated ``lab.standby.dev/simulate: webapp`` whose first
  claim (``<template>-<name>-0``) is Bound gets a :mod:`lab.webapp_sim` process on the RBD image
  behind that claim, on the site's web port; it refuses a non-primary image like the Nexus
  simulator, with the same back-off. Deleting the StatefulSet stops it. This is lab support only:
  Standby protects such an app through its configuration, with no code of its own.

Known gaps: deleting a VolumeReplication does not disable mirroring of the image (csi-addons
does); there is no StatefulSet or pod for Nexus, the CR drives the process directly.
"""

from __future__ import annotations

import base64
import json
import os
import subprocess
import threading
import time
import traceback
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from lab import ceph
from lab.kubeapi.controllers import TICK
from lab.procs import alive, answers, read_pid, reap, start_daemon, stop_daemon

VR = "replication.storage.openshift.io/v1alpha1/VolumeReplication"
VRC = "replication.storage.openshift.io/v1alpha1/VolumeReplicationClass"
NEXUS = "operator.alaudadevops.io/v1alpha1/Nexus"
STATEFULSET = "apps/v1/StatefulSet"
WEBAPP_ANNOTATION = "lab.standby.dev/simulate"
SECRET_NAME = "nexus-root-password"
SYSTEM_PYTHON = "/usr/bin/python3"
# Kinds whose changes can alter what reconcile_all does (VR, its class's schedulingInterval, the
# Nexus CR, the PVC/PV behind either, and the Nexus admin-password Secret).
WATCHED_KINDS = frozenset(
    {
        "VolumeReplication",
        "VolumeReplicationClass",
        "Nexus",
        "PersistentVolumeClaim",
        "PersistentVolume",
        "Secret",
        "StatefulSet",
    }
)
ROOT = Path(__file__).resolve().parent.parent


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _condition(type_: str, status: bool, reason: str, message: str = "") -> dict[str, Any]:
    return {"type": type_, "status": "True" if status else "False", "reason": reason, "message": message}


@dataclass
class SiteContext:
    """What a controller needs to know about its site."""

    name: str
    lab_dir: Path
    ceph: ceph.CephSite
    nexus_port: int
    web_port: int | None = None
    """Port of the plain HTTP app's simulator on this site (none: no such app)."""


@dataclass
class _VrMemo:
    promote_failing_since: float | None = None
    last_sync_refresh: float = 0.0
    last_sync: dict[str, Any] = field(default_factory=dict)
    resynced_generation: int | None = None


class LabControllers:
    """Runs the VolumeReplication and Nexus controllers in a worker thread of the apiserver."""

    def __init__(self, store: Any, site: SiteContext) -> None:
        self.store = store
        self.site = site
        self.wake = threading.Event()
        self.vr_memo: dict[tuple[str, str], _VrMemo] = {}
        self.nexus_backoff: dict[tuple[str, str], float] = {}
        self.web_backoff: dict[tuple[str, str], float] = {}
        self.stopping = False
        self.log_file = site.lab_dir / "run" / f"controllers-{site.name}.log"

    # ---------------------------------------------------------------------------------- plumbing
    def on_event(self, _store: Any, event_type: str, obj: dict[str, Any] | None) -> None:
        """Controller callback (cheap): wake the worker on ticks and on changes of the kinds it reads.

        Pods, Events and the rest of the store churn do not concern it; waking on them would only
        re-run ``rbd`` for every VolumeReplication.
        """
        if event_type == TICK or (obj is not None and obj.get("kind") in WATCHED_KINDS):
            self.wake.set()

    def log(self, message: str) -> None:
        with open(self.log_file, "a") as fh:
            fh.write(f"{_now()} {message}\n")

    def run_forever(self) -> None:
        while not self.stopping:
            self.wake.wait(timeout=2.0)
            self.wake.clear()
            try:
                self.reconcile_all()
            except Exception:
                self.log("reconcile failed:\n" + traceback.format_exc())

    def rbd(self, *args: str, timeout: float = 30.0) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            self.site.ceph.cli(*args), capture_output=True, text=True, timeout=timeout, check=False
        )

    def rbd_json(self, *args: str) -> Any:
        res = self.rbd(*args, "--format", "json")
        if res.returncode != 0:
            raise RuntimeError(f"rbd {' '.join(args)} exited {res.returncode}: {res.stderr.strip()[-300:]}")
        return json.loads(res.stdout)

    def set_status(self, resource: str, obj: dict[str, Any], status: dict[str, Any]) -> None:
        """Patch the status only when it changed (so controllers do not wake each other forever)."""
        current = obj.get("status") or {}
        merged = {**current, **status}
        if merged == current:
            return
        meta = obj["metadata"]
        self.store.patch_status(resource, meta.get("namespace"), meta["name"], status)

    def image_of_pvc(self, namespace: str, pvc_name: str) -> tuple[str, str] | str:
        """``(pool, image)`` behind a Bound PVC, or a reason why there is none."""
        pvc = self.store.try_get("persistentvolumeclaims", namespace, pvc_name)
        if pvc is None:
            return f"PVC {namespace}/{pvc_name} not found"
        if (pvc.get("status") or {}).get("phase") != "Bound":
            return f"PVC {namespace}/{pvc_name} is not Bound"
        pv = self.store.try_get("persistentvolumes", None, pvc["spec"].get("volumeName", ""))
        attrs = ((pv or {}).get("spec", {}).get("csi") or {}).get("volumeAttributes") or {}
        if not attrs.get("imageName") or not attrs.get("pool"):
            return f"PV of {namespace}/{pvc_name} has no csi.volumeAttributes imageName/pool"
        return attrs["pool"], attrs["imageName"]

    def reconcile_all(self) -> None:
        for vr in self.store.list(VR):
            self.reconcile_vr(vr)
        for nx in self.store.list(NEXUS):
            self.reconcile_nexus(nx)
        self.reap_orphan_nexus()
        self.reconcile_webapp()

    # ------------------------------------------------------------------------- VolumeReplication
    def reconcile_vr(self, vr: dict[str, Any]) -> None:
        meta, spec = vr["metadata"], vr["spec"]
        key = (meta["namespace"], meta["name"])
        memo = self.vr_memo.setdefault(key, _VrMemo())
        gen = meta.get("generation", 1)
        found = self.image_of_pvc(meta["namespace"], spec["dataSource"]["name"])
        if isinstance(found, str):
            self.set_status(
                VR,
                vr,
                {
                    "state": "Unknown",
                    "message": found,
                    "observedGeneration": gen,
                    "conditions": [_condition("Validated", False, "PrerequisiteNotMet", found)],
                },
            )
            return
        pool, image = found
        spec_img = f"{pool}/{image}"
        info = self.rbd_json("info", spec_img)
        primary = bool((info.get("mirroring") or {}).get("primary"))
        desired = spec["replicationState"]
        conditions: list[dict[str, Any]] = [_condition("Validated", True, "PrerequisiteMet")]
        message = ""
        if desired == "primary" and not primary:
            primary, message = self._promote(spec_img, memo)
        elif desired == "secondary" and primary:
            res = self.rbd("mirror", "image", "demote", spec_img)
            primary = res.returncode != 0
            message = "volume is demoted" if not primary else f"demote failed: {res.stderr.strip()[-200:]}"
            self.log(f"demote {spec_img}: rc={res.returncode}")
        elif desired == "resync" and not primary and memo.resynced_generation != gen:
            res = self.rbd("mirror", "image", "resync", spec_img)
            memo.resynced_generation = gen if res.returncode == 0 else None
            message = (
                "resync triggered" if res.returncode == 0 else f"resync failed: {res.stderr.strip()[-200:]}"
            )
            self.log(f"resync {spec_img}: rc={res.returncode}")
        if desired == "secondary" and not primary and spec.get("autoResync"):
            self._auto_resync(spec_img)
        state = "Primary" if primary else "Secondary"
        ok = (desired == "primary") == primary or desired == "resync"
        reason = (
            {True: "Promoted", False: "Demoted"}[primary]
            if ok
            else ("FailedToPromote" if desired == "primary" else "FailedToDemote")
        )
        conditions.append(_condition("Completed", ok, reason, message))
        conditions.append(_condition("Degraded", not ok, "Healthy" if ok else "VolumeDegraded", message))
        resyncing = desired == "resync" and memo.resynced_generation == gen
        conditions.append(
            _condition("Resyncing", resyncing, "ResyncTriggered" if resyncing else "NotResyncing")
        )
        status: dict[str, Any] = {
            "state": state,
            "message": message or f"volume is {state.lower()}",
            "observedGeneration": gen,
            "conditions": conditions,
        }
        if primary:
            status.update(self._last_sync(spec_img, memo))
        self.set_status(VR, vr, status)

    def _promote(self, spec_img: str, memo: _VrMemo) -> tuple[bool, str]:
        """Promote like ceph-csi on a planned relocation, never forced and never early.

        The promote is only tried once this side holds a complete copy of the peer's demotion
        snapshot (newest mirror snapshot non-primary, ``demoted`` and ``complete``): promoting earlier
        rolls back to an older snapshot and diverges from the peer. Until then it waits, however
        long: the peer may be primary and serving (a VR that asks for ``primary`` by mistake must
        not make a second primary), or gone (then the operator's failover forces the promote).
        """
        now = time.monotonic()
        memo.promote_failing_since = memo.promote_failing_since or now
        waited = now - memo.promote_failing_since
        if not self._peer_demotion_synced(spec_img):
            self._requeue()
            return False, (
                "waiting for the peer's demotion to be synced; "
                "never forced here: force-promote the image with rbd if the peer is lost"
            )
        res = self.rbd("mirror", "image", "promote", spec_img, timeout=60)
        self.log(f"promote {spec_img} waited={waited:.0f}s: rc={res.returncode} {res.stderr.strip()[-200:]}")
        if res.returncode == 0:
            memo.promote_failing_since = None
            return True, "volume is promoted"
        self._requeue()
        return False, f"promote failed (rc={res.returncode}): {res.stderr.strip()[-200:]}"

    def _peer_demotion_synced(self, spec_img: str) -> bool:
        try:
            snaps = self.rbd_json("snap", "ls", "--all", spec_img)
        except (RuntimeError, ValueError):
            return False
        mirror = [s for s in snaps if (s.get("namespace") or {}).get("type") == "mirror"]
        if not mirror:
            return False
        newest = max(mirror, key=lambda s: int(s["id"]))["namespace"]
        # A copy of the peer's demotion: non-primary (it names the peer's snapshot), demoted, complete.
        # This side's own demoted primary snapshot also says "demoted", but has no primary_snap_id.
        copied = "primary_snap_id" in newest
        return copied and newest.get("state") == "demoted" and bool(newest.get("complete"))

    def _requeue(self) -> None:
        """Come back soon, like a controller-runtime requeue."""
        self.wake.set()
        time.sleep(1.0)

    def _auto_resync(self, spec_img: str) -> None:
        try:
            st = self.rbd_json("mirror", "image", "status", spec_img)
        except (RuntimeError, ValueError):
            return
        if st.get("state") == "up+error" and "split-brain" in st.get("description", ""):
            res = self.rbd("mirror", "image", "resync", spec_img)
            self.log(f"autoResync after split-brain {spec_img}: rc={res.returncode}")

    def _last_sync(self, spec_img: str, memo: _VrMemo) -> dict[str, Any]:
        interval = self._scheduling_interval()
        if time.monotonic() - memo.last_sync_refresh < interval / 2:
            return memo.last_sync
        memo.last_sync_refresh = time.monotonic()
        try:
            st = self.rbd_json("mirror", "image", "status", spec_img)
        except (RuntimeError, ValueError):
            return memo.last_sync
        for peer in st.get("peer_sites") or []:
            desc = peer.get("description", "")
            if ", {" not in desc:
                continue
            try:
                data = json.loads(desc.split(", ", 1)[1])
                if not isinstance(data, dict) or "local_snapshot_timestamp" not in data:
                    continue
                when = datetime.fromtimestamp(int(data["local_snapshot_timestamp"]), UTC)
                last_sync = {
                    "lastSyncTime": when.strftime("%Y-%m-%dT%H:%M:%SZ"),
                    "lastSyncDuration": f"{int(data.get('last_snapshot_sync_seconds', 0))}s",
                    "lastSyncBytes": int(data.get("last_snapshot_bytes", 0)),
                }
            except (ValueError, TypeError, OverflowError, OSError):
                continue  # an odd description: keep what was last known, as when rbd fails
            memo.last_sync = last_sync
        return memo.last_sync

    def _scheduling_interval(self) -> float:
        seconds = 60.0
        for cls in self.store.list(VRC):
            raw = str((cls.get("spec", {}).get("parameters") or {}).get("schedulingInterval", ""))
            if raw[:-1].isdigit():
                seconds = float(raw[:-1]) * {"m": 60, "h": 3600, "d": 86400}.get(raw[-1], 1)
        return seconds

    # ------------------------------------------------------------------------------------- Nexus
    def nexus_files(self) -> tuple[Path, Path, Path]:
        d = self.site.lab_dir / "nexus"
        return d / f"{self.site.name}.pid", d / f"{self.site.name}.log", d

    def reconcile_nexus(self, nx: dict[str, Any]) -> None:
        meta = nx["metadata"]
        key = (meta["namespace"], meta["name"])
        pid_file, log_file, run_dir = self.nexus_files()
        url = f"http://127.0.0.1:{self.site.nexus_port}"
        if read_pid(pid_file) is not None:
            self.set_status(NEXUS, nx, {"phase": "Running", "url": url, "message": "Nexus is running"})
            return
        found = self.image_of_pvc(meta["namespace"], f"nexus-data-{meta['name']}-nxrm-ha-0")
        if isinstance(found, str):
            self.set_status(NEXUS, nx, {"phase": "Pending", "url": None, "message": f"waiting: {found}"})
            return
        secret = self.store.try_get("secrets", meta["namespace"], SECRET_NAME)
        if secret is None or "password" not in (secret.get("data") or {}):
            msg = f"Secret {meta['namespace']}/{SECRET_NAME} with key 'password' not found"
            self.set_status(NEXUS, nx, {"phase": "Failed", "url": None, "message": msg})
            return
        if time.monotonic() < self.nexus_backoff.get(key, 0.0):
            return
        pool, image = found
        password = base64.b64decode(secret["data"]["password"]).decode()
        cs = self.site.ceph
        argv = [
            SYSTEM_PYTHON,
            "-m",
            "lab.nexus_sim",
            "--host",
            "127.0.0.1",
            "--port",
            str(self.site.nexus_port),
            *_rbd_args(cs, pool, image),
            "--pid-file",
            str(pid_file.with_suffix(".sim.pid")),
            "--log-file",
            str(log_file),
        ]
        pid = start_daemon(self.site.name, argv, run_dir, env={"NEXUS_ADMIN_PASSWORD": password}, cwd=ROOT)
        ready = self._wait_ready(url, pid)
        if ready:
            self.nexus_backoff.pop(key, None)
            self.log(f"nexus started on {pool}/{image} pid={pid}")
            self.set_status(NEXUS, nx, {"phase": "Running", "url": url, "message": "Nexus is running"})
            return
        stop_daemon(pid_file)
        reason = _last_line(log_file) or "the simulator exited"
        self.nexus_backoff[key] = time.monotonic() + 10.0
        self.log(f"nexus failed on {pool}/{image}: {reason}")
        self.set_status(NEXUS, nx, {"phase": "Failed", "url": None, "message": reason})

    def _wait_ready(self, url: str, pid: int, path: str = "/service/rest/v1/status") -> bool:
        deadline = time.monotonic() + 30.0
        while time.monotonic() < deadline:
            reap(pid)
            if not alive(pid):
                return False
            if answers(f"{url}{path}", timeout=1.0):
                return True
            time.sleep(0.2)
        return False

    def reap_orphan_nexus(self) -> None:
        """Stop the simulator when its Nexus CR is gone."""
        pid_file, _, _ = self.nexus_files()
        if read_pid(pid_file) is not None and not self.store.list(NEXUS):
            stop_daemon(pid_file)
            self.log("nexus stopped: its Nexus CR was deleted")

    # ------------------------------------------------------------------------- plain HTTP app
    def reconcile_webapp(self) -> None:
        """Run the web app simulator while an annotated StatefulSet exists and its claim is Bound."""
        run_dir = self.site.lab_dir / "web"
        pid_file, log_file = run_dir / f"{self.site.name}.pid", run_dir / f"{self.site.name}.log"
        wanted = [
            sts
            for sts in self.store.list(STATEFULSET)
            if (sts["metadata"].get("annotations") or {}).get(WEBAPP_ANNOTATION) == "webapp"
            and not sts["metadata"].get("deletionTimestamp")
        ]
        if not wanted or self.site.web_port is None:
            if read_pid(pid_file) is not None:
                stop_daemon(pid_file)
                self.log("webapp stopped: its StatefulSet was deleted")
            return
        if read_pid(pid_file) is not None:
            return
        sts = wanted[0]
        meta = sts["metadata"]
        key = (meta["namespace"], meta["name"])
        templates = (sts.get("spec") or {}).get("volumeClaimTemplates") or []
        if not templates or time.monotonic() < self.web_backoff.get(key, 0.0):
            return
        found = self.image_of_pvc(meta["namespace"], f"{templates[0]['metadata']['name']}-{meta['name']}-0")
        if isinstance(found, str):
            return
        pool, image = found
        cs = self.site.ceph
        argv = [
            SYSTEM_PYTHON,
            "-m",
            "lab.webapp_sim",
            "--port",
            str(self.site.web_port),
            *_rbd_args(cs, pool, image),
            "--pid-file",
            str(pid_file.with_suffix(".sim.pid")),
        ]
        pid = start_daemon(self.site.name, argv, run_dir, cwd=ROOT)
        if self._wait_ready(f"http://127.0.0.1:{self.site.web_port}", pid, "/healthz"):
            self.web_backoff.pop(key, None)
            self.log(f"webapp started on {pool}/{image} pid={pid}")
            return
        stop_daemon(pid_file)
        self.web_backoff[key] = time.monotonic() + 10.0
        self.log(f"webapp failed on {pool}/{image}: {_last_line(log_file) or 'the simulator exited'}")


def _last_line(path: Path) -> str:
    try:
        lines = [ln for ln in path.read_text(errors="replace").splitlines() if ln.strip()]
    except OSError:
        return ""
    fatal = [ln for ln in lines if "FATAL" in ln or "ERROR" in ln]
    return (fatal or lines or [""])[-1][-300:]


def install(server: Any) -> LabControllers:
    """Entry point for ``--controllers lab.controllers:install``: start the lab controllers."""
    lab_dir = Path(os.environ["STANDBY_LAB_DIR"])
    site_name = os.environ["STANDBY_LAB_SITE"]
    base = int(os.environ.get("STANDBY_LAB_PORT_BASE", "16800"))
    site = SiteContext(
        name=site_name,
        lab_dir=lab_dir,
        ceph=ceph.sites(lab_dir, base)[site_name],
        nexus_port=int(os.environ["STANDBY_LAB_NEXUS_PORT"]),
        web_port=int(os.environ["STANDBY_LAB_WEB_PORT"]) if os.environ.get("STANDBY_LAB_WEB_PORT") else None,
    )
    (lab_dir / "run").mkdir(parents=True, exist_ok=True)
    ctl = LabControllers(server.store, site)
    server.add_controller(ctl.on_event)
    threading.Thread(target=ctl.run_forever, name=f"lab-controllers-{site_name}", daemon=True).start()
    return ctl


def _rbd_args(cs: Any, pool: str, image: str) -> list[str]:
    """The options a simulator (Nexus, the web app) takes to open its volume through librbd as the
    site's admin: ``cs`` is the site's :class:`lab.ceph.CephSite`."""
    return [
        "--rbd-pool",
        pool,
        "--rbd-image",
        image,
        "--ceph-conf",
        str(cs.conf),
        "--ceph-cluster",
        cs.cluster,
        "--ceph-id",
        "admin",
        "--keyring",
        str(cs.keyring),
    ]
