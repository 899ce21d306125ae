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
from drkit.domain.markdown import md_inline
from drkit.domain.model_base import Model
from drkit.domain.models import ProtectedApp
from drkit.domain.placement import AppView, Placement, disagreements

Kind = Literal["relocate", "failover", "failback", "drill"]
Outcome = Literal["pending", "running", "done", "skipped", "failed"]
Status = Literal["planned", "refused", "approved", "running", "completed", "failed", "aborted"]

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
    backup_run: str | None = Field(
        None, description="the backup (taken on the source) the target restores; None for a move that takes its own"
    )
    backup_age_seconds: float | None = Field(None, description="age of that backup when the plan was made")
    final_backup: bool = Field(False, description="the operation takes its own backup of the source before stopping it")
    takes_over: str | None = Field(None, description="the failed, stale or abandoned operation whose hold it takes over")
    backup_site: str | None = Field(None, description="the site the restored backup was taken on, when not the source")

    @property
    def refusals(self) -> list[Check]:
        """The failed guards."""
        return [c for c in self.checks if not c.ok]

    @property
    def runnable(self) -> bool:
        """Whether every guard passed and there is work to do."""
        return not self.refusals and not self.nothing_to_do


class KeyTrial(Model):
    """Whether the backup key given opens the backup a plan depends on: found before anything changes.

    The jobs layer reads the run's index from the target's store and decrypts one sealed object of it
    (a trial); this record is what it saw, and :func:`key_check` judges it.
    """

    run: str | None = Field(None, description="the backup run tried; None when the target's store holds none yet")
    sealed: bool = Field(..., description="whether the run holds sealed objects (with no run: whether the app's backup will)")
    needed_key_id: str | None = Field(None, description="id of the key that sealed the run's objects")
    given_key_id: str | None = Field(None, description="id of the key given to this operation; None: no key")
    opened: bool | None = Field(None, description="the trial decryption passed, failed, or was not tried (None)")
    path: str = Field("", description="the object decrypted as a trial")
    error: str = Field("", description="why the trial failed")
class HoldState(Model):
    """What the operation holding an app is doing: told from its journal (see :func:`drkit.domain.abort.judge_hold`)."""

    op_id: str = Field(..., description="the holding operation")
    kind: str = Field("", description="its kind")
    state: Literal["live", "failed", "stale", "abandoned"] = Field(..., description="live: still running")
    detail: str = Field("", description="what the journal says, for people")


class Facts(Model):
    """Everything a plan is made from, observed before it."""

    placement: Placement = Field(..., description="the placement record")
    view: AppView = Field(..., description="both sites' view of the app's images")
    backup_run: str | None = Field(None, description="the newest complete backup in the target's store")
    backup_error: str = Field("", description="why no backup could be read")
    backup_age_seconds: float | None = Field(None, description="how old that backup was when observed")
    store_reachable: bool = Field(True, description="whether the target's store answered")
    key: KeyTrial | None = Field(None, description="the trial of the backup key (None: not tried)")
    secondary_objects: tuple[str, ...] = Field((), description="the app's objects found on the secondary")
    drill_namespace: bool | None = Field(
        None, description="whether the isolated drill's namespace exists on the secondary (None: not looked)")
    holder: HoldState | None = Field(None, description="the state of the operation holding the app, if any")
    take_over: str | None = Field(None, description="the operation whose hold the operator asked to take over")
    resuming: str | None = Field(None, description="the operation being resumed: its own hold is no other operation")


class Approval(Model):
    """Who approved a run and what they acknowledged."""

    approver: str = Field(..., description="who approved")
    reason: str = Field(..., description="why")
    data_loss: bool = Field(False, description="acknowledged data loss")
    unfenced: bool = Field(False, description="acknowledged an unfenced old primary")
    take_over: bool = Field(False, description="acknowledged taking over the hold of a failed operation")
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


