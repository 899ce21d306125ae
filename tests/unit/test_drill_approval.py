"""A promote-mode drill needs the typed approval a failover needs, in the use case and the CLI.

On the fake two-site world: :func:`start_drill` refuses a runnable promote-mode drill without an
approval or with a wrong app name (nothing written); :func:`approve_drill` asks through the
operations' hooks and asks again when the plan changed after the approval; ``standby drill run
--mode promote`` prompts as ``standby failover`` does (``--yes`` approves); an isolated drill asks
nothing.
"""

from __future__ import annotations

import base64
import functools

import pytest
from typer.testing import CliRunner

from drkit.domain.errors import PreconditionFailed
from drkit.domain.operations import Approval, Plan
from drkit.jobs import drill_runbook
from drkit.jobs.drill import (
    approve_drill,
    needs_approval,
    prepare_drill,
    run_drill,
    start_drill,
)
from drkit.jobs.operations import Changed, OperationHooks, Prepared, list_journals, read_journal
from drkit.jobs.world import read_placement
from drkit.testing.dr import IMAGE, FakeDr
from standby import drill_cli
from standby.cli import app
from tests.unit.test_drill import APPROVAL, FAST, KEY, _ready


def _untouched(dr: FakeDr) -> None:
    assert list_journals(dr.world, "nexus") == []
    assert read_placement(dr.world, dr.world.config.app("nexus")).record.operation is None
    assert dr.mirror.images[IMAGE].primary == {"site-a": True, "site-b": False}


class Asked(OperationHooks):
    """Hooks whose consent answers from a list, recording each plan it was shown."""

    def __init__(self, *answers: tuple[Approval, str]) -> None:
        self.answers = list(answers)
        self.shown: list[tuple[Plan, Changed | None]] = []

    def consent(self, plan: Plan, changed: Changed | None = None) -> tuple[Approval, str]:
        self.shown.append((plan, changed))
        return self.answers.pop(0)


def test_a_promote_mode_drill_without_its_typed_approval_is_refused_and_nothing_is_written() -> None:
    dr = _ready()
    prepared = prepare_drill(dr.world, "nexus", "promote", key=KEY)
    assert needs_approval(prepared.plan)
    with pytest.raises(
        PreconditionFailed, match="promote-mode drill of nexus on site-b refused: no typed approval"
    ):
        start_drill(dr.world, prepared)
    with pytest.raises(
        PreconditionFailed, match=r"type the app's name \('nexus'\) to confirm; got 'nexsu'"
    ) as error:
        start_drill(dr.world, prepared, APPROVAL, "nexsu")
    assert "\n" not in str(error.value) and "standby drill run --mode promote" in (error.value.hint or "")
    with pytest.raises(PreconditionFailed, match="name the approver"):
        start_drill(dr.world, prepared, APPROVAL.model_copy(update={"approver": " "}), "nexus")
    _untouched(dr)
    journal = start_drill(dr.world, prepared, APPROVAL, "nexus")
    assert (
        journal.status == "approved"
        and journal.approval is not None
        and journal.approval.approver == "tester"
    )


def test_an_isolated_drill_needs_no_approval() -> None:
    dr = _ready()
    prepared = prepare_drill(dr.world, "nexus", "isolated", key=KEY)
    assert not needs_approval(prepared.plan)
    hooks = Asked()
    assert approve_drill(prepared, hooks, lambda: prepared) == (prepared, None, "")
    assert hooks.shown == []
    assert start_drill(dr.world, prepared).status == "approved"


def test_a_plan_that_changed_after_the_approval_is_approved_again_with_both_shown() -> None:
    dr = _ready()
    first = prepare_drill(dr.world, "nexus", "promote", key=KEY)
    moved = first.plan.model_copy(update={"backup_run": "20261201T000000Z-other"})
    plans = iter([Prepared(plan=moved, facts=first.facts), Prepared(plan=moved, facts=first.facts)])
    hooks = Asked((APPROVAL, "nexus"), (APPROVAL.model_copy(update={"approver": "second"}), "nexus"))
    prepared, approval, typed = approve_drill(first, hooks, lambda: next(plans))
    assert [c is None for _, c in hooks.shown] == [True, False]
    changed = hooks.shown[1][1]
    assert changed is not None and changed.approved == first.plan and changed.now == moved
    assert any("backup to restore" in c for c in changed.changes)
    assert (
        prepared.plan == moved and approval is not None and approval.approver == "second" and typed == "nexus"
    )


# ------------------------------------------------------------------------------------------- CLI


@pytest.fixture
def cli_world(monkeypatch: pytest.MonkeyPatch) -> FakeDr:
    dr = _ready()
    monkeypatch.setattr(drill_cli, "world_of", lambda config, **names: dr.world)
    monkeypatch.setattr(drill_runbook, "run_drill", functools.partial(run_drill, timeouts=FAST))
    monkeypatch.setenv("STANDBY_BACKUP_KEY", base64.b64encode(bytes(range(160, 192))).decode())  # KEY's bytes
    return dr


def test_the_cli_prompts_for_a_promote_mode_drill_and_refuses_a_wrong_app_name(cli_world: FakeDr) -> None:
    result = CliRunner().invoke(
        app, ["drill", "run", "--app", "nexus", "--mode", "promote"], input="nexsu\noncall\nquarterly\n"
    )
    assert result.exit_code == 1, result.output
    assert "type the app's name (nexus) to confirm" in result.output
    last = result.output.strip().splitlines()[-1]
    assert last.startswith("error: promote-mode drill of nexus on site-b refused: type the app's name"), last
    assert "Traceback" not in result.output
    _untouched(cli_world)


def test_the_cli_runs_a_promote_mode_drill_typed_right_or_with_yes(cli_world: FakeDr) -> None:
    typed = CliRunner().invoke(
        app, ["drill", "run", "--app", "nexus", "--mode", "promote"], input="nexus\noncall\nquarterly\n"
    )
    assert typed.exit_code == 0, typed.output
    # Each drill's journal by the id the CLI prints last (the fake clock gives both drills one
    # timestamp, so the order of the list does not say which came last).
    journal = read_journal(cli_world.world, typed.output.strip().splitlines()[-1])
    assert journal.approval is not None and (journal.approval.approver, journal.approval.reason) == (
        "oncall",
        "quarterly",
    )
    yes = CliRunner().invoke(
        app, ["drill", "run", "--app", "nexus", "--mode", "promote", "--yes", "--reason", "game day"]
    )
    assert yes.exit_code == 0, yes.output
    assert "type the app's name" not in yes.output
    journal = read_journal(cli_world.world, yes.output.strip().splitlines()[-1])
    assert journal.kind == "drill" and journal.approval is not None and journal.approval.reason == "game day"


def test_the_cli_runs_an_isolated_drill_without_a_prompt(cli_world: FakeDr) -> None:
    result = CliRunner().invoke(app, ["drill", "run", "--app", "nexus"])
    assert result.exit_code == 0, result.output
    assert "type the app's name" not in result.output
