"""Resuming an operation: the plan made again, and whether it is still the plan that was approved. Pure.

``standby operation resume ID`` does not run the stored plan as written: it observes both sites
again, makes the plan again for the same kind, app, source and target (the journal's), and
compares it with the stored one (:func:`resume_changes`). It proceeds only when what is left to do
is the same; otherwise the approver sees both plans and approves again (or the resume stops).

**Which steps are "left".** A step recorded ``done`` acted and finished: it is kept, and is not
compared (a later world cannot undo it, and re-running a step such as the final backup would be
wrong). Every other step is *remaining* and compared: ``pending`` ones, the ``running`` or
``failed`` one (it may have acted part-way; it observes again before acting), and ``skipped``
ones: a skipped step changed nothing, its goal held when it was observed, and whether it still
holds is a fact of the world then, not now (a failover's fence of a source that was unreachable
is skipped; when that source answers again the fence is owed, and the plan says so).

**Equal** means, for the remaining steps in order: the same names, sites and forcing (a promote
forced or not); while the fence remains, the same sites that cannot be fenced; the same
acknowledgements owed by what remains (data loss while the forced promote remains, an unfenced
old primary while the fence remains); while a step that reads the backup remains, the same backup.
The data at risk (the lag) may move, as after an approval.

**Which guards are judged.** Guards about the world the operation starts from (one primary,
mirroring healthy, the lag, the record agreeing with the sites, no split-brain, the survivor
primary for a failback) describe a world the operation itself moves away from: they are judged
while nothing has changed yet (no step but the ones in :data:`CHANGES_NOTHING` done, running or
failed), and no longer after. The others are judged at every resume: the hold (this operation's
own passes), the sites reachable, the target's store, and, while a step that reads the backup
remains, the backup readable and the key opening it. A guard that fails stops the resume before
anything changes, naming the guard and the way back (:func:`way_back`).
"""

from __future__ import annotations

from collections.abc import Collection

from drkit.domain.abort import POINT_OF_NO_RETURN, past_point
from drkit.domain.operations import Check, Journal, Plan, StepSpec

CHANGES_NOTHING = frozenset({"final-backup", "wait-inflight-sync"})
"""Steps that change neither the app, its images nor the placement: an operation that did only
these has not moved the world from where its guards judged it."""
STARTING_STATE_GUARDS = frozenset(
    {"exactly one primary", "mirroring healthy", "lag", "record agrees with the sites", "no split-brain"}
)
"""Guards on the world an operation starts from (plus a failback's ``<survivor> is primary``)."""
READS_BACKUP = frozenset({"restore-volumes", "start-target"})
"""Steps that read the backup the plan restores (the volumes' objects, then the workload)."""
BACKUP_GUARDS = frozenset({"backup readable from the target", "backup key opens the backup"})
"""Guards about that backup: judged while a step that reads it remains."""


def done_steps(journal: Journal) -> frozenset[str]:
    """The steps of ``journal`` that acted and finished (``done``): kept by a resume, not compared."""
    return frozenset(r.name for r in journal.steps if r.outcome == "done")


def moved(journal: Journal) -> bool:
    """Whether the operation may have changed the world: a step outside :data:`CHANGES_NOTHING`
    is done, running or failed."""
    return any(
        r.outcome in ("done", "running", "failed") and r.name not in CHANGES_NOTHING for r in journal.steps
    )


def _starting_state(check: Check) -> bool:
    return check.name in STARTING_STATE_GUARDS or check.name.endswith(" is primary")


def resume_refusals(journal: Journal, now: Plan) -> list[Check]:
    """The guards of ``now`` (the plan made again) that fail and are judged at this resume."""
    started = moved(journal)
    done = done_steps(journal)
    reads_backup = any(s.name in READS_BACKUP and s.name not in done for s in journal.plan.steps)
    out = []
    for check in now.refusals:
        if started and _starting_state(check):
            continue
        if check.name in BACKUP_GUARDS and not reads_backup:
            continue
        out.append(check)
    return out


def _remaining(plan: Plan, done: Collection[str]) -> list[StepSpec]:
    return [s for s in plan.steps if s.name not in done]


def _names(steps: list[StepSpec]) -> str:
    return ", ".join(f"{s.name} on {s.site}" for s in steps) or "none"


