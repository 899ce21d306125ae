"""Prefect tasks of the DR operations: plan, approval gate, one task per step, artifacts and events.

* ``operation-plan-<app>`` (markdown): the plan, each guard with pass or fail, the data at risk,
  what will be forced and what cannot be fenced.
* ``operation-progress-<app>`` (progress) and ``operation-timeline-<app>`` (table: every step's
  site, outcome and duration).
* ``operation-abort-<app>`` (markdown): an abort's plan, or why it is refused.
* Events ``standby.operation.started|step|completed|failed|aborted`` about ``standby.app.<app>``.

The world (each site's adapters) is built once per flow run and handed to every task; tasks are
never cached, and only transient errors are retried (a step is safe to re-run: it observes first).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

from prefect import get_run_logger, task
from prefect.artifacts import (
    create_markdown_artifact,
    create_progress_artifact,
    create_table_artifact,
    update_progress_artifact,
)
from prefect.cache_policies import NO_CACHE
from prefect.events import emit_event
from prefect.flow_runs import pause_flow_run
from prefect.input import RunInput
from prefect.utilities.asyncutils import run_coro_as_sync
from pydantic import Field, create_model

from drkit.domain import crypto
from drkit.domain.abort import AbortPlan, check_abort_approval
from drkit.domain.errors import ConfigError, PreconditionFailed, StandbyError, TransientError
from drkit.domain.models import ProtectedApp
from drkit.domain.operations import (
    Approval,
    Journal,
    Kind,
    Plan,
    check_approval,
)
from drkit.jobs.abort import abort_operation, plan_abort
from drkit.jobs.operations import Changed, Executor, OperationHooks, Prepared, approve, prepare
from drkit.jobs.steps import RoutingHook
from drkit.jobs.world import World
from drkit.views.operations import abort_markdown, plan_markdown, timeline_rows
from tasks.backup import app_slot
from tasks.retrying import retry_transient

EVENT_PREFIX = "standby.operation"


def emit_operation_event(what: str, journal: Journal, payload: dict[str, Any] | None = None) -> None:
    """``standby.operation.<what>`` about ``standby.app.<app>``."""
    emit_event(
        event=f"{EVENT_PREFIX}.{what}",
        resource={
            "prefect.resource.id": f"standby.app.{journal.app}",
            "standby.app": journal.app,
            "standby.site": journal.target,
        },
        related=[
            {
                "prefect.resource.id": f"standby.operation.{journal.op_id}",
                "prefect.resource.role": "operation",
            }
        ],
        payload={
            "op_id": journal.op_id,
            "kind": journal.kind,
            "source": journal.source,
            "target": journal.target,
            **(payload or {}),
        },
    )


@task(
    name="plan-operation",
    retries=2,
    retry_delay_seconds=[2.0, 10.0],
    retry_condition_fn=retry_transient,
    cache_policy=NO_CACHE,
)
def plan_operation(
    world: World,
    app: str,
    kind: str,
    target: str | None,
    key: crypto.MasterKey | None = None,
    take_over: str | None = None,
) -> Prepared:
    """Observe both sites and make the plan (the backup key tried); publish it as ``operation-plan-<app>``."""
    prepared = prepare(world, app, kind, target, key=key, take_over=take_over)  # type: ignore[arg-type]
    create_markdown_artifact(
        markdown=plan_markdown(prepared.plan),
        key=f"operation-plan-{app}",
        description=f"{kind} plan of {app}",
    )
    return prepared


def approval_model(plan: Plan) -> type[RunInput]:
    """The approval form: the app's name typed, approver, reason, and only the acknowledgements needed."""
    fields: dict[str, Any] = {
        "confirm_app": (str, Field(description=f"type the app's name ({plan.app}) to confirm")),
        "approver": (str, Field(description="who approves")),
        "reason": (str, Field(description="why")),
    }
    if plan.needs_data_loss_ack:
        lag = "unknown" if plan.lag_seconds is None else f"{plan.lag_seconds:.0f} s"
        fields["acknowledge_data_loss"] = (
            bool,
            Field(False, description=f"I accept losing the writes not yet on {plan.target} (about {lag})"),
        )
    if plan.needs_unfenced_ack:
        fields["acknowledge_unfenced"] = (
            bool,
            Field(False, description="I accept that the old primary could not be stopped or demoted"),
        )
    if plan.takes_over:
        fields["acknowledge_take_over"] = (
            bool,
            Field(
                False,
                description=(
                    f"I take over the hold of operation {plan.takes_over}: it failed or its process is gone, and it will"
                    " be recorded as taken over"
                ),
            ),
        )
    return create_model(f"Approve{plan.kind.capitalize()}", __base__=RunInput, **fields)


