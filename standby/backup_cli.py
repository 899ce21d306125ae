"""``standby backup``: manifest backups to S3, without a Prefect server.

    standby backup run     -c FILE -a APP [-s SITE]              # prints the run id on its last line
    standby backup list    [-a APP] [-s SITE] [-o table|json|yaml]  # per store: the runs it holds
    standby backup show    RUN [-a APP] [-o table|json|yaml]
    standby backup verify  [RUN] [--dry-run-site SITE] [-o table|json|yaml]
    standby backup restore [RUN] --to SITE [-n NS] [--policy skip|update] [--dry-run] [--timeout 2m]
    standby backup decrypt OBJECT --key-env VAR [--run RUN]        # one object's manifest

The encryption key is read from an environment variable (``--key-env``, default
``STANDBY_BACKUP_KEY``): base64 of 32 bytes. Only its key id is ever printed.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Annotated, Any, Literal

import typer
import yaml

from drkit.adapters.clock import SystemClock
from drkit.domain import crypto
from drkit.domain.backup_index import BackupIndex
from drkit.domain.blobs import open_blob
from drkit.domain.errors import ConfigError, NotFound, StandbyError
from drkit.domain.layout import parse_run_id
from drkit.domain.models import ProtectedApp, Site
from drkit.jobs import backup as jobs
from drkit.jobs import backup_runs
from drkit.jobs.backup import app_stores
from drkit.jobs.backup_summary import BackupSummary
from drkit.jobs.backup_sync import StoreRuns, holdings
from drkit.jobs.requests import BackupRequest, RestoreRequest, VerifyRequest, default, describe
from drkit.jobs.restore import run_restore
from drkit.jobs.verify import run_verify
from drkit.jobs.world import StoreRef, World
from standby.common import (
    KEY_ENV,
    ConfigOption,
    KeyEnvOption,
    OutputOption,
    command_world,
    duration,
    emit,
    group,
    guarded,
    option_duration,
)

backup_app = group("Manifest backups to S3: run, list, show, verify, restore, decrypt.")

AppOption = Annotated[
    str | None, typer.Option("--app", "-a", help="app name", show_default="the only app", metavar="APP")
]
SiteOption = Annotated[
    str | None,
    typer.Option(
        "--site", "-s", help="site the backup was taken on", show_default="the app's primary", metavar="SITE"
    ),
]
RunArgument = Annotated[str | None, typer.Argument(help="run id", show_default="latest")]


@backup_app.callback()
def _group() -> None:
    """Manifest backups to S3: run, list, show, verify, restore, decrypt."""


def _pick(
    config: Path | None, app: str | None, site: str | None, key_env: str = KEY_ENV
) -> tuple[World, ProtectedApp, Site]:
    """The command's one World, the app, and the site its backups are taken on: ``site``, else the
    app's current primary (its placement, checked with the key when set)."""
    world: World = command_world(config, app=app, site=site, key=_key(key_env))
    cfg = world.config
    if app is None:
        if len(cfg.apps) != 1:
            raise ConfigError(
                f"the configuration protects {len(cfg.apps)} apps; say which one",
                hint="pass --app " + "|".join(a.name for a in cfg.apps),
            )
        chosen = cfg.apps[0]
    else:
        chosen = cfg.app(app)
    return world, chosen, cfg.site(site or world.placement(chosen.name).primary)


