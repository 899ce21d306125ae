"""``standby relocate|failover|failback|operation|drill``: a user's mistake is one line and exit 2; the
operations over the fake two-site world print the plan, the steps and the operation id last."""

from __future__ import annotations

import base64
from pathlib import Path

import pytest
from typer.testing import CliRunner

from drkit.testing.dr import FakeDr, fake_dr
from standby import ops_cli
from standby.cli import app
from tests.unit.test_operations import _backup

CONFIG = str(Path(__file__).resolve().parents[2] / "standby.example.yaml")


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["relocate", "--app", "nope", "--to", "site-b"], "unknown app 'nope'; known apps: nexus"),
        (
            ["failover", "--app", "nexus", "--to", "site-z"],
            "unknown site 'site-z'; known sites: site-a, site-b",
        ),
        (["failback", "--app", "nope"], "unknown app 'nope'"),
        (["operation", "show", "not-an-id"], "'not-an-id' is not an operation id"),
        (["operation", "resume", "relocate-2026"], "is not an operation id"),
        (["drill", "run", "--app", "nexus", "--mode", "sideways"], "--mode must be promote or isolated"),
        (["drill", "show", "nope"], "'nope' is not an operation id"),
    ],
)
def test_bad_input_is_one_line_without_a_traceback(argv: list[str], expected: str) -> None:
    result = CliRunner().invoke(app, [*argv, "--config", CONFIG])
    assert result.exit_code != 0
    assert "Traceback" not in result.output
    lines = [ln for ln in result.output.splitlines() if ln.strip()]
    assert len(lines) == 1, result.output
    assert lines[0].startswith("error:") and expected in lines[0]


# ------------------------------------------------------------------- the CLI over the fake world


@pytest.fixture
def fake_world(monkeypatch: pytest.MonkeyPatch) -> FakeDr:
    """``standby relocate|failover|failback`` run against the fake two-site world."""
    dr = fake_dr()
    _backup(dr, "site-a")
    monkeypatch.setattr(ops_cli, "world_of", lambda config, **names: dr.world)
    monkeypatch.setenv("STANDBY_BACKUP_KEY", base64.b64encode(bytes(range(32))).decode())
    return dr


def test_relocate_with_yes_prints_the_plan_the_steps_and_the_operation_id_last(fake_world: FakeDr) -> None:
    result = CliRunner().invoke(app, ["relocate", "--app", "nexus", "--to", "site-b", "--yes"])
    assert result.exit_code == 0, result.output
    lines = result.output.strip().splitlines()
    assert lines[0].startswith("# relocate of nexus")
    assert any(ln.startswith("operation relocate-") and ln.endswith("; running") for ln in lines)
    assert any(ln.startswith("relocate ") and ln.endswith(": completed") for ln in lines)
    assert lines[-1].startswith("relocate-") and set(fake_world.nexus) == {"site-b"}


def test_a_dry_run_prints_the_plan_and_changes_nothing(fake_world: FakeDr) -> None:
    result = CliRunner().invoke(app, ["relocate", "--app", "nexus", "--to", "site-b", "--dry-run"])
    assert result.exit_code == 0, result.output
    assert result.output.strip().splitlines()[-1] == "dry run: nothing was changed"
    assert set(fake_world.nexus) == {"site-a"}


def test_a_refused_plan_is_one_error_line_after_the_plan(fake_world: FakeDr) -> None:
    fake_world.lose("site-a")
    result = CliRunner().invoke(app, ["relocate", "--app", "nexus", "--to", "site-b", "--yes"])
    assert result.exit_code == 1
    assert "Traceback" not in result.output
    last = result.output.strip().splitlines()[-1]
    assert (
        last.startswith("error: relocate of nexus refused:")
        and "standby failover --app nexus --to site-b" in last
    )


def test_a_failover_without_the_acknowledgements_is_refused_and_nothing_moves(fake_world: FakeDr) -> None:
    fake_world.lose("site-a")
    result = CliRunner().invoke(app, ["failover", "--app", "nexus", "--to", "site-b", "--yes"])
    assert result.exit_code == 1
    assert "acknowledge the data loss" in result.output.strip().splitlines()[-1]
    assert fake_world.mirror.promoted == []


def test_a_plan_that_changed_after_yes_approved_it_is_refused_with_both_plans_shown(
    fake_world: FakeDr, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake_world.lose("site-a")
    first = ops_cli.prepare

    def plan_then_site_a_returns(*args: object, **kwargs: object) -> object:
        prepared = first(*args, **kwargs)  # type: ignore[arg-type]
        fake_world.regain("site-a")  # between the plan and the approval's re-check
        return prepared

    monkeypatch.setattr(ops_cli, "prepare", plan_then_site_a_returns)
    result = CliRunner().invoke(
        app,
        [
            "failover",
            "--app",
            "nexus",
            "--to",
            "site-b",
            "--yes",
            "--reason",
            "outage",
            "--acknowledge-data-loss",
            "--acknowledge-unfenced",
        ],
    )
    assert result.exit_code == 1, result.output
    assert "The world changed after the approval" in result.output
    assert "promote-target is no longer forced" in result.output
    assert "the plan changed after --yes approved it" in result.output
    assert fake_world.mirror.promoted == [] and fake_world.nexus["site-a"].running
