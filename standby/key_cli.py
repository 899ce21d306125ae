"""``standby key``: the backup master key and its ring, from creation to rotation.

    standby key generate [--block NAME]                       # a new key: printed once, or saved in a Secret block
    standby key id       [--key-env VAR | --block NAME | --stdin]   # the ring's key ids, the current one first
    standby key check    [--app APP] [--key-env VAR | --block NAME] # opens each store's newest backup?
    standby key export   [--block NAME]                       # the ring's text, for the vault and the other routes
    standby key rotate   [--block NAME] [--new-key-env VAR] [--drop ID]

The ring's text is the same on every route (the CLI's environment variable, the flows' Prefect
Secret block, the Kubernetes job's Secret): the current key first, then the older keys, separated
by commas (:mod:`drkit.domain.keyring`). Weak key text is refused. Only key ids are printed, except
by ``generate`` without ``--block`` and by ``export``, whose purpose is the key itself.
"""

from __future__ import annotations

import os
import sys
from typing import Annotated

import typer

from drkit.domain import crypto
from drkit.domain.errors import ConfigError
from drkit.domain.keyring import KEY_BLOCK, new_key_text, rotated, split_ring
from drkit.jobs.backup import key_from_env, key_from_text
from standby.common import KEY_ENV, ConfigOption, KeyEnvOption, group, guarded, world_of

key_app = group("The backup master key: generate, id, check, export, rotate (a key ring).")

BlockOption = Annotated[
    str | None,
    typer.Option(
        "--block", help="Prefect Secret block holding the key ring (the flows' key_source secret:NAME)"
    ),
]
BlockDefaultOption = Annotated[
    str,
    typer.Option(
        "--block", help="Prefect Secret block holding the key ring (the flows' key_source secret:NAME)"
    ),
]


@key_app.callback()
def _group() -> None:
    """The backup master key: generate, id, check, export, rotate (a key ring)."""


def _block_text(name: str) -> str:
    from tasks.backup import secret_key_text

    return secret_key_text(name)


def _block_exists(name: str) -> bool:
    try:
        _block_text(name)
    except ConfigError:
        return False
    return True


def _ring(key_env: str, block: str | None, stdin: bool = False) -> crypto.MasterKey:
    """The ring from ``--block``, ``--stdin`` or ``--key-env``; a ConfigError when it holds no key."""
    if block:
        key, where = (
            key_from_text(_block_text(block), source=f"Prefect Secret block {block!r}"),
            f"Secret block {block!r}",
        )
    elif stdin:
        key, where = key_from_text(sys.stdin.read(), source="standard input"), "standard input"
    else:
        key, where = key_from_env(key_env), f"environment variable {key_env}"
    if key is None:
        raise ConfigError(
            f"{where} holds no backup key",
            hint=f'export {key_env}="$(standby key export --block {KEY_BLOCK})", or pass --block NAME;'
            " a new key: `standby key generate`",
        )
    return key


def _routes_after(block: str) -> list[str]:
    """What to update on the other routes once the Secret block ``block`` holds a new ring."""
    return [
        f'  CLI:        export {KEY_ENV}="$(standby key export --block {block})"',
        f"  Kubernetes: kubectl -n standby create secret generic {KEY_BLOCK}"
        f' --from-literal={KEY_ENV}="$(standby key export --block {block})" --dry-run=client -o yaml | kubectl apply -f -',
        f"  vault:      standby key export --block {block}   # keep the whole ring",
        "  then:       standby doctor   # its key-routes line compares the rings it can see",
    ]


@key_app.command("generate")
def generate(
    block: BlockOption = None,
) -> None:
    """Make a new key (32 random bytes, base64): print it once on stdout (its id on stderr), or with
    --block save it as a new Prefect Secret block and print only its id."""
    text = new_key_text()
    key_id = crypto.MasterKey.parse(text).key_id
    if block is None:
        typer.echo(text)
        typer.echo(f"key id {key_id}: keep the key in your vault now, it is not shown again", err=True)
        return

    def save() -> None:
        from tasks.backup import save_secret_key_text

        if _block_exists(block):
            raise ConfigError(
                f"Prefect Secret block {block!r} already holds a key; generate does not replace it",
                hint=f"rotate it: `standby key rotate --block {block}` (older runs stay readable)",
            )
        save_secret_key_text(block, text, overwrite=False)

    guarded(save)
    typer.echo(f"created Prefect Secret block {block!r} with key id {key_id}")
    typer.echo(
        f"next: keep a copy in your vault (`standby key export --block {block}`), and set the other routes:"
    )
    for line in _routes_after(block)[:2]:
        typer.echo(line)


