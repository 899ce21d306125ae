"""Resume an operation: observe and plan again, approve again when the plan changed, execute what is
left (:func:`resume`).
"""

from __future__ import annotations

from drkit.domain import crypto
from drkit.domain.errors import (
    Conflict,
    PreconditionFailed,
)
from drkit.domain.operations import (
    Approval,
    Journal,
    Plan,
    Reapproval,
    StepRecord,
    check_approval,
)
from drkit.domain.placement import begin
from drkit.domain.resume import (
    done_steps,
    rebased_steps,
    refused_hint,
    resume_changes,
    resume_refusals,
    way_back,
)
from drkit.jobs.operations.execute import StepCallback, execute
from drkit.jobs.operations.journal import read_journal, write_journal
from drkit.jobs.operations.planning import prepare_resume
from drkit.jobs.operations.runbook import REAPPROVALS, Changed, OperationHooks
from drkit.jobs.operations.timeouts import Timeouts
from drkit.jobs.steps import RoutingHook
from drkit.jobs.world import (
    World,
    read_placement,
    update_placement,
)


def resume(
    world: World,
    op_id: str,
    *,
    key: crypto.MasterKey | None,
    timeouts: Timeouts | None = None,
    routing_hook: RoutingHook | None = None,
    on_step: StepCallback | None = None,
    hooks: OperationHooks | None = None,
) -> Journal:
    """Observe again, plan again, and execute what is left of operation ``op_id`` when it is still
    the plan that was approved.

    1. Read the journal (refused when the operation completed, was taken over or aborted).
    2. Observe both sites and plan again (:func:`prepare_resume`; nothing changes). Refused when
       another operation holds the app, or when a guard judged at a resume fails
       (:func:`drkit.domain.resume.resume_refusals`): nothing changed, the hint names the way back.
    3. When the remaining steps (and what they force, fence and acknowledge) differ from the
       stored ones (:func:`drkit.domain.resume.resume_changes`), ask for the approval again with
       both plans shown (``hooks.consent(plan, changed)``; no ``hooks``: refused), observe and plan
       again after it, as :func:`run_operation` does; the journal then takes the new plan, keeping
       the steps done that it does the same way.
    4. Take the hold back when it was released, and execute the steps not done.
    """
    world.use_key(key)  # the journal and the placement are checked with it
    journal = read_journal(world, op_id)
    if journal.status == "completed":
        return journal
    if journal.taken_over_by or journal.abort is not None:
        why = (
            f"was taken over by {journal.taken_over_by}"
            if journal.taken_over_by
            else "is being or was aborted"
        )
        raise PreconditionFailed(
            f"operation {op_id} of {journal.app} {why}: it cannot resume",
            hint=f"see: standby operation list --app {journal.app}"
            + ("" if journal.taken_over_by else f"; finish the abort: standby operation abort {op_id}"),
        )
    if journal.kind == "drill":
        raise PreconditionFailed(
            f"drill {op_id} of {journal.app} is not resumed: its cleanup finishes it",
            hint=f"run: standby drill cleanup --app {journal.app}",
        )
    if journal.approval is None or journal.status == "refused":
        why = "was refused" if journal.status == "refused" else "was never approved"
        raise PreconditionFailed(
            f"operation {op_id} of {journal.app} {why}: it cannot resume",
            hint=f"start it anew: standby {journal.kind} --app {journal.app}",
        )
    app = world.config.app(journal.app)
    stored = journal
    journal = _replanned(world, journal, key, hooks)
    record = read_placement(world, app).record
    if record.operation not in (None, op_id):
        raise _held_by_other(app.name, record.operation, op_id)
    if record.operation is None:
        now = world.clock.now()
        update_placement(world, app, lambda p: begin(p, op_id, journal.kind, now), required=journal.target)
    if journal is not stored:  # a new plan approved: written before anything runs
        write_journal(world, journal)
    return execute(world, journal, key=key, timeouts=timeouts, routing_hook=routing_hook, on_step=on_step)


def _held_by_other(app: str, holder: str, op_id: str) -> Conflict:
    return Conflict(
        f"app {app} is held by operation {holder}; {op_id} cannot resume",
        hint=f"resume {holder} instead, or roll it back: standby operation abort {holder}",
    )


