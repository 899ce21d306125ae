"""``standby status``, ``relocate``, ``failover``, ``failback`` and ``operation show|list|resume|abort``.

Each operation prints its plan, asks for the same typed confirmation as the Prefect UI (the app's
name, an approver, a reason, and the acknowledgements the plan needs), then runs. ``--dry-run``
prints the plan only; ``--yes`` skips the prompt. The operation id is the last line of output.

Exit status: 0 the operation completed (or there was nothing to do); 1 refused, nothing changed;
2 a usage or configuration error, nothing changed; 3 failed part-way: the app is held by the
operation, and the message names the way out (``operation resume``, ``operation abort``, or a
failover with ``--take-over``).
"""

from __future__ import annotations

import getpass
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import typer

from drkit.domain import crypto
from drkit.domain.errors import ConfigError, OperationFailed, PreconditionFailed, StandbyError
from drkit.domain.operations import Approval, Journal, Kind, Plan, StepRecord, parse_op_id
from drkit.jobs.abort import abort_operation, plan_abort
from drkit.jobs.backup import key_from_env
from drkit.jobs.operations import (
    Changed,
    OperationHooks,
    Prepared,
    approve,
    hold_of,
    list_journals,
    prepare,
    read_journal,
    resume,
    run_operation,
    summary_lines,
)
from drkit.jobs.requests import (
    FailbackRequest,
    FailoverRequest,
    OperationRequest,
    RelocateRequest,
    default,
    describe,
)
from drkit.jobs.world import World, read_placement
from drkit.views.operations import abort_markdown, plan_markdown
from standby.common import (
    KEY_ENV,
    ConfigOption,
    JsonAlias,
    KeyEnvOption,
    Output,
    OutputOption,
    echo_step,
    emit,
    fail,
    group,
    guarded,
    output_of,
    world_of,
)

operation_app = group("List, show, resume or abort DR operations.")
AppOption = Annotated[str, typer.Option("--app", "-a", help="protected app", metavar="APP")]

REFUSED, USAGE, HELD = 1, 2, 3
"""Exit statuses: refused (nothing changed), a usage or configuration error, failed part-way (the app is held)."""


class _CliHooks(OperationHooks):
    """The CLI's side of :func:`run_operation`: print the plan and each step, prompt (or ``--yes``)."""

    refusal_hint = "the plan above names each refused guard"

    def __init__(
        self,
        *,
        yes: bool,
        reason: str,
        ack_loss: bool,
        ack_unfenced: bool,
        take_over: str | None = None,
        output: Output = "table",
    ) -> None:
        self.yes, self.reason, self.ack_loss, self.ack_unfenced = yes, reason, ack_loss, ack_unfenced
        self.take_over = take_over
        self.output = output
        """``table``: the plan in Markdown; ``json``/``yaml`` (a dry run): the plan as data, the rest on stderr."""
        self.journal: Journal | None = None

    def plan(
        self, world: World, app: str, kind: Kind, target: str | None, key: crypto.MasterKey | None
    ) -> Prepared:
        prepared = prepare(world, app, kind, target, key=key, take_over=self.take_over)
        emit(self.output, prepared.plan.model_dump(mode="json"), lambda: plan_markdown(prepared.plan))
        return prepared

    def say(self, message: str) -> None:
        typer.echo(message, err=self.output != "table")

    def consent(self, plan: Plan, changed: Changed | None = None) -> tuple[Approval, str]:
        if changed is not None:
            typer.echo(changed.markdown())
            if self.yes and changed.resuming:  # --yes resumes only what was approved
                raise PreconditionFailed(
                    f"resume of {changed.resuming}: the plan made again differs from the one approved ("
                    + "; ".join(changed.changes)
                    + "); --yes resumes only an unchanged plan; nothing was changed",
                    hint=f"read both plans above; to approve the new one: standby operation resume {changed.resuming}"
                    f" (without --yes); else {changed.way_back}",
                )
            if self.yes:  # --yes approved the plan as it was; a different one needs a person
                raise PreconditionFailed(
                    f"{plan.kind} of {plan.app}: the plan changed after --yes approved it ("
                    + "; ".join(changed.changes)
                    + "); nothing was changed",
                    hint="read the new plan above and run the command again",
                )
        if self.yes:  # --take-over ID is the acknowledgement: it names the operation taken over
            return Approval(
                approver=getpass.getuser(),
                reason=self.reason,
                data_loss=self.ack_loss,
                unfenced=self.ack_unfenced,
                take_over=self.take_over is not None and plan.takes_over == self.take_over,
                at=datetime.now(UTC),
            ), plan.app
        typed = typer.prompt(f"type the app's name ({plan.app}) to confirm")
        approver = typer.prompt("approver", default=getpass.getuser())
        reason = typer.prompt("reason")
        loss = typer.confirm("acknowledge data loss?", default=False) if plan.needs_data_loss_ack else False
        unfenced = (
            typer.confirm("acknowledge that the old primary is not fenced?", default=False)
            if plan.needs_unfenced_ack
            else False
        )
        took = (
            typer.confirm(f"acknowledge taking over the hold of {plan.takes_over}?", default=False)
            if plan.takes_over
            else False
        )
        return Approval(
            approver=approver,
            reason=reason,
            data_loss=loss,
            unfenced=unfenced,
            take_over=took,
            at=datetime.now(UTC),
        ), typed

    def take(self, world: World, prepared: Prepared, approval: Approval, typed_app: str) -> Journal:
        self.journal = approve(world, prepared, approval, typed_app)
        typer.echo(f"operation {self.journal.op_id} approved by {approval.approver}; running", err=True)
        return self.journal

    def on_step(self, journal: Journal, record: StepRecord) -> None:
        echo_step(journal, record)


