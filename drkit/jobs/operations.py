"""Relocate, failover and failback: plan, approve, execute and resume, without Prefect.

1. :func:`prepare` reads the placement, observes both sites, finds the backup the target can read
   and makes the plan (:func:`drkit.domain.operations.make_plan`). It looks through
   :meth:`World.probing`: sites and stores are asked in parallel, each call bounded by the site's
   ``probe_timeout``, so a site that is down shows as unreachable in the plan within seconds.
2. :func:`approve` checks the approval against the plan, takes the app (the placement record's
   hold, by compare-and-swap: a second operation is refused) and writes the journal.
3. :func:`execute` runs each step not yet done: observe; if not satisfied, act and poll until it
   is (bounded per step); the journal is written after every step, to the target's store and the
   other store when it answers. A failed journal write stops the run at that step boundary.
4. :func:`resume` reads a journal back and executes what is left; finished steps are skipped.

:func:`run_operation` is the whole runbook (plan, approval, execution), shared by the flows and
the CLI; each supplies an :class:`OperationHooks` for what differs (the approval, what is shown).
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from drkit.domain import crypto
from drkit.domain.errors import (
    CommandFailed,
    Conflict,
    NotFound,
    PreconditionFailed,
    StandbyError,
    TransientError,
)
from drkit.domain.operations import (
    Approval,
    Facts,
    Journal,
    Kind,
    Plan,
    StepRecord,
    check_approval,
    make_plan,
    new_journal,
    new_op_id,
    parse_op_id,
)
from drkit.domain.placement import begin, released
from drkit.jobs.backup import resolve_run
from drkit.jobs.requests import OperationRequest
from drkit.jobs.steps import STEPS, RoutingHook, Run
from drkit.jobs.world import World, observe_placed, read_placement, update_placement

StepCallback = Callable[[Journal, StepRecord], None]


@dataclass(frozen=True)
class Timeouts:
    """How long a step may take before it fails, in seconds, and how often it is polled."""

    default: float = 300.0
    poll: float = 1.0
    per_step: dict[str, float] = field(
        default_factory=lambda: {
            "wait-inflight-sync": 60.0,  # bounded: a failover does not wait for ever on a sync
            "promote-target": 180.0,
            "resync-old": 900.0,  # a resync is a full copy: budget it by image size
            "wait-in-sync": 900.0,
            "mirroring-healthy": 300.0,
        }
    )
    continue_after: frozenset[str] = frozenset({"wait-inflight-sync"})
    """Steps whose timeout is not a failure (the bounded wait is over, the run goes on)."""

    def of(self, step: str) -> float:
        """The timeout of ``step``."""
        return self.per_step.get(step, self.default)


@dataclass(frozen=True)
class Prepared:
    """A plan and what it was made from."""

    plan: Plan
    facts: Facts


def find_backup(world: World, app_name: str, source: str, target: str) -> tuple[str | None, str]:
    """The newest complete backup of ``app`` taken on ``source``: from the target's store first."""
    errors = []
    for ref in world.stores(first=target):
        try:
            return resolve_run(ref.store, ref.layout, source, app_name, None), ""
        except StandbyError as error:
            errors.append(f"store of {'/'.join(ref.sites)}: {error.message}")
    return None, "; ".join(errors) or "no store"


def prepare(world: World, app_name: str, kind: Kind, target: str | None) -> Prepared:
    """Observe and plan (nothing changes). See the module docstring."""
    app = world.config.app(app_name)
    if target is not None:
        world.config.site(target)
    probing = world.probing()  # bounded, parallel probes: what does not answer is shown unreachable
    placed, view = observe_placed(probing, app)
    record = placed.record
    backup_target = app.primary_site if kind == "failback" else (target or record.secondary)
    run_id, error = find_backup(probing, app.name, record.primary, backup_target)
    facts = Facts(placement=record, view=view, backup_run=run_id, backup_error=error)
    return Prepared(plan=make_plan(app, facts, kind, target), facts=facts)


