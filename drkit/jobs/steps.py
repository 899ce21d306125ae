"""The steps of DR operations: each observes real state, acts only when needed, and is re-runnable.

A step implements :class:`Step`: ``observe`` reads (never acts) and returns a small JSON-able
dict that goes into the journal; ``satisfied`` is pure; ``act`` is called only when the step is not
satisfied, and may be called again on the next poll, so it is idempotent (it looks before it acts).
:data:`STEPS` maps the step names used by :mod:`drkit.domain.operations` to their implementations.
"""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, Protocol

from drkit.adapters.volumes import VR_KIND, RbdVolumes, VolumeControl, Want
from drkit.domain import crypto
from drkit.domain.drill import drill_mode, scratch_image, scratch_kinds, scratch_namespace
from drkit.domain.errors import CommandFailed, NotFound, StandbyError
from drkit.domain.models import KindRef, ProtectedApp, Volume
from drkit.domain.operations import Plan, StepSpec
from drkit.domain.placement import moved
from drkit.domain.rbd_status import parse_snap_ls
from drkit.domain.transforms import normalize
from drkit.jobs.appdriver import AppDriver, driver_for
from drkit.jobs.backup import app_stores, run_backup, store_label
from drkit.jobs.restore import restore_backup
from drkit.jobs.world import World, read_placement, secondary_lag, update_placement

Seen = dict[str, Any]
PV = KindRef(version="v1", kind="PersistentVolume")
PVC = KindRef(version="v1", kind="PersistentVolumeClaim")
NAMESPACE = KindRef(version="v1", kind="Namespace")
ROUTING_KINDS = ("Service", "Ingress")
RoutingHook = Callable[[ProtectedApp, str], None]
"""Called by the ``routing`` step with the app and its new site (``routing.mode: webhook``)."""


@dataclass
class Run:
    """One run of a plan: the world, the app, the backup to restore from, and per-run memory."""

    world: World
    app: ProtectedApp
    plan: Plan
    op_id: str
    key: crypto.MasterKey | None
    backup_run: str | None
    routing_hook: RoutingHook | None = None
    memo: dict[str, Any] = field(default_factory=dict)
    seen: dict[str, Seen] = field(default_factory=dict)
    """What each finished step observed last (from the journal: it outlives the process)."""
    ticks: list[Callable[[], None]] = field(default_factory=list)
    """Called on every poll of a step (the drill's availability probe)."""

    def tick(self) -> None:
        """Run the per-poll callbacks."""
        for callback in self.ticks:
            callback()

    def other(self, site: str) -> str:
        """The app's other site."""
        return self.app.secondary_site if site == self.app.home_site else self.app.home_site

    def volumes(self, site: str) -> VolumeControl:
        """Volume control on ``site`` by the app's path; a drill drives ``rbd`` directly (it creates
        no VolumeReplication on the secondary, so cleanup leaves nothing of it behind)."""
        if self.plan.kind == "drill":
            b = self.world.bundle(site)
            return RbdVolumes(b.rbd, b.site.pool)
        return self.world.volumes(self.app, site)

    @property
    def isolated(self) -> bool:
        """An isolated drill: the app runs on a scratch copy in a scratch namespace of the secondary."""
        return self.plan.kind == "drill" and drill_mode(self.plan.steps) == "isolated"

    def scratch_app(self) -> ProtectedApp:
        """The app as an isolated drill runs it: in its scratch namespace (its images' copies behind the PVs)."""
        return self.app.model_copy(update={"namespace": scratch_namespace(self.app)})

    def drill_app(self) -> ProtectedApp:
        """The app the drill proves on the secondary: the scratch one in isolated mode."""
        return self.scratch_app() if self.isolated else self.app

    def driver(self, site: str, app: ProtectedApp | None = None) -> AppDriver:
        """The app driver on ``site`` (of ``app``, by default the run's app)."""
        b = self.world.bundle(site)
        driver = driver_for(app or self.app, b.site, b.cluster)
        if self.world.nexus_factory is not None:
            driver.nexus_factory = self.world.nexus_factory
        return driver

    def restore(
        self, site: str, *, include: tuple[str, ...] | None = None, exclude: tuple[str, ...] = (),
        namespace: str | None = None, rewrite: Callable[[dict[str, Any]], dict[str, Any]] | None = None,
    ) -> None:  # fmt: skip
        """Restore the plan's backup (taken on the plan's ``backup_site``, else its source) into ``site``;
        existing objects are kept.

        ``namespace`` and ``rewrite``: see :func:`~drkit.jobs.restore.restore_backup`."""
        run_id = self.restore_run
        if run_id is None:
            raise NotFound(
                f"no backup of app {self.app.name} to restore on {site}",
                hint=f"run: standby backup run --app {self.app.name}",
            )
        source = self.world.config.site(self.plan.backup_site or self.plan.source)
        b = self.world.bundle(site)
        ref = self.world.stores(first=site)[0]  # the target's own store only
        restore_backup(
            ref.store, source, self.app, b.cluster, b.site, key=self.key, run_id=run_id,
            include_kinds=include, exclude_kinds=exclude, namespace=namespace, rewrite=rewrite,
            clock=self.world.clock, layout=ref.layout, store_name="/".join(ref.sites),
        )  # fmt: skip

    @property
    def restore_run(self) -> str | None:
        """The backup this run restores: the final backup it took (a planned move), else the plan's."""
        taken = self.memo.get("final-backup") or (self.seen.get("final-backup") or {}).get("run")
        return str(taken) if taken else self.backup_run


