"""The ``standby`` command.

The configuration is ``-c/--config FILE|block:NAME``, given to the root command (``standby -c
FILE status``) or to the sub-command, defaulting to ``$STANDBY_CONFIG``, then ``./standby.yaml``
(the conventions every sub-command follows are in :mod:`standby.common`). A user's mistake ends
with one line on stderr naming what to fix and a non-zero exit status (2 for bad input), never
with a traceback. ``--version`` prints the version; ``--install-completion`` and
``--show-completion`` set up shell completion (bash, zsh, fish, PowerShell).
"""

from __future__ import annotations

import importlib
import sys
from pathlib import Path
from types import ModuleType
from typing import Annotated

import typer

from drkit.config import load_config
from drkit.jobs.sites import transport_warnings
from standby.backup_cli import backup_app
from standby.common import (
    CONFIG_DEFAULT,
    CONFIG_HELP,
    JsonAlias,
    OutputOption,
    emit,
    group,
    output_of,
    root_config,
)
from standby.common import fail as fail
from standby.common import guarded as guarded
from standby.doctor_cli import doctor
from standby.drill_cli import drill_app
from standby.key_cli import key_app
from standby.ops_cli import register as register_operations
from standby.rpo_cli import rpo_app

app = group(
    "Standby: DR pipelines for Ceph RBD mirroring.\n\nBackups to S3 in every site's store, measured RPO,"
    " drills, relocate, failover and failback of apps whose volumes Ceph RBD mirrors to a second site."
    " Every command that prints records takes -o table|json|yaml.",
    add_completion=True,
)
config_app = group("Check the configuration file.")
lab_app = group("The local two-site lab (real Ceph, fake apiservers, S3).")
blocks_app = group("Prefect blocks.")
app.add_typer(config_app, name="config")
app.add_typer(lab_app, name="lab")
app.add_typer(blocks_app, name="blocks")
app.add_typer(rpo_app, name="rpo", help="Measured RPO: parse rbd mirror status, sample, report.")
app.add_typer(
    backup_app, name="backup", help="Manifest backups to S3: run, list, show, verify, restore, decrypt."
)

register_operations(app)
app.command("doctor")(doctor)
app.add_typer(drill_app, name="drill")
app.add_typer(key_app, name="key")

LabDirOption = Annotated[
    Path | None,
    typer.Option("--lab-dir", help="lab state folder", show_default="$STANDBY_LAB_DIR, then ./.lab"),
]


def _version(value: bool) -> None:
    if value:
        from importlib.metadata import PackageNotFoundError, version

        try:
            typer.echo(f"standby {version('standby')}")
        except PackageNotFoundError:  # pragma: no cover - a source tree without its metadata
            typer.echo("standby (version unknown: not installed)")
        raise typer.Exit(0)


@app.callback()
def _root(
    config: Annotated[
        Path | None,
        typer.Option(
            "--config",
            "-c",
            help=CONFIG_HELP + "; for every sub-command that reads it",
            show_default=CONFIG_DEFAULT,
            callback=root_config,
            metavar="FILE|block:NAME",
        ),
    ] = None,
    version: Annotated[
        bool, typer.Option("--version", help="print the version and exit", callback=_version, is_eager=True)
    ] = False,
) -> None:
    """The root command's options: the configuration for every sub-command, and --version."""


@config_app.command("check")
def config_check(file: Annotated[Path, typer.Argument(help="configuration file to check")]) -> None:
    """Validate FILE; print a summary, or one line naming the bad field (exit 2)."""
    cfg = guarded(lambda: load_config(file))
    typer.echo(f"{file}: valid")
    for site in cfg.sites:
        typer.echo(
            f"  site {site.name}: pool {site.pool}, ceph {site.ceph.mode},"
            f" s3 {site.s3.bucket}/{site.s3.prefix}"
        )
        for warning in transport_warnings(site):
            typer.echo(f"  {warning}")
    for a in cfg.apps:
        runs = f"namespace {a.namespace}" if a.opennebula is None else a.opennebula.describe()
        typer.echo(
            f"  app {a.name}: {runs}, home {a.home_site} -> {a.secondary_site}, "
            f"{len(a.volumes)} volume(s), interval {a.snapshot_interval}, rpo target {a.rpo_target}"
        )


def lab_module() -> ModuleType:
    """``lab.lab``, which only a source checkout has (the wheel holds the product alone).

    Outside a checkout: one line saying where to run it, exit 2.
    """
    try:
        return importlib.import_module("lab.lab")
    except ModuleNotFoundError as exc:
        if exc.name not in ("lab", "lab.lab"):
            raise
    checkout = Path.cwd()
    if (checkout / "lab" / "lab.py").is_file() and (checkout / "pyproject.toml").is_file():
        sys.path.insert(0, str(checkout))
        return importlib.import_module("lab.lab")
    raise fail(
        "error: `standby lab` needs a source checkout of Standby (the lab is not in the installed"
        f" package; none in {checkout}) (next: run it from the checkout's folder, e.g. `make lab-up`)",
        2,
    )


@lab_app.command("up")
def lab_up(lab_dir: LabDirOption = None) -> None:
    """Bring the two-site lab up (idempotent)."""
    lab_mod = lab_module()
    status = guarded(lambda: lab_mod.up(lab_mod.lab_dir(lab_dir), log=lambda m: typer.echo(m, err=True)))
    typer.echo(lab_mod.describe(status))


