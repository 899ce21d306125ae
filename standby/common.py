"""Helpers shared by every ``standby`` sub-command: one-line errors, the options every command
spells the same way (``-c/--config``, ``-a/--app``, ``-s/--site``, ``-o/--output``, ``--key-env``)
and the printing of records as a table, JSON or YAML.

They live here, not in :mod:`standby.cli`, because ``standby.cli`` imports the sub-command modules.

Conventions (the kubectl, velero and prefect habits):

* ``-c/--config`` is accepted on the root command and on every sub-command that reads the
  configuration (the sub-command's wins); its value is a YAML file or ``block:NAME`` (a Standby
  Configuration block, as the flows take it), default ``$STANDBY_CONFIG``, then ``./standby.yaml``.
* ``-o/--output table|json|yaml`` on every command that prints records; ``table`` (the default)
  is for people, the others for scripts. An older ``--json`` is kept as a hidden alias of ``-o json``.
* Durations are written with their unit (``30s``, ``10m``, ``26h``); a bare number is seconds.
* A renamed option keeps its old spelling as a hidden alias (deprecated: scripts keep working).
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, Literal, TypeVar

import typer
import yaml

from drkit.adapters.runner import hide_from_commands
from drkit.domain.errors import ConfigError, StandbyError
from drkit.jobs.requests import KEY_ENV as KEY_ENV  # the default of every --key-env

T = TypeVar("T")

CONFIG_ENV = "STANDBY_CONFIG"
BLOCK_PREFIX = "block:"
ROOT_CONFIG = "standby.config"
"""Where the root command's ``--config`` waits for the sub-command (the context's ``meta``, shared with the sub-command's)."""


def group(help: str, **settings: Any) -> typer.Typer:
    """A ``standby`` command group: plain help (no Rich markup, so ``[default: ...]`` and names in
    brackets print as written), ``-h`` beside ``--help``, no completion options (the root has them)."""
    settings.setdefault("add_completion", False)
    return typer.Typer(
        no_args_is_help=True,
        help=help,
        rich_markup_mode=None,
        context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100},
        **settings,
    )


def _config_value(ctx: typer.Context, value: Path | None) -> Any:
    """The ``--config`` of a command: its own, else the root command's, else ``$STANDBY_CONFIG``.

    ``block:NAME`` is loaded here, from Prefect (its site, app, Secret and AWS credentials blocks),
    and handed on as the loaded configuration, which every loader of the CLI accepts as it is; a
    path is handed on as the path. A block that cannot be loaded is one line and exit 2.
    """
    if value is None:
        value = ctx.meta.get(ROOT_CONFIG)
    ref = str(value) if value is not None else os.environ.get(CONFIG_ENV, "")
    if not ref.strip().startswith(BLOCK_PREFIX):
        return value
    if ctx.resilient_parsing:  # shell completion: never call Prefect
        return None
    from blocks.config import resolve_config

    return guarded(lambda: resolve_config(ref))


def root_config(ctx: typer.Context, value: Path | None) -> Path | None:
    """The root command's ``--config``: kept for the sub-command (see :func:`_config_value`)."""
    if value is not None:
        ctx.meta[ROOT_CONFIG] = value
    return value


CONFIG_HELP = "configuration: a YAML file, or block:NAME (a Standby Configuration block, as the flows take)"
CONFIG_DEFAULT = "$STANDBY_CONFIG, then ./standby.yaml"

ConfigOption = Annotated[
    Path | None,
    typer.Option(
        "--config",
        "-c",
        help=CONFIG_HELP,
        show_default=CONFIG_DEFAULT,
        callback=_config_value,
        metavar="FILE|block:NAME",
    ),
]
"""``-c/--config``; at run time the value is the path, or the configuration loaded from ``block:NAME``."""

Output = Literal["table", "json", "yaml"]
OutputOption = Annotated[
    Output | None,
    typer.Option(
        "--output",
        "-o",
        help="output format: table for people, json or yaml for scripts",
        show_default="table",
    ),
]
JsonAlias = Annotated[bool, typer.Option("--json", hidden=True, help="deprecated: -o json")]


def output_of(output: Output | None, as_json: bool = False) -> Output:
    """The format asked for: ``-o``, else ``json`` for the deprecated ``--json``, else ``table``."""
    if output is not None:
        return output
    return "json" if as_json else "table"


