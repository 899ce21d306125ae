"""The steps both operations and drills run: stop and start the app, smoke-test it, move and watch
its volumes, restore and tidy its objects. They reach the app through its driver and the volumes
through the run's volume path (see :mod:`drkit.jobs.steps.run`), never by kind.
"""

from __future__ import annotations

import base64
import json
from typing import Any

from drkit.adapters.volumes import VR_KIND, VolumeControl, Want
from drkit.domain import crypto
from drkit.domain.errors import NotFound
from drkit.domain.models import KindRef, ProtectedApp, Volume
from drkit.domain.operations import StepSpec
from drkit.domain.rbd_status import parse_snap_ls
from drkit.domain.transforms import normalize
from drkit.jobs.drivers.base import START_CONVERGES, FromBackup, Leftovers
from drkit.jobs.steps.run import PV, PVC, ROUTING_KINDS, Run, Seen

# ---------------------------------------------------------------------------------------- the app


def kept_path(run: Run, site: str) -> str:
    """The logical path a kept workload object is sealed under (see :func:`keep_workload`)."""
    return kept_path_of(run.app.name, run.op_id, site)


def kept_path_of(app: str, op_id: str, site: str) -> str:
    """:func:`kept_path` from the app's name, the operation id and the site."""
    return f"operations/{app}/{op_id}/workload/{site}"


def keep_workload(obj: dict[str, Any], key: crypto.MasterKey | None, path: str) -> dict[str, Any]:
    """The workload object as the journal keeps it, so an abort can start the app again even
    without the backup (sealed with the run's key when it has one, as a backup would be)."""
    clean = normalize(obj)
    if key is None:
        return {"manifest": clean}
    sealed = crypto.encrypt(json.dumps(clean).encode(), key=key, path=path)
    return {"sealed": base64.b64encode(sealed).decode(), "key_id": key.key_id}


def kept_workload(kept: dict[str, Any], key: crypto.MasterKey | None, path: str) -> dict[str, Any]:
    """The workload object :func:`keep_workload` kept (:class:`IntegrityError` with another key)."""
    if "manifest" in kept:
        return dict(kept["manifest"])
    if key is None:
        raise NotFound(
            f"the kept workload object {path} is sealed with key id {kept.get('key_id')}, but no key"
            " was given",
            hint=f"give the master key whose id is {kept.get('key_id')}",
        )
    return dict(json.loads(crypto.decrypt(base64.b64decode(kept["sealed"]), key=key, path=path)))


class StopApp:
    """Quiesce the app when it answers, keep its workload object (in the journal), stop it, wait
    until nothing answers at its URL."""

    keep = True
    """Quiesce the app and keep its workload object before it stops (for an abort to start it again)."""
    memo_suffix = ""
    """Distinguishes the URL remembered for this step's app from the run's app's."""

    def app_of(self, run: Run) -> ProtectedApp:
        """The app this step stops: the run's."""
        return run.app

    def observe(self, run: Run, spec: StepSpec) -> Seen:
        driver = run.driver(spec.site, self.app_of(run))
        key = f"url:{spec.site}{self.memo_suffix}"
        url = driver.url() or run.memo.get(key)
        if url:
            run.memo[key] = url
        present = driver.workload_object() is not None
        seen: Seen = {"workload": present, "answering": bool(url and driver.answers(str(url)))}
        if f"kept:{spec.site}" in run.memo:
            seen["kept"] = run.memo[f"kept:{spec.site}"]
        return seen

    def satisfied(self, seen: Seen) -> bool:
        return not seen["workload"] and not seen["answering"]

    def act(self, run: Run, spec: StepSpec, seen: Seen) -> None:
        if seen["workload"]:
            driver = run.driver(spec.site, self.app_of(run))
            if self.keep:
                run.memo[f"frozen:{spec.site}"] = driver.quiesce()
                obj = driver.workload_object()
                if obj is not None:
                    run.memo[f"kept:{spec.site}"] = keep_workload(obj, run.key, kept_path(run, spec.site))
            driver.stop()