def wait_for_approval(
    plan: Plan, *, timeout: int, op_note: str = "", changed: Changed | None = None, round: int = 1
) -> tuple[Approval, str]:
    """Pause the flow run for the typed approval form; ask again while the input is not enough.

    ``changed``: an earlier plan was approved and the world moved since; the form shows both plans
    and what differs. ``round`` numbers the approvals of one run (each pause needs its own key).
    A timeout fails the run (Prefect's pause); nothing has changed by then.
    """
    logger = get_run_logger()
    model = approval_model(plan)
    problems: list[str] = []
    for attempt in range(1, 100):
        text = changed.markdown() if changed is not None else plan_markdown(plan, op_note)
        if problems:
            text = "**Not approved, please fix:** " + "; ".join(problems) + "\n\n" + text
        # Only the description: initial data for a field would replace its Field (and so its
        # description in the form) and make it optional, so an empty form would pass the server.
        answer: Any = pause_flow_run(
            wait_for_input=model.with_initial_data(description=text),
            timeout=timeout,
            poll_interval=1,
            key=f"approval-{attempt}" if round == 1 else f"approval-{round}-{attempt}",
        )
        approval = Approval(
            approver=str(answer.approver),
            reason=str(answer.reason),
            data_loss=bool(getattr(answer, "acknowledge_data_loss", False)),
            unfenced=bool(getattr(answer, "acknowledge_unfenced", False)),
            take_over=bool(getattr(answer, "acknowledge_take_over", False)),
            at=datetime.now(UTC),
        )
        problems = check_approval(plan, approval, str(answer.confirm_app))
        if not problems:
            return approval, str(answer.confirm_app)
        logger.warning("approval refused, asking again: %s", "; ".join(problems))
    raise RuntimeError("unreachable")


@task(
    name="approve-operation",
    retries=2,
    retry_delay_seconds=[2.0, 10.0],
    retry_condition_fn=retry_transient,
    cache_policy=NO_CACHE,
)
def take_app(world: World, prepared: Prepared, approval: Approval, typed: str) -> Journal:
    """Take the app (placement hold, compare-and-swap) and write the journal."""
    journal = approve(world, prepared, approval, typed)
    emit_operation_event("started", journal, {"approver": approval.approver, "reason": approval.reason})
    get_run_logger().info("operation %s approved by %s", journal.op_id, approval.approver)
    return journal


def webhook_routing(block_name: str) -> RoutingHook:
    """The ``routing`` step's hook for ``routing.mode: webhook``: call the Prefect Webhook block
    ``block_name`` with ``{"app", "namespace", "site", "event"}``; a non-2xx answer fails the step."""

    def call(app: ProtectedApp, site: str) -> None:
        from prefect.blocks.webhook import Webhook

        try:
            block: Any = Webhook.load(block_name)
        except ValueError:
            raise ConfigError(
                f"Prefect Webhook block {block_name!r} (routing of app {app.name}) does not exist",
                hint=f"create it, or fix apps[{app.name}].routing.webhook_block",
            ) from None
        payload = {
            "app": app.name,
            "namespace": app.namespace,
            "site": site,
            "event": "standby.routing.switch",
        }
        answer: Any = run_coro_as_sync(block.call(payload))  # Webhook.call is async only
        if not 200 <= int(answer.status_code) < 300:
            raise TransientError(
                f"routing webhook {block_name!r} answered {answer.status_code} for app {app.name}",
                hint="check the webhook's receiver; the step polls again",
            )

    return call