class Step(Protocol):
    """Observe, judge, act."""

    def observe(self, run: Run, spec: StepSpec) -> Seen:
        """Read the state the step cares about (never act)."""
        ...

    def satisfied(self, seen: Seen) -> bool:
        """Whether the step's goal holds (pure)."""
        ...

    def act(self, run: Run, spec: StepSpec, seen: Seen) -> None:
        """Move towards the goal (idempotent)."""
        ...


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
        raise NotFound(f"the kept workload object {path} is sealed with key id {kept.get('key_id')}, but no key"
                       " was given", hint=f"give the master key whose id is {kept.get('key_id')}")  # fmt: skip
    return dict(json.loads(crypto.decrypt(base64.b64decode(kept["sealed"]), key=key, path=path)))


class StopApp:
    """Freeze the app when it answers, keep its workload object (in the journal), delete it, wait
    until nothing answers at its URL."""

    scratch = False
    """Act on the isolated drill's scratch namespace instead of the app's."""

    def _app(self, run: Run) -> ProtectedApp:
        return run.scratch_app() if self.scratch else run.app

    def observe(self, run: Run, spec: StepSpec) -> Seen:
        driver = run.driver(spec.site, self._app(run))
        key = f"url:{spec.site}" + (":scratch" if self.scratch else "")
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
            driver = run.driver(spec.site, self._app(run))
            if not self.scratch:  # a scratch copy is thrown away: nothing to freeze or keep
                run.memo[f"frozen:{spec.site}"] = driver.freeze()
                obj = driver.workload_object()
                if obj is not None:
                    run.memo[f"kept:{spec.site}"] = keep_workload(obj, run.key, kept_path(run, spec.site))
            driver.remove_workload()


class ScratchStop(StopApp):
    """Isolated drill: remove the app from the scratch namespace, wait until nothing answers."""

    scratch = True