class StartApp:
    """Start the app from the restored state (its driver names what to restore from the backup),
    then wait until it is writable (a driver whose start converges is started again while the app
    is not writable; others are released)."""

    def app_of(self, run: Run) -> ProtectedApp:
        """The app this step starts: the run's."""
        return run.app

    def observe(self, run: Run, spec: StepSpec) -> Seen:
        driver = run.driver(spec.site, self.app_of(run))
        return {"workload": driver.workload_object() is not None, "writable": driver.writable()}

    def satisfied(self, seen: Seen) -> bool:
        return bool(seen["workload"] and seen["writable"])

    def act(self, run: Run, spec: StepSpec, seen: Seen) -> None:
        app = self.app_of(run)
        driver = run.driver(spec.site, app)
        if not seen["workload"] or (getattr(driver, START_CONVERGES, False) and not seen["writable"]):
            driver.start(
                FromBackup(
                    lambda kinds: run.restore(spec.site, include=kinds, namespace=app.namespace),
                    lambda kinds: run.saved(spec.site, kinds),
                )
            )
        else:
            driver.release()  # a quiesce from the old site came with the data


class Smoke:
    """The driver's smoke test (for Nexus: status, writable, login, upload and download a unique asset)."""

    def observe(self, run: Run, spec: StepSpec) -> Seen:
        return dict(run.memo.get(f"smoke:{spec.site}", {"ok": False}))

    def satisfied(self, seen: Seen) -> bool:
        return bool(seen.get("ok"))

    def act(self, run: Run, spec: StepSpec, seen: Seen) -> None:
        result = run.driver(spec.site).smoke(run.op_id)
        run.memo[f"smoke:{spec.site}"] = {
            "ok": result.ok,
            "readable": result.readable,
            "writable": result.writable,
            "login": result.login,
            "path": result.path,
            "sha256": result.sha256,
            "round_trip": result.round_trip,
        }


# ---------------------------------------------------------------------------------------- volumes


def roles_of(run: Run, site: str) -> dict[str, str]:
    """Each image of the app and its role on ``site``."""
    control = run.volumes(site)
    return {v.image: control.role(v) for v in run.app.volumes}


class _Settle:
    """Make every image of the app ``want`` on the step's site (observed through its control path)."""

    want: Want

    def observe(self, run: Run, spec: StepSpec) -> Seen:
        control = run.volumes(spec.site)
        settled = {v.image: control.settled(v, self.want) for v in run.app.volumes}
        return {
            "settled": {i: ok for i, (ok, _) in settled.items()},
            "seen": {i: s for i, (_, s) in settled.items()},
        }

    def satisfied(self, seen: Seen) -> bool:
        return all(seen["settled"].values())

    def act(self, run: Run, spec: StepSpec, seen: Seen) -> None:
        control = run.volumes(spec.site)
        for volume in run.app.volumes:
            if not seen["settled"][volume.image]:
                self.move(control, volume, spec)

    def move(self, control: VolumeControl, volume: Volume, spec: StepSpec) -> None:
        """Act on one image."""
        raise NotImplementedError


class Demote(_Settle):
    """Demote every image of the app on the step's site."""

    want: Want = "secondary"

    def move(self, control: VolumeControl, volume: Volume, spec: StepSpec) -> None:
        control.demote(volume)


class Promote(_Settle):
    """Promote every image on the step's site (forced only when the plan says so)."""

    want: Want = "primary"

    def move(self, control: VolumeControl, volume: Volume, spec: StepSpec) -> None:
        control.promote(volume, force=spec.force)


