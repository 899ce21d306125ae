"""The monthly drill, without Prefect: prove the app and its data on the secondary, always clean up.

1. :func:`prepare_drill` observes both sites and makes the plan (Ramen's test-failover gate).
2. :func:`start_drill` takes the app (the placement hold: no other operation runs meanwhile) and
   writes the journal. An isolated drill (the monthly default) needs no approval: it never touches
   production routing, never promotes, and writes nothing to the primary but its canary. A
   promote-mode drill force-promotes the secondary's images while the primary serves, so it asks
   for the same typed approval as a failover (:func:`approve_drill`), and :func:`start_drill`
   refuses it without one.
3. :func:`run_drill` runs the drill steps, then the cleanup steps whatever happened, probing the
   primary's ``/status/writable`` on every poll; it builds the report, stores it, and releases the
   app only when cleanup left the secondary a healthy replica.
4. :func:`drill_cleanup` runs the cleanup alone (after a killed drill, or again): idempotent.

The flow and the CLI run 1 to 3 through one sequence, :func:`drkit.jobs.drill_runbook.run_drill_runbook`.
"""

from __future__ import annotations

import platform
import secrets
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any, Protocol

from drkit.adapters.clock import Clock
from drkit.domain import crypto
from drkit.domain.drill import (
    CLEANUP_STEPS,
    Availability,
    DrillReport,
    Mode,
    build_report,
    drill_mode,
    make_drill_plan,
    scratch_image,
    scratch_kinds,
    scratch_namespace,
)
from drkit.domain.errors import CommandFailed, ConfigError, NotFound, PreconditionFailed, StandbyError
from drkit.domain.models import KindRef, ProtectedApp
from drkit.domain.operation_plan import plan_changes
from drkit.domain.operations import Approval, Facts, Journal, Plan, check_approval, new_journal, new_op_id
from drkit.domain.placement import begin, released
from drkit.jobs.backup import standby_version
from drkit.jobs.drill_report import store_report, store_reports
from drkit.jobs.drivers import ScratchDrill, driver_for
from drkit.jobs.operations import (
    REAPPROVALS,
    Changed,
    Executor,
    Prepared,
    StepCallback,
    Timeouts,
    find_backup,
    trial_key,
    write_journal,
)
from drkit.jobs.requests import DrillRequest, default
from drkit.jobs.restore import saved_reader
from drkit.jobs.world import World, observe_placed, update_placement

PVC = KindRef(version="v1", kind="PersistentVolumeClaim")
PV = KindRef(version="v1", kind="PersistentVolume")
SCHEDULED = Approval(
    approver="standby (scheduled drill)", reason="monthly DR drill", at=datetime(2026, 1, 1, tzinfo=UTC)
)


NAMESPACE = KindRef(version="v1", kind="Namespace")


def leftovers(world: World, app: ProtectedApp, site: str) -> tuple[str, ...]:
    """The app's workload, PVCs and PVs found on ``site``, and what an isolated drill leaves (objects
    in its scratch namespace, PVs on scratch images, scratch images): a drill needs a clean secondary.
    The scratch namespace itself is installed once and stays (see :func:`drill_namespace_present`)."""
    b = world.bundle(site)
    scratch = scratch_driver_of(world, app, site)
    if scratch is not None:  # the driver's own leftovers, and the scratch images
        return scratch.scratch_left() + _scratch_images(world, app, site)
    cluster = b.cluster
    found = []
    scratch_ns = scratch_namespace(app)
    ns, workload = app.kube_namespace("drill"), app.kube_workload("drill")
    try:
        cluster.get(workload.kind, workload.name, ns)
        found.append(f"{workload.kind.kind}/{workload.name}")
    except NotFound:
        pass
    for volume in app.volumes:
        try:
            cluster.get(PVC, app.claim(volume, "drill"), ns)
            found.append(f"PersistentVolumeClaim/{volume.pvc}")
        except NotFound:
            pass
    for kind in (workload.kind, *scratch_kinds(app)):
        found += [
            f"{kind.kind}/{o['metadata']['name']} in {scratch_ns}" for o in cluster.list(kind, scratch_ns)
        ]
    images = {v.image for v in app.volumes} | {scratch_image(v.image) for v in app.volumes}
    for pv in cluster.list(PV):
        attrs = ((pv.get("spec") or {}).get("csi") or {}).get("volumeAttributes") or {}
        if attrs.get("imageName") in images:
            found.append(f"PersistentVolume/{pv['metadata']['name']}")
    return tuple(found) + _scratch_images(world, app, site)