def _operate(
    kind: Kind,
    request: OperationRequest,
    target: str | None,
    config: Path | None,
    *,
    yes: bool,
    reason: str,
    ack_loss: bool,
    ack_unfenced: bool,
    key_env: str,
    take_over: str | None = None,
    output: Output | None = None,
) -> None:
    if output not in (None, "table") and not request.dry_run:
        raise typer.BadParameter(f"-o {output} prints the plan of a dry run: add --dry-run", param_hint="-o")
    world = world_of(config, app=request.app, site=target, key_env=key_env)
    hooks = _CliHooks(
        yes=yes,
        reason=reason,
        ack_loss=ack_loss,
        ack_unfenced=ack_unfenced,
        take_over=take_over,
        output=output or "table",
    )
    try:
        result = run_operation(world, request, kind, target, hooks, key=lambda: key_from_env(key_env))
    except StandbyError as error:
        if hooks.journal is None:  # nothing changed: a one-line error
            raise fail(f"error: {error}", USAGE if isinstance(error, ConfigError) else REFUSED) from None
        typer.echo(f"error: {error}", err=True)
        typer.echo(hooks.journal.op_id)
        raise typer.Exit(HELD) from None
    if result.journal is not None:
        typer.echo("\n".join(summary_lines(result.journal)))
        typer.echo(result.journal.op_id)


Yes = Annotated[bool, typer.Option("--yes", help="skip the confirmation prompt")]
DryRun = Annotated[bool, typer.Option("--dry-run", help=describe(OperationRequest, "dry_run"))]
Reason = Annotated[str, typer.Option("--reason", help="why (recorded in the journal) with --yes")]
AckLoss = Annotated[bool, typer.Option("--acknowledge-data-loss", help="with --yes: accept losing the lag")]
PlanOutput = Annotated[
    Output | None,
    typer.Option(
        "--output",
        "-o",
        help="with --dry-run: the plan as table (Markdown), json or yaml",
        show_default="table",
    ),
]
AckUnfenced = Annotated[
    bool,
    typer.Option("--acknowledge-unfenced", help="with --yes: accept an old primary that cannot be fenced"),
]


def relocate(
    app: Annotated[str, typer.Option("--app", "-a", help="protected app", metavar="APP")],
    to: Annotated[str, typer.Option("--to", help="site to move the app to", metavar="SITE")],
    config: ConfigOption = None,
    dry_run: DryRun = default(OperationRequest, "dry_run"),
    yes: Yes = False,
    reason: Reason = "planned relocation",
    key_env: KeyEnvOption = KEY_ENV,
    output: PlanOutput = None,
) -> None:
    """Planned move of APP to a site, with no data loss (both sites must answer)."""
    request = guarded(lambda: RelocateRequest(app=app, to=to, dry_run=dry_run, key_source=f"env:{key_env}"))
    _operate(
        "relocate",
        request,
        request.to,
        config,
        yes=yes,
        reason=reason,
        ack_loss=False,
        ack_unfenced=False,
        key_env=key_env,
        output=output,
    )


def failover(
    app: Annotated[str, typer.Option("--app", "-a", help="protected app", metavar="APP")],
    to: Annotated[str, typer.Option("--to", help="site to recover the app on", metavar="SITE")],
    config: ConfigOption = None,
    dry_run: DryRun = default(OperationRequest, "dry_run"),
    yes: Yes = False,
    reason: Reason = "disaster failover",
    acknowledge_data_loss: AckLoss = False,
    acknowledge_unfenced: AckUnfenced = False,
    key_env: KeyEnvOption = KEY_ENV,
    take_over: Annotated[
        str | None, typer.Option("--take-over", metavar="OP-ID", help=describe(FailoverRequest, "take_over"))
    ] = None,
    output: PlanOutput = None,
) -> None:
    """Disaster move of APP: fence what answers, promote (by force if needed), start, smoke."""
    request = guarded(
        lambda: FailoverRequest(
            app=app, to=to, dry_run=dry_run, key_source=f"env:{key_env}", take_over=take_over
        )
    )
    _operate(
        "failover",
        request,
        request.to,
        config,
        yes=yes,
        reason=reason,
        ack_loss=acknowledge_data_loss,
        ack_unfenced=acknowledge_unfenced,
        key_env=key_env,
        take_over=request.take_over,
        output=output,
    )