def newest_primary_copied(run: Run, primary: str, secondary: str) -> Seen:
    """Per image: the newest primary snapshot on ``primary`` and whether ``secondary`` holds it complete."""
    out: Seen = {}
    for volume in run.app.volumes:
        pa, pb = run.world.bundle(primary), run.world.bundle(secondary)
        a = parse_snap_ls(pa.rbd.snapshots(run.app.pool_on(pa.site), volume.image), tz=pa.site.timezone)
        b = parse_snap_ls(pb.rbd.snapshots(run.app.pool_on(pb.site), volume.image), tz=pb.site.timezone)
        newest = max((s.id for s in a if not s.non_primary), default=None)
        copied = any(s.non_primary and s.complete and s.primary_snap_id == newest for s in b)
        out[volume.image] = {"newest": newest, "copied": newest is not None and copied}
    return out


class FinalSnapshot:
    """Take a mirror snapshot on the step's site and wait until the other site holds it complete."""

    def observe(self, run: Run, spec: StepSpec) -> Seen:
        images = newest_primary_copied(run, spec.site, run.other(spec.site))
        taken = run.memo.get(f"snap:{spec.name}")
        return {"images": images, "taken": taken}

    def satisfied(self, seen: Seen) -> bool:
        taken = seen["taken"] or {}
        return all(
            img["copied"] and (img["newest"] or 0) >= taken.get(name, 0)
            for name, img in seen["images"].items()
        ) and bool(taken)

    def act(self, run: Run, spec: StepSpec, seen: Seen) -> None:
        if seen["taken"]:
            return  # taken in this run: wait for it
        control = run.volumes(spec.site)
        for volume in run.app.volumes:
            control.snapshot(volume)
        run.memo[f"snap:{spec.name}"] = {
            i: v["newest"] for i, v in newest_primary_copied(run, spec.site, run.other(spec.site)).items()
        }


class Replaying:
    """Wait until every image on the step's site is ``up+replaying`` (a healthy secondary)."""

    def observe(self, run: Run, spec: StepSpec) -> Seen:
        control = run.volumes(spec.site)
        return {v.image: control.mirror_state(v)[0] for v in run.app.volumes}

    def satisfied(self, seen: Seen) -> bool:
        return all(str(state).startswith("up+replaying") for state in seen.values())

    def act(self, run: Run, spec: StepSpec, seen: Seen) -> None:
        return None


class Resync:
    """Resync each image of the step's site that reports split-brain or error, once."""

    def observe(self, run: Run, spec: StepSpec) -> Seen:
        control = run.volumes(spec.site)
        out: Seen = {}
        for volume in run.app.volumes:
            state, description = control.mirror_state(volume)
            out[volume.image] = {"state": state, "broken": "error" in state or "split-brain" in description}
        return out

    def satisfied(self, seen: Seen) -> bool:
        return all(str(v["state"]).startswith("up+replaying") for v in seen.values())

    def act(self, run: Run, spec: StepSpec, seen: Seen) -> None:
        control = run.volumes(spec.site)
        for volume in run.app.volumes:
            if seen[volume.image]["broken"]:
                control.resync(volume)


class InSync(FinalSnapshot):
    """Replaying, and a fresh snapshot of the current primary complete on the step's site."""

    def observe(self, run: Run, spec: StepSpec) -> Seen:
        primary = run.other(spec.site)
        states = {v.image: run.volumes(spec.site).mirror_state(v)[0] for v in run.app.volumes}
        return {
            "images": newest_primary_copied(run, primary, spec.site),
            "taken": run.memo.get(f"snap:{spec.name}"),
            "states": states,
        }

    def satisfied(self, seen: Seen) -> bool:
        replaying = all(str(s).startswith("up+replaying") for s in seen["states"].values())
        return replaying and super().satisfied(seen)

    def act(self, run: Run, spec: StepSpec, seen: Seen) -> None:
        if all(str(s).startswith("up+replaying") for s in seen["states"].values()):
            super().act(run, spec.model_copy(update={"site": run.other(spec.site)}), seen)


# ---------------------------------------------------------------------------------------- objects


def routing_kinds(run: Run, site: str) -> list[KindRef]:
    """The routing kinds (Service, Ingress) among what the app's driver has backed up."""
    return [k for k in run.driver(site).backup_kinds() if k.kind in ROUTING_KINDS]