# ------------------------------------------------------------------------------------------ journal


def write_journal(world: World, journal: Journal) -> None:
    """Write the journal to the target's store (required) and every other store that answers."""
    body = journal.model_dump_json(indent=1).encode()
    for ref in world.stores(first=journal.target):
        try:
            ref.store.put(ref.layout.journal_key(journal.app, journal.op_id), body, content_type="application/json")
        except StandbyError:
            if journal.target in ref.sites:
                raise


def read_journal(world: World, op_id: str, app: str | None = None) -> Journal:
    """The journal of ``op_id`` from the first store that holds it (the newest when several do)."""
    parse_op_id(op_id)
    apps = [app] if app else [a.name for a in world.config.apps]
    found: list[Journal] = []
    errors: list[str] = []
    for ref in world.stores():
        for name in apps:
            try:
                found.append(Journal.model_validate(json.loads(ref.store.get(ref.layout.journal_key(name, op_id)))))
            except NotFound:
                continue
            except StandbyError as error:
                errors.append(str(error))
    if not found:
        raise NotFound(
            f"no journal of operation {op_id} in any reachable store" + (f" ({'; '.join(errors)})" if errors else ""),
            hint="check the id (the last line of the command that started it) and the stores' reachability",
        )
    done = lambda j: sum(s.outcome in ("done", "skipped") for s in j.steps)  # noqa: E731
    return max(found, key=done)


def list_journals(world: World, app: str) -> list[Journal]:
    """Every journal of ``app`` in the reachable stores, oldest first."""
    out: dict[str, Journal] = {}
    for ref in world.stores():
        try:
            keys = [o.key for o in ref.store.list(ref.layout.operations_prefix(app))]
            for key in keys:
                journal = Journal.model_validate(json.loads(ref.store.get(key)))
                out.setdefault(journal.op_id, journal)
        except StandbyError:
            continue
    return sorted(out.values(), key=lambda j: j.created_at)


# ---------------------------------------------------------------------------------------- approval


def approve(
    world: World, prepared: Prepared, approval: Approval, typed_app: str, *, op_id: str | None = None
) -> Journal:
    """Check ``approval``, take the app and write the journal; the operation is ready to execute.

    :class:`PreconditionFailed` when the plan is refused or the approval is not enough (nothing
    changes); :class:`Conflict` when another operation holds the app.
    """
    plan = prepared.plan
    if not plan.runnable:
        reasons = "; ".join(f"{c.name}: {c.detail}" for c in plan.refusals) or plan.nothing_to_do
        raise PreconditionFailed(f"{plan.kind} of {plan.app} refused: {reasons}", hint="see the plan")
    problems = check_approval(plan, approval, typed_app)
    if problems:
        raise PreconditionFailed(f"approval of {plan.kind} of {plan.app} refused: " + "; ".join(problems))
    now = world.clock.now()
    op_id = op_id or new_op_id(plan.kind, now, secrets.token_bytes(3))
    app = world.config.app(plan.app)
    journal = new_journal(op_id, plan, now).model_copy(update={"status": "approved", "approval": approval})
    write_journal(world, journal)
    update_placement(world, app, lambda p: begin(p, op_id, plan.kind, now), required=plan.target)
    return journal


# ---------------------------------------------------------------------------------------- execution


def _finish(world: World, journal: Journal, status: str, error: str = "") -> Journal:
    done = journal.model_copy(update={"status": status, "error": error, "finished_at": world.clock.now()})
    write_journal(world, done)
    return done