def failback(
    app: Annotated[str, typer.Option("--app", "-a", help="protected app", metavar="APP")],
    config: ConfigOption = None,
    dry_run: DryRun = default(OperationRequest, "dry_run"),
    yes: Yes = False,
    reason: Reason = "failback home",
    key_env: KeyEnvOption = KEY_ENV,
    output: PlanOutput = None,
) -> None:
    """Bring APP home after a failover: demote and resync the home site, then relocate."""
    request = guarded(lambda: FailbackRequest(app=app, dry_run=dry_run, key_source=f"env:{key_env}"))
    _operate(
        "failback",
        request,
        None,
        config,
        yes=yes,
        reason=reason,
        ack_loss=False,
        ack_unfenced=False,
        key_env=key_env,
        output=output,
    )


def status(
    app: Annotated[
        str | None, typer.Option("--app", "-a", help="only this app", show_default="every app")
    ] = None,
    config: ConfigOption = None,
    output: OutputOption = None,
    as_json: JsonAlias = False,
    key_env: KeyEnvOption = KEY_ENV,
) -> None:
    """Per app: home, recorded and observed primary, mirroring per site, lag, last backup and its age
    (from any site's store), last operation; then each warning."""
    from drkit.jobs.status import app_status
    from drkit.views.status import status_text

    world = world_of(
        config, app=app, key_env=key_env
    ).probing()  # bounded, parallel probes: a site down costs seconds
    names = [app] if app else [a.name for a in world.config.apps]
    statuses = [guarded(lambda n=n: app_status(world, n)) for n in names]  # type: ignore[misc]
    data = {"apps": {st.app: st.as_json() for st in statuses}}
    emit(output_of(output, as_json), data, lambda: status_text(statuses))


@operation_app.command("show")
def operation_show(
    op_id: Annotated[str, typer.Argument(help="operation id")],
    config: ConfigOption = None,
    output: OutputOption = None,
    as_json: JsonAlias = False,
    key_env: KeyEnvOption = KEY_ENV,
) -> None:
    """Print an operation's journal (-o json or yaml: the whole journal)."""
    guarded(lambda: parse_op_id(op_id))
    world = world_of(config, key_env=key_env)
    journal = guarded(lambda: read_journal(world, op_id))
    emit(
        output_of(output, as_json), journal.model_dump(mode="json"), lambda: "\n".join(summary_lines(journal))
    )


@operation_app.command("resume")
def operation_resume(
    op_id: Annotated[str, typer.Argument(help="operation id")],
    config: ConfigOption = None,
    yes: Annotated[
        bool,
        typer.Option(
            "--yes", help="resume only if the plan made again is the one approved; a changed plan is refused"
        ),
    ] = False,
    reason: Reason = "resume",
    key_env: KeyEnvOption = KEY_ENV,
) -> None:
    """Observe again, plan again, and run what is left of an operation; finished steps are skipped.

    When what is left differs from the plan approved (a site came back, an image changed role),
    both plans are printed and the typed approval is asked again (--yes refuses instead).
    """
    guarded(lambda: parse_op_id(op_id))
    world = world_of(config, key_env=key_env)
    key = guarded(lambda: key_from_env(key_env))
    hooks = _CliHooks(yes=yes, reason=reason, ack_loss=False, ack_unfenced=False)
    _run_held(op_id, lambda: resume(world, op_id, key=key, on_step=echo_step, hooks=hooks))


def _run_held(op_id: str, run: Callable[[], Journal]) -> None:
    """Run ``run`` (a resume or an abort of ``op_id``) and print its account, the id last; exit 3
    when it failed part-way (the app still held), 1 when it was refused (nothing changed)."""
    try:
        done = run()
    except OperationFailed as error:
        typer.echo(f"error: {error}", err=True)
        typer.echo(op_id)
        raise typer.Exit(HELD) from None
    except StandbyError as error:
        raise fail(f"error: {error}", REFUSED) from None
    typer.echo("\n".join(summary_lines(done)))
    typer.echo(op_id)


