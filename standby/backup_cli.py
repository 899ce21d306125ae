"""``standby backup``: manifest backups to S3, without a Prefect server.

    standby backup run     --config FILE --app APP [--site SITE]     # prints the run id on its last line
    standby backup list    [--app APP] [--site SITE]
    standby backup show    RUN [--app APP] [--objects]
    standby backup verify  [RUN] [--dry-run-site SITE]
    standby backup restore [RUN] --target-site SITE [--namespace NS] [--policy skip|update] [--dry-run]
    standby backup decrypt OBJECT --key-env VAR [--run RUN]        # one object's manifest

The encryption key is read from an environment variable (``--key-env``, default
``STANDBY_BACKUP_KEY``): base64 of 32 bytes. Only its key id is ever printed.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

import typer
import yaml

from drkit.adapters.clock import SystemClock
from drkit.config import load_config
from drkit.domain import crypto
from drkit.domain.blobs import open_blob
from drkit.domain.errors import ConfigError, NotFound
from drkit.domain.layout import StoreLayout
from drkit.domain.models import ProtectedApp, Site, StandbyConfig
from drkit.jobs import backup as jobs
from drkit.jobs.requests import BackupRequest, RestoreRequest, VerifyRequest, default, describe
from drkit.jobs.restore import run_restore
from drkit.jobs.sites import store_for
from drkit.jobs.verify import run_verify
from drkit.jobs.world import load_placed_config
from standby.common import KEY_ENV, ConfigOption, KeyEnvOption, guarded

backup_app = typer.Typer(
    no_args_is_help=True, add_completion=False, help="Manifest backups to S3: run, list, verify, restore."
)

AppOption = Annotated[str | None, typer.Option("--app", "-a", help="app name [default: the only app]")]
SiteOption = Annotated[
    str | None, typer.Option("--site", "-s", help="site the backup reads from [default: the app's primary]")
]


@backup_app.callback()
def _group() -> None:
    """Manifest backups to S3: run, list, show, verify, restore, decrypt."""


def _pick(config: Path | None, app: str | None, site: str | None) -> tuple[StandbyConfig, ProtectedApp, Site]:
    plain = load_config(config)  # names are checked before any credentials are read
    if app is not None:
        plain.app(app)
    if site is not None:
        plain.site(site)
    cfg = load_placed_config(config)
    if app is None:
        if len(cfg.apps) != 1:
            raise ConfigError(
                f"the configuration protects {len(cfg.apps)} apps; say which one",
                hint="pass --app " + "|".join(a.name for a in cfg.apps),
            )
        chosen = cfg.apps[0]
    else:
        chosen = cfg.app(app)
    return cfg, chosen, cfg.site(site or chosen.primary_site)


def _key(var: str, *, required: bool = False) -> crypto.MasterKey | None:
    key = jobs.key_from_env(var)
    if key is None and required:
        raise ConfigError(
            f"environment variable {var} holds no backup encryption key",
            hint=f"export {var} (base64 of the 32-byte master key), or pass --key-env VAR",
        )
    return key


def _echo(lines: list[str]) -> None:
    for line in lines:
        typer.echo(line)


@backup_app.command("run")
def run_cmd(
    config: ConfigOption = None,
    app: AppOption = None,
    site: SiteOption = None,
    key_env: KeyEnvOption = KEY_ENV,
) -> None:
    """Back up one app now (no Prefect server needed); the run id is printed on the last line.

    Retention is left to the backup flow (it holds the app's concurrency slot). Exit status 3 when
    the run is partially failed (a kind could not be listed).
    """

    def action() -> jobs.BackupSummary:
        cfg, chosen, where = _pick(config, app, site)
        request = BackupRequest(app=chosen.name, site=where.name, key_source=f"env:{key_env}")
        return jobs.back_up(
            cfg,
            request,
            key=_key(key_env),
            clock=SystemClock(),
            progress=lambda done, total, msg: typer.echo(msg, err=True) if done == total else None,
        )

    summary = guarded(action)
    _echo(summary.lines())
    typer.echo(summary.run_id)
    if summary.status != "complete":
        raise typer.Exit(3)


@backup_app.command("list")
def list_cmd(config: ConfigOption = None, app: AppOption = None, site: SiteOption = None) -> None:
    """List the finished runs of an app, oldest first (``*`` marks ``latest``)."""

    def action() -> list[str]:
        _, chosen, where = _pick(config, app, site)
        store = store_for(where)
        layout = StoreLayout(where.s3.prefix)
        latest = jobs.read_latest(store, layout, where.name, chosen.name)
        rows = []
        for index in jobs.list_runs(store, layout, where.name, chosen.name):
            mark = "*" if index.run_id == latest else " "
            rows.append(
                f"{mark} {index.run_id}  {index.status:<16} objects={len(index.objects):<5}"
                f" new={index.metadata.objects_new:<5} bytes={index.metadata.bytes_uploaded}"
                f" warnings={len(index.warnings)}" + (f" same-as={index.same_as}" if index.same_as else "")
            )
        return rows or [f"no finished backup of app {chosen.name} on site {where.name}"]

    _echo(guarded(action))


@backup_app.command("show")
def show_cmd(
    run: Annotated[str, typer.Argument(help="run id, or 'latest'")],
    config: ConfigOption = None,
    app: AppOption = None,
    site: SiteOption = None,
) -> None:
    """Show one run's index: metadata, warnings and every object."""

    def action() -> list[str]:
        _, chosen, where = _pick(config, app, site)
        store = store_for(where)
        layout = StoreLayout(where.s3.prefix)
        run_id = jobs.resolve_run(store, layout, where.name, chosen.name, None if run == "latest" else run)
        index = jobs.read_index(store, layout, where.name, chosen.name, run_id)
        lines = [
            f"run {index.run_id} of app {index.app} on site {index.site}: {index.status}",
            f"started {index.started.isoformat()}, finished {index.finished.isoformat()}",
            f"previous run: {index.previous_run or '(none)'}",
            f"objects: {len(index.objects)} ({index.metadata.objects_new} new,"
            f" {index.metadata.objects_reused} reused), bytes uploaded {index.metadata.bytes_uploaded}",
            f"index: {layout.index_key(where.name, chosen.name, index.run_id)}"
            + (f" (unchanged: objects of run {index.same_as})" if index.same_as else ""),
        ]
        lines += [f"warning: {w}" for w in index.warnings]
        for e in index.objects:
            flag = f"enc:{e.key_id}" if e.encrypted else "plain"
            lines.append(f"  {e.path}  {e.size}B  {flag}  {e.key}")
        return lines

    _echo(guarded(action))


@backup_app.command("verify")
def verify_cmd(
    run: Annotated[str | None, typer.Argument(help="run id [default: latest]")] = None,
    config: ConfigOption = None,
    app: AppOption = None,
    site: SiteOption = None,
    dry_run_site: Annotated[
        str | None, typer.Option("--dry-run-site", help=describe(VerifyRequest, "dry_run_site"))
    ] = default(VerifyRequest, "dry_run_site"),
    key_env: KeyEnvOption = KEY_ENV,
) -> None:
    """Check every blob's checksum, decrypt, validate the manifests; name every bad object (exit 1)."""

    def action() -> list[str]:
        cfg, chosen, where = _pick(config, app, site)
        request = VerifyRequest(app=chosen.name, site=where.name, run_id=run, dry_run_site=dry_run_site,
                                key_source=f"env:{key_env}")  # fmt: skip
        report = run_verify(cfg, request, key=_key(key_env))
        _echo(report.lines())
        if not report.ok:
            raise typer.Exit(1)
        return []

    guarded(action)


@backup_app.command("restore")
def restore_cmd(
    target_site: Annotated[str, typer.Option("--target-site", "-t", help="site to restore into")],
    run: Annotated[str | None, typer.Argument(help="run id [default: latest]")] = None,
    config: ConfigOption = None,
    app: AppOption = None,
    site: SiteOption = None,
    namespace: Annotated[
        str | None, typer.Option("--namespace", "-n", help=describe(RestoreRequest, "namespace"))
    ] = default(RestoreRequest, "namespace"),
    policy: Annotated[str, typer.Option("--policy", help=describe(RestoreRequest, "policy"))] = default(
        RestoreRequest, "policy"
    ),
    dry_run: Annotated[bool, typer.Option("--dry-run", help=describe(RestoreRequest, "dry_run"))] = default(
        RestoreRequest, "dry_run"
    ),
    exclude_kind: Annotated[
        list[str] | None,
        typer.Option("--exclude-kind", help=describe(RestoreRequest, "exclude_kinds") + " (repeatable)"),
    ] = None,
    timeout: Annotated[
        float, typer.Option("--timeout", help=describe(RestoreRequest, "bound_timeout"))
    ] = default(RestoreRequest, "bound_timeout"),
    key_env: KeyEnvOption = KEY_ENV,
) -> None:
    """Restore a run (or the newest complete run) of an app into a site, in restore order."""
    if policy not in ("skip", "update"):
        raise typer.BadParameter("--policy must be skip or update")
    chosen_policy: Literal["skip", "update"] = "update" if policy == "update" else "skip"

    def action() -> list[str]:
        cfg, chosen, where = _pick(config, app, site)
        request = RestoreRequest(app=chosen.name, target_site=target_site, source_site=where.name, run_id=run,
                                 namespace=namespace, policy=chosen_policy, dry_run=dry_run,
                                 exclude_kinds=tuple(exclude_kind or ()), bound_timeout=timeout,
                                 key_source=f"env:{key_env}")  # fmt: skip
        cfg.site(target_site)  # an unknown site is named before any credentials are read
        summary = run_restore(cfg, request, key=_key(key_env))
        return summary.lines()

    _echo(guarded(action))


@backup_app.command("decrypt")
def decrypt_cmd(
    obj: Annotated[str, typer.Argument(help="blob key, or logical path like core/v1/Secret/NS/NAME")],
    config: ConfigOption = None,
    app: AppOption = None,
    site: SiteOption = None,
    run: Annotated[str | None, typer.Option("--run", help="run id [default: latest]")] = None,
    key_env: KeyEnvOption = KEY_ENV,
) -> None:
    """Print the manifest of ONE object of a run, decrypted with the key in --key-env."""

    def action() -> str:
        _, chosen, where = _pick(config, app, site)
        store = store_for(where)
        layout = StoreLayout(where.s3.prefix)
        run_id = jobs.resolve_run(store, layout, where.name, chosen.name, run)
        index = jobs.read_index(store, layout, where.name, chosen.name, run_id)
        found = [e for e in index.objects if obj in (e.key, e.path)]
        if not found:
            raise NotFound(
                f"run {run_id} of app {chosen.name} has no object {obj!r}",
                hint=f"list its objects with `standby backup show {run_id}`",
            )
        entry = found[0]
        key = _key(key_env, required=entry.encrypted)
        text: str = yaml.safe_dump(open_blob(entry, store.get(entry.key), key), sort_keys=True)
        return text

    typer.echo(guarded(action), nl=False)