class StartApp:
    """Restore the workload object from the backup, then wait until the app is writable."""

    scratch = False
    """Start it in the isolated drill's scratch namespace instead of the app's."""

    def _app(self, run: Run) -> ProtectedApp:
        return run.scratch_app() if self.scratch else run.app

    def observe(self, run: Run, spec: StepSpec) -> Seen:
        driver = run.driver(spec.site, self._app(run))
        return {"workload": driver.workload_object() is not None, "writable": driver.writable()}

    def satisfied(self, seen: Seen) -> bool:
        return bool(seen["workload"] and seen["writable"])

    def act(self, run: Run, spec: StepSpec, seen: Seen) -> None:
        app = self._app(run)
        if not seen["workload"]:
            run.restore(spec.site, include=(run.app.workload.kind.kind,), namespace=app.namespace)
        else:
            run.driver(spec.site, app).release_freeze()  # a freeze from the old site came with the data


class ScratchStart(StartApp):
    """Isolated drill: restore the workload into the scratch namespace, wait until writable."""

    scratch = True


class Smoke:
    """Status, writable, login, upload and download a unique asset."""

    def observe(self, run: Run, spec: StepSpec) -> Seen:
        return dict(run.memo.get(f"smoke:{spec.site}", {"ok": False}))

    def satisfied(self, seen: Seen) -> bool:
        return bool(seen.get("ok"))

    def act(self, run: Run, spec: StepSpec, seen: Seen) -> None:
        result = run.driver(spec.site).smoke(run.op_id)
        run.memo[f"smoke:{spec.site}"] = {
            "ok": result.ok, "readable": result.readable, "writable": result.writable,
            "login": result.login, "path": result.path, "sha256": result.sha256, "round_trip": result.round_trip,
        }  # fmt: skip


# ---------------------------------------------------------------------------------------- volumes


def _roles(run: Run, site: str) -> dict[str, str]:
    control = run.volumes(site)
    return {v.image: control.role(v) for v in run.app.volumes}


class _Settle:
    """Make every image of the app ``want`` on the step's site (observed through its control path)."""

    want: Want

    def observe(self, run: Run, spec: StepSpec) -> Seen:
        control = run.volumes(spec.site)
        settled = {v.image: control.settled(v, self.want) for v in run.app.volumes}
        return {"settled": {i: ok for i, (ok, _) in settled.items()}, "seen": {i: s for i, (_, s) in settled.items()}}

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


def _newest_primary_copied(run: Run, primary: str, secondary: str) -> Seen:
    """Per image: the newest primary snapshot on ``primary`` and whether ``secondary`` holds it complete."""
    out: Seen = {}
    for volume in run.app.volumes:
        pa, pb = run.world.bundle(primary), run.world.bundle(secondary)
        a = parse_snap_ls(pa.rbd.snapshots(pa.site.pool, volume.image), tz=pa.site.timezone)
        b = parse_snap_ls(pb.rbd.snapshots(pb.site.pool, volume.image), tz=pb.site.timezone)
        newest = max((s.id for s in a if not s.non_primary), default=None)
        copied = any(s.non_primary and s.complete and s.primary_snap_id == newest for s in b)
        out[volume.image] = {"newest": newest, "copied": newest is not None and copied}
    return out


class FinalSnapshot:
    """Take a mirror snapshot on the step's site and wait until the other site holds it complete."""

    def observe(self, run: Run, spec: StepSpec) -> Seen:
        images = _newest_primary_copied(run, spec.site, run.other(spec.site))
        taken = run.memo.get(f"snap:{spec.name}")
        return {"images": images, "taken": taken}

    def satisfied(self, seen: Seen) -> bool:
        taken = seen["taken"] or {}
        return all(
            img["copied"] and (img["newest"] or 0) >= taken.get(name, 0) for name, img in seen["images"].items()
        ) and bool(taken)

    def act(self, run: Run, spec: StepSpec, seen: Seen) -> None:
        if seen["taken"]:
            return  # taken in this run: wait for it
        control = run.volumes(spec.site)
        for volume in run.app.volumes:
            control.snapshot(volume)
        run.memo[f"snap:{spec.name}"] = {
            i: v["newest"] for i, v in _newest_primary_copied(run, spec.site, run.other(spec.site)).items()
        }