def _scratch_images(world: World, app: ProtectedApp, site: str) -> tuple[str, ...]:
    b = world.bundle(site)
    pool, found = app.pool_on(b.site), []
    for volume in app.volumes:
        try:
            b.rbd.image_info(pool, scratch_image(volume.image))
            found.append(f"image {pool}/{scratch_image(volume.image)}")
        except CommandFailed as error:
            if error.exit_code != 2:
                raise
    return tuple(found)


def scratch_driver_of(world: World, app: ProtectedApp, site: str) -> ScratchDrill | None:
    """The app's driver on ``site`` when it starts an isolated drill's copy itself (no namespace)."""
    b = world.bundle(site)
    driver = driver_for(app, b.site, b.cluster, world)
    return driver if isinstance(driver, ScratchDrill) else None


def _scratch_refusals(
    world: World,
    app: ProtectedApp,
    scratch: ScratchDrill,
    source: str,
    site: str,
    run_id: str,
    key: crypto.MasterKey | None,
) -> tuple[str, ...]:
    """What ``site`` would refuse of the drill's copy of the app as backup ``run_id`` saved it."""
    saved = saved_reader(world, app, source, site, run_id, key)
    try:
        return scratch.scratch_refusals(saved, {v.image: scratch_image(v.image) for v in app.volumes})
    except StandbyError as failure:
        return (f"could not be checked on {site}: {failure.message[:200]}",)


def drill_namespace_present(world: World, app: ProtectedApp, site: str) -> bool:
    """Whether the isolated drill's namespace is installed on ``site`` (read through a Role in it:
    ``get`` of the namespace object is granted by a RoleBinding in that namespace)."""
    try:
        world.bundle(site).cluster.get(NAMESPACE, scratch_namespace(app))
    except NotFound:
        return False
    return True


def prepare_drill(
    world: World,
    app_name: str,
    mode: Mode = default(DrillRequest, "mode"),
    *,
    key: crypto.MasterKey | None = None,
) -> Prepared:
    """Observe and plan a drill (nothing changes).

    ``isolated`` (the default) runs the app on a scratch copy of the secondary's latest complete
    snapshot, in ``<namespace>-drill``, while mirroring goes on; ``promote`` force-promotes the
    secondary's images, then demotes and resyncs them.
    """
    if mode not in ("promote", "isolated"):
        raise StandbyError(f"drill mode {mode!r} is unknown", hint="use 'isolated' or 'promote'")
    app = world.config.app(app_name)
    world.use_key(key)  # the placement and the journals are checked with it
    probing = world.probing()  # bounded, parallel probes (see drkit.adapters.probes)
    placed, view = observe_placed(probing, app)
    record = placed.record
    scratch = scratch_driver_of(probing, app, record.secondary)
    if scratch is not None and mode == "promote":
        raise ConfigError(
            f"app {app.name}: drill mode 'promote' is not available for this app (its driver starts only an"
            " isolated drill's copy); nothing was changed",
            hint=f"drill it in mode isolated: standby drill run --app {app.name} --mode isolated",
            context={"app": app.name, "mode": mode},
        )
    run_id, error = find_backup(probing, app.name, record.primary, record.secondary, key)
    reachable = view.sites[record.secondary].reachable
    left = leftovers(probing, app, record.secondary) if reachable else ()
    installed = (
        drill_namespace_present(probing, app, record.secondary)
        if reachable and mode == "isolated" and scratch is None
        else None
    )
    trial = None
    if run_id is not None:
        try:
            trial = trial_key(probing, app, record.primary, record.secondary, run_id, key)
        except StandbyError as failure:
            error = failure.message
    refusals = None
    if (
        scratch is not None
        and reachable
        and run_id is not None
        and not (trial and trial.sealed and not trial.opened)
    ):
        refusals = _scratch_refusals(probing, app, scratch, record.primary, record.secondary, run_id, key)
    facts = Facts(
        placement=record,
        view=view,
        backup_run=run_id,
        backup_error=error,
        secondary_objects=left,
        key=trial,
        drill_namespace=installed,
        drill_scratch=scratch.scratch_what if scratch is not None else "",
        drill_no_canary=scratch.no_canary if scratch is not None else "",
        app_refusals=refusals,
    )
    return Prepared(plan=make_drill_plan(app, facts, mode), facts=facts)


def needs_approval(plan: Plan) -> bool:
    """Whether the drill of ``plan`` waits for a person: a runnable promote-mode drill (it forces a
    promote on the secondary while the primary serves). An isolated drill runs unattended."""
    return plan.kind == "drill" and plan.runnable and drill_mode(plan.steps) == "promote"