@key_app.command("id")
def key_id(
    key_env: KeyEnvOption = KEY_ENV,
    block: BlockOption = None,
    stdin: Annotated[
        bool, typer.Option("--stdin", help="read the key ring's text from standard input")
    ] = False,
) -> None:
    """Print the key ids of the loaded ring, one a line, the current one first (`ID current`, `ID older`)."""
    key = guarded(lambda: _ring(key_env, block, stdin))
    for i, one in enumerate(key.key_ids):
        typer.echo(f"{one} {'current' if i == 0 else 'older'}")


@key_app.command("check")
def check(
    config: ConfigOption = None,
    app: Annotated[
        str | None, typer.Option("--app", "-a", help="only this app", show_default="every app", metavar="APP")
    ] = None,
    key_env: KeyEnvOption = KEY_ENV,
    block: BlockOption = None,
) -> None:
    """Check the ring against each store's newest backup of each app: the key ids the run needs
    against the ring's, and a trial decrypt; exit 1 when one fails."""
    from drkit.jobs.doctor import DEFAULT_MAX_BACKUP_AGE, backup_checks

    key = guarded(lambda: _ring(key_env, block))
    world = world_of(config, app=app)
    apps = [world.config.app(app)] if app else list(world.config.apps)
    now = world.clock.now()
    route = f"--block {block}" if block else key_env
    checks = guarded(
        lambda: [
            c
            for ref in world.stores()
            for a in apps
            for c in backup_checks(
                world, ref, a, key=key, key_env=route, now=now, max_age=DEFAULT_MAX_BACKUP_AGE
            )
            if c.check.startswith("backup-key")
        ]
    )
    for one in checks:
        typer.echo(one.line())
    typer.echo(
        f"key ring {', '.join(key.key_ids)}: {sum(c.ok for c in checks)} of {len(checks)} store check(s) passed"
    )
    if not all(c.ok for c in checks):
        raise typer.Exit(1)


@key_app.command("export")
def export(block: BlockDefaultOption = KEY_BLOCK) -> None:
    """Print the key ring held by the Prefect Secret block (for the vault, the CLI's environment
    variable and the Kubernetes Secret); its ids go to stderr."""
    text = guarded(lambda: _block_text(block))
    key = guarded(lambda: _ring(KEY_ENV, block))
    typer.echo(",".join(split_ring(text)))
    typer.echo(f"key ids {', '.join(key.key_ids)} (current first)", err=True)


@key_app.command("rotate")
def rotate(
    block: BlockDefaultOption = KEY_BLOCK,
    new_key_env: Annotated[
        str | None,
        typer.Option(
            "--new-key-env", help="take the new key from this variable", show_default="generate one"
        ),
    ] = None,
    drop: Annotated[
        list[str] | None, typer.Option("--drop", help="key id of an older key no retained run needs any more")
    ] = None,
) -> None:
    """Make a new key the current one of the ring in the Secret block: new runs are sealed with it,
    runs sealed before stay readable with the older keys kept in the ring."""

    def action() -> tuple[crypto.MasterKey, str]:
        from tasks.backup import save_secret_key_text

        old = _block_text(block)
        if new_key_env is not None:
            fresh = os.environ.get(new_key_env, "").strip()
            if not fresh:
                raise ConfigError(
                    f"environment variable {new_key_env} holds no key",
                    hint="export it, or leave --new-key-env out to generate the new key",
                )
        else:
            fresh = new_key_text()
        ring_text = rotated(old, fresh, drop=tuple(drop or ()))
        ring = key_from_text(ring_text, source="the rotated ring")
        assert ring is not None
        save_secret_key_text(block, ring_text, overwrite=True)
        return ring, ring_text

    ring, _ = guarded(action)
    typer.echo(
        f"Prefect Secret block {block!r} now holds the key ring {', '.join(ring.key_ids)}:"
        f" new runs are sealed with key id {ring.key_id}"
    )
    typer.echo("update the other routes now (they still hold the old ring):")
    for line in _routes_after(block):
        typer.echo(line)