class WaitDemotion:
    """Wait until the step's site holds, complete, the peer's demotion snapshot (a planned handover)."""

    def observe(self, run: Run, spec: StepSpec) -> Seen:
        b = run.world.bundle(spec.site)
        out: Seen = {}
        roles = _roles(run, spec.site)
        for volume in run.app.volumes:
            snaps = parse_snap_ls(b.rbd.snapshots(b.site.pool, volume.image), tz=b.site.timezone)
            newest = max(snaps, key=lambda s: s.id, default=None)
            ready = newest is not None and newest.non_primary and newest.state == "demoted" and newest.complete
            out[volume.image] = {"ready": ready or roles[volume.image] == "primary", "role": roles[volume.image]}
        return out

    def satisfied(self, seen: Seen) -> bool:
        return all(v["ready"] for v in seen.values())

    def act(self, run: Run, spec: StepSpec, seen: Seen) -> None:
        return None  # rbd-mirror copies it; nothing to do but wait


class WaitInflight:
    """Let a sync in flight on the step's site finish before a forced promote (bounded by the engine)."""

    def observe(self, run: Run, spec: StepSpec) -> Seen:
        control = run.volumes(spec.site)
        out: Seen = {}
        for volume in run.app.volumes:
            try:
                state, description = control.mirror_state(volume)
            except StandbyError as error:
                out[volume.image] = {"syncing": False, "state": f"unknown ({str(error)[:80]})"}
                continue
            out[volume.image] = {"syncing": '"replay_state":"syncing"' in description, "state": state}
        return out

    def satisfied(self, seen: Seen) -> bool:
        return not any(v["syncing"] for v in seen.values())

    def act(self, run: Run, spec: StepSpec, seen: Seen) -> None:
        return None


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
            "images": _newest_primary_copied(run, primary, spec.site),
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


def _app_pvs(run: Run, site: str) -> list[dict[str, Any]]:
    images = {v.image for v in run.app.volumes}
    pvs = run.world.bundle(site).cluster.list(PV)
    return [
        pv for pv in pvs
        if (((pv.get("spec") or {}).get("csi") or {}).get("volumeAttributes") or {}).get("imageName") in images
    ]  # fmt: skip


class RestoreVolumes:
    """Restore from the backup everything the app needs but its workload, VRs and routing."""

    def observe(self, run: Run, spec: StepSpec) -> Seen:
        cluster = run.world.bundle(spec.site).cluster
        phases = {}
        for volume in run.app.volumes:
            try:
                phases[volume.pvc] = (cluster.get(PVC, volume.pvc, run.app.namespace).get("status") or {}).get("phase")
            except NotFound:
                phases[volume.pvc] = None
        return {"pvcs": phases}

    def satisfied(self, seen: Seen) -> bool:
        return all(p == "Bound" for p in seen["pvcs"].values())

    def act(self, run: Run, spec: StepSpec, seen: Seen) -> None:
        run.restore(spec.site, exclude=(run.app.workload.kind.kind, VR_KIND.kind, *ROUTING_KINDS))


class Routing:
    """Point users at the target: nothing, the app's Service and Ingress there, or a webhook."""

    def observe(self, run: Run, spec: StepSpec) -> Seen:
        mode = run.app.routing.mode
        if mode == "ingress":
            cluster = run.world.bundle(spec.site).cluster
            kinds = [k for k in run.app.backup.kinds if k.kind in ROUTING_KINDS]
            present = {k.kind: bool(cluster.list(k, run.app.namespace)) for k in kinds}
            return {"mode": mode, "present": present}
        return {"mode": mode, "done": mode == "none" or bool(run.memo.get("routed"))}

    def satisfied(self, seen: Seen) -> bool:
        if seen["mode"] == "ingress":
            return all(seen["present"].values())
        return bool(seen["done"])

    def act(self, run: Run, spec: StepSpec, seen: Seen) -> None:
        if seen["mode"] == "ingress":
            run.restore(spec.site, include=ROUTING_KINDS)
        elif seen["mode"] == "webhook":
            if run.routing_hook is None:
                raise StandbyError(
                    f"app {run.app.name}: routing.mode is webhook but no webhook was given to this run",
                    hint="run the operation from its Prefect flow, which calls the webhook block",
                )
            run.routing_hook(run.app, spec.site)
            run.memo["routed"] = True


