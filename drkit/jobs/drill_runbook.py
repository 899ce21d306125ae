"""The drill's runbook, written once: plan, the typed approval (promote mode), start, run.

:func:`run_drill_runbook` is the sequence the ``drill`` flow and ``standby drill run`` share; each
supplies its :class:`DrillHooks` (as the operations' :class:`~drkit.jobs.operations.OperationHooks`):
the flow wraps the calls in Prefect tasks, pauses for the approval form and publishes artifacts; the
CLI prints the plan and each step and prompts. The steps themselves are :mod:`drkit.jobs.drill`'s.
"""

from __future__ import annotations

from drkit.domain import crypto
from drkit.domain.drill import Mode
from drkit.domain.errors import PreconditionFailed
from drkit.domain.operations import Approval, Journal, Plan, StepRecord
from drkit.jobs.drill import DrillOutcome, approve_drill, prepare_drill, run_drill, start_drill
from drkit.jobs.operations import Changed, Executor, Prepared, Timeouts
from drkit.jobs.world import World


class DrillHooks:
    """What a caller of :func:`run_drill_runbook` adds to the one sequence.

    The defaults run each call directly and show nothing; :meth:`consent` must be given for a
    promote-mode drill (an isolated drill asks no one).
    """

    refusal_hint = "see the drill's plan"
    """The hint of the error raised when the plan refuses the drill."""

    flow_run_url = ""
    """The run's link in the report (the flow's page), when there is one."""

    timeouts: Timeouts | None = None
    """How long each step may take and how often it polls (``None``: the steps' defaults)."""

    def plan(self, world: World, app: str, mode: Mode, key: crypto.MasterKey | None) -> Prepared:
        """Observe and plan the drill (and show the plan); ``key`` is tried on the backup to restore."""
        return prepare_drill(world, app, mode, key=key)

    def replan(self, world: World, app: str, mode: Mode, key: crypto.MasterKey | None) -> Prepared:
        """Observe and plan again after an approval (shown only when it changed: see :meth:`consent`)."""
        return prepare_drill(world, app, mode, key=key)

    def consent(self, plan: Plan, changed: Changed | None = None) -> tuple[Approval, str]:
        """The typed approval of a promote-mode drill and the app name typed; raise to stop.

        ``changed`` is set when the world moved after an earlier approval: both plans are shown.
        """
        raise PreconditionFailed(
            f"promote-mode drill of {plan.app}: no one to ask for the typed approval; nothing was changed",
            hint="run it from the drill flow (it pauses for the form) or `standby drill run --mode promote`",
        )

    def take(self, world: World, prepared: Prepared, approval: Approval | None, typed_app: str) -> Journal:
        """Take the app and write the journal (a refused plan is journaled as refused)."""
        return start_drill(world, prepared, approval, typed_app)

    def approved(self, journal: Journal, approval: Approval) -> None:
        """A promote-mode drill was approved and its journal written."""

    def refused(self, journal: Journal) -> None:
        """The plan refused the drill (journaled as refused, nothing changed); raise to stop otherwise
        than with the runbook's :class:`PreconditionFailed`."""

    def step(self, executor: Executor, name: str) -> object:
        """Run one step."""
        return executor.step(name)

    def on_step(self, journal: Journal, record: StepRecord) -> None:
        """A step started or ended (its journal is written)."""

    def finished(self, outcome: DrillOutcome) -> None:
        """The drill and its cleanup ran, and its report was built (and stored, unless
        ``outcome.store_error`` says why not)."""


def run_drill_runbook(
    world: World, app: str, mode: Mode, key: crypto.MasterKey | None, hooks: DrillHooks
) -> DrillOutcome:
    """Plan, approve (promote mode), start, then run the drill and its cleanup; the drill use case.

    1. ``hooks.plan``: observe and plan (nothing changes).
    2. promote mode only: ``hooks.consent`` (the typed approval), then ``hooks.replan``; a plan that
       changed is put to the approver again (:func:`~drkit.jobs.drill.approve_drill`).
    3. ``hooks.take``: take the app and write the journal; ``hooks.approved`` when it was approved.
    4. A refused plan: ``hooks.refused``, then :class:`PreconditionFailed` (nothing changed).
    5. :func:`~drkit.jobs.drill.run_drill` with ``hooks.step`` and ``hooks.on_step``; then
       ``hooks.finished`` with the outcome, which is returned (passed or not: the caller decides).
    """
    prepared = hooks.plan(world, app, mode, key)
    prepared, approval, typed = approve_drill(prepared, hooks, lambda: hooks.replan(world, app, mode, key))
    journal = hooks.take(world, prepared, approval, typed)
    if approval is not None:
        hooks.approved(journal, approval)
    if journal.status == "refused":
        hooks.refused(journal)
        raise PreconditionFailed(
            f"drill of {app} refused: {journal.error}",
            hint=hooks.refusal_hint,
            context={"app": app, "op_id": journal.op_id},
        )
    outcome = run_drill(
        world,
        journal,
        key=key,
        timeouts=hooks.timeouts,
        step=hooks.step,
        on_step=hooks.on_step,
        flow_run_url=hooks.flow_run_url,
    )
    hooks.finished(outcome)
    return outcome
