"""DR operations as data: plans, their steps and checks, and the journal of a run. Pure.

A :class:`Plan` is an ordered list of named steps plus the guards checked when it was made. It is
built by :func:`~drkit.domain.operation_plan.make_plan` from the configuration, the placement
record and an observation of both sites (:class:`Facts`), so the dry-run plan and the executed plan
are the same object. The step names are the vocabulary of :mod:`drkit.jobs.operations`, which
observes, acts and verifies.

A :class:`Journal` records one run of a plan (approval, each step's start, end, outcome and what
was observed). It is written to the object store after every step; resuming reads it back.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import Field

from drkit.domain.errors import ConfigError
from drkit.domain.model_base import Model
from drkit.domain.placement import AppView, Placement

Kind = Literal["relocate", "failover", "failback", "drill"]
Outcome = Literal["pending", "running", "done", "skipped", "failed"]
Status = Literal["planned", "refused", "approved", "running", "completed", "failed", "aborted"]


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
        None,
        description="the backup (taken on the source) the target restores; None for a move that takes its own",
    )
    backup_age_seconds: float | None = Field(None, description="age of that backup when the plan was made")
    final_backup: bool = Field(
        False, description="the operation takes its own backup of the source before stopping it"
    )
    takes_over: str | None = Field(
        None, description="the failed, stale or abandoned operation whose hold it takes over"
    )
    backup_site: str | None = Field(
        None, description="the site the restored backup was taken on, when not the source"
    )

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

    run: str | None = Field(
        None, description="the backup run tried; None when the target's store holds none yet"
    )
    sealed: bool = Field(
        ..., description="whether the run holds sealed objects (with no run: whether the app's backup will)"
    )
    needed_key_id: str | None = Field(None, description="id of the key that sealed the run's objects")
    given_key_id: str | None = Field(None, description="id of the key given to this operation; None: no key")
    opened: bool | None = Field(
        None, description="the trial decryption passed, failed, or was not tried (None)"
    )
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
        None, description="whether the isolated drill's namespace exists on the secondary (None: not looked)"
    )
    drill_scratch: str = Field(
        "",
        description="what the app's driver starts an isolated drill as, when it does so itself ('': in its namespace)",
    )
    drill_no_canary: str = Field("", description="why the app's drill runs without a canary ('': it has one)")
    holder: HoldState | None = Field(None, description="the state of the operation holding the app, if any")
    take_over: str | None = Field(
        None, description="the operation whose hold the operator asked to take over"
    )
    resuming: str | None = Field(
        None, description="the operation being resumed: its own hold is no other operation"
    )
    app_refusals: tuple[str, ...] | None = Field(
        None,
        description="what the target would refuse of the app's saved definition, read before any change"
        " (None: not checked: the app's driver has no such check, or there is no backup to read)",
    )


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
        return self.model_copy(
            update={"steps": tuple(record if s.name == record.name else s for s in self.steps)}
        )


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
    reapprovals: tuple[Reapproval, ...] = Field(
        (), description="plans approved again at a resume, oldest first"
    )

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


def backup_age(seconds: float | None) -> str:
    """How old a backup is, for a plan's guard and its Markdown: ``taken 2.5h ago``."""
    if seconds is None:
        return "age unknown"
    seconds = max(0.0, seconds)
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"taken {seconds / size:.1f}{unit} ago"
    return f"taken {seconds:.0f}s ago"