class Tracker:
    """Progress and timeline artifacts of one operation run."""

    def __init__(self, journal: Journal) -> None:
        self.key = journal.app
        self.total = len(journal.steps)
        self.progress: Any = create_progress_artifact(
            0.0, key=f"operation-progress-{journal.app}", description=f"{journal.kind} {journal.op_id}"
        )

    def update(self, journal: Journal) -> None:
        """Move the progress bar and publish the timeline."""
        done = sum(s.outcome in ("done", "skipped") for s in journal.steps)
        update_progress_artifact(
            self.progress, 100.0 * done / self.total, description=f"{done}/{self.total} steps"
        )
        create_table_artifact(
            table=timeline_rows(journal),
            key=f"operation-timeline-{journal.app}",
            description=f"{journal.kind} {journal.op_id}: {journal.status}",
        )


@task(name="operation-step", cache_policy=NO_CACHE, task_run_name="{name}")
def run_step(executor: Executor, name: str) -> str:
    """One step: observe, act if needed, verify; the journal is written before it returns."""
    record = executor.step(name)
    emit_operation_event(
        "step", executor.journal, {"step": name, "outcome": record.outcome, "seconds": record.seconds}
    )
    get_run_logger().info("step %s on %s: %s", name, record.site, record.outcome)
    return record.outcome


class FlowHooks(OperationHooks):
    """The flows' side of :func:`drkit.jobs.operations.run_operation`: tasks, the approval pause,
    the app's concurrency slot, the routing webhook, artifacts and events."""

    refusal_hint = "see the operation-plan artifact"

    def __init__(self, world: World, approval_timeout: int, take_over: str | None = None) -> None:
        self.world = world
        self.approval_timeout = approval_timeout
        self.take_over = take_over
        self.tracker: Tracker | None = None
        self.rounds = 0

    def plan(
        self, world: World, app: str, kind: Kind, target: str | None, key: crypto.MasterKey | None
    ) -> Prepared:
        """The ``plan-operation`` task (publishes ``operation-plan-<app>``)."""
        return plan_operation(world, app, kind, target, key, self.take_over)

    def replan(
        self, world: World, app: str, kind: Kind, target: str | None, key: crypto.MasterKey | None
    ) -> Prepared:
        """The ``plan-operation`` task again, after the approval (the artifact shows the newest plan)."""
        return plan_operation(world, app, kind, target, key, self.take_over)

    def say(self, message: str) -> None:
        """Log it."""
        get_run_logger().info("%s", message)

    def consent(self, plan: Plan, changed: Changed | None = None) -> tuple[Approval, str]:
        """Pause for the typed approval form (see :func:`wait_for_approval`); again, with both plans,
        when the plan changed after an approval."""
        self.rounds += 1
        if changed is not None:
            get_run_logger().warning("the plan changed after its approval: %s", "; ".join(changed.changes))
        return wait_for_approval(plan, timeout=self.approval_timeout, changed=changed, round=self.rounds)

    @contextmanager
    def hold(self, app: str) -> Iterator[None]:
        """The app's only concurrency slot, shared with its backups: they never overlap."""
        with app_slot(app):
            yield

    def take(self, world: World, prepared: Prepared, approval: Approval, typed_app: str) -> Journal:
        """The ``approve-operation`` task; the progress and timeline artifacts start."""
        journal = take_app(world, prepared, approval, typed_app)
        self.tracker = Tracker(journal)
        return journal

    def routing(self, app: str) -> RoutingHook | None:
        """The Prefect Webhook block the app's routing names, if any."""
        block = self.world.config.app(app).routing.webhook_block
        return webhook_routing(block) if block else None

    def step(self, executor: Executor, name: str) -> None:
        """One ``operation-step`` task."""
        run_step(executor, name)

    def progress(self, journal: Journal) -> None:
        """Move the progress bar, publish the timeline."""
        if self.tracker is not None:
            self.tracker.update(journal)

    def ended(self, journal: Journal, error: StandbyError | None) -> None:
        """``standby.operation.completed`` or ``standby.operation.failed``."""
        if error is not None:
            emit_operation_event("failed", journal, {"error": str(error)[:500]})
            return
        took = (journal.finished_at - journal.created_at).total_seconds() if journal.finished_at else None
        emit_operation_event("completed", journal, {"seconds": took})


