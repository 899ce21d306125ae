"""Take the app and run the steps of an approved operation: :func:`approve`, :class:`Executor` and
:func:`execute`.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from contextlib import suppress
from dataclasses import dataclass, field

from drkit.domain import crypto
from drkit.domain.abort import next_commands
from drkit.domain.errors import (
    CommandFailed,
    Conflict,
    OperationFailed,
    PreconditionFailed,
    StandbyError,
    TransientError,
)
from drkit.domain.models import ProtectedApp
from drkit.domain.operations import (
    Approval,
    Journal,
    Plan,
    StepRecord,
    check_approval,
    new_journal,
    new_op_id,
)
from drkit.domain.placement import begin, released
from drkit.jobs.operations.journal import mark_taken_over, write_journal
from drkit.jobs.operations.planning import Prepared
from drkit.jobs.operations.timeouts import Timeouts
from drkit.jobs.steps import STEPS, RoutingHook, Run, new_run
from drkit.jobs.world import (
    World,
    read_placement,
    update_placement,
    write_placement,
)

StepCallback = Callable[[Journal, StepRecord], None]


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
    took = plan.takes_over
    journal = new_journal(op_id, plan, now).model_copy(
        update={"status": "approved", "approval": approval, "took_over": took}
    )
    write_journal(world, journal)
    read = prepared.placement or read_placement(world, app)
    try:
        taken = begin(read.record, op_id, plan.kind, now, take_over=took)
        write_placement(world, app, read, taken, required=plan.target)
    except Conflict as error:
        refused = _not_taken(world, app, plan, op_id, error)
        with suppress(StandbyError):  # the journal says why it never ran; the refusal is what matters
            write_journal(world, journal.model_copy(update={"status": "refused", "error": refused.message}))
        raise refused from None
    if took:
        problem = mark_taken_over(world, took, plan.app, op_id)
        if problem:
            journal = journal.model_copy(update={"error": f"took over {took}; {problem}"})
            write_journal(world, journal)
    return journal


def _not_taken(world: World, app: ProtectedApp, plan: Plan, op_id: str, error: Conflict) -> Conflict:
    """Why taking the app failed: another operation holds it now, or the record moved since the plan."""
    try:
        begin(
            read_placement(world, app).record, op_id, plan.kind, world.clock.now(), take_over=plan.takes_over
        )
    except Conflict as held:
        return held
    except StandbyError:
        pass
    to = f" --to {plan.target}" if plan.kind != "failback" else ""
    return Conflict(
        f"{plan.kind} of {plan.app}: the placement record changed after the plan was made ({error.message});"
        " nothing was changed",
        hint=f"plan again: standby {plan.kind} --app {plan.app}{to}",
        context={"app": plan.app},
    )


# ---------------------------------------------------------------------------------------- execution


def _finish(world: World, journal: Journal, status: str, error: str = "") -> Journal:
    done = journal.model_copy(update={"status": status, "error": error, "finished_at": world.clock.now()})
    write_journal(world, done)
    return done


def _run_step(
    run: Run, journal: Journal, record: StepRecord, timeouts: Timeouts, on_step: StepCallback
) -> Journal:
    world, spec = run.world, next(s for s in run.plan.steps if s.name == record.name)
    step = STEPS[spec.name]
    seen = step.observe(run, spec)
    if step.satisfied(seen):
        now = world.clock.now()
        record = record.model_copy(
            update={"outcome": "skipped", "started_at": now, "ended_at": now, "observed": seen}
        )
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
        except (
            TransientError,
            CommandFailed,
        ) as error:  # a call that may pass: poll again until the deadline
            last_error = str(error)
        if world.clock.monotonic() >= deadline:
            if spec.name in timeouts.continue_after:
                seen = {**seen, "timed_out": True}
                break
            why = f"not done after {timeouts.describe(spec.name)}" + (
                f"; last error: {last_error}" if last_error else ""
            )
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
    timeouts: Timeouts | None = None
    """``None``: the app's configured limits (:meth:`Timeouts.for_app`)."""
    routing_hook: RoutingHook | None = None
    on_step: StepCallback = field(default=lambda j, r: None)

    def __post_init__(self) -> None:
        self.world.use_key(self.key)  # the journal and placement it writes are signed with it
        if self.journal.approval is None:
            raise PreconditionFailed(
                f"operation {self.journal.op_id} was never approved", hint="start it anew"
            )
        self.app = self.world.config.app(self.journal.app)
        self.limits = self.timeouts or Timeouts.for_app(self.app)
        self.run = new_run(
            self.world,
            self.app,
            self.journal.plan,
            self.journal.op_id,
            self.key,
            backup_run=self.journal.plan.backup_run,
            routing_hook=self.routing_hook,
            seen={s.name: s.observed for s in self.journal.steps if s.outcome in ("done", "skipped")},
        )

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
            self.journal = _run_step(self.run, self.journal, record, self.limits, self.on_step)
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
            raise PreconditionFailed(
                f"operation {self.journal.op_id} still has steps to run: {', '.join(left)}"
            )
        now = self.world.clock.now()
        op_id = self.journal.op_id
        update_placement(
            self.world, self.app, lambda p: released(p, op_id, now), required=self.journal.target
        )
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
    ex = Executor(world, journal, key, timeouts, routing_hook, on_step or (lambda j, r: None))
    for name in ex.pending():
        ex.step(name)
    return ex.complete()


def _fail(world: World, journal: Journal, record: StepRecord, why: str) -> tuple[Journal, StandbyError]:
    """The journal with ``record`` failed (written when the store answers), and the error to raise."""
    record = record.model_copy(update={"outcome": "failed", "ended_at": world.clock.now(), "error": why})
    journal = journal.with_step(record)
    message = (
        f"{journal.kind} {journal.op_id} of {journal.app}: step {record.name} on {record.site} failed: {why}"
    )
    try:
        journal = _finish(world, journal, "failed", message)
    except StandbyError as error:
        message += f" (and the journal could not be written: {error.message})"
        journal = journal.model_copy(update={"status": "failed", "error": message})
    hint = next_commands(journal.plan, journal.op_id, record.name)
    return journal, OperationFailed(message, hint=hint, context={"op_id": journal.op_id})