class Rollback(Model):
    """The abort of an operation (``standby operation abort``), kept in the operation's journal."""

    status: Literal["running", "completed", "failed"] = Field("running", description="where the abort stands")
    approval: Approval = Field(..., description="who approved the abort")
    started_at: datetime = Field(..., description="when the abort was approved")
    steps: tuple[StepRecord, ...] = Field(..., description="the rollback steps, in order")
    error: str = Field("", description="why the abort failed")
    finished_at: datetime | None = Field(None, description="when it completed or failed")

    def with_step(self, record: StepRecord) -> Rollback:
        """A copy with ``record`` replacing the step of the same name."""
        return self.model_copy(update={"steps": tuple(record if s.name == record.name else s for s in self.steps)})


class Reapproval(Model):
    """A resume whose plan, made again, differed from the one approved: the approval given for the new one."""

    at: datetime = Field(..., description="when the new plan was approved")
    changes: tuple[str, ...] = Field(..., description="what differed from the plan approved before")
    plan_before: Plan = Field(..., description="the plan approved before")
    approval_before: Approval | None = Field(None, description="its approval")


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
    abort: Rollback | None = Field(None, description="the abort of this operation, once asked for")
    took_over: str | None = Field(None, description="the failed operation whose hold this one took over")
    taken_over_by: str | None = Field(None, description="the operation that took over this one's hold")
    reapprovals: tuple[Reapproval, ...] = Field((), description="plans approved again at a resume, oldest first")

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
    if plan.takes_over and not approval.take_over:
        out.append(f"acknowledge taking over the hold of operation {plan.takes_over}")
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


def _age(seconds: float | None) -> str:
    if seconds is None:
        return "age unknown"
    seconds = max(0.0, seconds)
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"taken {seconds / size:.1f}{unit} ago"
    return f"taken {seconds:.0f}s ago"


def key_check(trial: KeyTrial | None) -> Check:
    """The guard "backup key opens the backup": refused when the operation would fail at its restore."""
    name = "backup key opens the backup"
    if trial is None:
        return _check(name, False, "not tried (no backup could be read)")
    what = f"run {trial.run}" if trial.run else "the backup this operation takes"
    if not trial.sealed:
        return _check(name, True, f"nothing in {what} is sealed: no key needed")
    if trial.given_key_id is None:
        needed = f" with key id {trial.needed_key_id}" if trial.needed_key_id else ""
        return _check(
            name, False, f"{what} holds sealed objects{needed} but no backup key was given: load the key"
            f"{' whose id is ' + trial.needed_key_id if trial.needed_key_id else ''} ($STANDBY_BACKUP_KEY for the CLI,"
            " the flow's key block for a deployment)",
        )
    if trial.needed_key_id is not None and trial.given_key_id != trial.needed_key_id:
        return _check(
            name, False, f"{what} is sealed with key id {trial.needed_key_id}; the key given has id"
            f" {trial.given_key_id}: load the key whose id is {trial.needed_key_id}",
        )
    if trial.opened is False:
        return _check(name, False, f"key id {trial.given_key_id} matches, but {trial.path} of {what} did not"
                      f" decrypt: {trial.error}")  # fmt: skip
    if trial.opened:
        return _check(name, True, f"key {trial.given_key_id} decrypted {trial.path} of {what}")
    return _check(name, True, f"key {trial.given_key_id} will seal {what}")