def _read_run(
    world: World, app: ProtectedApp, where: Site, run: str | None, key: crypto.MasterKey | None
) -> tuple[StoreRef, BackupIndex]:
    """Run ``run`` (or the newest complete one) from the first store of the app's sites that holds
    it, the source's own first (authenticated with ``key``); the first store's error when none does."""
    first: StandbyError | None = None
    for ref in app_stores(world, app, where.name):
        label = jobs.store_label(ref)
        try:
            run_id = backup_runs.resolve_run(
                ref.store, ref.layout, where.name, app.name, run, key=key, label=label
            )
            return ref, backup_runs.read_index(
                ref.store, ref.layout, where.name, app.name, run_id, key=key, label=label
            )
        except StandbyError as error:
            first = first or error
    assert first is not None
    raise first


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

    The run is written to every store of the app's sites (the source's own first); a store that
    did not take it is named with the reason. Retention is left to the backup flow (it holds the
    app's concurrency slot). Exit status 3 when the run is partially failed (a kind could not be
    listed) or a store missed it (it is complete in the others; the next run or `backup verify`
    catches that store up).
    """

    def action() -> BackupSummary:
        world, chosen, where = _pick(config, app, site, key_env)
        request = BackupRequest(app=chosen.name, site=where.name, key_source=f"env:{key_env}")
        return jobs.back_up(
            world,
            request,
            key=_key(key_env),
            clock=SystemClock(),
            progress=lambda done, total, msg: typer.echo(msg, err=True) if done == total else None,
        )

    summary = guarded(action)
    _echo(summary.lines())
    typer.echo(summary.run_id)
    if summary.status != "complete" or summary.missed:
        raise typer.Exit(3)


@backup_app.command("list")
def list_cmd(
    config: ConfigOption = None,
    app: AppOption = None,
    site: SiteOption = None,
    key_env: KeyEnvOption = KEY_ENV,
    output: OutputOption = None,
) -> None:
    """List, per store of the app's sites, the finished runs it holds, oldest first (* marks its latest).

    A run complete in one store but not in another is named at the end, with how to catch up. With
    a key, sealed indexes are opened and checked; a run that fails its check is named.
    """

    def action() -> tuple[list[StoreRuns], str, str]:
        world, chosen, where = _pick(config, app, site, key_env)
        held = holdings(app_stores(world, chosen, where.name), where.name, chosen.name, key=_key(key_env))
        if all(h.failure is not None for h in held):
            raise held[0].failure  # type: ignore[misc]
        return held, chosen.name, where.name

    held, name, source = guarded(action)
    emit(
        output or "table", stores_json(held, name, source), lambda: "\n".join(store_rows(held, name, source))
    )


def stores_json(held: list[StoreRuns], app: str, site: str) -> dict[str, Any]:
    """The ``backup list -o json`` object: per store, its runs (as ``backup list`` prints them)."""
    return {
        "app": app,
        "site": site,
        "stores": [
            {
                "store": h.store,
                "error": h.error or None,
                "latest": h.latest,
                "runs": [
                    {
                        "run_id": i.run_id,
                        "status": i.status,
                        "objects": len(i.objects),
                        "objects_new": i.metadata.objects_new,
                        "bytes_uploaded": i.metadata.bytes_uploaded,
                        "warnings": len(i.warnings),
                        "same_as": i.same_as,
                    }
                    for i in h.runs
                ],
                "refused": list(h.refused),
                "unsealed": list(h.unsealed),
                "locked": list(h.locked),
            }
            for h in held
        ],
    }


def store_rows(held: list[StoreRuns], app: str, site: str) -> list[str]:
    """The ``backup list`` lines: a section per store, then the runs some store misses."""
    rows: list[str] = []
    for h in held:
        if h.error:
            rows.append(f"store of {h.store}: not readable: {h.error}")
            continue
        rows.append(
            f"store of {h.store}:" + ("" if h.runs else f" no finished backup of app {app} on site {site}")
        )
        for index in h.runs:
            mark = "*" if index.run_id == h.latest else " "
            rows.append(
                f"{mark} {index.run_id}  {index.status:<16} objects={len(index.objects):<5}"
                f" new={index.metadata.objects_new:<5} bytes={index.metadata.bytes_uploaded}"
                f" warnings={len(index.warnings)}" + (f" same-as={index.same_as}" if index.same_as else "")
            )
        rows += [f"  refused: {why}" for why in h.refused]
        if h.unsealed:
            rows.append(f"  left out (written without a key, unauthenticated): {', '.join(h.unsealed)}")
        if h.locked:
            rows.append(f"  left out (sealed with a key the loaded ring lacks): {', '.join(h.locked)}")
    readable = [h for h in held if not h.error]
    newest = {h.store: max(h.complete, key=parse_run_id) for h in readable if h.complete}
    for run in sorted({r for h in readable for r in h.complete}, key=parse_run_id):
        missing = [
            h.store
            for h in readable
            if run not in h.complete
            and (h.store not in newest or parse_run_id(run) > parse_run_id(newest[h.store]))
        ]
        if missing:
            rows.append(
                f"run {run} is complete in the store of {', '.join(h.store for h in readable if run in h.complete)}"
                f" but missing from the store of {', '.join(missing)}: `standby backup verify --app {app}`"
                " copies it (or the next backup run writes a newer one)"
            )
    return rows


@backup_app.command("show")
def show_cmd(
    run: Annotated[str, typer.Argument(help="run id, or 'latest'")],
    config: ConfigOption = None,
    app: AppOption = None,
    site: SiteOption = None,
    key_env: KeyEnvOption = KEY_ENV,
    output: OutputOption = None,
) -> None:
    """Show one run's index: metadata, warnings and every object (a sealed index needs the key)."""
    fmt = output or "table"

    def action() -> list[str]:
        world, chosen, where = _pick(config, app, site, key_env)
        ref, index = _read_run(world, chosen, where, None if run == "latest" else run, _key(key_env))
        if fmt != "table":
            emit(fmt, {"store": jobs.store_label(ref), "index": index.model_dump(mode="json")}, str)
            return []
        layout = ref.layout
        lines = [
            f"run {index.run_id} of app {index.app} on site {index.site}: {index.status}"
            f" (read from the store of {jobs.store_label(ref)})",
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
    run: RunArgument = None,
    config: ConfigOption = None,
    app: AppOption = None,
    site: SiteOption = None,
    dry_run_site: Annotated[
        str | None,
        typer.Option("--dry-run-site", help=describe(VerifyRequest, "dry_run_site"), metavar="SITE"),
    ] = default(VerifyRequest, "dry_run_site"),
    key_env: KeyEnvOption = KEY_ENV,
    output: OutputOption = None,
) -> None:
    """Check every blob's checksum, decrypt, validate the manifests; name every bad object (exit 1)."""

    def action() -> list[str]:
        world, chosen, where = _pick(config, app, site, key_env)
        request = VerifyRequest(
            app=chosen.name,
            site=where.name,
            run_id=run,
            dry_run_site=dry_run_site,
            key_source=f"env:{key_env}",
        )
        report = run_verify(world, request, key=world.key)
        emit(output or "table", verify_json(report), lambda: "\n".join(report.lines()))
        if not report.ok:
            raise typer.Exit(1)
        return []

    guarded(action)


