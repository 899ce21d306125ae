"""``standby operation abort ID``: roll an operation back to its source, up to the point of no return.

1. :func:`plan_abort` reads the journal and the placement, asks the target whether its images are
   primary, and says what the abort would do, or why it is refused (the rules are in
   :mod:`drkit.domain.abort`): past the target's promote, a live operation, another holder.
2. :func:`abort_operation` checks the typed approval, records the abort in the operation's own
   journal (``abort``: its approval, steps and outcome; rewritten after each step), then runs the
   rollback: promote the source's images again (never forced: refused if the target became
   primary meanwhile), start the app on the source (from the workload object the stop step kept,
   else from the backup), smoke test, remove what was restored on the target; then it releases
   the hold and marks the operation ``aborted``.

Every step observes first, so re-running an abort after a kill converges: what is done is skipped.
A drill is aborted by its cleanup (:func:`drkit.jobs.drill_cleanup.drill_cleanup`), which also releases it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from drkit.domain import crypto
from drkit.domain.abort import (
    AbortPlan,
    abort_refusal,
    check_abort_approval,
    judge_hold,
    new_rollback,
    rollback_steps,
)
from drkit.domain.drill import CLEANUP_STEPS
from drkit.domain.errors import (
    CommandFailed,
    Conflict,
    OperationFailed,
    PreconditionFailed,
    StandbyError,
    TransientError,
)
from drkit.domain.operations import Approval, Journal, Rollback, StepRecord, StepSpec
from drkit.domain.placement import begin, released
from drkit.jobs.operations import StepCallback, Timeouts, read_journal, write_journal
from drkit.jobs.steps import (
    Promote,
    Run,
    Seen,
    Smoke,
    StartApp,
    TidySource,
    kept_path,
    kept_path_of,
    kept_workload,
    new_run,
)
from drkit.jobs.world import World, read_placement, update_placement


def _target_primary(world: World, journal: Journal) -> bool | None:
    """Whether any of the app's images is primary on the target (None: the target does not answer)."""
    app = world.config.app(journal.app)
    try:
        control = world.volumes(app, journal.target)
        return any(control.role(v) == "primary" for v in app.volumes)
    except StandbyError:
        return None


def plan_abort(world: World, op_id: str, *, timeouts: Timeouts | None = None) -> tuple[AbortPlan, Journal]:
    """What aborting ``op_id`` would do, or why it is refused (nothing changes)."""
    journal = read_journal(world, op_id)
    base = {
        "op_id": op_id,
        "app": journal.app,
        "kind": journal.kind,
        "source": journal.source,
        "target": journal.target,
    }
    if journal.status == "aborted":
        return AbortPlan(**base, nothing_to_do=f"{op_id} was aborted already"), journal
    app = world.config.app(journal.app)
    record = read_placement(world, app).record
    refusal = ""
    if record.operation not in (None, op_id):
        refusal = (
            f"app {journal.app} is held by {record.operation_kind} {record.operation}, not by {op_id}:"
            f" abort that one instead (standby operation abort {record.operation})"
        )
    elif (
        journal.abort is None
    ):  # a running abort was already judged; only the operation's own liveness matters
        limits = timeouts or Timeouts()
        hold = judge_hold(
            op_id,
            journal.kind,
            journal,
            world.clock.now(),
            lambda step: limits.of(step) if step else limits.default,
        )
        if hold.state == "live":
            refusal = (
                f"{journal.kind} {op_id} of {journal.app} is live ({hold.detail}): it may still be acting;"
                " wait until it fails or goes stale, then abort it"
            )
    if journal.kind == "drill":  # its cleanup is its rollback
        steps = tuple(
            StepSpec(name=s.name, title=s.title, site=s.site)
            for s in journal.plan.steps
            if s.name in CLEANUP_STEPS
        )
        return AbortPlan(**base, refusal=refusal, steps=() if refusal else steps), journal
    refusal = refusal or abort_refusal(journal, _target_primary(world, journal))
    steps = (
        tuple(StepSpec(name=r.name, title=r.title, site=r.site) for r in journal.abort.steps)
        if journal.abort
        else rollback_steps(journal)
    )
    return AbortPlan(**base, refusal=refusal, steps=() if refusal else steps), journal


# ------------------------------------------------------------------------------------------ steps


