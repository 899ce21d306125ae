"""The ``standby`` command follows its ecosystem's habits (kubectl, velero, prefect): every default and
every choice shows in ``--help``, no reStructuredText leaks into it, ``-c/--config`` works on the root
command and takes ``block:NAME``, ``-o table|json|yaml`` prints records, a renamed option keeps its
old spelling, and there are ``--version`` and shell completion."""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import typer
import yaml
from typer.testing import CliRunner

from drkit.domain import crypto
from drkit.jobs.backup import run_backup
from drkit.testing.dr import FakeDr, fake_dr
from standby import common, ops_cli
from standby.cli import app

CONFIG = str(Path(__file__).resolve().parents[2] / "standby.example.yaml")
KEY = crypto.MasterKey(bytes(range(32)))


def _commands(group: Any, path: tuple[str, ...] = ()) -> Iterator[tuple[tuple[str, ...], Any]]:
    yield path, group
    for name, sub in getattr(group, "commands", {}).items():
        yield from _commands(sub, (*path, name))


COMMANDS = list(_commands(typer.main.get_command(app)))


def _help(path: tuple[str, ...]) -> str:
    result = CliRunner().invoke(app, [*path, "--help"], terminal_width=100)
    assert result.exit_code == 0, result.output
    return " ".join(result.output.split())  # the text as one line: wrapping is not a concern here


@pytest.mark.parametrize(("path", "command"), COMMANDS, ids=[" ".join(p) or "standby" for p, _ in COMMANDS])
def test_every_help_shows_its_defaults_and_no_rst(path: tuple[str, ...], command: Any) -> None:
    text = _help(path)
    assert "``" not in text, text  # reStructuredText from a docstring
    assert ":class:" not in text and ":func:" not in text, text
    for param in command.params:
        if getattr(param, "hidden", False) or param.name in ("help", "install_completion", "show_completion"):
            continue
        shown = getattr(param, "show_default", None)
        if isinstance(shown, str):
            assert f"[default: ({shown})]" in text, (param.name, text)
        elif (
            isinstance(param.default, str | int | float)
            and not isinstance(param.default, bool)
            and param.default
        ):
            assert f"[default: {param.default}]" in text, (param.name, text)
    assert "[default: ]" not in text, text


@pytest.mark.parametrize(
    ("path", "choices"),
    [
        (("backup", "restore"), "<skip|update>"),
        (("drill", "run"), "[isolated|promote]"),
        (("rpo", "sample"), "[auto|always|never]"),
        (("status",), "<table|json|yaml>"),
        (("failover",), "<table|json|yaml>"),
    ],
)
def test_choices_are_listed(path: tuple[str, ...], choices: str) -> None:
    assert choices in _help(path)


def test_the_config_default_is_printed_not_swallowed_as_markup() -> None:
    text = _help(("backup", "run"))
    assert "[default: ($STANDBY_CONFIG, then ./standby.yaml)]" in text
    assert "block:NAME" in text  # the configuration may be a Prefect block, as for the flows


def test_the_same_option_has_the_same_short_name_everywhere() -> None:
    spelled: dict[str, set[str]] = {}
    for _path, command in COMMANDS:
        for param in command.params:
            if type(param).__name__ == "TyperOption" and not param.hidden:
                long = max(param.opts, key=len)
                spelled.setdefault(long, set()).add(" ".join(sorted(param.opts + param.secondary_opts)))
    assert spelled["--app"] == {"--app -a"}
    assert spelled["--config"] == {"--config -c"}
    assert spelled["--output"] == {"--output -o"}
    assert "--target-site" not in spelled  # the site an operation or a restore goes to is --to
    assert "--minutes" not in spelled  # durations carry their unit: --for 10m


def test_version_and_completion() -> None:
    result = CliRunner().invoke(app, ["--version"])
    assert result.exit_code == 0 and re.fullmatch(r"standby \d+\.\d+\.\d+\S*\n", result.output), result.output
    script = CliRunner().invoke(app, ["--show-completion", "bash"], prog_name="standby")
    assert script.exit_code == 0 and "_STANDBY_COMPLETE" in script.output, script.output
    completed = CliRunner().invoke(
        app,
        [],
        prog_name="standby",
        env={"_STANDBY_COMPLETE": "complete_bash", "COMP_WORDS": "standby back", "COMP_CWORD": "1"},
    )
    assert "backup" in completed.output, completed.output


# ------------------------------------------------------------------------- -c on the root command