def _run_step(run: Run, journal: Journal, record: StepRecord, timeouts: Timeouts, on_step: StepCallback) -> Journal:
    world, spec = run.world, next(s for s in run.plan.steps if s.name == record.name)
    step = STEPS[spec.name]
    seen = step.observe(run, spec)
    if step.satisfied(seen):
        now = world.clock.now()
        record = record.model_copy(update={"outcome": "skipped", "started_at": now, "ended_at": now, "observed": seen})
        run.seen[record.name] = seen
        journal = journal.with_step(record)
        write_journal(world, journal)
        on_step(journal, record)
        return journal
    record = record.model_copy(
        update={"outcome": "running", "started_at": world.clock.now(), "ended_at": None, "error": ""}
    )
    journal = journal.with_step(record).model_copy(update={"status": "running"})
    write_journal(world, journal)
    on_step(journal, record)
    deadline = world.clock.monotonic() + timeouts.of(spec.name)
    last_error = ""
    while True:
        run.tick()
        try:
            step.act(run, spec, seen)
            seen = step.observe(run, spec)
            if step.satisfied(seen):
                break
        except (TransientError, CommandFailed) as error:  # a call that may pass: poll again until the deadline
            last_error = str(error)
        if world.clock.monotonic() >= deadline:
            if spec.name in timeouts.continue_after:
                seen = {**seen, "timed_out": True}
                break
            why = f"not done after {timeouts.of(spec.name):.0f}s" + (f"; last error: {last_error}" if last_error else "")
            raise _StepFailed(record.model_copy(update={"observed": seen}), why)
        world.clock.sleep(timeouts.poll)
    record = record.model_copy(update={"outcome": "done", "ended_at": world.clock.now(), "observed": seen})
    run.seen[record.name] = seen
    journal = journal.with_step(record)
    write_journal(world, journal)
    on_step(journal, record)
    return journal


class _StepFailed(Exception):
    def __init__(self, record: StepRecord, why: str) -> None:
        super().__init__(why)
        self.record = record
        self.why = why


def _hint(plan: Plan, step: str) -> str:
    if step == "promote-target" and plan.kind in ("relocate", "failback"):
        return (
            f"the plain promote stalled: the target never got the demotion snapshot; if {plan.source} is lost,"
            f" use: standby failover --app {plan.app} --to {plan.target}"
        )
    return "fix what the error names, then resume the operation with its id (finished steps are skipped)"


@dataclass
class Executor:
    """Runs the steps of one approved journal, one at a time (a Prefect task per step, or a loop).

    ``journal`` is always the latest written state. A step failure, or any Standby error, marks
    the step and the journal failed and raises a :class:`StandbyError` naming the step, the site
    and how to resume. A failed journal write propagates: the run stops at that step boundary.
    """

    world: World
    journal: Journal
    key: crypto.MasterKey | None
    timeouts: Timeouts = field(default_factory=Timeouts)
    routing_hook: RoutingHook | None = None
    on_step: StepCallback = field(default=lambda j, r: None)

    def __post_init__(self) -> None:
        if self.journal.approval is None:
            raise PreconditionFailed(f"operation {self.journal.op_id} was never approved", hint="start it anew")
        self.app = self.world.config.app(self.journal.app)
        self.run = Run(world=self.world, app=self.app, plan=self.journal.plan, op_id=self.journal.op_id,
                       key=self.key, backup_run=self.journal.plan.backup_run, routing_hook=self.routing_hook,
                       seen={s.name: s.observed for s in self.journal.steps if s.outcome in ("done", "skipped")})  # fmt: skip

    def pending(self) -> list[str]:
        """The names of the steps not done yet, in order."""
        return [r.name for r in self.journal.steps if r.outcome not in ("done", "skipped")]

    def step(self, name: str) -> StepRecord:
        """Run step ``name`` (observe, act if needed, verify); its record once finished."""
        record = self.journal.step(name)
        if record.outcome in ("done", "skipped"):
            return record
        if self.journal.status != "running":
            self.journal = self.journal.model_copy(update={"status": "running", "error": ""})
        try:
            self.journal = _run_step(self.run, self.journal, record, self.timeouts, self.on_step)
        except _StepFailed as failed:
            self.journal, error = _fail(self.world, self.journal, failed.record, failed.why)
            raise error from None
        except StandbyError as failure:
            self.journal, error = _fail(self.world, self.journal, self.journal.step(name), str(failure))
            raise error from None
        return self.journal.step(name)

    def complete(self) -> Journal:
        """Release the app and mark the operation completed (every step must be done)."""
        if self.journal.status == "completed":
            return self.journal
        left = self.pending()
        if left:
            raise PreconditionFailed(f"operation {self.journal.op_id} still has steps to run: {', '.join(left)}")
        now = self.world.clock.now()
        op_id = self.journal.op_id
        update_placement(self.world, self.app, lambda p: released(p, op_id, now), required=self.journal.target)
        self.journal = _finish(self.world, self.journal, "completed")
        return self.journal