class _PromoteSource(Promote):
    """Promote the source's images again, never forced; refused when the target is primary."""

    def act(self, run: Run, spec: StepSpec, seen: Seen) -> None:
        target = run.other(spec.site)
        control = run.world.volumes(run.app, target)
        primary = [v.image for v in run.app.volumes if control.role(v) == "primary"]
        if primary:
            raise PreconditionFailed(
                f"abort of {run.op_id}: {', '.join(primary)} primary on {target}: the target was promoted, the"
                f" source {spec.site} is not promoted again (two primaries)",
                hint=f"finish the operation: standby operation resume {run.op_id}",
            )
        super().act(run, spec.model_copy(update={"force": False}), seen)


class _StartSource(StartApp):
    """Start the app on the source: its workload object as the stop step kept it, else from the backup."""

    def __init__(self, journal: Journal) -> None:
        self.journal = journal

    def _kept(self, site: str) -> dict[str, Any] | None:
        for record in self.journal.steps:
            seen = record.observed
            if record.name == "fence-source":
                seen = seen.get("stop") or {}
            if record.site == site and record.name in ("stop-source", "fence-source") and seen.get("kept"):
                return dict(seen["kept"])
        return None

    def act(self, run: Run, spec: StepSpec, seen: Seen) -> None:
        kept = self._kept(spec.site)
        if seen["workload"] or kept is None:
            super().act(run, spec, seen)
            return
        obj = kept_workload(kept, run.key, kept_path(run, spec.site))
        try:
            run.world.bundle(spec.site).cluster.create(obj)
        except Conflict:
            pass  # created meanwhile: the next poll sees it


class _TidyTarget(TidySource):
    """Remove the app's PVC, PV and VolumeReplication restored on the target (Retain: the image is
    kept); a target that does not answer is recorded and left (the objects are harmless there)."""

    def __init__(self) -> None:
        super().__init__(routing=False)

    def observe(self, run: Run, spec: StepSpec) -> Seen:
        try:
            return super().observe(run, spec)
        except (TransientError, CommandFailed) as error:
            return {"left": [], "unreachable": str(error)[:200]}


def _steps(journal: Journal) -> dict[str, Any]:
    return {
        "abort-promote-source": _PromoteSource(),
        "abort-start-source": _StartSource(journal),
        "abort-smoke-source": Smoke(),
        "abort-tidy-target": _TidyTarget(),
    }


# ---------------------------------------------------------------------------------------- running


def _write(world: World, journal: Journal) -> None:
    write_journal(world, journal, required=journal.source)


def _run(run: Run, journal: Journal, name: str, timeouts: Timeouts, on_step: StepCallback) -> Journal:
    """One rollback step: observe; if not satisfied, act and poll until it is (bounded)."""
    assert journal.abort is not None
    world, rollback = run.world, journal.abort
    record = next(r for r in rollback.steps if r.name == name)
    spec = StepSpec(name=record.name, title=record.title, site=record.site)
    step = _steps(journal)[name]

    def put(rec: StepRecord, status: str = "running") -> Journal:
        ab = rollback.with_step(rec).model_copy(update={"status": status})
        j = journal.model_copy(update={"abort": ab})
        _write(world, j)
        on_step(j, rec)
        return j

    seen = step.observe(run, spec)
    now = world.clock.now()
    if step.satisfied(seen):
        return put(
            record.model_copy(
                update={"outcome": "skipped", "started_at": now, "ended_at": now, "observed": seen}
            )
        )
    record = record.model_copy(
        update={"outcome": "running", "started_at": now, "ended_at": None, "error": ""}
    )
    journal = put(record)
    rollback = journal.abort or rollback
    limit = timeouts.of(name)
    deadline, last = world.clock.monotonic() + limit, ""
    while True:
        try:
            step.act(run, spec, seen)
            seen = step.observe(run, spec)
            if step.satisfied(seen):
                break
        except (TransientError, CommandFailed) as error:
            last = str(error)
        if world.clock.monotonic() >= deadline:
            raise _Failed(
                record.model_copy(update={"observed": seen}),
                f"not done after {limit:.0f}s" + (f"; last error: {last}" if last else ""),
            )
        world.clock.sleep(timeouts.poll)
    return put(record.model_copy(update={"outcome": "done", "ended_at": world.clock.now(), "observed": seen}))


class _Failed(Exception):
    def __init__(self, record: StepRecord, why: str) -> None:
        super().__init__(why)
        self.record, self.why = record, why


