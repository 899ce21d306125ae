"""The steps only a drill runs: the canary, the forced promote that measures the achieved RPO, the
smoke test with the canary read back, and the isolated drill's scratch copy, restore and tidy.

A drill drives ``rbd`` directly (:func:`rbd_volumes`, the volume path of its runs): it creates no
VolumeReplication on the secondary, so its cleanup leaves nothing of it behind.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from drkit.adapters.volumes import VR_KIND, RbdVolumes, VolumeControl
from drkit.domain.drill import drill_mode, scratch_image, scratch_kinds, scratch_namespace
from drkit.domain.errors import CommandFailed, NotFound, StandbyError
from drkit.domain.models import ProtectedApp
from drkit.domain.operations import StepSpec
from drkit.domain.rbd_status import parse_snap_ls
from drkit.jobs.drivers import ScratchDrill, SmokeResult
from drkit.jobs.steps.run import NAMESPACE, PV, PVC, ROUTING_KINDS, Run, Seen
from drkit.jobs.steps.shared import Promote, StartApp, StopApp
from drkit.jobs.world import World, secondary_lag


def rbd_volumes(world: World, app: ProtectedApp, site: str) -> VolumeControl:
    """A drill's volume path: ``rbd`` on the site, whatever the app's ``mirroring.control``."""
    b = world.bundle(site)
    return RbdVolumes(b.rbd, app.pool_on(b.site))


def scratch_app(app: ProtectedApp) -> ProtectedApp:
    """The app as an isolated drill runs it: in its scratch namespace (its images' copies behind the PVs)."""
    return app.model_copy(update={"namespace": scratch_namespace(app)})


def drill_app(run: Run) -> ProtectedApp:
    """The app the drill proves on the secondary: the scratch one in isolated mode."""
    return scratch_app(run.app) if drill_mode(run.plan.steps) == "isolated" else run.app


def scratch_driver(run: Run, site: str) -> ScratchDrill | None:
    """The app's driver on ``site`` when it starts an isolated drill's app itself (see
    :class:`~drkit.jobs.drivers.base.ScratchDrill`); None: the drill runs it in its namespace."""
    driver = run.driver(site)
    return driver if isinstance(driver, ScratchDrill) else None


def _scratch_copies(run: Run) -> dict[str, str]:
    return {v.image: scratch_image(v.image) for v in run.app.volumes}


def _saved(run: Run, site: str) -> Callable[[tuple[str, ...]], list[dict[str, Any]]]:
    return lambda kinds: run.saved(site, kinds)


# ------------------------------------------------------------------------------------------ drill


class Canary:
    """Write a unique canary with random content into the app on the primary (through its driver);
    record its sha256 and time."""

    def observe(self, run: Run, spec: StepSpec) -> Seen:
        seen = dict(run.memo.get("canary") or run.seen.get(spec.name) or {"written": False})
        if not seen.get("written") and "checked" not in seen:
            driver = run.driver(spec.site)
            if not driver.canary:  # the gate let it through: the drill runs without a canary
                why = str(getattr(driver, "no_canary", "") or "the app's driver has no canary")
                seen = {"written": False, "checked": False, "verdict": f"not checked: {why}"}
                run.memo["canary"] = seen
        return seen

    def satisfied(self, seen: Seen) -> bool:
        return bool(seen.get("written")) or seen.get("checked") is False

    def act(self, run: Run, spec: StepSpec, seen: Seen) -> None:
        data = f"standby drill canary {run.op_id} ".encode() + secrets.token_bytes(4096)
        path = f"standby-drill/{run.op_id}/canary.bin"
        run.driver(spec.site).write_canary(path, data)
        run.memo["canary"] = {
            "written": True,
            "path": path,
            "sha256": hashlib.sha256(data).hexdigest(),
            "written_at": run.world.clock.now().isoformat(),
        }


class DrillPromote(Promote):
    """Force-promote the secondary's images while the primary keeps serving; the lag at that moment
    is the achieved RPO."""

    def act(self, run: Run, spec: StepSpec, seen: Seen) -> None:
        if "rpo" not in run.memo:
            lag = secondary_lag(run.world, run.app, spec.site, exact_first=True)
            now = run.world.clock.now()
            run.memo["rpo"] = {
                "rpo_achieved_s": lag,
                "promoted_at": now.isoformat(),
                "recovery_point": None if lag is None else (now - timedelta(seconds=lag)).isoformat(),
            }
        super().act(run, spec, seen)

    def observe(self, run: Run, spec: StepSpec) -> Seen:
        seen = super().observe(run, spec)
        seen["rpo"] = run.memo.get("rpo") or run.seen.get(spec.name, {}).get("rpo")
        return seen


class DrillSmoke:
    """Smoke test on the secondary, and the canary read back with the same sha256."""

    def observe(self, run: Run, spec: StepSpec) -> Seen:
        return dict(run.memo.get("drill-smoke") or {"ok": False})

    def satisfied(self, seen: Seen) -> bool:
        return bool(seen.get("ok"))

    def act(self, run: Run, spec: StepSpec, seen: Seen) -> None:
        canary = run.memo.get("canary") or run.seen.get("canary") or {}
        scratch = scratch_driver(run, spec.site) if drill_mode(run.plan.steps) == "isolated" else None
        if canary.get("checked") is False:
            if scratch is not None:
                started = ", ".join(scratch.scratch_started())
                self._unchecked(run, scratch.scratch_smoke(run.op_id), canary, started)
            else:
                self._unchecked(run, run.driver(spec.site).smoke(run.op_id), canary, "")
            return
        driver = run.driver(spec.site, drill_app(run))
        result = driver.smoke(run.op_id)
        got = ""
        if canary.get("path"):
            data = driver.read_canary(canary["path"])
            got = "missing" if data is None else hashlib.sha256(data).hexdigest()
        verified = bool(canary.get("sha256")) and got == canary["sha256"]
        verdict = (
            "same sha256"
            if verified
            else ("not found on the secondary" if got == "missing" else "sha256 differs")
        )
        smoke = {
            "readable": result.readable,
            "writable": result.writable,
            "login": result.login,
            "round_trip": result.round_trip,
            "path": result.path,
        }
        run.memo["drill-smoke"] = {
            "ok": result.ok and verified,
            "smoke": smoke,
            "canary": {**canary, "verified": verified, "verdict": verdict},
        }
        if not verified:
            raise StandbyError(
                f"drill {run.op_id}: the canary {canary.get('path')} written on {run.plan.source} is {verdict} on"
                f" {spec.site} (written {canary.get('written_at')}, before the last complete snapshot)",
                hint="the secondary does not hold the primary's data: check mirroring (rbd mirror image status)",
            )

    @staticmethod
    def _unchecked(run: Run, result: SmokeResult, canary: dict[str, Any], started: str) -> None:
        """The smoke test of an app the drill runs without a canary (reported as not checked)."""
        run.memo["drill-smoke"] = {
            "ok": result.ok,
            "smoke": {
                "readable": result.readable,
                "writable": result.writable,
                "login": result.login,
                "round_trip": result.round_trip,
                "path": result.path,
                "failed": list(result.failed),
                **({"started": started} if started else {}),
            },
            "canary": dict(canary),
        }
        if not result.ok:
            raise StandbyError(
                f"drill {run.op_id}: the smoke test failed on the scratch copy: "
                + ("; ".join(result.failed) or "not readable or writable"),
                hint="look at what is named on the secondary; the drill's cleanup removes it",
            )


# ------------------------------------------------------------------------- isolated drill


def _plain_image_exists(run: Run, site: str, name: str) -> bool:
    b = run.world.bundle(site)
    try:
        b.rbd.image_info(run.app.pool_on(b.site), name)
    except CommandFailed as error:
        if error.exit_code == 2:
            return False
        raise
    return True


def _snap_time(run: Run, site: str, image: str, snap_id: int | None) -> Any:
    if snap_id is None:
        return None
    b = run.world.bundle(site)
    try:
        snaps = parse_snap_ls(b.rbd.snapshots(run.app.pool_on(b.site), image), tz=b.site.timezone)
    except StandbyError:
        return None
    return next((s.created_at for s in snaps if s.id == snap_id), None)


class ScratchStop(StopApp):
    """Isolated drill: remove the app from the scratch namespace, wait until nothing answers (a
    scratch copy is thrown away: nothing to quiesce or keep)."""

    keep = False
    memo_suffix = ":scratch"

    def app_of(self, run: Run) -> ProtectedApp:
        """The app in its scratch namespace."""
        return scratch_app(run.app)

    def observe(self, run: Run, spec: StepSpec) -> Seen:
        scratch = scratch_driver(run, spec.site)
        if scratch is None:
            return super().observe(run, spec)
        left = list(scratch.scratch_started())
        return {"workload": bool(left), "answering": False, "left": left}

    def act(self, run: Run, spec: StepSpec, seen: Seen) -> None:
        scratch = scratch_driver(run, spec.site)
        if scratch is None:
            super().act(run, spec, seen)
        else:
            scratch.stop_scratch()


class ScratchStart(StartApp):
    """Isolated drill: restore the workload into the scratch namespace, wait until writable (or,
    for a driver that starts the drill's app itself, start it there from the scratch copies)."""

    def app_of(self, run: Run) -> ProtectedApp:
        """The app in its scratch namespace."""
        return scratch_app(run.app)

    def observe(self, run: Run, spec: StepSpec) -> Seen:
        scratch = scratch_driver(run, spec.site)
        if scratch is None:
            return super().observe(run, spec)
        missing = scratch.scratch_missing(_saved(run, spec.site))
        decisions = run.memo.get("scratch-start") or (run.seen.get(spec.name) or {}).get("decisions") or []
        return {"by_driver": True, "missing": list(missing), "decisions": list(decisions)}

    def satisfied(self, seen: Seen) -> bool:
        if seen.get("by_driver"):
            return not seen["missing"]
        return super().satisfied(seen)

    def act(self, run: Run, spec: StepSpec, seen: Seen) -> None:
        scratch = scratch_driver(run, spec.site)
        if scratch is None:
            super().act(run, spec, seen)
            return
        made = scratch.start_scratch(_saved(run, spec.site), _scratch_copies(run), run.op_id)
        run.memo["scratch-start"] = [*seen.get("decisions", []), *made]


class ScratchCopy:
    """Copy the secondary's latest complete mirror snapshot of each image to ``<image>-drill``
    (librbd; mirroring goes on). The copied snapshot's time on the primary is the recovery point;
    the time since then, at the copy, is the achieved RPO."""

    def observe(self, run: Run, spec: StepSpec) -> Seen:
        earlier = run.seen.get(spec.name) or {}
        done = run.memo.get("scratch-copy") or (earlier if earlier.get("copies") else None)
        present = {
            v.image: _plain_image_exists(run, spec.site, scratch_image(v.image)) for v in run.app.volumes
        }
        seen: Seen = {"present": present}
        if done:
            seen.update(copies=done["copies"], rpo=done["rpo"])
        return seen

    def satisfied(self, seen: Seen) -> bool:
        return bool(seen.get("copies")) and all(seen["present"].values())

    def act(self, run: Run, spec: StepSpec, seen: Seen) -> None:
        b = run.world.bundle(spec.site)
        copies: dict[str, Any] = {}
        points = []
        for volume in run.app.volumes:
            record = b.rbd.copy_latest_synced(
                run.app.pool_on(b.site), volume.image, scratch_image(volume.image)
            )
            at = _snap_time(
                run, run.other(spec.site), volume.image, record.get("primary_snap_id")
            ) or _snap_time(run, spec.site, volume.image, record.get("snap_id"))
            copies[volume.image] = {**record, "recovery_point": at.isoformat() if at else None}
            points.append(at)
        now = run.world.clock.now()
        known = [p for p in points if p is not None]
        point = min(known) if known and len(known) == len(points) else None
        lag = None if point is None else max(0.0, (now - point).total_seconds())
        if lag is None:
            lag = secondary_lag(run.world, run.app, spec.site, exact_first=True)
            point = None if lag is None else now - timedelta(seconds=lag)
        rpo = {
            "rpo_achieved_s": lag,
            "copied_at": now.isoformat(),
            "recovery_point": point.isoformat() if point else None,
        }
        run.memo["scratch-copy"] = {"copies": copies, "rpo": rpo}


def _to_scratch(run: Run) -> Callable[[dict[str, Any]], dict[str, Any]]:
    """Point the app's PVs (renamed ``<pv>-drill``) at the scratch images, and its PVCs at those PVs."""
    images = {v.image for v in run.app.volumes}
    pvcs = {v.pvc for v in run.app.volumes}
    ns = scratch_namespace(run.app)

    def rewrite(obj: dict[str, Any]) -> dict[str, Any]:
        meta, spec = obj.setdefault("metadata", {}), obj.get("spec") or {}
        if obj.get("kind") == "PersistentVolume":
            csi = spec.get("csi") or {}
            attrs = csi.get("volumeAttributes") or {}
            if attrs.get("imageName") in images:
                meta["name"] = scratch_image(meta["name"])
                attrs["imageName"] = scratch_image(attrs["imageName"])
                if csi.get("volumeHandle"):
                    csi["volumeHandle"] = scratch_image(csi["volumeHandle"])
                ref = spec.get("claimRef")
                if isinstance(ref, dict):
                    ref["namespace"] = ns
                    ref.pop("uid", None)
                    ref.pop("resourceVersion", None)
        elif (
            obj.get("kind") == "PersistentVolumeClaim" and meta.get("name") in pvcs and spec.get("volumeName")
        ):
            spec["volumeName"] = scratch_image(spec["volumeName"])
        return obj

    return rewrite


def _scratch_pvs(run: Run, site: str) -> list[dict[str, Any]]:
    images = {scratch_image(v.image) for v in run.app.volumes}
    return [
        pv
        for pv in run.world.bundle(site).cluster.list(PV)
        if (((pv.get("spec") or {}).get("csi") or {}).get("volumeAttributes") or {}).get("imageName")
        in images
    ]


class ScratchRestore:
    """Restore all but the workload, VRs and routing into the scratch namespace, PVs on the scratch images."""

    def observe(self, run: Run, spec: StepSpec) -> Seen:
        if scratch_driver(run, spec.site) is not None:  # nothing to restore: the driver starts it
            return {"by_driver": True, "pvcs": {}}
        cluster = run.world.bundle(spec.site).cluster
        ns = scratch_namespace(run.app)
        phases = {}
        for volume in run.app.volumes:
            claim = run.app.claim(volume, "drill")
            try:
                phases[claim] = (cluster.get(PVC, claim, ns).get("status") or {}).get("phase")
            except NotFound:
                phases[claim] = None
        return {"namespace": ns, "pvcs": phases}

    def satisfied(self, seen: Seen) -> bool:
        return all(p == "Bound" for p in seen["pvcs"].values())

    def act(self, run: Run, spec: StepSpec, seen: Seen) -> None:
        # The drill namespace is installed once with its Role (never created here: see the plan's guard).
        run.restore(
            spec.site,
            exclude=(run.app.kube_workload("drill").kind.kind, VR_KIND.kind, *ROUTING_KINDS, NAMESPACE.kind),
            namespace=scratch_namespace(run.app),
            rewrite=_to_scratch(run),
        )


class ScratchTidy:
    """Empty the scratch namespace of the drill's objects and remove the PVs on scratch images. The
    namespace itself stays: it is installed once with the Role that lets Standby work in it."""

    def observe(self, run: Run, spec: StepSpec) -> Seen:
        scratch = scratch_driver(run, spec.site)
        if scratch is not None:
            return {"left": list(scratch.scratch_left()), "by_driver": True}
        cluster = run.world.bundle(spec.site).cluster
        ns = scratch_namespace(run.app)
        left: list[str] = []
        for kind in scratch_kinds(run.app):
            left += [f"{kind.kind}/{o['metadata']['name']}" for o in cluster.list(kind, ns)]
        left += [f"PersistentVolume/{pv['metadata']['name']}" for pv in _scratch_pvs(run, spec.site)]
        return {"left": left}

    def satisfied(self, seen: Seen) -> bool:
        return not seen["left"]

    def act(self, run: Run, spec: StepSpec, seen: Seen) -> None:
        scratch = scratch_driver(run, spec.site)
        if scratch is not None:
            scratch.stop_scratch()  # a VM still using an image would keep it
            scratch.remove_scratch()
            return
        cluster = run.world.bundle(spec.site).cluster
        ns = scratch_namespace(run.app)
        pvs = _scratch_pvs(run, spec.site)
        for pv in pvs:  # Retain: the scratch image is removed by its own step, never by a provisioner
            if (pv.get("spec") or {}).get("persistentVolumeReclaimPolicy") != "Retain":
                cluster.patch(
                    PV, pv["metadata"]["name"], None, {"spec": {"persistentVolumeReclaimPolicy": "Retain"}}
                )
        for kind in scratch_kinds(run.app):
            for obj in cluster.list(kind, ns):
                cluster.delete(kind, obj["metadata"]["name"], ns)
        for pv in pvs:
            cluster.delete(PV, pv["metadata"]["name"])


class ScratchRemoveImage:
    """Remove the scratch images (plain images only: a mirrored image is refused)."""

    def observe(self, run: Run, spec: StepSpec) -> Seen:
        return {
            scratch_image(v.image): _plain_image_exists(run, spec.site, scratch_image(v.image))
            for v in run.app.volumes
        }

    def satisfied(self, seen: Seen) -> bool:
        return not any(seen.values())

    def act(self, run: Run, spec: StepSpec, seen: Seen) -> None:
        b = run.world.bundle(spec.site)
        for name, present in seen.items():
            if present:
                b.rbd.remove_image(run.app.pool_on(b.site), name)
