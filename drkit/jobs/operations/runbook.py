"""The whole runbook of an operation (plan, approval, execution), shared by the flows and the CLI:
:func:`run_operation`, with the :class:`OperationHooks` each supplies.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from drkit.domain import crypto
from drkit.domain.errors import (
    PreconditionFailed,
    StandbyError,
)
from drkit.domain.operation_plan import plan_changes
from drkit.domain.operations import (
    Approval,
    Journal,
    Kind,
    Plan,
    StepRecord,
)
from drkit.jobs.operations.execute import Executor, approve
from drkit.jobs.operations.planning import Prepared, prepare
from drkit.jobs.requests import OperationRequest
from drkit.jobs.steps import RoutingHook
from drkit.jobs.world import (
    World,
)
from drkit.views.operations import changed_plan_markdown

# ------------------------------------------------------------------------------------------ runbook


class OperationHooks:
    """What a caller of :func:`run_operation` adds to the shared runbook.

    The defaults run each call directly and show nothing; :meth:`consent` must be given. The flows
    wrap the calls in Prefect tasks and pause for the approval form; the CLI prints and prompts.
    """

    refusal_hint = "see the plan"
    """The hint of the error raised when the plan refuses the operation."""

    take_over: str | None = None
    """The operation whose hold a failover is asked to take over (``--take-over``): every plan of the run asks it."""

    def plan(
        self, world: World, app: str, kind: Kind, target: str | None, key: crypto.MasterKey | None
    ) -> Prepared:
        """Observe and plan (and show the plan); ``key`` is tried on the backup to restore."""
        return prepare(world, app, kind, target, key=key, take_over=self.take_over)

    def replan(
        self, world: World, app: str, kind: Kind, target: str | None, key: crypto.MasterKey | None
    ) -> Prepared:
        """Observe and plan again after an approval (shown only when it changed: see :meth:`consent`)."""
        return prepare(world, app, kind, target, key=key, take_over=self.take_over)

    def say(self, message: str) -> None:
        """Tell the operator how the run ended when nothing was executed."""

    def consent(self, plan: Plan, changed: Changed | None = None) -> tuple[Approval, str]:
        """The approval of ``plan`` and the app name the approver typed; raise to stop.

        ``changed`` is set when an approval was given for an earlier plan and the world moved since:
        the approver must see both plans and what differs (:class:`Changed`) before approving again.
        """
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

    1. Load the backup key (``key``): the plan tries it on the backup it will restore.
    2. Observe both sites and plan (:meth:`OperationHooks.plan`); stop when there is nothing to
       do, raise :class:`PreconditionFailed` when the plan refuses, stop after the plan on a dry run.
    3. Ask for the typed approval (:meth:`OperationHooks.consent`), then observe and plan again: the
       approval may have come long after the plan. A plan that changed is approved again, with both
       shown; a plan now refused stops here. Only a plan approved as it stands runs.
    4. Holding the app, take it (against the ETag of the placement read for that plan) and write the
       journal, run every step, release the app. A step's failure is raised after
       :meth:`OperationHooks.ended` heard of it.
    """
    app = request.app
    master_key = key()
    world.use_key(master_key)  # it signs and checks the placement and the journal too
    prepared = hooks.plan(world, app, kind, target, master_key)
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
    approval, typed = hooks.consent(plan)
    settled = _approved_as_it_stands(world, request, kind, target, hooks, master_key, plan, (approval, typed))
    if isinstance(settled, OperationResult):
        return settled
    prepared, (approval, typed) = settled
    plan = prepared.plan
    with hooks.hold(app):
        journal = hooks.take(world, prepared, approval, typed)
        executor = Executor(
            world, journal, master_key, routing_hook=hooks.routing(app), on_step=hooks.on_step
        )
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


REAPPROVALS = 3
"""How many times a plan that keeps changing after its approval is put to the approver again."""


@dataclass(frozen=True)
class Changed:
    """An approved plan that no longer matches the world: the plan approved, the new one, what differs."""

    approved: Plan
    now: Plan
    changes: tuple[str, ...]
    done: tuple[str, ...] = ()
    """At a resume: the steps done, kept from the plan approved before."""
    resuming: str = ""
    """At a resume: the operation resumed."""
    way_back: str = ""
    """At a resume: the commands that lead out instead of approving (abort, or a failover taking over)."""
    headline: str = (
        "**The world changed after the approval; the plan was made again and must be approved again.**"
    )

    def markdown(self) -> str:
        """Both plans and the differences, for the approval form and the CLI."""
        return changed_plan_markdown(self.headline, self.changes, self.now, self.approved, self.done)


def _approved_as_it_stands(
    world: World,
    request: OperationRequest,
    kind: Kind,
    target: str | None,
    hooks: OperationHooks,
    key: crypto.MasterKey | None,
    approved: Plan,
    consent: tuple[Approval, str],
) -> tuple[Prepared, tuple[Approval, str]] | OperationResult:
    """Observe again after an approval; the new plan with its approval once they match (see :func:`run_operation`)."""
    for _ in range(REAPPROVALS):
        again = hooks.replan(world, request.app, kind, target, key)
        plan = again.plan
        if plan.nothing_to_do:
            hooks.say(f"nothing to do after all: {plan.nothing_to_do}")
            return OperationResult("nothing-to-do", plan)
        if plan.refusals:
            raise PreconditionFailed(
                f"{kind} of {request.app} refused after its approval, the world having changed: "
                + "; ".join(f"{c.name}: {c.detail}" for c in plan.refusals),
                hint=f"nothing was changed; {hooks.refusal_hint}",
            )
        changes = plan_changes(approved, plan)
        if not changes:
            return again, consent
        consent = hooks.consent(plan, Changed(approved=approved, now=plan, changes=tuple(changes)))
        approved = plan
    raise PreconditionFailed(
        f"{kind} of {request.app}: the plan changed after each of {REAPPROVALS} approvals; nothing was changed",
        hint="wait until the sites settle (a site coming back, mirroring recovering), then start the operation again",
    )