@operation_app.command("abort")
def operation_abort(
    op_id: Annotated[str, typer.Argument(help="operation id")],
    config: ConfigOption = None,
    yes: Yes = False,
    reason: Annotated[
        str, typer.Option("--reason", help="why (recorded in the journal) with --yes")
    ] = "abort",
    key_env: KeyEnvOption = KEY_ENV,
) -> None:
    """Roll an operation back to its source, before its point of no return (the target's promote).

    Promotes the source's images again (never forced), starts the app there, smoke-tests it, removes
    what was restored on the target and releases the hold; past the promote it is refused and names
    resume and the failover back. Safe to run again: what is done is skipped.
    """
    guarded(lambda: parse_op_id(op_id))
    world = world_of(config, key_env=key_env)
    key = guarded(lambda: key_from_env(key_env))
    world.use_key(key)  # the journal is checked before its abort is planned
    plan, journal = guarded(lambda: plan_abort(world, op_id))
    typer.echo(abort_markdown(plan))
    if plan.nothing_to_do:
        typer.echo("\n".join(summary_lines(journal)))
        typer.echo(op_id)
        return
    if plan.refusal:
        raise fail(f"error: abort of {op_id} refused: {plan.refusal}", REFUSED)
    if yes:
        approval, typed = (
            Approval(approver=getpass.getuser(), reason=reason, at=datetime.now(UTC)),
            journal.app,
        )
    else:
        typed = typer.prompt(f"type the app's name ({journal.app}) to confirm")
        approval = Approval(
            approver=typer.prompt("approver", default=getpass.getuser()),
            reason=typer.prompt("reason"),
            at=datetime.now(UTC),
        )
    _run_held(op_id, lambda: abort_operation(world, op_id, approval, typed, key=key, on_step=echo_step))


@operation_app.command("list")
def operation_list(
    app: AppOption,
    config: ConfigOption = None,
    output: OutputOption = None,
    as_json: JsonAlias = False,
    key_env: KeyEnvOption = KEY_ENV,
) -> None:
    """Every operation of APP (oldest first) with its state, and which one holds the app."""
    world = world_of(config, app=app, key_env=key_env)
    journals = guarded(lambda: list_journals(world, app))
    record = guarded(lambda: read_placement(world, world.config.app(app)).record)
    hold = guarded(lambda: hold_of(world, record))
    rows = []
    for j in journals:
        state: str = j.status
        if j.abort is not None and j.status != "aborted":
            state += f", abort {j.abort.status}"
        if j.taken_over_by:
            state += f", taken over by {j.taken_over_by}"
        if hold is not None and hold.op_id == j.op_id:
            state += f", holds the app ({hold.state}{': ' + hold.detail if hold.detail else ''})"
        rows.append(
            {
                "op_id": j.op_id,
                "kind": j.kind,
                "source": j.source,
                "target": j.target,
                "state": state,
                "created_at": j.created_at.isoformat(),
                "error": j.error,
            }
        )
    if hold is not None and hold.op_id not in {j.op_id for j in journals}:
        rows.append(
            {
                "op_id": hold.op_id,
                "kind": hold.kind,
                "source": "",
                "target": "",
                "created_at": "",
                "state": f"holds the app ({hold.state}: {hold.detail})",
                "error": "",
            }
        )
    fmt = output_of(output, as_json)
    if fmt != "table":
        emit(fmt, {"app": app, "operations": rows}, str)
        return
    if not rows:
        typer.echo(f"no operation of {app} in any reachable store")
        return
    for row in rows:
        where = f" {row['source']} -> {row['target']}" if row["source"] else ""
        typer.echo(f"{row['op_id']}  {row['kind']}{where}: {row['state']}")


@operation_app.command("sign-placement")
def sign_placement_cmd(
    app: Annotated[str, typer.Option("--app", "-a", help="protected app", metavar="APP")],
    config: ConfigOption = None,
    key_env: KeyEnvOption = KEY_ENV,
) -> None:
    """Sign APP's placement record with the key, once checked against both sites: to adopt a record
    written before the key was used ("has no MAC, and a key is loaded"). Nothing is done when it passes."""
    from drkit.jobs.world import sign_placement

    world = world_of(config, app=app, key_env=key_env)
    if world.key is None:
        world.use_key(guarded(lambda: key_from_env(key_env)))
    signed = guarded(lambda: sign_placement(world, world.config.app(app)))
    if signed is None:
        typer.echo(
            f"placement record of app {app}: nothing to do (a copy passes its integrity check, or there is"
            " none; the next write replaces a copy that fails)"
        )
        return
    typer.echo(
        f"placement record of app {app} signed with key id {world.key.key_id if world.key else '-'}:"
        f" primary {signed.primary}, epoch {signed.epoch}"
    )


def register(app: typer.Typer) -> None:
    """Add the operation commands to the ``standby`` command."""
    app.command("status")(status)
    app.command("relocate")(relocate)
    app.command("failover")(failover)
    app.command("failback")(failback)
    app.add_typer(operation_app, name="operation")
