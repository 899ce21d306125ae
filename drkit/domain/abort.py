"""Aborting an operation, and telling a live hold from a dead one. Pure.

**Point of no return.** An operation can be rolled back until the target's images are promoted
(step ``promote-target``): before it, the source's images were at most demoted and the target
holds only restored objects, so ``standby operation abort ID`` promotes the source's images again
(never forced: refused when the target is primary), starts the app there, smoke-tests it, removes
what was restored on the target and releases the hold. After it, the target may have taken writes:
the abort is refused and names ``standby operation resume ID`` and the failover back instead.

**Live, failed, stale, abandoned.** The placement record names the operation that holds an app.
:func:`judge_hold` reads that operation's journal: *live* when it says ``approved`` or ``running``
(or its abort is running) and its newest time is within the running step's limit plus
:data:`STALE_GRACE`; *stale* when it says so but has not been updated for longer than that (its
process is gone); *failed* when
it says so; *abandoned* when no journal can be read, or it says it ended yet still holds the app.
A failover may take over any hold but a live one, with an acknowledgement naming it.

:func:`next_commands` is the hint of a failed step: what to run next, with the exact commands.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from pydantic import Field

from drkit.domain.model_base import Model
from drkit.domain.operations import Approval, HoldState, Journal, Plan, Rollback, StepRecord, StepSpec

POINT_OF_NO_RETURN = "promote-target"
"""The step after which an operation can no longer be rolled back (the target's promote)."""
STALE_GRACE = 60.0
"""Seconds added to a step's limit before its silent operation is called stale: a step's last call
(an ``rbd`` or apiserver call) may outlast the deadline by its own timeout."""
ABORT_STEPS = ("abort-promote-source", "abort-start-source", "abort-smoke-source", "abort-tidy-target")
"""The rollback steps, in the order they run (the last only when volumes were restored on the target)."""


class AbortPlan(Model):
    """What an abort of one operation would do, or why it is refused."""

    op_id: str = Field(..., description="the operation to abort")
    app: str = Field(..., description="its app")
    kind: str = Field(..., description="its kind")
    source: str = Field(..., description="where the app goes back to")
    target: str = Field(..., description="where the operation was moving it")
    refusal: str = Field("", description="why the abort is refused; empty when it may run")
    nothing_to_do: str = Field("", description="set when the operation is already aborted")
    steps: tuple[StepSpec, ...] = Field((), description="the rollback steps")


def last_update(journal: Journal) -> datetime:
    """The newest time written in ``journal`` (its approval's excepted: another clock wrote it)."""
    times = [journal.created_at, journal.finished_at]
    for record in (*journal.steps, *(journal.abort.steps if journal.abort else ())):
        times += [record.started_at, record.ended_at]
    if journal.abort is not None:
        times += [journal.abort.started_at, journal.abort.finished_at]
    return max(t for t in times if t is not None)


def _running(records: tuple[StepRecord, ...]) -> str:
    return next((r.name for r in records if r.outcome == "running"), "")


def judge_hold(
    op_id: str, kind: str, journal: Journal | None, now: datetime, limit: Callable[[str], float]
) -> HoldState:
    """The state of operation ``op_id`` holding an app, from its journal (None: none readable).

    ``limit(step)`` is a step's time limit in seconds (``""``: between steps).
    """
    if journal is None:
        return HoldState(
            op_id=op_id, kind=kind, state="abandoned", detail="no journal in any reachable store"
        )
    aborting = journal.abort is not None and journal.abort.status == "running"
    if journal.status in ("approved", "running") or aborting:
        step = _running(journal.abort.steps) if aborting and journal.abort else _running(journal.steps)
        age = (now - last_update(journal)).total_seconds()
        allowed = limit(step) + STALE_GRACE
        where = f"step {step}" if step else "between steps"
        detail = f"{'abort ' if aborting else ''}{where}, updated {age:.0f}s ago, stale after {allowed:.0f}s"
        return HoldState(
            op_id=op_id, kind=journal.kind, state="live" if age <= allowed else "stale", detail=detail
        )
    if journal.status == "failed":
        failed = next((r.name for r in journal.steps if r.outcome == "failed"), "")
        return HoldState(
            op_id=op_id,
            kind=journal.kind,
            state="failed",
            detail=f"failed at step {failed}" if failed else "failed",
        )
    return HoldState(
        op_id=op_id,
        kind=journal.kind,
        state="abandoned",
        detail=f"its journal says {journal.status}, yet it holds the app",
    )


def _index(plan: Plan, step: str) -> int:
    names = [s.name for s in plan.steps]
    return names.index(step) if step in names else len(names)


def _before_point(plan: Plan, step: str) -> bool:
    names = [s.name for s in plan.steps]
    return POINT_OF_NO_RETURN in names and _index(plan, step) < names.index(POINT_OF_NO_RETURN)


def next_commands(plan: Plan, op_id: str, step: str) -> str:
    """The hint of a failed step of ``op_id``: the exact commands that lead out."""
    resume, abort = f"standby operation resume {op_id}", f"standby operation abort {op_id}"
    back = f"standby failover --app {plan.app} --to {plan.source} --take-over {op_id}"
    if plan.kind == "drill":
        return (
            f"run the cleanup again: standby drill cleanup --app {plan.app} (or: {abort}); if {plan.source}"
            f" is lost: standby failover --app {plan.app} --to {plan.target} --take-over {op_id}"
        )
    if _before_point(plan, step):
        return f"fix what the error names, then: {resume}; or roll back to {plan.source}: {abort}"
    if step == POINT_OF_NO_RETURN:
        lost = f"if {plan.source} is lost: standby failover --app {plan.app} --to {plan.target} --take-over {op_id}"
        if plan.kind in ("relocate", "failback"):
            return (
                f"the plain promote stalled: the target never got the demotion snapshot; {resume}; or, while"
                f" {plan.target} is not primary, roll back: {abort}; {lost}"
            )
        return f"fix what the error names, then: {resume}; or, while {plan.target} is not primary: {abort}"
    return f"past the point of no return ({plan.target} promoted): fix, then {resume}; or go back: {back}"


def past_point(journal: Journal) -> str:
    """The step at or after the point of no return that is done, or ``''``."""
    names = [s.name for s in journal.steps]
    if POINT_OF_NO_RETURN not in names:
        return ""
    after = journal.steps[names.index(POINT_OF_NO_RETURN) :]
    return next((r.name for r in after if r.outcome in ("done", "skipped")), "")


def abort_refusal(journal: Journal, target_primary: bool | None) -> str:
    """Why ``journal``'s operation cannot be rolled back, or ``''``.

    ``target_primary``: whether any of the app's images is primary on the target (None: unknown).
    """
    op, app = journal.op_id, journal.app
    resume = f"standby operation resume {op}"
    back = f"standby failover --app {app} --to {journal.source} --take-over {op}"
    if journal.status == "completed":
        return (
            f"{journal.kind} {op} of {app} completed: there is nothing to roll back; to move the app back:"
            f" standby relocate --app {app} --to {journal.source}"
        )
    if journal.taken_over_by:
        return f"{journal.kind} {op} of {app} was taken over by {journal.taken_over_by}: abort or resume that one"
    done = past_point(journal)
    if done or target_primary:
        why = f"step {done} is done" if done else f"{journal.target}'s images are primary"
        return (
            f"{journal.kind} {op} of {app} is past its point of no return ({why}): rolling back could lose"
            f" writes made on {journal.target}; finish it: {resume}; or go back: {back}"
        )
    started = (
        journal.step(POINT_OF_NO_RETURN).outcome != "pending"
        if POINT_OF_NO_RETURN in {s.name for s in journal.steps}
        else False
    )
    if started and target_primary is None:
        return (
            f"{journal.kind} {op} of {app}: its promote on {journal.target} started and {journal.target} does"
            f" not answer, so whether it is primary is unknown; abort again once it answers, or: {resume}"
        )
    return ""


def rollback_steps(journal: Journal) -> tuple[StepSpec, ...]:
    """The rollback of ``journal``'s operation, in order (each observes first: a step with nothing to
    undo is skipped)."""
    source, target = journal.source, journal.target
    steps = [
        StepSpec(
            name="abort-promote-source", title="promote the source's images again (never forced)", site=source
        ),
        StepSpec(
            name="abort-start-source", title="start the app on the source, wait until writable", site=source
        ),
        StepSpec(name="abort-smoke-source", title="smoke test on the source", site=source),
    ]
    names = {s.name: s.outcome for s in journal.steps}
    if names.get("restore-volumes", "pending") != "pending":
        steps.append(
            StepSpec(
                name="abort-tidy-target",
                title="remove what was restored on the target (image kept)",
                site=target,
            )
        )
    return tuple(steps)


def new_rollback(steps: tuple[StepSpec, ...], approval: Approval, now: datetime) -> Rollback:
    """The abort record of an operation, every step pending."""
    records = tuple(StepRecord(name=s.name, title=s.title, site=s.site) for s in steps)
    return Rollback(approval=approval, started_at=now, steps=records)


def check_abort_approval(app: str, approval: Approval, typed_app: str) -> list[str]:
    """Why an abort's approval is not enough; empty when it is (the same typed form as operations)."""
    out = []
    if typed_app != app:
        out.append(f"type the app's name ({app!r}) to confirm; got {typed_app!r}")
    if not approval.approver.strip():
        out.append("name the approver")
    if not approval.reason.strip():
        out.append("give a reason")
    return out


def progress(journal: Journal) -> int:
    """How far ``journal`` got (steps and abort steps finished, an end recorded): the newest copy of a
    journal found in several stores is the one that got furthest."""
    steps = (*journal.steps, *(journal.abort.steps if journal.abort else ()))
    ended = journal.status in ("completed", "aborted") or journal.taken_over_by is not None
    return sum(s.outcome in ("done", "skipped") for s in steps) + int(ended)