def verify_json(report: Any) -> dict[str, Any]:
    """The ``backup verify -o json`` object: the verdict, then each store's report."""
    return {
        "ok": report.ok,
        "run_id": report.run_id,
        "checked": report.checked,
        "encrypted": report.encrypted,
        "problems": report.problems(),
        "stores": [dataclasses.asdict(r) for r in getattr(report, "reports", (report,))],
        "unverified": list(getattr(report, "unverified", ())),
    }


@backup_app.command("restore")
def restore_cmd(
    to: Annotated[
        str | None, typer.Option("--to", help="site to restore into (required)", metavar="SITE")
    ] = None,
    run: RunArgument = None,
    config: ConfigOption = None,
    app: AppOption = None,
    site: SiteOption = None,
    namespace: Annotated[
        str | None,
        typer.Option("--namespace", "-n", help=describe(RestoreRequest, "namespace"), metavar="NAMESPACE"),
    ] = default(RestoreRequest, "namespace"),
    policy: Annotated[
        Literal["skip", "update"], typer.Option("--policy", help=describe(RestoreRequest, "policy"))
    ] = (default(RestoreRequest, "policy")),
    dry_run: Annotated[bool, typer.Option("--dry-run", help=describe(RestoreRequest, "dry_run"))] = default(
        RestoreRequest, "dry_run"
    ),
    exclude_kind: Annotated[
        list[str] | None,
        typer.Option(
            "--exclude-kind", help=describe(RestoreRequest, "exclude_kinds") + " (repeatable)", metavar="KIND"
        ),
    ] = None,
    timeout: Annotated[
        float,
        typer.Option(
            "--timeout",
            parser=duration,
            metavar="DURATION",
            help="how long to wait for the restored PVCs to be Bound, e.g. 2m (a bare number is seconds)",
            show_default=option_duration(default(RestoreRequest, "bound_timeout")),
        ),
    ] = default(RestoreRequest, "bound_timeout"),
    key_env: KeyEnvOption = KEY_ENV,
    target_site: Annotated[
        str | None, typer.Option("--target-site", "-t", hidden=True, help="deprecated: --to")
    ] = None,
) -> None:
    """Restore a run (or the newest complete run) of an app into the site --to names, in restore order."""
    if (to or target_site) is None:
        raise typer.BadParameter(
            "missing: name the site to restore into, e.g. --to site-b", param_hint="--to"
        )
    target_site = to or target_site
    assert target_site is not None
    chosen_policy: Literal["skip", "update"] = policy

    def action() -> list[str]:
        world, chosen, where = _pick(config, app, site, key_env)
        request = RestoreRequest(
            app=chosen.name,
            target_site=target_site,
            source_site=where.name,
            run_id=run,
            namespace=namespace,
            policy=chosen_policy,
            dry_run=dry_run,
            exclude_kinds=tuple(exclude_kind or ()),
            bound_timeout=timeout,
            key_source=f"env:{key_env}",
        )
        world.config.site(target_site)  # an unknown site is named before any credentials are read
        summary = run_restore(world, request, key=world.key)
        return summary.lines()

    _echo(guarded(action))


@backup_app.command("decrypt")
def decrypt_cmd(
    obj: Annotated[str, typer.Argument(help="blob key, or logical path like core/v1/Secret/NS/NAME")],
    config: ConfigOption = None,
    app: AppOption = None,
    site: SiteOption = None,
    run: Annotated[str | None, typer.Option("--run", help="run id", show_default="latest")] = None,
    key_env: KeyEnvOption = KEY_ENV,
) -> None:
    """Print the manifest of ONE object of a run, decrypted with the key in --key-env."""

    def action() -> str:
        world, chosen, where = _pick(config, app, site, key_env)
        key = world.key
        ref, index = _read_run(world, chosen, where, run, key)
        store, run_id = ref.store, index.run_id
        found = [e for e in index.objects if obj in (e.key, e.path)]
        if not found:
            raise NotFound(
                f"run {run_id} of app {chosen.name} has no object {obj!r}",
                hint=f"list its objects with `standby backup show {run_id}`",
            )
        entry = found[0]
        if key is None and entry.encrypted:
            _key(key_env, required=True)
        text: str = yaml.safe_dump(open_blob(entry, store.get(entry.key), key), sort_keys=True)
        return text

    typer.echo(guarded(action), nl=False)