def _replanned(
    world: World, journal: Journal, key: crypto.MasterKey | None, hooks: OperationHooks | None
) -> Journal:
    """The journal to resume: as stored when the plan made again leaves what remains unchanged;
    else a new journal with the new plan, once it is approved (see :func:`resume`). Raises when
    refused. Writes nothing."""
    done = done_steps(journal)
    approved, consent = journal.plan, None
    changes: tuple[str, ...] = ()
    for _ in range(REAPPROVALS + 1):
        prepared = prepare_resume(world, journal, key=key)
        holder = prepared.placement.record.operation if prepared.placement else None
        if holder not in (None, journal.op_id):
            raise _held_by_other(journal.app, holder, journal.op_id)
        plan = prepared.plan
        refused = resume_refusals(journal, plan)
        if refused:
            raise PreconditionFailed(
                f"resume of {journal.kind} {journal.op_id} of {journal.app} refused, the world having changed: "
                + "; ".join(f"{c.name}: {c.detail}" for c in refused),
                hint=refused_hint(journal),
                context={"op_id": journal.op_id},
            )
        now_changes = resume_changes(approved, plan, done)
        if not now_changes:
            if consent is None:
                if hooks is not None:
                    left = ", ".join(r.name for r in journal.steps if r.name not in done) or "none"
                    hooks.say(
                        f"{journal.op_id}: observed again; what is left is as approved ({left}): resuming"
                    )
                return journal
            return _rebased(world, journal, plan, consent, changes)
        if hooks is None:
            raise PreconditionFailed(
                f"resume of {journal.kind} {journal.op_id} of {journal.app} refused: the plan made again differs"
                f" from the one approved ({'; '.join(now_changes)}); nothing was changed",
                hint=f"approve the new plan: standby operation resume {journal.op_id} (without --yes); or "
                + way_back(journal),
            )
        changed = Changed(
            approved=approved,
            now=plan,
            changes=tuple(now_changes),
            done=tuple(sorted(done)),
            resuming=journal.op_id,
            way_back=way_back(journal),
            headline=f"**The world changed since {journal.op_id} was approved; the plan was made again"
            " and must be approved again before the operation resumes.**",
        )
        consent = hooks.consent(plan, changed)
        problems = check_approval(plan, consent[0], consent[1])
        if problems:
            raise PreconditionFailed(
                f"approval of the new plan of {journal.op_id} refused: " + "; ".join(problems),
                hint=f"nothing was changed; resume again: standby operation resume {journal.op_id}",
            )
        if read_journal(world, journal.op_id, journal.app) != journal:  # an approval may take long
            raise PreconditionFailed(
                f"operation {journal.op_id} of {journal.app} changed while its new plan was being approved (taken"
                " over, aborted or resumed by another run); nothing was changed",
                hint=f"see: standby operation list --app {journal.app}",
            )
        approved, changes = plan, tuple(now_changes)
    raise PreconditionFailed(
        f"resume of {journal.op_id} of {journal.app}: the plan changed after each of {REAPPROVALS} approvals;"
        " nothing was changed",
        hint=f"wait until the sites settle, then: standby operation resume {journal.op_id}",
    )


def _rebased(
    world: World, journal: Journal, plan: Plan, consent: tuple[Approval, str], changes: tuple[str, ...]
) -> Journal:
    """``journal`` with the plan approved at its resume (see :func:`drkit.domain.resume.rebased_steps`);
    :func:`resume` writes it once the app is held, before anything runs."""
    approval, _ = consent
    old = {r.name: r for r in journal.steps}
    steps = tuple(
        old[s.name] if keep else StepRecord(name=s.name, title=s.title, site=s.site)
        for s, keep in rebased_steps(journal, plan)
    )
    earlier = Reapproval(
        at=world.clock.now(), changes=changes, plan_before=journal.plan, approval_before=journal.approval
    )
    return journal.model_copy(
        update={
            "plan": plan,
            "approval": approval,
            "steps": steps,
            "error": "",
            "reapprovals": (*journal.reapprovals, earlier),
        }
    )