class TidySource:
    """Remove the app's VRs, PVCs, PVs (reclaim forced to Retain: the image is kept) and routing."""

    def __init__(self, *, routing: bool = True) -> None:
        self.routing = routing

    def observe(self, run: Run, spec: StepSpec) -> Seen:
        cluster = run.world.bundle(spec.site).cluster
        ns = run.app.namespace
        left: list[str] = []
        for volume in run.app.volumes:
            for kind in (VR_KIND, PVC):
                try:
                    cluster.get(kind, volume.pvc, ns)
                    left.append(f"{kind.kind}/{volume.pvc}")
                except NotFound:
                    pass
        left += [f"PersistentVolume/{pv['metadata']['name']}" for pv in _app_pvs(run, spec.site)]
        if self.routing and run.app.routing.mode == "ingress":
            for kind in (k for k in run.app.backup.kinds if k.kind in ROUTING_KINDS):
                left += [f"{kind.kind}/{o['metadata']['name']}" for o in cluster.list(kind, ns)]
        return {"left": left}

    def satisfied(self, seen: Seen) -> bool:
        return not seen["left"]

    def act(self, run: Run, spec: StepSpec, seen: Seen) -> None:
        cluster = run.world.bundle(spec.site).cluster
        ns = run.app.namespace
        pvs = _app_pvs(run, spec.site)
        for pv in pvs:
            if (pv.get("spec") or {}).get("persistentVolumeReclaimPolicy") != "Retain":
                cluster.patch(PV, pv["metadata"]["name"], None, {"spec": {"persistentVolumeReclaimPolicy": "Retain"}})
        for volume in run.app.volumes:
            cluster.delete(VR_KIND, volume.pvc, ns)
            cluster.delete(PVC, volume.pvc, ns)
        for pv in pvs:
            cluster.delete(PV, pv["metadata"]["name"])
        if self.routing and run.app.routing.mode == "ingress":
            for kind in (k for k in run.app.backup.kinds if k.kind in ROUTING_KINDS):
                for obj in cluster.list(kind, ns):
                    cluster.delete(kind, obj["metadata"]["name"], ns)


class FinalBackup:
    """A planned move: back up the app's manifests on the running source into the target's store.

    The move then restores this run, not last night's: both sites are up, so the newest state of
    the app is at hand, and no backup needs to have been taken on the source before (a relocate back).
    Re-running after a kill takes another run (blobs already stored are reused).
    """

    def observe(self, run: Run, spec: StepSpec) -> Seen:
        return {"run": run.memo.get("final-backup")}

    def satisfied(self, seen: Seen) -> bool:
        return bool(seen["run"])

    def act(self, run: Run, spec: StepSpec, seen: Seen) -> None:
        source = run.world.bundle(spec.site)
        must = {spec.site, run.plan.target}  # the source's store, and the target's, which the restore reads
        stores = [ref if must & set(ref.sites) else run.world.spare(ref) for ref in app_stores(run.world, run.app, spec.site, spare=False)]
        summary = run_backup(run.app, source.site, source.cluster, stores, key=run.key, clock=run.world.clock)
        target = store_label(run.world.stores(first=run.plan.target)[0])
        missed = [o for o in summary.stores if o.store == target and not o.complete]
        if summary.status != "complete" or missed:
            why = "; ".join(summary.warnings)[:300] if summary.status != "complete" else missed[0].line()
            raise StandbyError(
                f"final backup {summary.run_id} of app {run.app.name} on {spec.site} cannot be restored on"
                f" {run.plan.target}: {why}",
                hint="fix what it names (nothing was stopped yet), then resume, or abort the operation",
                context={"site": spec.site, "app": run.app.name},
            )
        run.memo["final-backup"] = summary.run_id


