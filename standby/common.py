"""Helpers shared by every ``standby`` sub-command: one-line errors and the ``--config`` option.

They live here, not in :mod:`standby.cli`, because ``standby.cli`` imports the sub-command modules.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer

from drkit.adapters.runner import hide_from_commands
from drkit.domain.errors import ConfigError, StandbyError
from drkit.jobs.requests import KEY_ENV as KEY_ENV  # the default of every --key-env

T = TypeVar("T")

ConfigOption = Annotated[
    Path | None,
    typer.Option("--config", "-c", help="configuration file [default: $STANDBY_CONFIG, then ./standby.yaml]"),
]

def _hidden_key_env(name: str) -> str:
    """A ``--key-env`` name, registered at once so no command started later inherits the key."""
    hide_from_commands(name)
    return name


KeyEnvOption = Annotated[
    str,
    typer.Option(
        "--key-env",
        help="environment variable holding the backup master key (base64 of 32 bytes)",
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


def world_of(
    config: Path | None, *, app: str | None = None, site: str | None = None, key_env: str = KEY_ENV
) -> Any:
    """The operations' world for ``--config`` (20 s per call, so a lost site answers quickly).

    ``app`` and ``site`` are checked against the configuration first: a misspelt name is named
    before anything (credentials included) is touched. The key in ``key_env`` (when set) signs and
    checks the placement records, journals and drill reports; without one the command says once,
    on stderr, that they are unauthenticated (as every other warning of the world: ``warning: ...``).
    """
    from drkit.config import load_config
    from drkit.jobs.backup import key_from_env
    from drkit.jobs.world import build_world

    cfg = guarded(lambda: load_config(config))
    if app is not None:
        guarded(lambda: cfg.app(app))
    if site is not None:
        guarded(lambda: cfg.site(site))
    key = guarded(lambda: key_from_env(key_env))
    world = guarded(lambda: build_world(cfg, timeout=20.0, key=key))
    world.on_warning = lambda line: typer.echo(f"warning: {line}", err=True)  # once per command
    return world


def echo_step(_journal: Any, record: Any) -> None:
    """Print one step's outcome on stderr as an operation or a drill goes."""
    took = "" if record.seconds is None else f" ({record.seconds:.1f}s)"
    typer.echo(f"  {record.outcome:8} {record.name} on {record.site}{took}", err=True)