def _failed(world: World, journal: Journal, record: StepRecord, why: str) -> OperationFailed:
    assert journal.abort is not None
    now = world.clock.now()
    record = record.model_copy(update={"outcome": "failed", "ended_at": now, "error": why})
    message = f"abort of {journal.kind} {journal.op_id} of {journal.app}: step {record.name} on {record.site} failed: {why}"
    ab = journal.abort.with_step(record).model_copy(
        update={"status": "failed", "error": message, "finished_at": now}
    )
    try:
        _write(world, journal.model_copy(update={"abort": ab}))
    except StandbyError as error:
        message += f" (and the journal could not be written: {error.message})"
    return OperationFailed(
        message,
        hint=f"fix what it names, then run the abort again: standby operation abort {journal.op_id}; if"
        f" {journal.source} is lost: standby failover --app {journal.app} --to {journal.target}"
        f" --take-over {journal.op_id}",
        context={"op_id": journal.op_id},
    )


def _try_the_key(journal: Journal, key: crypto.MasterKey | None) -> None:
    """Refuse before any change when the abort could not start the app again: the workload object the
    stop step kept is sealed, and ``key`` does not open it (a trial decryption)."""
    if journal.kind == "drill":
        return
    kept = _StartSource(journal)._kept(journal.source)
    if kept is None:
        return
    try:
        kept_workload(kept, key, kept_path_of(journal.app, journal.op_id, journal.source))
    except StandbyError as error:
        raise PreconditionFailed(
            f"abort of {journal.op_id} refused, nothing changed: the app could not be started again on"
            f" {journal.source}: {error.message}",
            hint=f"give the master key whose id is {kept.get('key_id')} and run the abort again",
            context={"op_id": journal.op_id, "site": journal.source},
        ) from None


def abort_operation(
    world: World,
    op_id: str,
    approval: Approval,
    typed_app: str,
    *,
    key: crypto.MasterKey | None,
    timeouts: Timeouts | None = None,
    on_step: StepCallback | None = None,
    drill_cleanup: Callable[..., Journal] | None = None,
) -> Journal:
    """Abort ``op_id`` (see the module docstring); the final journal says ``aborted``.

    :class:`PreconditionFailed` when refused (nothing changed); :class:`OperationFailed` when a
    rollback step failed (the abort is recorded; run it again).
    """
    timeouts = timeouts or Timeouts()
    callback: StepCallback = on_step or (lambda j, r: None)
    world.use_key(key)  # the journal and the placement are checked with it: a forged journal is refused
    plan, journal = plan_abort(world, op_id, timeouts=timeouts)
    if plan.nothing_to_do:
        return journal
    if plan.refusal:
        raise PreconditionFailed(plan.refusal, hint=f"see: standby operation show {op_id}")
    problems = check_abort_approval(journal.app, approval, typed_app)
    if problems:
        raise PreconditionFailed(f"approval of the abort of {op_id} refused: " + "; ".join(problems))
    _try_the_key(journal, key)
    if journal.kind == "drill":
        if drill_cleanup is None:
            from drkit.jobs.drill_cleanup import drill_cleanup as cleanup
        else:
            cleanup = drill_cleanup
        return cleanup(world, journal.app, key=key, timeouts=timeouts, on_step=callback)
    app = world.config.app(journal.app)
    now = world.clock.now()
    rollback: Rollback = journal.abort or new_rollback(plan.steps, approval, now)
    journal = journal.model_copy(
        update={"abort": rollback.model_copy(update={"status": "running", "error": ""})}
    )
    if journal.status in ("approved", "running"):
        journal = journal.model_copy(
            update={"status": "failed", "error": journal.error or "stopped by an abort"}
        )
    _write(world, journal)
    record = read_placement(world, app).record
    if record.operation is None:  # hold the app while rolling back (an earlier abort may have released it)
        update_placement(world, app, lambda p: begin(p, op_id, journal.kind, now), required=journal.source)
    elif record.operation != op_id:
        raise Conflict(f"app {app.name} is held by {record.operation}; the abort of {op_id} stops")
    run = new_run(world, app, journal.plan, op_id, key, backup_run=journal.plan.backup_run)
    for name in [r.name for r in rollback.steps if r.outcome not in ("done", "skipped")]:
        try:
            journal = _run(run, journal, name, timeouts, callback)
        except _Failed as failed:
            raise _failed(world, journal, failed.record, failed.why) from None
        except StandbyError as error:
            assert journal.abort is not None
            current = next(r for r in journal.abort.steps if r.name == name)
            raise _failed(world, journal, current, str(error)) from None
    now = world.clock.now()
    update_placement(world, app, lambda p: released(p, op_id, now), required=journal.source)
    assert journal.abort is not None
    done = journal.model_copy(
        update={
            "status": "aborted",
            "finished_at": now,
            "abort": journal.abort.model_copy(update={"status": "completed", "finished_at": now}),
        }
    )
    _write(world, done)
    return done