class FenceSource:
    """Failover: stop the app and demote its images where the old primary answers; record the rest."""

    def observe(self, run: Run, spec: StepSpec) -> Seen:
        if run.plan.unfenced:
            return {"reachable": False, "unfenced": list(run.plan.unfenced)}
        stop, demote = StopApp().observe(run, spec), Demote().observe(run, spec)
        return {"reachable": True, "stop": stop, "demote": demote}

    def satisfied(self, seen: Seen) -> bool:
        if not seen["reachable"]:
            return True
        return StopApp().satisfied(seen["stop"]) and Demote().satisfied(seen["demote"])

    def act(self, run: Run, spec: StepSpec, seen: Seen) -> None:
        if not StopApp().satisfied(seen["stop"]):
            StopApp().act(run, spec, seen["stop"])
            return
        Demote().act(run, spec, seen["demote"])


class MovePlacement:
    """Record the target as the app's primary (compare-and-swap; the operation still holds the app)."""

    def observe(self, run: Run, spec: StepSpec) -> Seen:
        record = read_placement(run.world, run.app).record
        return {"primary": record.primary, "epoch": record.epoch, "moved": record.primary == spec.site}

    def satisfied(self, seen: Seen) -> bool:
        return bool(seen["moved"])

    def act(self, run: Run, spec: StepSpec, seen: Seen) -> None:
        now = run.world.clock.now()
        update_placement(run.world, run.app, lambda p: moved(p, spec.site, now), required=spec.site)


# ------------------------------------------------------------------------------------------ drill


class Canary:
    """Write a unique raw asset with random content on the primary; record its sha256 and time."""

    def observe(self, run: Run, spec: StepSpec) -> Seen:
        return dict(run.memo.get("canary") or run.seen.get(spec.name) or {"written": False})

    def satisfied(self, seen: Seen) -> bool:
        return bool(seen.get("written"))

    def act(self, run: Run, spec: StepSpec, seen: Seen) -> None:
        api = run.driver(spec.site).api()
        if api is None:
            raise StandbyError(f"{run.app.name} on {spec.site} reports no URL: the canary cannot be written",
                               hint="check that the app runs on its primary")  # fmt: skip
        data = f"standby drill canary {run.op_id} ".encode() + secrets.token_bytes(4096)
        path = f"standby-drill/{run.op_id}/canary.bin"
        api.ensure_raw_repository(run.app.checks.smoke_repository)
        api.upload(run.app.checks.smoke_repository, path, data)
        run.memo["canary"] = {"written": True, "path": path, "sha256": hashlib.sha256(data).hexdigest(),
                              "written_at": run.world.clock.now().isoformat()}  # fmt: skip


