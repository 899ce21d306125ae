"""``standby relocate|failover|failback|operation|drill``: a user's mistake is one line and exit 2."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from standby.cli import app

CONFIG = str(Path(__file__).resolve().parents[2] / "standby.example.yaml")


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["relocate", "--app", "nope", "--to", "site-b"], "unknown app 'nope'; known apps: nexus"),
        (["failover", "--app", "nexus", "--to", "site-z"], "unknown site 'site-z'; known sites: site-a, site-b"),
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
