"""``standby doctor``: check, per site and per object store, what a disaster would otherwise reveal.

    standby doctor [--app APP] [--json] [--key-env VAR] [--max-backup-age 26h]

One line per check: site, check, pass or FAIL, what was seen, and the fix when it failed. Exit
status 0 when every check passed, 1 when one failed, 2 for a usage or configuration error.
"""

from __future__ import annotations

import json
from typing import Annotated

import typer

from drkit.domain.durations import parse_window
from drkit.jobs.backup import key_from_env
from drkit.jobs.doctor import run_doctor
from standby.common import KEY_ENV, ConfigOption, KeyEnvOption, guarded, world_of


def doctor(
    app: Annotated[str | None, typer.Option("--app", help="only this app [default: every app]")] = None,
    config: ConfigOption = None,
    as_json: Annotated[bool, typer.Option("--json", help="one JSON object: ok, and every check")] = False,
    key_env: KeyEnvOption = KEY_ENV,
    max_backup_age: Annotated[
        str, typer.Option("--max-backup-age", help="oldest acceptable newest backup per store, e.g. 26h")
    ] = "26h",
) -> None:
    """Check tokens and RBAC, mirroring peers, daemons and snapshot schedules on every site, and each
    store's conditional writes, newest backups and key; exit 1 when a check fails."""
    limit = guarded(lambda: parse_window(max_backup_age, option="--max-backup-age"))
    world = world_of(config, app=app, key_env=key_env)
    apps = [world.config.app(app)] if app else list(world.config.apps)
    key = guarded(lambda: key_from_env(key_env))
    checks = guarded(lambda: run_doctor(world, apps, key=key, key_env=key_env, max_backup_age=limit))
    ok = all(c.ok for c in checks)
    if as_json:
        typer.echo(json.dumps({"ok": ok, "checks": [c.model_dump() for c in checks]}))
    else:
        for check in checks:
            typer.echo(check.line())
        failed = sum(not c.ok for c in checks)
        typer.echo(f"{len(checks) - failed} passed, {failed} failed")
    if not ok:
        raise typer.Exit(1)