class DrillPromote(Promote):
    """Force-promote the secondary's images while the primary keeps serving; the lag at that moment
    is the achieved RPO."""

    def act(self, run: Run, spec: StepSpec, seen: Seen) -> None:
        if "rpo" not in run.memo:
            lag = secondary_lag(run.world, run.app, spec.site, exact_first=True)
            now = run.world.clock.now()
            run.memo["rpo"] = {"rpo_achieved_s": lag, "promoted_at": now.isoformat(),
                               "recovery_point": None if lag is None else (now - timedelta(seconds=lag)).isoformat()}  # fmt: skip
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
        driver = run.driver(spec.site, run.drill_app())
        result = driver.smoke(run.op_id)
        api = driver.api()
        got = ""
        if api is not None and canary.get("path"):
            try:
                got = hashlib.sha256(api.download(run.app.checks.smoke_repository, canary["path"])).hexdigest()
            except NotFound:
                got = "missing"
        verified = bool(canary.get("sha256")) and got == canary["sha256"]
        verdict = "same sha256" if verified else ("not found on the secondary" if got == "missing" else "sha256 differs")
        smoke = {"readable": result.readable, "writable": result.writable, "login": result.login,
                 "round_trip": result.round_trip, "path": result.path}  # fmt: skip
        run.memo["drill-smoke"] = {"ok": result.ok and verified, "smoke": smoke,
                                   "canary": {**canary, "verified": verified, "verdict": verdict}}  # fmt: skip
        if not verified:
            raise StandbyError(
                f"drill {run.op_id}: the canary {canary.get('path')} written on {run.plan.source} is {verdict} on"
                f" {spec.site} (written {canary.get('written_at')}, before the last complete snapshot)",
                hint="the secondary does not hold the primary's data: check mirroring (rbd mirror image status)",
            )


# ------------------------------------------------------------------------- isolated drill


def _plain_image_exists(run: Run, site: str, name: str) -> bool:
    b = run.world.bundle(site)
    try:
        b.rbd.image_info(b.site.pool, name)
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
        snaps = parse_snap_ls(b.rbd.snapshots(b.site.pool, image), tz=b.site.timezone)
    except StandbyError:
        return None
    return next((s.created_at for s in snaps if s.id == snap_id), None)


class ScratchCopy:
    """Copy the secondary's latest complete mirror snapshot of each image to ``<image>-drill``
    (librbd; mirroring goes on). The copied snapshot's time on the primary is the recovery point;
    the time since then, at the copy, is the achieved RPO."""

    def observe(self, run: Run, spec: StepSpec) -> Seen:
        earlier = run.seen.get(spec.name) or {}
        done = run.memo.get("scratch-copy") or (earlier if earlier.get("copies") else None)
        present = {v.image: _plain_image_exists(run, spec.site, scratch_image(v.image)) for v in run.app.volumes}
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
            record = b.rbd.copy_latest_synced(b.site.pool, volume.image, scratch_image(volume.image))
            at = (_snap_time(run, run.other(spec.site), volume.image, record.get("primary_snap_id"))
                  or _snap_time(run, spec.site, volume.image, record.get("snap_id")))  # fmt: skip
            copies[volume.image] = {**record, "recovery_point": at.isoformat() if at else None}
            points.append(at)
        now = run.world.clock.now()
        known = [p for p in points if p is not None]
        point = min(known) if known and len(known) == len(points) else None
        lag = None if point is None else max(0.0, (now - point).total_seconds())
        if lag is None:
            lag = secondary_lag(run.world, run.app, spec.site, exact_first=True)
            point = None if lag is None else now - timedelta(seconds=lag)
        rpo = {"rpo_achieved_s": lag, "copied_at": now.isoformat(),
               "recovery_point": point.isoformat() if point else None}  # fmt: skip
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
        elif obj.get("kind") == "PersistentVolumeClaim" and meta.get("name") in pvcs and spec.get("volumeName"):
            spec["volumeName"] = scratch_image(spec["volumeName"])
        return obj

    return rewrite


def _scratch_pvs(run: Run, site: str) -> list[dict[str, Any]]:
    images = {scratch_image(v.image) for v in run.app.volumes}
    return [
        pv for pv in run.world.bundle(site).cluster.list(PV)
        if (((pv.get("spec") or {}).get("csi") or {}).get("volumeAttributes") or {}).get("imageName") in images
    ]  # fmt: skip


