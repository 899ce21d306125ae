"""``standby doctor``: check, per site and per object store, what a disaster would otherwise reveal.

    standby doctor [--app APP] [--json] [--key-env VAR] [--max-backup-age 26h]
                   [--key-block NAME] [--job-secret SITE/NAMESPACE/NAME]

One line per check: site, check, pass or FAIL, what was seen, and the fix when it failed. Exit
status 0 when every check passed, 1 when one failed, 2 for a usage or configuration error.

The ``key-routes`` line compares the key rings of the routes doctor can see without new privileges:
the environment variable (``--key-env``), the flows' Prefect Secret block (``--key-block``, read
when ``PREFECT_API_URL`` is set) and the Kubernetes job's Secret (``--job-secret``, read only when
Standby's credential on that site may already get it).
"""

from __future__ import annotations

import os
from typing import Annotated

import typer

from drkit.domain import crypto
from drkit.domain.durations import parse_window
from drkit.domain.errors import StandbyError
from drkit.domain.keyring import KEY_BLOCK
from drkit.jobs.backup import key_from_env, key_from_text
from drkit.jobs.doctor import job_secret_ring, run_doctor
from drkit.jobs.world import World
from standby.common import (
    KEY_ENV,
    ConfigOption,
    JsonAlias,
    KeyEnvOption,
    OutputOption,
    emit,
    fail,
    guarded,
    output_of,
    world_of,
)


def doctor(
    app: Annotated[
        str | None, typer.Option("--app", "-a", help="only this app", show_default="every app", metavar="APP")
    ] = None,
    config: ConfigOption = None,
    output: OutputOption = None,
    as_json: JsonAlias = False,
    key_env: KeyEnvOption = KEY_ENV,
    max_backup_age: Annotated[
        str,
        typer.Option(
            "--max-backup-age", help="oldest acceptable newest backup per store, e.g. 26h", metavar="DURATION"
        ),
    ] = "26h",
    key_block: Annotated[
        str,
        typer.Option(
            "--key-block", help="the flows' Prefect Secret block to compare (when PREFECT_API_URL is set)"
        ),
    ] = KEY_BLOCK,
    job_secret: Annotated[
        str | None,
        typer.Option(
            "--job-secret",
            help="the Kubernetes job's Secret to compare, SITE/NAMESPACE/NAME (read if allowed)",
        ),
    ] = None,
) -> None:
    """Check tokens and RBAC, mirroring peers, daemons and snapshot schedules on every site, and each
    store's conditional writes, newest backups and key; exit 1 when a check fails."""
    limit = guarded(lambda: parse_window(max_backup_age, option="--max-backup-age"))
    world = world_of(config, app=app, key_env=key_env)
    apps = [world.config.app(app)] if app else list(world.config.apps)
    key = guarded(lambda: key_from_env(key_env))
    routes = key_routes(world, key, key_env, key_block, job_secret)
    checks = guarded(
        lambda: run_doctor(world, apps, key=key, key_env=key_env, max_backup_age=limit, key_routes=routes)
    )
    ok = all(c.ok for c in checks)
    fmt = output_of(output, as_json)
    if fmt != "table":
        emit(fmt, {"ok": ok, "checks": [c.model_dump(mode="json") for c in checks]}, str)
    else:
        for check in checks:
            typer.echo(check.line())
        failed = sum(not c.ok for c in checks)
        typer.echo(f"{len(checks) - failed} passed, {failed} failed")
    if not ok:
        raise typer.Exit(1)


Route = tuple[str, tuple[str, ...] | None, str]


def key_routes(
    world: World, key: crypto.MasterKey | None, key_env: str, block: str, job_secret: str | None
) -> list[Route]:
    """Each route's key ids, or ``None`` and why it was not seen (see the module docstring)."""
    routes: list[Route] = [(f"${key_env}", key.key_ids, "") if key else (f"${key_env}", None, "no key in it")]
    if os.environ.get("PREFECT_API_URL"):
        try:
            from tasks.backup import secret_key_text

            ring = key_from_text(secret_key_text(block), source=f"Prefect Secret block {block!r}")
            routes.append((f"Secret block {block}", ring.key_ids if ring else (), ""))
        except StandbyError as error:
            routes.append((f"Secret block {block}", None, error.message))
        except Exception as error:  # a Prefect API that does not answer is one line, not a crash
            routes.append(
                (f"Secret block {block}", None, f"the Prefect API did not answer ({type(error).__name__})")
            )
    else:
        routes.append((f"Secret block {block}", None, "PREFECT_API_URL is not set"))
    if job_secret:
        parts = job_secret.split("/")
        if len(parts) != 3 or not all(parts):
            raise fail(
                f"error: --job-secret {job_secret!r} is not SITE/NAMESPACE/NAME"
                " (next: e.g. --job-secret site-a/standby/standby-backup-key)",
                2,
            )
        site, namespace, name = parts
        guarded(lambda: world.config.site(site))
        ids, why = job_secret_ring(world, site, namespace, name, key_env)
        routes.append((f"Secret {namespace}/{name} on {site}", ids, why))
    return routes