def execute(
    world: World,
    journal: Journal,
    *,
    key: crypto.MasterKey | None,
    timeouts: Timeouts | None = None,
    routing_hook: RoutingHook | None = None,
    on_step: StepCallback | None = None,
) -> Journal:
    """Run every step of ``journal`` not done yet; the final journal says completed (see :class:`Executor`)."""
    if journal.status == "completed":
        return journal
    ex = Executor(world, journal, key, timeouts or Timeouts(), routing_hook, on_step or (lambda j, r: None))
    for name in ex.pending():
        ex.step(name)
    return ex.complete()


def _fail(world: World, journal: Journal, record: StepRecord, why: str) -> tuple[Journal, StandbyError]:
    """The journal with ``record`` failed (written when the store answers), and the error to raise."""
    record = record.model_copy(update={"outcome": "failed", "ended_at": world.clock.now(), "error": why})
    journal = journal.with_step(record)
    message = f"{journal.kind} {journal.op_id} of {journal.app}: step {record.name} on {record.site} failed: {why}"
    try:
        journal = _finish(world, journal, "failed", message)
    except StandbyError as error:
        message += f" (and the journal could not be written: {error.message})"
        journal = journal.model_copy(update={"status": "failed", "error": message})
    return journal, StandbyError(message, hint=_hint(journal.plan, record.name), context={"op_id": journal.op_id})


def resume(
    world: World,
    op_id: str,
    *,
    key: crypto.MasterKey | None,
    timeouts: Timeouts | None = None,
    routing_hook: RoutingHook | None = None,
    on_step: StepCallback | None = None,
) -> Journal:
    """Execute what is left of operation ``op_id`` (refused when another operation holds the app)."""
    journal = read_journal(world, op_id)
    if journal.status == "completed":
        return journal
    app = world.config.app(journal.app)
    record = read_placement(world, app).record
    if record.operation not in (None, op_id):
        raise Conflict(
            f"app {app.name} is held by operation {record.operation}; {op_id} cannot resume",
            hint=f"resume {record.operation} instead",
        )
    if record.operation is None:
        now = world.clock.now()
        update_placement(world, app, lambda p: begin(p, op_id, journal.kind, now), required=journal.target)
    return execute(world, journal, key=key, timeouts=timeouts, routing_hook=routing_hook, on_step=on_step)


def summary_lines(journal: Journal) -> list[str]:
    """A short human account of an operation."""
    out = [f"{journal.kind} {journal.op_id} of {journal.app}: {journal.source} -> {journal.target}: {journal.status}"]
    for s in journal.steps:
        took = "" if s.seconds is None else f" {s.seconds:.1f}s"
        out.append(f"  {s.outcome:8} {s.name:20} {s.site:8}{took}" + (f"  {s.error}" if s.error else ""))
    if journal.error:
        out.append(f"error: {journal.error}")
    return out


# ------------------------------------------------------------------------------------------ runbook