def _hold_check(facts: Facts, op_kind: str, target: str) -> Check:
    """No other operation holds the app; a failover may take over the hold of a failed, stale or
    abandoned one when the operator names it (``--take-over``); a live one is always refused."""
    held, app = facts.placement.operation, facts.placement.app
    if not held:
        return _check("no other operation", True, "none running")
    if held == facts.resuming:
        return _check("no other operation", True, f"held by {held} itself, which is resumed")
    if facts.holder is None:  # not judged (the planner did not read the holder's journal): refuse
        return _check("no other operation", False, f"{facts.placement.operation_kind} {held} holds the app;"
                      f" see: standby operation list --app {app}")  # fmt: skip
    holder = facts.holder
    what = f"{holder.kind or facts.placement.operation_kind} {held}"
    seen = f" ({holder.detail})" if holder.detail else ""
    if holder.state == "live":
        return _check("no other operation", False, f"{what} holds the app and is live{seen}: wait for it to end")
    if facts.take_over == held and op_kind == "failover":
        return _check("no other operation", True, f"taking over the hold of {holder.state} {what}{seen} (acknowledged)")
    way = (f"take it over: standby failover --app {app} --to {target} --take-over {held}" if op_kind == "failover"
           else f"standby operation resume {held}, or standby operation abort {held}")  # fmt: skip
    wrong = f"; --take-over names {facts.take_over}, not it" if facts.take_over else ""
    return _check("no other operation", False, f"{holder.state} {what} holds the app{seen}{wrong}; {way}")


def _common_checks(facts: Facts, op_kind: str, target: str) -> list[Check]:
    checks = [
        _hold_check(facts, op_kind, target),
    ]
    if op_kind == "failover":
        checks.append(
            _check(
                "backup readable from the target",
                facts.backup_run is not None,
                f"newest complete backup in {target}'s store: {facts.backup_run} ({_age(facts.backup_age_seconds)})"
                if facts.backup_run
                else facts.backup_error,
            )
        )
    else:  # a planned move backs up the running source itself, into the target's store
        checks.append(
            _check(
                "target's store answers",
                facts.store_reachable,
                f"{target}'s store answered; a final backup of the source is taken before the app stops"
                if facts.store_reachable
                else facts.backup_error,
            )
        )
    checks.append(key_check(facts.key))
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
        StepSpec(name="final-backup", title=f"back up the app's manifests on {source} into {target}'s store (restored below)", site=source),
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
        steps=tuple(_relocate_steps(app, source, target)), lag_seconds=view.lag_seconds, final_backup=True,
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
    kept = ("no other operation", "target's store answers", "backup key opens the backup")
    checks = [c for c in relocate.checks if c.name in kept]
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
        lag_seconds=view.lag_seconds, final_backup=True,
    )  # fmt: skip


def make_plan(app: ProtectedApp, facts: Facts, kind: Kind, target: str | None) -> Plan:
    """See :func:`_make_plan`; a failover carries the backup run it will restore and its age (a planned
    move restores the final backup it takes itself), and the hold it takes over, when its guard allowed it."""
    held = facts.placement.operation
    takes = held if held and facts.take_over == held and kind == "failover" else None
    backup_site = None
    if takes and target == facts.placement.primary:
        # a failover back: the operation taken over was moving the app away from the target (the
        # record still names the target, the images may be primary on the other site), so the
        # other site is the one to fence; the backup restored is the target's own
        record = facts.placement
        swapped = record.model_copy(update={"primary": record.secondary, "secondary": record.primary})
        facts, backup_site = facts.model_copy(update={"placement": swapped}), record.primary
    plan = _make_plan(app, facts, kind, target)
    update: dict[str, Any] = {"takes_over": takes, "backup_site": backup_site}
    if not plan.final_backup:
        update |= {"backup_run": facts.backup_run, "backup_age_seconds": facts.backup_age_seconds}
    return plan.model_copy(update=update)