class ScratchRestore:
    """Restore all but the workload, VRs and routing into the scratch namespace, PVs on the scratch images."""

    def observe(self, run: Run, spec: StepSpec) -> Seen:
        cluster = run.world.bundle(spec.site).cluster
        ns = scratch_namespace(run.app)
        phases = {}
        for volume in run.app.volumes:
            try:
                phases[volume.pvc] = (cluster.get(PVC, volume.pvc, ns).get("status") or {}).get("phase")
            except NotFound:
                phases[volume.pvc] = None
        return {"namespace": ns, "pvcs": phases}

    def satisfied(self, seen: Seen) -> bool:
        return all(p == "Bound" for p in seen["pvcs"].values())

    def act(self, run: Run, spec: StepSpec, seen: Seen) -> None:
        # The drill namespace is installed once with its Role (never created here: see the plan's guard).
        run.restore(spec.site, exclude=(run.app.workload.kind.kind, VR_KIND.kind, *ROUTING_KINDS, NAMESPACE.kind),
                    namespace=scratch_namespace(run.app), rewrite=_to_scratch(run))  # fmt: skip


class ScratchTidy:
    """Empty the scratch namespace of the drill's objects and remove the PVs on scratch images. The
    namespace itself stays: it is installed once with the Role that lets Standby work in it."""

    def observe(self, run: Run, spec: StepSpec) -> Seen:
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
        cluster = run.world.bundle(spec.site).cluster
        ns = scratch_namespace(run.app)
        pvs = _scratch_pvs(run, spec.site)
        for pv in pvs:  # Retain: the scratch image is removed by its own step, never by a provisioner
            if (pv.get("spec") or {}).get("persistentVolumeReclaimPolicy") != "Retain":
                cluster.patch(PV, pv["metadata"]["name"], None, {"spec": {"persistentVolumeReclaimPolicy": "Retain"}})
        for kind in scratch_kinds(run.app):
            for obj in cluster.list(kind, ns):
                cluster.delete(kind, obj["metadata"]["name"], ns)
        for pv in pvs:
            cluster.delete(PV, pv["metadata"]["name"])


class ScratchRemoveImage:
    """Remove the scratch images (plain images only: a mirrored image is refused)."""

    def observe(self, run: Run, spec: StepSpec) -> Seen:
        return {scratch_image(v.image): _plain_image_exists(run, spec.site, scratch_image(v.image)) for v in run.app.volumes}

    def satisfied(self, seen: Seen) -> bool:
        return not any(seen.values())

    def act(self, run: Run, spec: StepSpec, seen: Seen) -> None:
        b = run.world.bundle(spec.site)
        for name, present in seen.items():
            if present:
                b.rbd.remove_image(b.site.pool, name)


STEPS: dict[str, Step] = {
    "final-backup": FinalBackup(),
    "stop-source": StopApp(),
    "stop-old": StopApp(),
    "final-snapshot": FinalSnapshot(),
    "demote-source": Demote(),
    "demote-old": Demote(),
    "wait-demotion": WaitDemotion(),
    "restore-volumes": RestoreVolumes(),
    "promote-target": Promote(),
    "start-target": StartApp(),
    "smoke-target": Smoke(),
    "routing": Routing(),
    "tidy-source": TidySource(),
    "placement": MovePlacement(),
    "mirroring-healthy": Replaying(),
    "fence-source": FenceSource(),
    "wait-inflight-sync": WaitInflight(),
    "resync-old": Resync(),
    "wait-in-sync": InSync(),
    "canary": Canary(),
    "drill-snapshot": FinalSnapshot(),
    "drill-promote": DrillPromote(),
    "drill-smoke": DrillSmoke(),
    "scratch-copy": ScratchCopy(),
    "scratch-restore": ScratchRestore(),
    "scratch-start": ScratchStart(),
    "scratch-cleanup-app": ScratchStop(),
    "scratch-cleanup-volumes": ScratchTidy(),
    "scratch-remove-image": ScratchRemoveImage(),
    "cleanup-app": StopApp(),
    "cleanup-volumes": TidySource(routing=False),
    "demote-drill": Demote(),
    "resync-drill": Resync(),
    "drill-healthy": InSync(),
}
"""Every step name a plan may hold, and its implementation."""
