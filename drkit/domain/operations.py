"""DR operations as data: plans, their guards, and the journal of a run. Pure.

A :class:`Plan` is an ordered list of named steps plus the guards checked when it was made. It is
built by :func:`make_plan` from the configuration, the placement record and an observation of
both sites (:class:`Facts`), so the dry-run plan and the executed plan are the same object. The
step names are the vocabulary of :mod:`drkit.jobs.operations`, which observes, acts and verifies.

A :class:`Journal` records one run of a plan (approval, each step's start, end, outcome and what
was observed). It is written to the object store after every step; resuming reads it back.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any, Literal

from pydantic import Field

from drkit.domain.errors import ConfigError, PreconditionFailed
from drkit.domain.models import Model, ProtectedApp
from drkit.domain.placement import AppView, Placement, disagreements

Kind = Literal["relocate", "failover", "failback", "drill"]
Outcome = Literal["pending", "running", "done", "skipped", "failed"]
Status = Literal["planned", "refused", "approved", "running", "completed", "failed"]

LAG_INTERVALS = 3
"""A planned move needs the secondary within this many snapshot intervals of the primary."""


class Check(Model):
    """One guard of a plan: passed or not, and why."""

    name: str = Field(..., description="what is checked")
    ok: bool = Field(..., description="whether it passed")
    detail: str = Field("", description="what was seen")


class StepSpec(Model):
    """One step of a plan."""

    name: str = Field(..., description="step name, the key of its implementation")
    title: str = Field(..., description="what the step does, for people")
    site: str = Field(..., description="the site it acts on")
    force: bool = Field(False, description="whether the step forces (a forced promote)")


class Plan(Model):
    """An operation's plan: guards, steps, and what it puts at risk."""

    kind: Kind = Field(..., description="relocate, failover or failback")
    app: str = Field(..., description="the protected app")
    source: str = Field(..., description="the app's primary when the plan was made")
    target: str = Field(..., description="where the app runs when the plan completes")
    checks: tuple[Check, ...] = Field(..., description="guards, each passed or failed")
    steps: tuple[StepSpec, ...] = Field(..., description="the steps in order")
    lag_seconds: float | None = Field(None, description="data at risk: the secondary's lag (None: unknown)")
    forced: tuple[str, ...] = Field((), description="what will be forced")
    unfenced: tuple[str, ...] = Field((), description="what cannot be fenced (unreachable)")
    needs_data_loss_ack: bool = Field(False, description="approval must acknowledge data loss")
    needs_unfenced_ack: bool = Field(False, description="approval must acknowledge an unfenced old primary")
    nothing_to_do: str = Field("", description="set when the app already is where the plan would put it")
    backup_run: str | None = Field(None, description="the backup (taken on the source) the target restores")

    @property
    def refusals(self) -> list[Check]:
        """The failed guards."""
        return [c for c in self.checks if not c.ok]

    @property
    def runnable(self) -> bool:
        """Whether every guard passed and there is work to do."""
        return not self.refusals and not self.nothing_to_do


class Facts(Model):
    """Everything a plan is made from, observed before it."""

    placement: Placement = Field(..., description="the placement record")
    view: AppView = Field(..., description="both sites' view of the app's images")
    backup_run: str | None = Field(None, description="the newest complete backup the target can read")
    backup_error: str = Field("", description="why no backup could be read")
    secondary_objects: tuple[str, ...] = Field((), description="the app's objects found on the secondary")


class Approval(Model):
    """Who approved a run and what they acknowledged."""

    approver: str = Field(..., description="who approved")
    reason: str = Field(..., description="why")
    data_loss: bool = Field(False, description="acknowledged data loss")
    unfenced: bool = Field(False, description="acknowledged an unfenced old primary")
    at: datetime = Field(..., description="when")


class StepRecord(Model):
    """One step of a journal."""

    name: str = Field(..., description="step name")
    title: str = Field(..., description="what it does")
    site: str = Field(..., description="the site it acts on")
    outcome: Outcome = Field("pending", description="pending, running, done, skipped (already so) or failed")
    started_at: datetime | None = Field(None, description="start")
    ended_at: datetime | None = Field(None, description="end")
    observed: dict[str, Any] = Field(default_factory=dict, description="what was observed at the end")
    error: str = Field("", description="why it failed")

    @property
    def seconds(self) -> float | None:
        """Duration, when finished."""
        if self.started_at is None or self.ended_at is None:
            return None
        return (self.ended_at - self.started_at).total_seconds()


