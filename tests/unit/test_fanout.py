"""The verdict of a scheduled job over every app (drkit.domain.fanout): failed apps are named with
their reasons, skipped apps are reported but never fail the run."""

from __future__ import annotations

from drkit.domain.fanout import AppOutcome, failure, outcome_line, outcome_rows

PASSED = AppOutcome(app="nexus", verdict="passed", detail="run r1: 9 objects", flow_run="id-1")
FAILED = AppOutcome(app="web", verdict="failed", detail="403 on site-a", flow_run="id-2")
SKIPPED = AppOutcome(app="vm", verdict="skipped", detail="canary possible: checks.kind is 'http'")


def test_no_failure_when_every_app_passed_or_was_skipped() -> None:
    assert failure("drill", [PASSED, SKIPPED]) is None
    assert outcome_line("drill", [PASSED, SKIPPED]) == "drill of 2 app(s): 1 passed, 1 skipped (vm)"


def test_the_failure_names_each_failed_app_with_its_reason_and_only_those() -> None:
    error = failure("backup", [PASSED, FAILED, SKIPPED])
    assert error is not None
    assert error.message == (
        "backup of 3 app(s): 1 passed, 1 failed (web), 1 skipped (vm); web: 403 on site-a"
    )
    assert "app=web" in error.hint and "nexus" not in error.hint and error.context["failed"] == ["web"]


def test_rows_keep_the_order_given_and_show_a_missing_run_as_a_dash() -> None:
    rows = outcome_rows([FAILED, SKIPPED])
    assert [r["app"] for r in rows] == ["web", "vm"] and rows[1]["flow run"] == "-"
    assert outcome_line("backup", []) == "backup of 0 app(s): none configured"