class Approver(Protocol):
    """Who is asked for a promote-mode drill's typed approval: the flow's form or the CLI's prompt
    (:class:`~drkit.jobs.drill_runbook.DrillHooks`, or an operation's hooks)."""

    def consent(self, plan: Plan, changed: Changed | None = None) -> tuple[Approval, str]:
        """The approval of ``plan`` and the app name typed; raise to stop."""
        ...


def approve_drill(
    prepared: Prepared, hooks: Approver, replan: Callable[[], Prepared]
) -> tuple[Prepared, Approval | None, str]:
    """The typed approval of a promote-mode drill, as a failover's: the plan, then observe again.

    Returns the plan to start with its approval and the app's name as typed; ``(prepared, None, "")``
    when the drill needs none (isolated, or refused: :func:`start_drill` journals the refusal).
    ``hooks.consent`` asks (the flow's form or the CLI's prompt); after the approval the world is
    observed again (``replan``), and a plan that changed is put to the approver again with both
    shown, as for the operations. A plan now refused is returned to be journaled as refused.
    """
    plan = prepared.plan
    if not needs_approval(plan):
        return prepared, None, ""
    approval, typed = hooks.consent(plan)
    for _ in range(REAPPROVALS):
        again = replan()
        if not again.plan.runnable:
            return again, approval, typed
        changes = plan_changes(plan, again.plan)
        if not changes:
            return again, approval, typed
        approval, typed = hooks.consent(
            again.plan, Changed(approved=plan, now=again.plan, changes=tuple(changes))
        )
        plan = again.plan
    raise PreconditionFailed(
        f"drill of {plan.app}: the plan changed after each of {REAPPROVALS} approvals; nothing was changed",
        hint="wait until the sites settle, then start the drill again",
    )


def start_drill(
    world: World, prepared: Prepared, approval: Approval | None = None, typed_app: str = ""
) -> Journal:
    """Take the app and write the journal (refused plans are journaled as refused, not started).

    A promote-mode drill needs ``approval`` and the app's name typed (``typed_app``), checked as a
    failover's (:func:`~drkit.domain.operations.check_approval`); without them it is refused with
    :class:`PreconditionFailed` and nothing is written.
    """
    if needs_approval(prepared.plan):
        plan = prepared.plan
        problems = (
            ["no typed approval was given (app name, approver, reason)"]
            if approval is None
            else check_approval(plan, approval, typed_app)
        )
        if problems:
            raise PreconditionFailed(
                f"promote-mode drill of {plan.app} on {plan.target} refused: "
                + "; ".join(problems)
                + "; it force-promotes the secondary's images, so it needs the typed approval a failover needs;"
                " nothing was changed",
                hint="approve it in the drill run's form, or run `standby drill run --mode promote` (it prompts;"
                " --yes --reason WHY to approve); an isolated drill (the default) needs no approval",
                context={"app": plan.app, "site": plan.target},
            )
    now = world.clock.now()
    op_id = new_op_id("drill", now, secrets.token_bytes(3))
    given = (approval or SCHEDULED).model_copy(update={"at": now})
    journal = new_journal(op_id, prepared.plan, now).model_copy(update={"approval": given})
    if journal.status == "refused":
        write_journal(world, journal)
        return journal
    journal = journal.model_copy(update={"status": "approved"})
    write_journal(world, journal)
    app = world.config.app(prepared.plan.app)
    update_placement(world, app, lambda p: begin(p, op_id, "drill", now), required=prepared.plan.source)
    return journal


class Probe:
    """Probes the primary's ``/status/writable`` at most every ``interval`` seconds."""

    def __init__(self, check: Callable[[], bool], clock: Clock, interval: float = 2.0) -> None:
        self.check, self.clock, self.interval = check, clock, interval
        self.last = -interval
        self.probes = self.writable = 0
        self._down_since: float | None = None
        self.longest = 0.0

    def __call__(self) -> None:
        now = self.clock.monotonic()
        if now - self.last < self.interval:
            return
        self.last = now
        self.probes += 1
        ok = self.check()
        if ok:
            self.writable += 1
            self._down_since = None
        else:
            self._down_since = now if self._down_since is None else self._down_since
            self.longest = max(self.longest, now - self._down_since)

    def result(self) -> Availability:
        """What the probes saw."""
        return Availability(
            probes=self.probes, writable=self.writable, longest_unwritable_s=round(self.longest, 1)
        )


@dataclass(frozen=True)
class DrillOutcome:
    """A finished drill: its journal, its report, and where the report was stored."""

    journal: Journal
    report: DrillReport
    stored: dict[str, str]
    store_error: str = ""
    cleanup_error: str = ""
    """Why the cleanup did not leave the secondary a healthy replica ('' when it did)."""