class Journal(Model):
    """The record of one operation, written after every step."""

    op_id: str = Field(..., description="operation id")
    kind: Kind = Field(..., description="relocate, failover or failback")
    app: str = Field(..., description="the protected app")
    source: str = Field(..., description="primary when planned")
    target: str = Field(..., description="primary when completed")
    status: Status = Field("planned", description="where the operation stands")
    created_at: datetime = Field(..., description="when it was planned")
    plan: Plan = Field(..., description="the plan")
    approval: Approval | None = Field(None, description="the approval, once given")
    steps: tuple[StepRecord, ...] = Field(..., description="one record per plan step")
    error: str = Field("", description="why it failed or was refused")
    finished_at: datetime | None = Field(None, description="when it completed or failed")

    def step(self, name: str) -> StepRecord:
        """The record of step ``name``."""
        for record in self.steps:
            if record.name == name:
                return record
        raise KeyError(name)

    def with_step(self, record: StepRecord) -> Journal:
        """A copy with ``record`` replacing the step of the same name."""
        steps = tuple(record if s.name == record.name else s for s in self.steps)
        return self.model_copy(update={"steps": steps})


def new_op_id(kind: str, now: datetime, entropy: bytes) -> str:
    """``<kind>-<YYYYmmddTHHMMSSZ>-<6 hex>``: text order is time order within a kind."""
    return f"{kind}-{now:%Y%m%dT%H%M%SZ}-{entropy[:3].hex()}"


def parse_op_id(text: str) -> str:
    """The kind of an operation id; :class:`ConfigError` when ``text`` is not one."""
    kind, _, rest = text.partition("-")
    stamp, _, suffix = rest.rpartition("-")
    if kind not in ("relocate", "failover", "failback", "drill") or len(suffix) != 6 or len(stamp) != 16:
        raise ConfigError(
            f"{text!r} is not an operation id",
            hint="operation ids look like failover-20261130T081500Z-a1b2c3 (the last line of the command)",
        )
    return kind


def new_journal(op_id: str, plan: Plan, now: datetime) -> Journal:
    """A journal for ``plan``, every step pending."""
    status: Status = "planned" if plan.runnable else "refused"
    reasons = "; ".join(f"{c.name}: {c.detail}" for c in plan.refusals) or plan.nothing_to_do
    return Journal(
        op_id=op_id,
        kind=plan.kind,
        app=plan.app,
        source=plan.source,
        target=plan.target,
        status=status,
        created_at=now,
        plan=plan,
        steps=tuple(StepRecord(name=s.name, title=s.title, site=s.site) for s in plan.steps),
        error="" if status == "planned" else reasons,
    )


def check_approval(plan: Plan, approval: Approval, typed_app: str) -> list[str]:
    """Why an approval is not enough for ``plan``; empty when it is."""
    out = []
    if typed_app != plan.app:
        out.append(f"type the app's name ({plan.app!r}) to confirm; got {typed_app!r}")
    if not approval.approver.strip():
        out.append("name the approver")
    if not approval.reason.strip():
        out.append("give a reason")
    if plan.needs_data_loss_ack and not approval.data_loss:
        lag = "unknown" if plan.lag_seconds is None else f"{plan.lag_seconds:.0f}s"
        out.append(f"acknowledge the data loss (data at risk: {lag} of writes)")
    if plan.needs_unfenced_ack and not approval.unfenced:
        out.append(f"acknowledge that {', '.join(plan.unfenced)} could not be fenced")
    return out


# ------------------------------------------------------------------------------------------- guards


def _check(name: str, ok: bool, detail: str) -> Check:
    return Check(name=name, ok=ok, detail=detail)


def _lag_check(app: ProtectedApp, view: AppView) -> Check:
    limit = LAG_INTERVALS * app.snapshot_interval.total_seconds()
    lag = view.lag_seconds
    if lag is None:
        return _check("lag", False, f"the secondary's lag is unknown (limit {limit:.0f}s)")
    return _check("lag", lag <= limit, f"{lag:.0f}s (limit {limit:.0f}s = {LAG_INTERVALS} x snapshot interval)")


def _replaying(view: AppView, site: str) -> Check:
    sv = view.sites[site]
    bad = [f"{i}: {sv.states.get(i, 'no status')}" for i in view.images if not sv.states.get(i, "").startswith("up+replaying")]
    return _check(
        "mirroring healthy",
        sv.reachable and not bad,
        f"{site} replaying every image" if not bad else f"{site}: " + ", ".join(bad),
    )


def _common_checks(facts: Facts, op_kind: str, target: str) -> list[Check]:
    held = facts.placement.operation
    checks = [
        _check(
            "no other operation",
            not held,
            f"{facts.placement.operation_kind} {held} holds the app" if held else "none running",
        ),
        _check(
            "backup readable from the target",
            facts.backup_run is not None,
            f"latest complete backup {facts.backup_run}" if facts.backup_run else facts.backup_error,
        ),
    ]
    split = facts.view.split_brain()
    if split and op_kind != "failback":
        checks.append(
            _check(
                "no split-brain",
                False,
                "; ".join(split)
                + f". Resolve it: standby failback --app {facts.placement.app}, which demotes and resyncs"
                " the out-of-date side (rbd mirror image demote, then rbd mirror image resync there)",
            )
        )
    return checks


