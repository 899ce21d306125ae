"""The monthly drill's data: its checks against targets, its verdict and its report. Pure.

A drill is an operation (:mod:`drkit.domain.operations`) whose cleanup phase always runs. Its
:class:`DrillReport` is built from the drill's journal and what the drill measured
(:func:`build_report`), then stored as JSON (with a schema version: :mod:`drkit.jobs.drill_report`)
and rendered as Markdown and HTML (:mod:`drkit.views.drill_report`, :mod:`drkit.views.drill_html`).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any, Literal

from pydantic import Field

from drkit.domain.drill_checks import canary_check as canary_check
from drkit.domain.drill_checks import drill_namespace_check
from drkit.domain.model_base import Model
from drkit.domain.models import KindRef, ProtectedApp
from drkit.domain.operation_plan import LAG_INTERVALS, key_check
from drkit.domain.operations import Check, Facts, Journal, Plan, StepRecord, StepSpec
from drkit.domain.placement import disagreements

SCHEMA_VERSION = 1
Mode = Literal["promote", "isolated"]
OVERDUE_AFTER = timedelta(days=35)
"""A drill is overdue when none has passed for this long."""

CLEANUP_STEPS = (
    "scratch-cleanup-app",
    "scratch-cleanup-volumes",
    "scratch-remove-image",
    "cleanup-app",
    "cleanup-volumes",
    "demote-drill",
    "resync-drill",
    "drill-healthy",
)
"""The steps of the cleanup phase (either mode's), which always runs."""
SCRATCH_SUFFIX = "-drill"
"""Isolated mode: the scratch namespace is ``<app namespace>-drill``, each scratch image ``<image>-drill``."""


def scratch_namespace(app: ProtectedApp) -> str:
    """The namespace an isolated drill runs the app in on the secondary."""
    return f"{app.kube_namespace('drill')}{SCRATCH_SUFFIX}"


def scratch_kinds(app: ProtectedApp) -> list[KindRef]:
    """The app's backed-up kinds that an isolated drill may leave in its scratch namespace (the
    workload is removed by its own step; PVs and the namespace itself are not namespaced objects)."""
    skip = {"PersistentVolume", "Namespace", app.kube_workload("drill").kind.kind}
    return [k for k in app.backup.kinds if k.kind not in skip]


def _workload(app: ProtectedApp) -> str:
    workload = app.kube_workload("drill")
    return f"{workload.kind.kind} {workload.name}"


def scratch_image(image: str) -> str:
    """The plain image an isolated drill copies ``image``'s latest synced snapshot into."""
    return f"{image}{SCRATCH_SUFFIX}"


def drill_mode(steps: Any) -> Mode:
    """The mode of a drill from its steps' names (an isolated drill copies, never promotes)."""
    return "isolated" if any(getattr(s, "name", s) == "scratch-copy" for s in steps) else "promote"


class Availability(Model):
    """How the primary answered ``/status/writable`` while the drill ran."""

    probes: int = Field(0, description="probes sent")
    writable: int = Field(0, description="probes answered writable")
    longest_unwritable_s: float = Field(0.0, description="longest run of probes not writable, seconds")

    @property
    def ratio(self) -> float | None:
        """Share of probes answered writable."""
        return None if not self.probes else self.writable / self.probes


class CheckResult(Model):
    """One check of the drill against its target."""

    name: str = Field(..., description="what was checked")
    ok: bool = Field(..., description="passed")
    value: str = Field("", description="what was measured")
    target: str = Field("", description="what it had to be")


class DrillStep(Model):
    """One step as the report shows it."""

    name: str = Field(..., description="step name")
    site: str = Field(..., description="site it acted on")
    phase: Literal["drill", "cleanup"] = Field(..., description="drill or cleanup phase")
    outcome: str = Field(..., description="done, skipped, failed or pending")
    started_at: datetime | None = Field(None, description="start")
    ended_at: datetime | None = Field(None, description="end")
    seconds: float | None = Field(None, description="duration")
    error: str = Field("", description="why it failed")


class DrillReport(Model):
    """Everything an auditor asks of one drill."""

    schema_version: int = Field(SCHEMA_VERSION, description="version of this report's shape")
    drill_id: str = Field(..., description="the drill's id")
    app: str = Field(..., description="the protected app")
    mode: Mode = Field(..., description="promote (the seed's method) or isolated (a scratch copy)")
    primary: str = Field(..., description="site that kept serving")
    secondary: str = Field(..., description="site the drill proved")
    started_at: datetime = Field(..., description="drill start")
    ended_at: datetime | None = Field(None, description="drill end, cleanup included")
    passed: bool = Field(..., description="every check passed and cleanup left the secondary healthy")
    refused: str = Field("", description="why the drill was refused before it started, if it was")
    failed_step: str = Field("", description="the first step that failed")
    steps: tuple[DrillStep, ...] = Field(..., description="every step")
    checks: tuple[CheckResult, ...] = Field(..., description="each check against its target")
    rto_promotion_to_writable_s: float | None = Field(
        None, description="promotion (isolated: the scratch copy) start to Nexus writable"
    )
    rto_start_to_canary_s: float | None = Field(None, description="drill start to canary verified")
    rpo_achieved_s: float | None = Field(
        None, description="the secondary's lag at promotion (isolated: at the copy)"
    )
    recovery_point: datetime | None = Field(None, description="time on the primary of the data recovered")
    canary: dict[str, Any] = Field(
        default_factory=dict, description="canary path, sha256, written at, verdict"
    )
    smoke: dict[str, Any] = Field(
        default_factory=dict, description="status, writable, login, upload/download"
    )
    availability: Availability = Field(default_factory=Availability, description="primary availability")
    cleanup_s: float | None = Field(None, description="cleanup phase duration")
    protection_gap_s: float | None = Field(None, description="time the secondary held no consistent copy")
    final_mirror_state: dict[str, str] = Field(default_factory=dict, description="image -> state at the end")
    versions: dict[str, str] = Field(default_factory=dict, description="Standby, Ceph and Python versions")
    flow_run_url: str = Field("", description="link to the Prefect flow run, when run from Prefect")


def _phase(name: str) -> Literal["drill", "cleanup"]:
    return "cleanup" if name in CLEANUP_STEPS else "drill"


def _step(record: StepRecord) -> DrillStep:
    return DrillStep(
        name=record.name,
        site=record.site,
        phase=_phase(record.name),
        outcome=record.outcome,
        started_at=record.started_at,
        ended_at=record.ended_at,
        seconds=record.seconds,
        error=record.error,
    )


def _between(a: datetime | None, b: datetime | None) -> float | None:
    return None if a is None or b is None else (b - a).total_seconds()


def build_report(
    app: ProtectedApp,
    journal: Journal,
    mode: Mode,
    *,
    measured: dict[str, Any],
    availability: Availability,
    final_states: dict[str, str],
    versions: dict[str, str],
    flow_run_url: str = "",
    rto_target: timedelta = timedelta(seconds=60),
    interrupted: str = "",
) -> DrillReport:
    """The report of a finished (or refused) drill from its journal and what it measured.

    ``measured`` holds what the steps observed: ``canary`` (path, sha256, written_at, verified),
    ``smoke`` (the smoke result), ``rpo_achieved_s`` and ``recovery_point``. ``interrupted`` names
    the step the drill's process stopped in (a killed drill fails, even when its cleanup ran later).
    """
    steps = {s.name: s for s in journal.steps}
    first = min((s.started_at for s in journal.steps if s.started_at), default=journal.created_at)
    last = max((s.ended_at for s in journal.steps if s.ended_at), default=None)
    promote, start, smoke = steps.get("drill-promote"), steps.get("start-target"), steps.get("drill-smoke")
    if mode == "isolated":  # the copy of the secondary's snapshot stands for the promotion
        promote, start = steps.get("scratch-copy"), steps.get("scratch-start")
    rto = _between(promote.started_at if promote else None, start.ended_at if start else None)
    canary_rto = _between(first, smoke.ended_at if smoke and smoke.outcome == "done" else None)
    cleanup = [s for s in journal.steps if s.name in CLEANUP_STEPS]
    cleanup_s = _between(
        min((s.started_at for s in cleanup if s.started_at), default=None),
        max((s.ended_at for s in cleanup if s.ended_at), default=None),
    )
    resync = steps.get("resync-drill")
    gap = (
        resync.seconds
        if resync and mode == "promote" and resync.outcome == "done"
        else (0.0 if mode == "isolated" else None)
    )
    canary = dict(measured.get("canary") or {})
    smoke_seen = dict(measured.get("smoke") or {})
    rpo = measured.get("rpo_achieved_s")
    healthy = all(str(v).startswith("up+replaying") for v in final_states.values()) and bool(final_states)
    cleaned = all(s.outcome in ("done", "skipped") for s in cleanup) and bool(cleanup)
    unchecked = canary.get("checked") is False  # the app's driver has no canary: the gate said so
    checks = [
        CheckResult(
            name="canary readable with the same sha256",
            ok=bool(canary.get("verified")) or unchecked,
            value=str(canary.get("verdict", "not checked")),
            target="not checked for this app" if unchecked else "same sha256 as written on the primary",
        ),
        CheckResult(
            name="upload and download on the secondary",
            ok=bool(smoke_seen.get("round_trip")),
            value="ok" if smoke_seen.get("round_trip") else "failed or not run",
            target="round trip",
        ),
        CheckResult(
            name="login with the Secret's password",
            ok=bool(smoke_seen.get("login")),
            value="ok" if smoke_seen.get("login") else "failed or not run",
            target="200",
        ),
        CheckResult(
            name="RTO: promotion to writable",
            ok=rto is not None and rto <= rto_target.total_seconds(),
            value="-" if rto is None else f"{rto:.1f}s",
            target=f"<= {rto_target.total_seconds():.0f}s",
        ),
        CheckResult(
            name="achieved RPO",
            ok=rpo is not None and rpo <= app.rpo_target.total_seconds(),
            value="-" if rpo is None else f"{rpo:.1f}s",
            target=f"<= {app.rpo_target.total_seconds():.0f}s",
        ),
        CheckResult(
            name="cleanup done",
            ok=cleaned,
            value="done" if cleaned else "incomplete",
            target="every cleanup step done",
        ),
        CheckResult(
            name="secondary a healthy replica",
            ok=healthy,
            value=", ".join(f"{k}: {v}" for k, v in final_states.items()) or "unknown",
            target="up+replaying",
        ),
    ]
    failed = interrupted or next((s.name for s in journal.steps if s.outcome == "failed"), "")
    refused = journal.error if journal.status == "refused" else ""
    return DrillReport(
        drill_id=journal.op_id,
        app=app.name,
        mode=mode,
        primary=journal.source,
        secondary=journal.target,
        started_at=first,
        ended_at=last,
        passed=not refused and all(c.ok for c in checks) and not failed,
        refused=refused,
        failed_step=failed,
        steps=tuple(_step(s) for s in journal.steps),
        checks=tuple(checks),
        rto_promotion_to_writable_s=rto,
        rto_start_to_canary_s=canary_rto,
        rpo_achieved_s=rpo,
        recovery_point=measured.get("recovery_point"),
        canary=canary,
        smoke=smoke_seen,
        availability=availability,
        cleanup_s=cleanup_s,
        protection_gap_s=gap,
        final_mirror_state=final_states,
        versions=versions,
        flow_run_url=flow_run_url,
    )


def make_drill_plan(app: ProtectedApp, facts: Facts, mode: Mode = "promote") -> Plan:
    """The drill's plan: Ramen's test-failover gate, the drill steps, then the cleanup steps.

    ``promote`` force-promotes the secondary's images (mirroring stops until the resync);
    ``isolated`` runs the app on a scratch copy of the secondary's latest complete snapshot in
    the namespace ``<namespace>-drill`` and never promotes: mirroring goes on throughout.
    """
    view, record = facts.view, facts.placement
    primary, secondary = record.primary, record.secondary
    checks = [c for c in _gate(app, facts)]
    if mode == "isolated":
        by_driver = facts.drill_scratch
        ns = "" if by_driver else scratch_namespace(app)
        if not by_driver:
            checks.append(drill_namespace_check(ns, secondary, facts.drill_namespace))
        elif facts.app_refusals is not None:  # what the driver would refuse of the drill's copy
            checks.append(
                Check(
                    name="the drill's copy fits the secondary",
                    ok=not facts.app_refusals,
                    detail="; ".join(facts.app_refusals) or f"{by_driver} can be started on {secondary}",
                )
            )
        images = ", ".join(scratch_image(i) for i in view.images) or "the scratch images"
        if by_driver:  # the app's driver starts and removes the drill's copy on its own control plane
            restore = "nothing to restore: the app's driver starts the drill from the backup's saved records"
            start = f"start {by_driver} on {secondary}, wait until running"
            remove, tidy = f"{secondary}: the drill's {by_driver}", f"remove the drill's {by_driver}"
        else:
            restore = f"restore the Secret, ConfigMaps, PV (on the scratch image) and PVC into namespace {ns}"
            start, remove = (
                f"restore and start {_workload(app)} in {ns}, wait until writable",
                f"namespace {ns}",
            )
            tidy = f"empty namespace {ns} (it stays, with its Role) and remove the PV"
        steps = [
            StepSpec(
                name="canary", title="write a canary asset with random content on the primary", site=primary
            ),
            StepSpec(
                name="drill-snapshot",
                title="take a mirror snapshot and wait until the secondary has it",
                site=primary,
            ),
            StepSpec(
                name="scratch-copy",
                title=f"copy the secondary's latest complete mirror snapshot to {images} (replication goes on)",
                site=secondary,
            ),
            StepSpec(
                name="scratch-restore",
                title=restore,
                site=secondary,
            ),
            StepSpec(
                name="scratch-start",
                title=start,
                site=secondary,
            ),
            StepSpec(
                name="drill-smoke",
                title="smoke test and the canary's sha256 on the scratch copy",
                site=secondary,
            ),
            StepSpec(name="scratch-cleanup-app", title=f"remove the app from {remove}", site=secondary),
            StepSpec(name="scratch-cleanup-volumes", title=tidy, site=secondary),
            StepSpec(name="scratch-remove-image", title=f"remove {images}", site=secondary),
            StepSpec(
                name="drill-healthy",
                title="wait until replaying, a fresh snapshot complete, lag under target",
                site=secondary,
            ),
        ]
        return Plan(
            kind="drill",
            app=app.name,
            source=primary,
            target=secondary,
            checks=tuple(checks),
            steps=tuple(steps),
            lag_seconds=view.lag_seconds,
            backup_run=facts.backup_run,
        )
    steps = [
        StepSpec(
            name="canary", title="write a canary asset with random content on the primary", site=primary
        ),
        StepSpec(
            name="drill-snapshot",
            title="take a mirror snapshot and wait until the secondary has it",
            site=primary,
        ),
        StepSpec(
            name="restore-volumes",
            title="restore the Secret, PV (imageName kept) and PVC from the backup",
            site=secondary,
        ),
        StepSpec(
            name="drill-promote",
            title="promote the secondary's images **(forced)** while the primary serves",
            site=secondary,
            force=True,
        ),
        StepSpec(
            name="start-target",
            title=f"restore and start {_workload(app)}, wait until writable",
            site=secondary,
        ),
        StepSpec(
            name="drill-smoke", title="smoke test and the canary's sha256 on the secondary", site=secondary
        ),
        StepSpec(name="cleanup-app", title="remove the app from the secondary", site=secondary),
        StepSpec(
            name="cleanup-volumes", title="remove the PVC and PV (Retain: the image is kept)", site=secondary
        ),
        StepSpec(name="demote-drill", title="demote the secondary's images", site=secondary),
        StepSpec(name="resync-drill", title="resync the secondary from the primary", site=secondary),
        StepSpec(
            name="drill-healthy",
            title="wait until replaying, a fresh snapshot complete, lag under target",
            site=secondary,
        ),
    ]
    return Plan(
        kind="drill",
        app=app.name,
        source=primary,
        target=secondary,
        checks=tuple(checks),
        steps=tuple(steps),
        lag_seconds=view.lag_seconds,
        backup_run=facts.backup_run,
        forced=tuple(f"promote of {i} on {secondary} (reverted by the cleanup)" for i in view.images),
    )


def _gate(app: ProtectedApp, facts: Facts) -> list[Check]:
    view, record = facts.view, facts.placement
    primary, secondary = record.primary, record.secondary
    held = record.operation
    wrong = disagreements(record, view)
    limit = LAG_INTERVALS * app.snapshot_interval.total_seconds()
    lag = view.lag_seconds
    sv = view.sites[secondary]
    bad = [
        f"{i}: {sv.states.get(i, 'no status')}"
        for i in view.images
        if not sv.states.get(i, "").startswith("up+replaying")
    ]
    return [
        Check(
            name="no other operation",
            ok=not held,
            detail=f"{record.operation_kind} {held} holds the app" if held else "none running",
        ),
        Check(
            name="both sites reachable",
            ok=not view.unreachable(),
            detail=", ".join(view.unreachable()) or "yes",
        ),
        Check(
            name="record agrees with the sites",
            ok=not wrong and view.primaries() == [primary],
            detail="; ".join(wrong) or f"primary on: {', '.join(view.primaries()) or 'none'}",
        ),
        Check(
            name="mirroring healthy",
            ok=sv.reachable and not bad,
            detail=", ".join(bad) or f"{secondary} replaying every image",
        ),
        Check(
            name="lag",
            ok=lag is not None and lag <= limit,
            detail=("unknown" if lag is None else f"{lag:.0f}s")
            + f" (limit {limit:.0f}s = {LAG_INTERVALS} x snapshot interval)",
        ),
        Check(
            name="backup readable",
            ok=facts.backup_run is not None,
            detail=f"latest complete backup {facts.backup_run}" if facts.backup_run else facts.backup_error,
        ),
        key_check(facts.key),
        canary_check(app, facts.drill_no_canary),
        Check(
            name="nothing of the app on the secondary",
            ok=not facts.secondary_objects,
            detail=(", ".join(facts.secondary_objects) + f"; run: standby drill cleanup --app {app.name}")
            if facts.secondary_objects
            else "clean",
        ),
    ]


def overdue(last_passed: datetime | None, now: datetime, after: timedelta = OVERDUE_AFTER) -> bool:
    """Whether a drill is overdue: none passed, or the last passed longer ago than ``after``."""
    return last_passed is None or now - last_passed > after
