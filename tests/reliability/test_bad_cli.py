"""CLI arguments as an operator types them: words for numbers, negative durations, unknown apps, sites, ids and commands.

Each runs ``standby`` as its console script does (``standby.cli:main``): one ``error:`` line on
stderr with the next step, exit 2 (the README's "bad input"), no traceback.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.reliability.helpers import EXIT_BAD_INPUT, assert_cli_error, standby

CONFIG = str(Path(__file__).resolve().parents[2] / "standby.example.yaml")

CASES: list[tuple[list[str], str]] = [
    (["rpo", "watch", "--minutes", "ten"], "--minutes"),
    (["rpo", "watch", "--minutes", "-5"], "minutes: Input should be greater than 0"),
    (
        ["rpo", "watch", "--minutes", "1", "--every", "0"],
        "every_seconds: Input should be greater than or equal to 0.2",
    ),
    (["rpo", "watch", "--minutes", "1e309"], "minutes: Input should be less than or equal to 1440"),
    (["rpo", "sample", "--exact", "sometimes"], "--exact must be auto, always or never"),
    (["rpo", "report", "--since", "soon"], "soon"),
    (["rpo", "report", "--since", "-1h"], "-1h"),
    (["backup", "run", "--app", "nope"], "unknown app 'nope'"),
    (["backup", "run", "--app", "nexus", "--site", "site-z"], "unknown site 'site-z'"),
    (["backup", "restore", "--app", "nexus", "--target-site", "site-b", "--timeout", "soon"], "--timeout"),
    (["relocate", "--app", "nope", "--to", "site-b"], "unknown app 'nope'"),
    (["failover", "--app", "nexus", "--to", "site-z"], "unknown site 'site-z'"),
    (["failback", "--app", "Nexus!"], "unknown app 'Nexus!'"),
    (["status", "--app", "nope"], "unknown app 'nope'"),
    (["operation", "show", "not-an-id"], "'not-an-id' is not an operation id"),
    (["operation", "resume", "failover-2026"], "is not an operation id"),
    (["drill", "run", "--app", "nexus", "--mode", "sideways"], "--mode must be promote or isolated"),
    (["drill", "show", "../../etc/passwd"], "is not an operation id"),
    (["drill", "run", "--app", "nope"], "unknown app 'nope'"),
]


@pytest.mark.parametrize(("argv", "expected"), CASES, ids=[" ".join(a) for a, _ in CASES])
def test_bad_argument_is_one_line_and_exit_2(
    argv: list[str], expected: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("STANDBY_CONFIG", raising=False)
    result = standby(*argv, "--config", CONFIG)
    assert_cli_error(result, EXIT_BAD_INPUT, expected)


@pytest.mark.parametrize(
    ("argv", "named"),
    [
        (["nope"], "No such command 'nope'"),
        (["backup", "run", "--bogus"], "standby backup run: No such option"),
        (["rpo", "sample", "--exact"], "Option '--exact' requires an argument"),
    ],
    ids=["unknown command", "unknown option", "option without its value"],
)
def test_usage_errors_are_one_line_naming_the_command(argv: list[str], named: str) -> None:
    assert_cli_error(standby(*argv), EXIT_BAD_INPUT, named)