def _start_steps(app: ProtectedApp, target: str, force: bool) -> list[StepSpec]:
    return [
        StepSpec(name="restore-volumes", title="restore the Secret, PV (imageName kept) and PVC from the backup", site=target),
        StepSpec(name="promote-target", title="promote the images" + (" **(forced)**" if force else " (not forced)"), site=target, force=force),
        StepSpec(name="start-target", title=f"restore and start {app.workload.kind.kind} {app.workload.name}, wait until writable", site=target),
        StepSpec(name="smoke-target", title="smoke test: status, writable, login, upload and download", site=target),
        StepSpec(name="routing", title="switch routing to the target", site=target),
    ]  # fmt: skip


def _relocate_steps(app: ProtectedApp, source: str, target: str) -> list[StepSpec]:
    return [
        StepSpec(name="stop-source", title="freeze and stop the app, wait until its volumes are released", site=source),
        StepSpec(name="final-snapshot", title="take a final mirror snapshot and wait until the target has it", site=source),
        StepSpec(name="demote-source", title="demote the images", site=source),
        StepSpec(name="wait-demotion", title="wait until the target holds the demotion snapshot", site=target),
        *_start_steps(app, target, force=False),
        StepSpec(name="tidy-source", title="remove the app's PVC/PV (Retain; the image is kept)", site=source),
        StepSpec(name="placement", title=f"record {target} as the primary", site=target),
        StepSpec(name="mirroring-healthy", title=f"wait until {source} replays from {target}", site=source),
    ]  # fmt: skip


def _relocate(app: ProtectedApp, facts: Facts, target: str, kind: Kind) -> Plan:
    view, record = facts.view, facts.placement
    source = record.primary
    checks = _common_checks(facts, kind, target)
    for name in (source, target):
        sv = view.sites[name]
        checks.append(_check(f"{name} reachable", sv.reachable, sv.error or "answered"))
    if all(view.sites[n].reachable for n in (source, target)):
        primaries = view.primaries()
        checks.append(_check("exactly one primary", primaries == [source], f"primary on: {', '.join(primaries) or 'none'}"))
        checks.append(_replaying(view, target))
        checks.append(_lag_check(app, view))
        wrong = disagreements(record, view)
        checks.append(_check("record agrees with the sites", not wrong, "; ".join(wrong) or "yes"))
    else:
        down = ", ".join(view.unreachable())
        checks.append(
            _check("planned move possible", False, f"{down} unreachable: a relocate needs both sites;"
                   f" use: standby failover --app {app.name} --to {target}")
        )  # fmt: skip
    return Plan(
        kind=kind, app=app.name, source=source, target=target, checks=tuple(checks),
        steps=tuple(_relocate_steps(app, source, target)), lag_seconds=view.lag_seconds,
    )  # fmt: skip


def _failover(app: ProtectedApp, facts: Facts, target: str) -> Plan:
    view, record = facts.view, facts.placement
    source = record.primary
    checks = _common_checks(facts, "failover", target)
    tv = view.sites[target]
    checks.append(_check(f"{target} reachable", tv.reachable, tv.error or "answered"))
    source_up = view.sites[source].reachable
    why = f"unreachable: {view.sites[source].error};" if view.sites[source].error else "unreachable:"
    unfenced = () if source_up else (f"{source} ({why} its app and images cannot be stopped or demoted)",)
    forced = () if source_up else tuple(f"promote of {i} on {target}" for i in view.images)
    steps = [
        StepSpec(name="fence-source", title="stop the app and demote the images where reachable", site=source),
        StepSpec(name="wait-inflight-sync", title="let a sync in flight finish (bounded wait)", site=target),
        *_start_steps(app, target, force=not source_up),
        StepSpec(name="placement", title=f"record {target} as the primary", site=target),
    ]  # fmt: skip
    return Plan(
        kind="failover", app=app.name, source=source, target=target, checks=tuple(checks), steps=tuple(steps),
        lag_seconds=view.lag_seconds, forced=forced, unfenced=unfenced,
        needs_data_loss_ack=not source_up, needs_unfenced_ack=not source_up,
    )  # fmt: skip