def plan_changes(approved: Plan, now: Plan) -> list[str]:
    """What differs between the plan that was approved and the plan made again after approval.

    Empty when ``now`` can run under the approval given: same kind, sites, steps (and what each forces),
    acknowledgements, backup and guard outcomes. The lag itself may move; a lag guard that flips may not.
    """
    out: list[str] = []
    for label, attr in (("source", "source"), ("target", "target"), ("backup to restore", "backup_run")):
        if getattr(approved, attr) != getattr(now, attr):
            out.append(f"{label}: {getattr(approved, attr)} -> {getattr(now, attr)}")
    def steps(plan: Plan) -> list[tuple[str, str, bool]]:
        return [(s.name, s.site, s.force) for s in plan.steps]

    if steps(approved) != steps(now):
        forced = {s.name for s in now.steps if s.force} - {s.name for s in approved.steps if s.force}
        unforced = {s.name for s in approved.steps if s.force} - {s.name for s in now.steps if s.force}
        detail = [f"{n} is now forced" for n in sorted(forced)] + [f"{n} is no longer forced" for n in sorted(unforced)]
        out.append("steps changed" + (f" ({'; '.join(detail)})" if detail else ""))
    for label, attr in (("forced", "forced"), ("cannot be fenced", "unfenced")):
        if getattr(approved, attr) != getattr(now, attr):
            out.append(f"{label}: {'; '.join(getattr(approved, attr)) or 'nothing'} -> {'; '.join(getattr(now, attr)) or 'nothing'}")
    for label, attr in (("data-loss acknowledgement", "needs_data_loss_ack"), ("unfenced acknowledgement", "needs_unfenced_ack")):
        if getattr(approved, attr) != getattr(now, attr):
            out.append(f"{label}: {'needed' if getattr(now, attr) else 'no longer needed'}")
    before = {c.name: c.ok for c in approved.checks}
    for check in now.checks:
        if before.get(check.name) != check.ok:
            out.append(f"guard {check.name}: {'passes' if check.ok else 'fails'} now ({check.detail})")
    return out


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
    """The plan as Markdown, for the artifact, the CLI and the approval form.

    Every value is quoted through :func:`~drkit.domain.markdown.md_inline`: check details, errors and
    names may come from the cluster, the bucket or a placement record, and must not add a link, an
    image, HTML or a table row to the form an operator approves.
    """
    e = md_inline
    head = f"# {e(plan.kind)} of {e(plan.app)}: {e(plan.source)} → {e(plan.target)}"
    lines = [head + (f" ({e(op_id)})" if op_id else ""), ""]
    if plan.nothing_to_do:
        lines += [f"**Nothing to do:** {e(plan.nothing_to_do)}.", ""]
    lines += [f"**Data at risk** (the secondary's lag): {_seconds(plan.lag_seconds)}", ""]
    if plan.final_backup:
        lines += [f"**Restores from:** a final backup of {e(plan.source)} taken by this operation before the app stops", ""]
    elif plan.backup_run:
        lines += [f"**Restores from:** backup {e(plan.backup_run)} ({_age(plan.backup_age_seconds)})", ""]
    lines += ["| precondition | result | seen |", "|---|---|---|"]
    lines += [f"| {e(c.name)} | {'pass' if c.ok else '**FAIL**'} | {e(c.detail)} |" for c in plan.checks]
    lines += ["", "| # | step | site |", "|---|---|---|"]
    lines += [f"| {n} | {e(s.title)} | {e(s.site)} |" for n, s in enumerate(plan.steps, 1)]
    lines += ["", "**Forced:** " + ("; ".join(e(f) for f in plan.forced) or "nothing")]
    lines += ["**Cannot be fenced:** " + ("; ".join(e(u) for u in plan.unfenced) or "nothing")]
    if plan.takes_over:
        lines += [f"**Takes over the hold of:** {e(plan.takes_over)} (its journal records it)"]
    acks = [a for a, need in (("data loss", plan.needs_data_loss_ack), ("unfenced old primary", plan.needs_unfenced_ack),
                              (f"taking over {e(plan.takes_over or '')}", bool(plan.takes_over))) if need]  # fmt: skip
    if acks:
        lines += [f"**Approval must acknowledge:** {', '.join(acks)}"]
    if plan.refusals:
        lines += ["", "**Refused:** " + "; ".join(f"{e(c.name)}: {e(c.detail)}" for c in plan.refusals)]
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