@pytest.fixture
def seen_config(monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    """``standby status`` over the fake world, recording the configuration each call was given."""
    dr = fake_dr()
    seen: list[Any] = []

    def world_of(config: Any, **names: Any) -> Any:
        seen.append(config)
        return dr.world

    monkeypatch.setattr(ops_cli, "world_of", world_of)
    monkeypatch.delenv("STANDBY_CONFIG", raising=False)
    return seen


def test_config_on_the_root_command_reaches_the_sub_command(seen_config: list[Any]) -> None:
    assert CliRunner().invoke(app, ["-c", CONFIG, "status"]).exit_code == 0
    assert CliRunner().invoke(app, ["--config", "/elsewhere.yaml", "status", "-c", CONFIG]).exit_code == 0
    assert CliRunner().invoke(app, ["status"]).exit_code == 0
    assert seen_config == [Path(CONFIG), Path(CONFIG), None]  # the sub-command's own wins


def test_block_config_is_loaded_as_the_flows_load_it(
    seen_config: list[Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    import blocks.config

    loaded = fake_dr().world.config
    asked: list[str | None] = []
    monkeypatch.setattr(blocks.config, "resolve_config", lambda ref: asked.append(ref) or loaded)
    assert CliRunner().invoke(app, ["-c", "block:lab", "status"]).exit_code == 0
    monkeypatch.setenv("STANDBY_CONFIG", "block:prod")
    assert CliRunner().invoke(app, ["status"]).exit_code == 0
    assert asked == ["block:lab", "block:prod"] and seen_config == [loaded, loaded]


def test_a_block_that_cannot_be_loaded_is_one_line_and_exit_2(monkeypatch: pytest.MonkeyPatch) -> None:
    import blocks.config
    from drkit.domain.errors import ConfigError

    def missing(ref: str) -> Any:
        raise ConfigError(
            "Standby Configuration block 'nope' does not exist", hint="run standby blocks import"
        )

    monkeypatch.setattr(blocks.config, "resolve_config", missing)
    result = CliRunner().invoke(app, ["status", "-c", "block:nope"])
    assert result.exit_code == 2 and result.output.strip().splitlines() == [
        "error: Standby Configuration block 'nope' does not exist (next: run standby blocks import)"
    ]


# ----------------------------------------------------------------------------------- -o everywhere


@pytest.fixture
def world(monkeypatch: pytest.MonkeyPatch) -> FakeDr:
    """The fake world behind every command that builds one, with a backup of nexus on site-a."""
    from standby import drill_cli

    dr = fake_dr()
    b = dr.world.bundle("site-a")
    run_backup(dr.world.config.app("nexus"), b.site, b.cluster, b.store, key=KEY, clock=dr.clock)
    for module in (ops_cli, drill_cli):
        monkeypatch.setattr(module, "world_of", lambda config, **names: dr.world)
    monkeypatch.setenv("STANDBY_BACKUP_KEY", base64.b64encode(bytes(range(32))).decode())
    return dr


def _out(argv: list[str], fmt: str) -> Any:
    result = CliRunner().invoke(app, [*argv, "-o", fmt])
    assert result.exit_code == 0, result.output
    text = result.stdout
    return json.loads(text) if fmt == "json" else yaml.safe_load(text)


@pytest.mark.parametrize("fmt", ["json", "yaml"])
def test_a_dry_run_plan_prints_as_data(world: FakeDr, fmt: str) -> None:
    plan = _out(["relocate", "-a", "nexus", "--to", "site-b", "--dry-run"], fmt)
    assert plan["kind"] == "relocate" and plan["app"] == "nexus" and plan["steps"]


def test_o_json_without_dry_run_is_refused_before_anything(world: FakeDr) -> None:
    result = CliRunner().invoke(app, ["relocate", "-a", "nexus", "--to", "site-b", "--yes", "-o", "json"])
    assert result.exit_code == 2 and "add --dry-run" in result.output
    assert set(world.nexus) == {"site-a"}


@pytest.mark.parametrize("fmt", ["json", "yaml"])
def test_operations_list_and_show_print_as_data(world: FakeDr, fmt: str) -> None:
    from drkit.jobs.operations import Timeouts, execute
    from tests.unit.test_operations import _start

    done = execute(
        world.world, _start(world, "relocate", "site-b"), key=KEY, timeouts=Timeouts(default=30.0, poll=1.0)
    )
    listed = _out(["operation", "list", "-a", "nexus"], fmt)
    assert [r["op_id"] for r in listed["operations"]] == [done.op_id]
    shown = _out(["operation", "show", done.op_id], fmt)
    assert shown["op_id"] == done.op_id and shown["status"] == "completed"
    legacy = CliRunner().invoke(app, ["operation", "show", done.op_id, "--json"])  # the deprecated spelling
    assert json.loads(legacy.stdout)["op_id"] == done.op_id


def test_drill_list_and_show_print_as_data(world: FakeDr) -> None:
    ran = CliRunner().invoke(app, ["drill", "run", "-a", "nexus"])
    drill_id = ran.stdout.strip().splitlines()[-1]
    assert ran.exit_code == 0, ran.output
    for fmt in ("json", "yaml"):
        listed = _out(["drill", "list", "-a", "nexus"], fmt)
        assert [d["drill_id"] for d in listed["drills"]] == [drill_id] and listed["drills"][0]["verdict"]
        assert _out(["drill", "show", drill_id], fmt)["drill_id"] == drill_id
    table = CliRunner().invoke(app, ["drill", "list", "-a", "nexus", "-o", "table"])
    assert table.stdout.startswith(drill_id)


def test_a_bad_output_format_names_the_choices() -> None:
    result = CliRunner().invoke(app, ["status", "-o", "xml"])
    assert result.exit_code == 2 and "'xml' is not one of 'table', 'json', 'yaml'" in result.output


def test_durations_take_their_unit_and_bare_seconds() -> None:
    assert common.duration("90s") == common.duration("90") == 90.0
    assert common.duration("10m") == 600.0 and common.option_duration(600.0) == "10m"
    with pytest.raises(typer.BadParameter, match="'soon' is not a duration"):
        common.duration("soon")