def _failback(app: ProtectedApp, facts: Facts) -> Plan:
    view, record = facts.view, facts.placement
    home, current = app.primary_site, record.primary
    relocate = _relocate(app, facts, home, "failback")
    checks = [c for c in relocate.checks if c.name in ("no other operation", "backup readable from the target")]
    for name in (home, current):
        sv = view.sites[name]
        checks.append(_check(f"{name} reachable", sv.reachable, sv.error or "answered"))
    if view.sites[current].reachable:
        roles = view.sites[current].roles
        ok = all(roles.get(i) == "primary" for i in view.images)
        checks.append(_check(f"{current} is primary", ok, ", ".join(f"{i}: {roles.get(i)}" for i in view.images)))
    steps = [
        StepSpec(name="stop-old", title="stop the app on the old primary", site=home),
        StepSpec(name="demote-old", title="demote the old primary's images (it loses what the survivor lacks)", site=home),
        StepSpec(name="resync-old", title="resync the old primary from the survivor", site=home),
        StepSpec(name="wait-in-sync", title="wait until replaying, a fresh snapshot complete, lag under target", site=home),
        *relocate.steps,
    ]  # fmt: skip
    return Plan(
        kind="failback", app=app.name, source=current, target=home, checks=tuple(checks), steps=tuple(steps),
        lag_seconds=view.lag_seconds,
    )  # fmt: skip


def make_plan(app: ProtectedApp, facts: Facts, kind: Kind, target: str | None) -> Plan:
    """See :func:`_make_plan`; the plan carries the backup run it will restore."""
    return _make_plan(app, facts, kind, target).model_copy(update={"backup_run": facts.backup_run})


def _make_plan(app: ProtectedApp, facts: Facts, kind: Kind, target: str | None) -> Plan:
    """The plan of ``kind`` for ``app`` from ``facts``; guards that fail are in ``plan.refusals``.

    ``target`` is required for relocate and failover, and is the app's home for a failback.
    Raises :class:`PreconditionFailed` only for a request that names no valid target.
    """
    record = facts.placement
    sites = (app.primary_site, app.secondary_site)
    if kind == "failback":
        if record.primary == app.primary_site and not record.operation:
            plan = _relocate(app, facts, app.primary_site, "failback")
            return plan.model_copy(update={"nothing_to_do": f"{app.name} already runs on its home site {app.primary_site}"})
        return _failback(app, facts)
    if target not in sites:
        raise PreconditionFailed(
            f"{kind} of app {app.name}: target {target!r} is not one of its sites ({', '.join(sites)})",
            hint=f"pass --to {record.secondary}",
        )
    plan = _failover(app, facts, target) if kind == "failover" else _relocate(app, facts, target, kind)
    if target == record.primary and not record.operation:
        return plan.model_copy(update={"nothing_to_do": f"{app.name} already runs on {target} (placement epoch {record.epoch})"})
    return plan


# ------------------------------------------------------------------------------------------ render


def _seconds(value: float | None) -> str:
    return "unknown" if value is None else str(timedelta(seconds=round(value)))


def plan_markdown(plan: Plan, op_id: str = "") -> str:
    """The plan as Markdown, for the artifact, the CLI and the approval form."""
    head = f"# {plan.kind} of {plan.app}: {plan.source} → {plan.target}"
    lines = [head + (f" ({op_id})" if op_id else ""), ""]
    if plan.nothing_to_do:
        lines += [f"**Nothing to do:** {plan.nothing_to_do}.", ""]
    lines += [f"**Data at risk** (the secondary's lag): {_seconds(plan.lag_seconds)}", ""]
    lines += ["| precondition | result | seen |", "|---|---|---|"]
    lines += [f"| {c.name} | {'pass' if c.ok else '**FAIL**'} | {c.detail} |" for c in plan.checks]
    lines += ["", "| # | step | site |", "|---|---|---|"]
    lines += [f"| {n} | {s.title} | {s.site} |" for n, s in enumerate(plan.steps, 1)]
    lines += ["", "**Forced:** " + ("; ".join(plan.forced) or "nothing")]
    lines += ["**Cannot be fenced:** " + ("; ".join(plan.unfenced) or "nothing")]
    acks = [a for a, need in (("data loss", plan.needs_data_loss_ack), ("unfenced old primary", plan.needs_unfenced_ack)) if need]
    if acks:
        lines += [f"**Approval must acknowledge:** {', '.join(acks)}"]
    if plan.refusals:
        lines += ["", "**Refused:** " + "; ".join(f"{c.name}: {c.detail}" for c in plan.refusals)]
    return "\n".join(lines) + "\n"


def timeline_rows(journal: Journal) -> list[dict[str, Any]]:
    """One row per step: name, site, outcome, start, end and seconds, for tables and reports."""
    return [
        {
            "step": s.name,
            "site": s.site,
            "outcome": s.outcome,
            "started": s.started_at.isoformat() if s.started_at else "",
            "ended": s.ended_at.isoformat() if s.ended_at else "",
            "seconds": None if s.seconds is None else round(s.seconds, 2),
            "error": s.error,
        }
        for s in journal.steps
    ]
