"""``standby rpo``: RPO commands.

``standby rpo parse`` reads ``rbd mirror image status --format json`` or
``rbd mirror pool status --verbose --format json`` on stdin and prints one JSON object on stdout:

    {"images": [{"image": "...", "health": "ok", "lag_seconds": 12.0, "reason": "...",
                 "source": "status", "state": "up+replaying", "role": "secondary"}]}

``lag_seconds`` is ``null`` when the lag is unknown. Unparseable input ends with one line on stderr
and exit status 2.
"""

from __future__ import annotations

import json
import sys
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

import typer

from drkit.domain.errors import ConfigError, ParseError
from drkit.domain.rbd_status import DEFAULT_STALE_AFTER, parse_status, zone
from drkit.domain.rpo import image_lag

rpo_app = typer.Typer(
    no_args_is_help=True, add_completion=False, help="Replication lag (RPO) of mirrored images."
)


@rpo_app.callback()
def _group() -> None:
    """Replication lag (RPO) of mirrored images."""


def _fail(message: str, code: int) -> typer.Exit:
    typer.echo(message.replace("\n", " "), err=True)
    return typer.Exit(code)


def parse_report(
    text: str, *, now: datetime, tz: str, site: str = "", pool: str = "", stale_after: timedelta
) -> dict[str, Any]:
    """The JSON object ``rpo parse`` prints, from status JSON ``text``."""
    samples = parse_status(text, now=now, tz=zone(tz), site=site, pool=pool, stale_after=stale_after)
    images = []
    for sample in samples:
        lag = image_lag(sample, now, stale_after=stale_after)
        images.append(
            {
                "image": lag.image,
                "health": lag.health,
                "lag_seconds": lag.lag_seconds,
                "reason": lag.reason,
                "source": lag.source,
                "state": lag.raw_state,
                "role": lag.role,
            }
        )
    return {"images": images}


@rpo_app.command("parse")
def parse_cmd(
    now: Annotated[
        float | None, typer.Option("--now", help="evaluate at this UNIX time [default: the current time]")
    ] = None,
    tz: Annotated[
        str, typer.Option("--tz", help="IANA zone rbd printed last_update in (the Ceph host's zone)")
    ] = "UTC",
    site: Annotated[str, typer.Option("--site", help="name of the site the status was read on")] = "",
    pool: Annotated[str, typer.Option("--pool", help="pool name, for the record")] = "",
    stale_after: Annotated[
        float,
        typer.Option("--stale-after", help="seconds after which a status is stale"),
    ] = DEFAULT_STALE_AFTER.total_seconds(),
) -> None:
    """Read image or pool status JSON on stdin; print each image's health and lag as one JSON object."""
    when = datetime.fromtimestamp(now, UTC) if now is not None else datetime.now(UTC)
    text = sys.stdin.read()
    try:
        report = parse_report(
            text, now=when, tz=tz, site=site, pool=pool, stale_after=timedelta(seconds=stale_after)
        )
    except (ParseError, ConfigError) as exc:
        raise _fail(f"error: {exc}", 2) from None
    typer.echo(json.dumps(report))


if __name__ == "__main__":  # pragma: no cover
    rpo_app()
