"""The steps only relocate, failover and failback run: the final backup of a planned move, the wait
for the peer's demotion or a sync in flight, routing, fencing the old primary, and the placement.
"""

from __future__ import annotations

from drkit.domain.errors import StandbyError
from drkit.domain.operations import StepSpec
from drkit.domain.placement import moved
from drkit.domain.rbd_status import parse_snap_ls
from drkit.jobs.backup import app_stores, run_backup, store_label
from drkit.jobs.steps.run import ROUTING_KINDS, Run, Seen
from drkit.jobs.steps.shared import Demote, StopApp, roles_of, routing_kinds
from drkit.jobs.world import read_placement, update_placement


class WaitDemotion:
    """Wait until the step's site holds, complete, the peer's demotion snapshot (a planned handover)."""

    def observe(self, run: Run, spec: StepSpec) -> Seen:
        b = run.world.bundle(spec.site)
        out: Seen = {}
        roles = roles_of(run, spec.site)
        for volume in run.app.volumes:
            snaps = parse_snap_ls(b.rbd.snapshots(run.app.pool_on(b.site), volume.image), tz=b.site.timezone)
            newest = max(snaps, key=lambda s: s.id, default=None)
            ready = (
                newest is not None and newest.non_primary and newest.state == "demoted" and newest.complete
            )
            out[volume.image] = {
                "ready": ready or roles[volume.image] == "primary",
                "role": roles[volume.image],
            }
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


class Routing:
    """Point users at the target: nothing, the app's Service and Ingress there, or a webhook."""

    def observe(self, run: Run, spec: StepSpec) -> Seen:
        mode = run.app.routing.mode
        if mode == "ingress":
            cluster = run.world.bundle(spec.site).cluster
            kinds = routing_kinds(run, spec.site)
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
        stores = [
            ref if must & set(ref.sites) else run.world.spare(ref)
            for ref in app_stores(run.world, run.app, spec.site, spare=False)
        ]
        vm = run.app.opennebula is not None
        cluster, frontend = (None, source.opennebula) if vm else (source.cluster, None)
        summary = run_backup(
            run.app, source.site, cluster, stores, key=run.key, clock=run.world.clock, frontend=frontend
        )
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