class OperationHooks:
    """What a caller of :func:`run_operation` adds to the shared runbook.

    The defaults run each call directly and show nothing; :meth:`consent` must be given. The flows
    wrap the calls in Prefect tasks and pause for the approval form; the CLI prints and prompts.
    """

    refusal_hint = "see the plan"
    """The hint of the error raised when the plan refuses the operation."""

    def plan(self, world: World, app: str, kind: Kind, target: str | None) -> Prepared:
        """Observe and plan (and show the plan)."""
        return prepare(world, app, kind, target)

    def say(self, message: str) -> None:
        """Tell the operator how the run ended when nothing was executed."""

    def consent(self, plan: Plan) -> tuple[Approval, str]:
        """The approval of ``plan`` and the app name the approver typed; raise to stop."""
        raise NotImplementedError

    @contextmanager
    def hold(self, app: str) -> Iterator[None]:
        """Held from taking the app until the operation ends (the flows: the app's concurrency slot)."""
        yield

    def take(self, world: World, prepared: Prepared, approval: Approval, typed_app: str) -> Journal:
        """Take the app and write the journal (see :func:`approve`)."""
        return approve(world, prepared, approval, typed_app)

    def routing(self, app: str) -> RoutingHook | None:
        """The ``routing`` step's hook for the app, when its routing is a webhook."""
        return None

    def step(self, executor: Executor, name: str) -> None:
        """Run one step."""
        executor.step(name)

    def on_step(self, journal: Journal, record: StepRecord) -> None:
        """A step started or ended (its journal is written)."""

    def progress(self, journal: Journal) -> None:
        """A step is over (or the operation failed): ``journal`` is the latest written state."""

    def ended(self, journal: Journal, error: StandbyError | None) -> None:
        """The operation completed (``error`` is ``None``) or failed with ``error``."""


@dataclass(frozen=True)
class OperationResult:
    """How :func:`run_operation` ended: nothing to do, a dry run, or the final journal."""

    status: str
    plan: Plan
    journal: Journal | None = None

    def as_dict(self) -> dict[str, Any]:
        """The flows' return value."""
        if self.journal is None:
            if self.status == "nothing-to-do":
                return {"status": self.status, "reason": self.plan.nothing_to_do}
            return {"status": self.status, "steps": [s.name for s in self.plan.steps]}
        done = self.journal
        return {"status": done.status, "op_id": done.op_id, "steps": {s.name: s.outcome for s in done.steps}}


def run_operation(
    world: World,
    request: OperationRequest,
    kind: Kind,
    target: str | None,
    hooks: OperationHooks,
    *,
    key: Callable[[], crypto.MasterKey | None],
) -> OperationResult:
    """Relocate, failover or failback, end to end: the runbook the flows and the CLI share.

    1. Observe both sites and plan (:meth:`OperationHooks.plan`); stop when there is nothing to
       do, raise :class:`PreconditionFailed` when the plan refuses, stop after the plan on a dry run.
    2. Load the backup key (``key``), then ask for the typed approval (:meth:`OperationHooks.consent`).
    3. Holding the app, take it and write the journal, run every step, release the app. A step's
       failure is raised after :meth:`OperationHooks.ended` heard of it.
    """
    app = request.app
    prepared = hooks.plan(world, app, kind, target)
    plan = prepared.plan
    if plan.nothing_to_do:
        hooks.say(f"nothing to do: {plan.nothing_to_do}")
        return OperationResult("nothing-to-do", plan)
    if plan.refusals:
        raise PreconditionFailed(
            f"{kind} of {app} refused: " + "; ".join(f"{c.name}: {c.detail}" for c in plan.refusals),
            hint=hooks.refusal_hint,
        )
    if request.dry_run:
        hooks.say("dry run: nothing was changed")
        return OperationResult("dry-run", plan)
    master_key = key()
    approval, typed = hooks.consent(plan)
    with hooks.hold(app):
        journal = hooks.take(world, prepared, approval, typed)
        executor = Executor(world, journal, master_key, routing_hook=hooks.routing(app), on_step=hooks.on_step)
        try:
            for name in executor.pending():
                hooks.step(executor, name)
                hooks.progress(executor.journal)
            done = executor.complete()
        except StandbyError as error:
            hooks.progress(executor.journal)
            hooks.ended(executor.journal, error)
            raise
        hooks.progress(done)
        hooks.ended(done, None)
    return OperationResult(done.status, plan, done)