def app_pvs(run: Run, site: str) -> list[dict[str, Any]]:
    images = {v.image for v in run.app.volumes}
    pvs = run.world.bundle(site).cluster.list(PV)
    return [
        pv
        for pv in pvs
        if (((pv.get("spec") or {}).get("csi") or {}).get("volumeAttributes") or {}).get("imageName")
        in images
    ]


class RestoreVolumes:
    """Restore from the backup everything the app needs but its workload, VRs and routing."""

    def observe(self, run: Run, spec: StepSpec) -> Seen:
        if run.app.namespace is None:  # no PVC to restore (a VM app: its driver starts from the backup)
            return {"pvcs": {}}
        cluster = run.world.bundle(spec.site).cluster
        ns, phases = run.app.kube_namespace(f"the {spec.name} step"), {}
        for volume in run.app.volumes:
            claim = run.app.claim(volume, f"the {spec.name} step")
            try:
                phases[claim] = (cluster.get(PVC, claim, ns).get("status") or {}).get("phase")
            except NotFound:
                phases[claim] = None
        return {"pvcs": phases}

    def satisfied(self, seen: Seen) -> bool:
        return all(p == "Bound" for p in seen["pvcs"].values())

    def act(self, run: Run, spec: StepSpec, seen: Seen) -> None:
        workload = run.app.kube_workload(f"the {spec.name} step").kind.kind
        run.restore(spec.site, exclude=(workload, VR_KIND.kind, *ROUTING_KINDS))


class TidySource:
    """Remove the app's VRs, PVCs, PVs (reclaim forced to Retain: the image is kept) and routing."""

    def __init__(self, *, routing: bool = True) -> None:
        self.routing = routing

    def observe(self, run: Run, spec: StepSpec) -> Seen:
        driver = run.driver(spec.site)
        if isinstance(driver, Leftovers):  # the driver knows what its app leaves behind
            return {"left": driver.leftovers()}
        cluster = run.world.bundle(spec.site).cluster
        ns = run.app.kube_namespace(f"the {spec.name} step")
        left: list[str] = []
        for volume in run.app.volumes:
            claim = run.app.claim(volume, f"the {spec.name} step")
            for kind in (VR_KIND, PVC):
                try:
                    cluster.get(kind, claim, ns)
                    left.append(f"{kind.kind}/{claim}")
                except NotFound:
                    pass
        left += [f"PersistentVolume/{pv['metadata']['name']}" for pv in app_pvs(run, spec.site)]
        if self.routing and run.app.routing.mode == "ingress":
            for kind in routing_kinds(run, spec.site):
                left += [f"{kind.kind}/{o['metadata']['name']}" for o in cluster.list(kind, ns)]
        return {"left": left}

    def satisfied(self, seen: Seen) -> bool:
        return not seen["left"]

    def act(self, run: Run, spec: StepSpec, seen: Seen) -> None:
        driver = run.driver(spec.site)
        if isinstance(driver, Leftovers):
            driver.tidy()
            return
        cluster = run.world.bundle(spec.site).cluster
        ns = run.app.kube_namespace(f"the {spec.name} step")
        pvs = app_pvs(run, spec.site)
        for pv in pvs:
            if (pv.get("spec") or {}).get("persistentVolumeReclaimPolicy") != "Retain":
                cluster.patch(
                    PV, pv["metadata"]["name"], None, {"spec": {"persistentVolumeReclaimPolicy": "Retain"}}
                )
        for volume in run.app.volumes:
            cluster.delete(VR_KIND, run.app.claim(volume, f"the {spec.name} step"), ns)
            cluster.delete(PVC, run.app.claim(volume, f"the {spec.name} step"), ns)
        for pv in pvs:
            cluster.delete(PV, pv["metadata"]["name"])
        if self.routing and run.app.routing.mode == "ingress":
            for kind in routing_kinds(run, spec.site):
                for obj in cluster.list(kind, ns):
                    cluster.delete(kind, obj["metadata"]["name"], ns)
