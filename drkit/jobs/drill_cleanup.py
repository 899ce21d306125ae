"""``drill-cleanup``: return the secondary to a healthy replica after a drill (the last unfinished
drill's cleanup steps, or a fresh cleanup that undoes either mode's drill); safe to run again."""

from __future__ import annotations

import secrets

from drkit.domain import crypto
from drkit.domain.drill import CLEANUP_STEPS, Availability, drill_mode, make_drill_plan
from drkit.domain.errors import StandbyError
from drkit.domain.operations import Journal, new_journal, new_op_id
from drkit.domain.placement import released
from drkit.jobs.drill import SCHEDULED, _phase, finish_drill, prepare_drill
from drkit.jobs.operations import Executor, StepCallback, Timeouts, list_journals, write_journal
from drkit.jobs.world import World, read_placement, update_placement


def drill_cleanup(
    world: World,
    app_name: str,
    *,
    key: crypto.MasterKey | None,
    timeouts: Timeouts | None = None,
    on_step: StepCallback | None = None,
) -> Journal:
    """Run the cleanup of the app's last unfinished drill, or a fresh cleanup; idempotent.

    Every cleanup step observes first, so on a clean secondary nothing is done. An interrupted
    drill gets its running step marked failed ("interrupted"), its cleanup, and its report. Raises a
    :class:`StandbyError` naming the step when the secondary cannot be made a healthy replica.
    """
    app = world.config.app(app_name)
    world.use_key(key)  # the placement and the journals are checked with it
    record = read_placement(world, app).record
    unfinished = [
        j
        for j in list_journals(world, app.name)
        if j.kind == "drill"
        and (j.status not in ("completed", "failed", "refused") or record.operation == j.op_id)
    ]
    now = world.clock.now()
    interrupted = ""
    if unfinished:
        journal = unfinished[-1]
        for step in journal.steps:
            if step.outcome == "running":
                interrupted = interrupted or step.name
                journal = journal.with_step(
                    step.model_copy(
                        update={
                            "outcome": "failed",
                            "ended_at": now,
                            "error": "interrupted: the drill's process stopped",
                        }
                    )
                )
    else:  # a fresh cleanup undoes either mode's drill: every cleanup step observes first
        prepared = prepare_drill(world, app.name, "isolated")
        both = list(prepared.plan.steps)
        if (
            not prepared.facts.drill_scratch
        ):  # an app whose driver starts the drill's copy has no promote mode
            both += make_drill_plan(app, prepared.facts, "promote").steps
        named = {s.name: s for s in both if s.name in CLEANUP_STEPS}
        plan = prepared.plan.model_copy(
            update={"steps": tuple(named[n] for n in CLEANUP_STEPS if n in named), "checks": ()}
        )
        journal = new_journal(new_op_id("drill", now, secrets.token_bytes(3)), plan, now).model_copy(
            update={
                "status": "approved",
                "approval": SCHEDULED.model_copy(update={"reason": "drill cleanup", "at": now}),
            }
        )
    write_journal(world, journal)
    if record.operation not in (None, journal.op_id):
        raise StandbyError(
            f"app {app.name} is held by {record.operation_kind} {record.operation}; cleanup refused",
            hint=f"resume that operation first: standby operation resume {record.operation}, or roll"
            f" it back: standby operation abort {record.operation}",
        )
    ex = Executor(world, journal, key, timeouts, None, on_step or (lambda j, r: None))
    error = _phase(ex, [n for n in ex.pending() if n in CLEANUP_STEPS])
    if error:
        raise StandbyError(
            error,
            hint=f"fix what it names and run the drill cleanup again: standby drill cleanup"
            f" --app {app.name}; the drill {journal.op_id} holds the app until then; if"
            f" {journal.source} is lost: standby failover --app {app.name} --to {journal.target}"
            f" --take-over {journal.op_id}",
        )
    if unfinished:
        failed = next((s for s in ex.journal.steps if s.outcome == "failed"), None)
        why = f"step {failed.name} failed: {failed.error}" if failed else ""
        if interrupted:
            why = f"interrupted at step {interrupted}: the drill's process stopped; drill-cleanup finished it"
        mode = drill_mode(ex.journal.steps)
        return finish_drill(
            world, ex, app, mode, Availability(), why, cleaned=True, interrupted=interrupted
        ).journal
    now = world.clock.now()
    update_placement(world, app, lambda p: released(p, journal.op_id, now), required=journal.source)
    done = ex.journal.model_copy(update={"status": "completed", "finished_at": now})
    write_journal(world, done)
    return done