def _unfenced_sites(plan: Plan) -> list[str]:
    """The sites that cannot be fenced (each entry reads ``<site> (<why>)``; the why may vary)."""
    return sorted(u.split(" ", 1)[0] for u in plan.unfenced)


def resume_changes(stored: Plan, now: Plan, done: Collection[str]) -> list[str]:
    """What differs between ``stored`` (the plan approved) and ``now`` (made again at a resume) in
    what is left to do, given the steps ``done``; empty when the resume may proceed as approved.

    See the module docstring for what "equal" means.
    """
    out: list[str] = []
    for label, attr in (("source", "source"), ("target", "target")):
        if getattr(stored, attr) != getattr(now, attr):
            out.append(f"{label}: {getattr(stored, attr)} -> {getattr(now, attr)}")
    kept = {s.name: s for s in stored.steps if s.name in done}
    again = {s.name: s for s in now.steps}
    for name, spec in kept.items():
        if name not in again or (again[name].site, again[name].force) != (spec.site, spec.force):
            out.append(f"step {name}, done, is not in the new plan as it was done")
    before, after = _remaining(stored, done), _remaining(now, done)
    if [(s.name, s.site, s.force) for s in before] != [(s.name, s.site, s.force) for s in after]:
        was = {s.name: s for s in before}
        detail = [
            f"{s.name} is now forced" for s in after if s.force and not (s.name in was and was[s.name].force)
        ]
        detail += [
            f"{s.name} is no longer forced"
            for s in before
            if s.force and not (s.name in again and again[s.name].force)
        ]
        if detail:
            out.append(f"remaining steps changed: {'; '.join(detail)}")
        else:
            out.append(f"remaining steps changed: {_names(before)} -> {_names(after)}")
    remaining = {s.name for s in before} | {s.name for s in after}
    if "fence-source" in remaining:
        if _unfenced_sites(stored) != _unfenced_sites(now):
            out.append(
                f"cannot be fenced: {', '.join(_unfenced_sites(stored)) or 'nothing'} ->"
                f" {', '.join(_unfenced_sites(now)) or 'nothing'}"
            )
        if stored.needs_unfenced_ack != now.needs_unfenced_ack:
            out.append(
                f"unfenced acknowledgement: {'needed' if now.needs_unfenced_ack else 'no longer needed'}"
            )
    if POINT_OF_NO_RETURN in remaining:
        if stored.forced != now.forced:
            out.append(
                f"forced: {'; '.join(stored.forced) or 'nothing'} -> {'; '.join(now.forced) or 'nothing'}"
            )
        if stored.needs_data_loss_ack != now.needs_data_loss_ack:
            out.append(
                f"data-loss acknowledgement: {'needed' if now.needs_data_loss_ack else 'no longer needed'}"
            )
    if remaining & READS_BACKUP and not stored.final_backup and stored.backup_run != now.backup_run:
        out.append(f"backup to restore: {stored.backup_run} -> {now.backup_run}")
    return out


def way_back(journal: Journal) -> str:
    """The ways out of ``journal``'s hold other than resuming it: the abort before the point of no
    return, a failover taking the hold over (to the target, or back to the source past that point)."""
    op, app, plan = journal.op_id, journal.app, journal.plan
    over = f"standby failover --app {app} --to {{}} --take-over {op}"
    if past_point(journal):
        return (
            f"past the point of no return, fail over taking over its hold: {over.format(plan.target)}"
            f" (or back: {over.format(plan.source)})"
        )
    return f"roll it back to {plan.source}: standby operation abort {op}; or, if {plan.source} is lost: {over.format(plan.target)}"


def refused_hint(journal: Journal) -> str:
    """The hint of a resume refused by a failed guard."""
    return (
        f"nothing was changed; fix what the guard names, then: standby operation resume {journal.op_id};"
        f" or {way_back(journal)}"
    )


def rebased_steps(journal: Journal, now: Plan) -> list[tuple[StepSpec, bool]]:
    """The steps of ``now`` (a changed plan approved at a resume), each with whether it is kept as
    done: a step ``done`` under the stored plan with the same site and forcing stays done; every
    other step runs (observing first: a goal that holds is recorded ``skipped``)."""
    done = {r.name for r in journal.steps if r.outcome == "done"}
    stored = {s.name: s for s in journal.plan.steps}
    return [
        (
            s,
            s.name in done
            and s.name in stored
            and (stored[s.name].site, stored[s.name].force) == (s.site, s.force),
        )
        for s in now.steps
    ]