@lab_app.command("down")
def lab_down(lab_dir: LabDirOption = None) -> None:
    """Stop everything the lab started (harmless when nothing is up)."""
    lab_mod = lab_module()

    guarded(lambda: lab_mod.down(lab_mod.lab_dir(lab_dir), log=lambda m: typer.echo(m, err=True)))


@lab_app.command("reset")
def lab_reset(lab_dir: LabDirOption = None) -> None:
    """Put the lab back to its seeds without rebuilding Ceph: images primary on site-a, both
    apiservers and OpenNebula front-ends re-seeded, S3 emptied, Nexus and the web app on site-a only."""
    lab_mod = lab_module()
    status = guarded(lambda: lab_mod.reset(lab_mod.lab_dir(lab_dir), log=lambda m: typer.echo(m, err=True)))
    typer.echo(lab_mod.describe(status))


@lab_app.command("status")
def lab_status(
    lab_dir: LabDirOption = None,
    output: OutputOption = None,
    as_json: JsonAlias = False,
) -> None:
    """Show what the lab runs: kubeconfig, config, S3, Nexus URLs, OpenNebula front-ends and mirror states."""
    lab_mod = lab_module()

    status = guarded(lambda: lab_mod.status(lab_mod.lab_dir(lab_dir)))
    fmt = output_of(output, as_json)
    emit(fmt, status.to_json(), lambda: str(lab_mod.describe(status)))
    if fmt == "table" and not status.running:
        raise typer.Exit(3)


lab_site_app = group("Lose and regain one lab site (SIGSTOP/SIGCONT; its data stays in RAM).")
lab_app.add_typer(lab_site_app, name="site")
SiteArgument = Annotated[str, typer.Argument(help="the lab site: site-a or site-b")]


@lab_site_app.command("down")
def lab_site_down(site: SiteArgument, lab_dir: LabDirOption = None) -> None:
    """Freeze every process of SITE (Ceph, rbd-mirror, apiserver, Nexus, OpenNebula); idempotent."""
    lab_mod = lab_module()

    guarded(lambda: lab_mod.site_down(lab_mod.lab_dir(lab_dir), site, log=typer.echo))


@lab_site_app.command("up")
def lab_site_up(site: SiteArgument, lab_dir: LabDirOption = None) -> None:
    """Continue the processes `lab site down` froze (harmless when SITE is up)."""
    lab_mod = lab_module()

    guarded(lambda: lab_mod.site_up(lab_mod.lab_dir(lab_dir), site, log=typer.echo))


@blocks_app.command("register")
def blocks_register() -> None:
    """Register Standby's block types with the Prefect API ($PREFECT_API_URL)."""
    from blocks.registry import register_all

    names = guarded(register_all)
    for name in names:
        typer.echo(f"registered block type {name}")


@blocks_app.command("import")
def blocks_import(
    file: Annotated[Path, typer.Argument(help="YAML configuration to save as blocks")],
    name: Annotated[str, typer.Option("--name", help="name of the Standby Configuration block")],
    backup_key: Annotated[
        str | None,
        typer.Option(
            "--backup-key", help="also create this Secret block with a new backup key, unless it exists"
        ),
    ] = None,
) -> None:
    """Save FILE as Prefect blocks; flows then take config="block:NAME" and need no file.

    The kubeconfig and S3 keys FILE names go to Secret and AwsCredentials blocks; nothing secret is
    printed.
    """
    from blocks.config import import_config

    cfg = guarded(lambda: load_config(file))
    for line in guarded(lambda: import_config(cfg, name)):
        typer.echo(f"saved {line}")
    if backup_key:
        typer.echo(guarded(lambda: _ensure_backup_key(backup_key)))


def _ensure_backup_key(name: str) -> str:
    from prefect.blocks.system import Secret

    from drkit.domain.keyring import new_key_text

    try:
        Secret.load(name)
        return f"backup key: Secret block {name!r} exists"
    except ValueError:
        Secret(value=new_key_text()).save(name)
        return (
            f"backup key: created Secret block {name!r} (keep a copy outside Prefect: without it,"
            " encrypted Secrets cannot be restored)"
        )


def usage_line(error: typer.BadParameter | typer.TyperException) -> str:
    """A usage error (unknown command, a word where a number goes) as one line naming the command."""
    ctx = getattr(error, "ctx", None)
    command = ctx.command_path if ctx is not None else "standby"
    message = " ".join(str(getattr(error, "format_message", error.__str__)()).split())
    return f"error: {command}: {message} (next: see '{command} --help')"


def main(argv: list[str] | None = None) -> None:
    """Console-script entry point: a usage error is one line on stderr and exit 2, as in ``guarded``.

    Typer's own error panel spans several lines; it is kept only for a bare ``standby`` (the help).
    """
    try:
        code = app(args=argv, prog_name="standby", standalone_mode=False)
    except typer.TyperException as exc:  # typer's click exceptions: usage errors, a missing file
        if type(exc).__name__ == "NoArgsIsHelpError":
            getattr(exc, "show")()  # noqa: B009  (prints the help)
        else:
            typer.echo(usage_line(exc), err=True)
        code = getattr(exc, "exit_code", 2)
    except typer.Abort:
        typer.echo("error: aborted", err=True)
        code = 1
    except KeyboardInterrupt:  # pragma: no cover - interactive only
        code = 130
    sys.exit(code if isinstance(code, int) else 0)


if __name__ == "__main__":  # pragma: no cover
    main()