# ------------------------------------------------------------------------------------------ abort


@task(
    name="plan-abort",
    retries=2,
    retry_delay_seconds=[2.0, 10.0],
    retry_condition_fn=retry_transient,
    cache_policy=NO_CACHE,
)
def plan_abort_task(world: World, op_id: str) -> tuple[AbortPlan, Journal]:
    """Read the journal, ask the target, plan the abort; publish it as ``operation-abort-<app>``."""
    plan, journal = plan_abort(world, op_id)
    create_markdown_artifact(
        markdown=abort_markdown(plan),
        key=f"operation-abort-{journal.app}",
        description=f"abort of {journal.kind} {op_id}",
    )
    return plan, journal


def wait_for_abort_approval(plan: AbortPlan, *, timeout: int) -> tuple[Approval, str]:
    """Pause for the abort's typed approval form (app name, approver, reason); ask again until enough."""
    fields: dict[str, Any] = {
        "confirm_app": (str, Field(description=f"type the app's name ({plan.app}) to confirm")),
        "approver": (str, Field(description="who approves")),
        "reason": (str, Field(description="why")),
    }
    model = create_model("ApproveAbort", __base__=RunInput, **fields)
    problems: list[str] = []
    for attempt in range(1, 100):
        text = abort_markdown(plan)
        if problems:
            text = "**Not approved, please fix:** " + "; ".join(problems) + "\n\n" + text
        answer: Any = pause_flow_run(
            wait_for_input=model.with_initial_data(description=text),
            timeout=timeout,
            poll_interval=1,
            key=f"abort-approval-{attempt}",
        )
        approval = Approval(approver=str(answer.approver), reason=str(answer.reason), at=datetime.now(UTC))
        problems = check_abort_approval(plan.app, approval, str(answer.confirm_app))
        if not problems:
            return approval, str(answer.confirm_app)
        get_run_logger().warning("approval refused, asking again: %s", "; ".join(problems))
    raise RuntimeError("unreachable")


@task(name="abort-operation", cache_policy=NO_CACHE)
def run_abort(world: World, op_id: str, approval: Approval, typed: str, key: Any) -> Journal:
    """Run the rollback (its journal is written after each step); events ``aborted`` or ``failed``."""
    try:
        done = abort_operation(world, op_id, approval, typed, key=key)
    except StandbyError as error:
        journal = plan_abort(world, op_id)[1]
        emit_operation_event("failed", journal, {"error": str(error)[:500], "abort": True})
        raise
    emit_operation_event("aborted", done, {"approver": approval.approver, "reason": approval.reason})
    return done


def abort_runbook(world: World, app: str, op_id: str, approval_timeout: int, key: Any) -> dict[str, Any]:
    """Plan the abort, pause for the typed approval, roll back holding the app's slot."""
    master_key = key()
    world.use_key(master_key)  # the journal is checked before its abort is planned
    plan, journal = plan_abort_task(world, op_id)
    if journal.app != app:
        raise ConfigError(
            f"operation {op_id} is of app {journal.app}, not {app}", hint=f"pass app={journal.app}"
        )
    if plan.nothing_to_do:
        return {"status": journal.status, "op_id": op_id, "reason": plan.nothing_to_do}
    if plan.refusal:
        raise PreconditionFailed(
            f"abort of {op_id} refused: {plan.refusal}", hint="see the operation-abort artifact"
        )
    approval, typed = wait_for_abort_approval(plan, timeout=approval_timeout)
    with app_slot(app):
        done = run_abort(world, op_id, approval, typed, master_key)
    steps = {s.name: s.outcome for s in done.abort.steps} if done.abort else {}
    return {"status": done.status, "op_id": op_id, "steps": steps}
