"""``standby drill run|cleanup|list|show``: the monthly DR drill from a shell.

``run`` prints the plan, runs the drill and its cleanup, prints the verdict and where the report is;
the drill id is the last line and the exit status is 0 only when the drill passed. A promote-mode
drill first asks for the same typed confirmation as a failover (the app's name, an approver, a
reason; ``--yes`` with ``--reason`` approves it, as for the operations); an isolated drill (the
default) asks nothing.
"""

from __future__ import annotations

from typing import Annotated

import typer

from drkit.domain import crypto
from drkit.domain.drill import DrillReport, Mode
from drkit.domain.errors import StandbyError
from drkit.domain.operations import Approval, Journal, Plan, StepRecord, parse_op_id
from drkit.jobs.backup import key_from_env
from drkit.jobs.drill import DrillOutcome, prepare_drill
from drkit.jobs.drill_cleanup import drill_cleanup
from drkit.jobs.drill_report import drill_reports
from drkit.jobs.drill_runbook import DrillHooks, run_drill_runbook
from drkit.jobs.operations import Changed, Prepared, summary_lines
from drkit.jobs.requests import DrillRequest, default, describe
from drkit.jobs.world import World
from drkit.views.drill_report import report_markdown, verdict
from drkit.views.operations import plan_markdown
from standby.common import (
    KEY_ENV,
    ConfigOption,
    JsonAlias,
    KeyEnvOption,
    OutputOption,
    echo_step,
    emit,
    fail,
    group,
    guarded,
    output_of,
    world_of,
)
from standby.ops_cli import Yes, _CliHooks

drill_app = group("The DR drill: prove the app on the secondary, clean up.")
AppOption = Annotated[str, typer.Option("--app", "-a", help="protected app", metavar="APP")]


@drill_app.command("run")
def run(
    app: AppOption,
    mode: Annotated[
        str, typer.Option("--mode", help=describe(DrillRequest, "mode"), metavar="[isolated|promote]")
    ] = default(DrillRequest, "mode"),
    config: ConfigOption = None,
    key_env: KeyEnvOption = KEY_ENV,
    yes: Yes = False,
    reason: Annotated[
        str, typer.Option("--reason", help="why (recorded in the journal) with --yes, promote mode")
    ] = ("promote-mode drill"),
) -> None:
    """Run a drill of APP now; exit 0 only when it passed (promote mode asks for the typed approval first)."""
    if mode not in ("promote", "isolated"):
        raise fail(
            f"error: --mode must be promote or isolated, not {mode!r} (next: use --mode isolated, the default)",
            2,
        )
    request = guarded(lambda: DrillRequest(app=app, mode=mode, key_source=f"env:{key_env}"))  # type: ignore[arg-type]
    world = world_of(config, app=app, key_env=key_env)
    key = guarded(lambda: key_from_env(key_env))
    hooks = _CliDrillHooks(world, yes=yes, reason=reason)
    outcome = guarded(lambda: run_drill_runbook(world, app, request.mode, key, hooks))
    if not outcome.report.passed or outcome.store_error:
        raise typer.Exit(1)