def _measured(journal: Journal) -> dict[str, Any]:
    smoke = next((s.observed for s in journal.steps if s.name == "drill-smoke"), {})
    promote = next((s.observed for s in journal.steps if s.name in ("drill-promote", "scratch-copy")), {})
    canary = dict(smoke.get("canary") or next((s.observed for s in journal.steps if s.name == "canary"), {}))
    rpo = promote.get("rpo") or {}
    point = rpo.get("recovery_point")
    return {
        "canary": canary,
        "smoke": smoke.get("smoke") or {},
        "rpo_achieved_s": rpo.get("rpo_achieved_s"),
        "recovery_point": datetime.fromisoformat(point) if point else None,
    }


def _final_states(world: World, app: ProtectedApp, site: str) -> dict[str, str]:
    control = world.volumes(app, site)
    out = {}
    for volume in app.volumes:
        try:
            out[volume.image] = control.mirror_state(volume)[0]
        except StandbyError as error:
            out[volume.image] = f"unknown ({error.message[:80]})"
    return out


StepRunner = Callable[[Executor, str], object]
"""Runs one step of an executor: ``Executor.step`` itself, or the flows' Prefect task around it."""


def _run_step(ex: Executor, name: str) -> object:
    return ex.step(name)


def _phase(ex: Executor, names: list[str], step: StepRunner = _run_step) -> str:
    """Run ``names`` in order; the first failure's message, or ''."""
    for name in names:
        try:
            step(ex, name)
        except StandbyError as error:
            return str(error)
    return ""


def run_drill(
    world: World,
    journal: Journal,
    *,
    key: crypto.MasterKey | None,
    timeouts: Timeouts | None = None,
    on_step: StepCallback | None = None,
    step: StepRunner = _run_step,
    probe_interval: float = 2.0,
    flow_run_url: str = "",
) -> DrillOutcome:
    """Run the drill steps, then the cleanup whatever happened, probing the primary's writability on
    every poll; report, store, release (see :func:`finish_drill`). The drill use case (flow and CLI)."""
    app = world.config.app(journal.app)
    ex = Executor(world, journal, key, timeouts, None, on_step or (lambda j, r: None))
    probe = Probe(ex.run.driver(journal.source).writable, world.clock, probe_interval)
    ex.run.ticks.append(probe)
    failure = _phase(ex, [n for n in ex.pending() if n not in CLEANUP_STEPS], step)
    cleanup_failure = _phase(ex, [n for n in ex.pending() if n in CLEANUP_STEPS], step)
    mode = drill_mode(ex.journal.steps)
    outcome = finish_drill(
        world,
        ex,
        app,
        mode,
        probe.result(),
        failure or cleanup_failure,
        cleaned=not cleanup_failure,
        flow_run_url=flow_run_url,
    )
    return replace(outcome, cleanup_error=cleanup_failure)


def finish_drill(
    world: World,
    ex: Executor,
    app: ProtectedApp,
    mode: Mode,
    availability: Availability,
    error: str,
    *,
    cleaned: bool,
    flow_run_url: str = "",
    interrupted: str = "",
) -> DrillOutcome:
    """Build and store the report; release the app when the cleanup is done; write the final journal."""
    journal = ex.journal
    versions = {"standby": standby_version(), "python": platform.python_version()}
    report = build_report(
        app,
        journal,
        mode,
        measured=_measured(journal),
        availability=availability,
        final_states=_final_states(world, app, journal.target),
        versions=versions,
        flow_run_url=flow_run_url,
        interrupted=interrupted,
    )
    now = world.clock.now()
    status = "completed" if report.passed and not error else "failed"
    why = error or (
        "; ".join(f"{c.name}: {c.value}" for c in report.checks if not c.ok) if not report.passed else ""
    )
    journal = journal.model_copy(update={"status": status, "error": why, "finished_at": now})
    stored: dict[str, str] = {}
    problems = []
    try:
        write_journal(world, journal)
        if cleaned:
            update_placement(world, app, lambda p: released(p, journal.op_id, now), required=journal.source)
        ref = world.stores(first=journal.source)[0]
        key = world.state_key()
        history = [r for r in store_reports(world, ref, app.name) if r.drill_id != report.drill_id]
        stored = store_report(ref.store, ref.layout, report, history, key=key)
    except StandbyError as failure:
        problems.append(
            f"the report of drill {journal.op_id} could not be stored: {failure}"
            f" (run the drill cleanup again to finish it: standby drill cleanup --app {app.name})"
        )
    return DrillOutcome(journal=journal, report=report, stored=stored, store_error="; ".join(problems))