def emit(output: Output, data: Any, table: Callable[[], str]) -> None:
    """Print ``data`` (JSON types) as JSON or YAML, or ``table()`` for ``-o table``."""
    if output == "json":
        typer.echo(json.dumps(data, default=str))
    elif output == "yaml":
        typer.echo(yaml.safe_dump(json.loads(json.dumps(data, default=str)), sort_keys=False).rstrip())
    else:
        text = table()
        if text:
            typer.echo(text)


def duration(value: str | float) -> float:
    """The ``parser`` of a duration option: ``30s``, ``10m``, ``2h``, ``1d`` or a bare number of
    seconds, as seconds; anything else is a usage error naming the option (a default in seconds
    passes as it is)."""
    from drkit.domain.durations import parse_duration

    if isinstance(value, int | float):
        return float(value)
    try:
        return parse_duration(value.strip()).total_seconds()
    except ValueError:
        raise typer.BadParameter(
            f"{value!r} is not a duration; write it with its unit, e.g. 30s, 10m, 2h (a bare number is seconds)"
        ) from None


def option_duration(seconds: float) -> str:
    """A default in seconds written as a duration option takes it (``300`` -> ``5m``, ``0.2`` -> ``0.2s``),
    so ``--help`` shows what can be typed back; :func:`drkit.views.status.duration_text` is for reading."""
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size and seconds % size == 0:
            return f"{int(seconds // size)}{unit}"
    return f"{seconds:g}s"


def _hidden_key_env(name: str) -> str:
    """A ``--key-env`` name, registered at once so no command started later inherits the key."""
    hide_from_commands(name)
    return name


KeyEnvOption = Annotated[
    str,
    typer.Option(
        "--key-env",
        help="environment variable holding the backup master key (base64 of 32 bytes)",
        metavar="VAR",
        callback=_hidden_key_env,
    ),
]


def fail(message: str, code: int = 1) -> typer.Exit:
    """Print one line on stderr and return the Exit to raise."""
    typer.echo(message.replace("\n", " "), err=True)
    return typer.Exit(code)


def guarded(action: Callable[[], T]) -> T:
    """Run ``action``, turning Standby's errors into one line on stderr and an exit status.

    Exit status 2 for a configuration error (bad input), 1 for any other Standby error.
    """
    try:
        return action()
    except ConfigError as exc:
        raise fail(f"error: {exc}", 2) from None
    except StandbyError as exc:
        raise fail(f"error: {exc}", 1) from None


def command_world(
    config: Path | None,
    *,
    app: str | None = None,
    site: str | None = None,
    key: Any = None,
    timeout: float | None = None,
) -> Any:
    """A command's one World for ``--config``: ``app`` and ``site`` are checked against the
    configuration first, so a misspelt name is named before anything (credentials included) is
    touched; ``key`` signs and checks the state; ``timeout`` bounds each call (None: each adapter's own)."""
    from drkit.config import load_config
    from drkit.jobs.world import build_world

    cfg = load_config(config)
    if app is not None:
        cfg.app(app)  # an unknown app is a ConfigError naming the known ones
    if site is not None:
        cfg.site(site)
    return build_world(cfg, timeout=timeout, key=key)


def world_of(
    config: Path | None, *, app: str | None = None, site: str | None = None, key_env: str = KEY_ENV
) -> Any:
    """The operations' world for ``--config`` (:func:`command_world`, 20 s per call, so a lost site
    answers quickly). The key in ``key_env`` (when set) signs and checks the placement records,
    journals and drill reports; without one the command says once, on stderr, that they are
    unauthenticated (as every other warning of the world: ``warning: ...``).
    """
    from drkit.jobs.backup import key_from_env

    key = guarded(lambda: key_from_env(key_env))
    world = guarded(lambda: command_world(config, app=app, site=site, key=key, timeout=20.0))
    world.on_warning = lambda line: typer.echo(f"warning: {line}", err=True)  # once per command
    return world


def echo_step(_journal: Any, record: Any) -> None:
    """Print one step's outcome on stderr as an operation or a drill goes."""
    took = "" if record.seconds is None else f" ({record.seconds:.1f}s)"
    typer.echo(f"  {record.outcome:8} {record.name} on {record.site}{took}", err=True)