class _CliDrillHooks(DrillHooks):
    """The CLI's side of :func:`~drkit.jobs.drill_runbook.run_drill_runbook`: print the plan and each
    step, prompt for a promote-mode drill (or ``--yes``) as the operations do, print the verdict."""

    refusal_hint = "the plan above names each refused guard"

    def __init__(self, world: World, *, yes: bool, reason: str) -> None:
        self.world = world
        self.approver = _CliHooks(
            yes=yes, reason=reason, ack_loss=False, ack_unfenced=False
        )  # the operations' prompt

    def plan(self, world: World, app: str, mode: Mode, key: crypto.MasterKey | None) -> Prepared:
        prepared = prepare_drill(world, app, mode, key=key)
        typer.echo(plan_markdown(prepared.plan))
        return prepared

    def consent(self, plan: Plan, changed: Changed | None = None) -> tuple[Approval, str]:
        return self.approver.consent(plan, changed)

    def approved(self, journal: Journal, approval: Approval) -> None:
        typer.echo(f"drill {journal.op_id} approved by {approval.approver}; running", err=True)

    def refused(self, journal: Journal) -> None:
        typer.echo(f"error: drill refused: {journal.error}", err=True)
        typer.echo(journal.op_id)
        raise typer.Exit(1)

    def on_step(self, journal: Journal, record: StepRecord) -> None:
        echo_step(journal, record)

    def finished(self, outcome: DrillOutcome) -> None:
        report = outcome.report
        typer.echo(f"drill {report.drill_id} of {report.app}: {verdict(report)}")
        for check in report.checks:
            typer.echo(
                f"  {'pass' if check.ok else 'FAIL'}  {check.name}: {check.value} (target {check.target})"
            )
        if outcome.stored:
            typer.echo(
                f"report: {outcome.stored.get('html')} (and report.json, report.md) in bucket "
                f"{self.world.bundle(report.primary).site.s3.bucket}"
            )
        if outcome.store_error:
            typer.echo(f"error: {outcome.store_error}", err=True)
        typer.echo(report.drill_id)


@drill_app.command("cleanup")
def cleanup(app: AppOption, config: ConfigOption = None, key_env: KeyEnvOption = KEY_ENV) -> None:
    """Return the secondary to a healthy replica after a drill (idempotent)."""
    world = world_of(config, app=app, key_env=key_env)
    key = guarded(lambda: key_from_env(key_env))
    journal = guarded(lambda: drill_cleanup(world, app, key=key, on_step=echo_step))
    typer.echo("\n".join(summary_lines(journal)))
    typer.echo(journal.op_id)


@drill_app.command("list")
def list_(
    app: AppOption, config: ConfigOption = None, key_env: KeyEnvOption = KEY_ENV, output: OutputOption = None
) -> None:
    """The app's drills, oldest first: id, verdict, RTO, RPO (reports failing their integrity check left out)."""
    world = world_of(config, app=app, key_env=key_env)
    reports = guarded(lambda: drill_reports(world, app))
    if output not in (None, "table"):
        emit(
            output,
            {"app": app, "drills": [r.model_dump(mode="json") | {"verdict": verdict(r)} for r in reports]},
            str,
        )
        return
    if not reports:
        typer.echo(f"no drill of {app} has a stored report yet")
    for r in reports:
        rto = "-" if r.rto_promotion_to_writable_s is None else f"{r.rto_promotion_to_writable_s:.1f}s"
        rpo = "-" if r.rpo_achieved_s is None else f"{r.rpo_achieved_s:.1f}s"
        typer.echo(
            f"{r.drill_id}  {verdict(r):8}  {r.mode:8}  RTO {rto:>7}  RPO {rpo:>7}  {r.started_at:%Y-%m-%d %H:%M}"
        )


@drill_app.command("show")
def show(
    drill_id: Annotated[str, typer.Argument(help="drill id (the last line of `standby drill run`)")],
    config: ConfigOption = None,
    output: OutputOption = None,
    as_json: JsonAlias = False,
    key_env: KeyEnvOption = KEY_ENV,
) -> None:
    """Print one drill's report (Markdown; -o json or yaml: the whole report)."""
    guarded(lambda: parse_op_id(drill_id))
    world = world_of(config, key_env=key_env)

    def find() -> tuple[DrillReport, list[DrillReport]]:
        for a in world.config.apps:
            reports = drill_reports(world, a.name)
            for r in reports:
                if r.drill_id == drill_id:
                    return r, [h for h in reports if h.drill_id != drill_id]
        raise StandbyError(
            f"no stored report of drill {drill_id}", hint="list them: standby drill list --app APP"
        )

    report, history = guarded(find)
    emit(output_of(output, as_json), report.model_dump(mode="json"), lambda: report_markdown(report, history))
