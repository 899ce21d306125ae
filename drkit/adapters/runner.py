"""The one way Standby runs external commands.

A call names its argv, a description (what it does, for messages), the exit codes it accepts and a
timeout. Output is captured and every secret registered with the runner is redacted from it before
it can reach an exception, a log line or a report. A timeout raises :class:`CommandTimedOut`
(retryable); any other unaccepted exit raises :class:`CommandFailed` with the redacted tail.

A command's environment is this process's minus Standby's secrets (:func:`command_env`): the
backup key variable (``STANDBY_BACKUP_KEY`` and any ``--key-env`` name), the S3 key variables a
site's ``s3`` settings name, and every ``AWS_*`` variable. ``rbd`` and the librbd script need none
of them, and a command's crash dump, ``/proc/<pid>/environ`` or a debug log must not hold them.
"""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from drkit.domain.errors import CommandFailed, CommandTimedOut, NotFound

REDACTED = "***"

SECRET_ENV: set[str] = {"STANDBY_BACKUP_KEY", "PREFECT_API_AUTH_STRING", "PREFECT_API_KEY"}
"""Environment variables never passed to a command: the default backup key variable, the Prefect API's
credentials, plus every name registered with :func:`hide_from_commands` (a ``--key-env`` name, a
site's S3 key variables)."""


def hide_from_commands(*names: str | None) -> None:
    """Never pass the environment variables ``names`` (they hold secrets) to a command."""
    SECRET_ENV.update(n for n in names if n)


def command_env(environ: Mapping[str, str], hide: Iterable[str] = ()) -> dict[str, str]:
    """``environ`` without Standby's secrets: :data:`SECRET_ENV`, ``hide`` and every ``AWS_*`` variable."""
    hidden = SECRET_ENV | set(hide)
    return {k: v for k, v in environ.items() if k not in hidden and not k.startswith("AWS_")}


@dataclass(frozen=True)
class CommandResult:
    """What a finished command produced (already redacted)."""

    argv: tuple[str, ...]
    exit_code: int
    stdout: str
    stderr: str
    seconds: float


class Runner(Protocol):
    """Runs one command; the local runner and the Kubernetes exec runner both satisfy it."""

    def run(
        self,
        argv: Sequence[str],
        *,
        description: str,
        accept: Iterable[int] = (0,),
        timeout: float = 30.0,
        stdin: bytes | None = None,
    ) -> CommandResult:
        """Run ``argv``; raise ``CommandFailed``/``CommandTimedOut`` unless its exit code is accepted."""
        ...


@dataclass
class Redactor:
    """Replaces registered secret values by ``***`` in any text."""

    secrets: set[str] = field(default_factory=set)

    def add(self, *values: str | None) -> None:
        """Register secret values (short ones are ignored: they would redact ordinary words)."""
        self.secrets.update(v for v in values if v and len(v) >= 4)

    def __call__(self, text: str) -> str:
        for secret in sorted(self.secrets, key=len, reverse=True):
            text = text.replace(secret, REDACTED)
        return text


def tail(text: str, lines: int = 20, chars: int = 4000) -> str:
    """The end of ``text``: its last ``lines`` lines, at most ``chars`` characters."""
    return "\n".join(text.strip().splitlines()[-lines:])[-chars:]


@dataclass
class LocalRunner:
    """Runs commands on this machine with ``subprocess`` (no shell)."""

    env: Mapping[str, str] = field(default_factory=dict)
    """Variables set for every command (on top of this process's, minus its secrets)."""
    redact: Redactor = field(default_factory=Redactor)
    hide: frozenset[str] = frozenset()
    """More environment variables never passed to a command (besides :data:`SECRET_ENV` and ``AWS_*``)."""
    context: Mapping[str, object] = field(default_factory=dict)

    def run(
        self,
        argv: Sequence[str],
        *,
        description: str,
        accept: Iterable[int] = (0,),
        timeout: float = 30.0,
        stdin: bytes | None = None,
    ) -> CommandResult:
        """Run ``argv``; see :class:`Runner`."""
        shown = [self.redact(a) for a in argv]
        started = time.monotonic()
        try:
            proc = subprocess.run(
                list(argv),
                input=stdin,
                capture_output=True,
                timeout=timeout,
                env={**command_env(os.environ, self.hide), **self.env},
                check=False,
            )
        except FileNotFoundError:
            raise NotFound(
                f"{description}: command {argv[0]!r} is not installed",
                hint=f"install {argv[0]} on this machine, or use the rook-toolbox Ceph access",
                context={**self.context, "argv": shown},
            ) from None
        except subprocess.TimeoutExpired as exc:
            out = self.redact(_text(exc.stdout) + _text(exc.stderr))
            raise timed_out(
                description, argv=shown, timeout=timeout, output=out, context=self.context
            ) from None
        result = CommandResult(
            argv=tuple(shown),
            exit_code=proc.returncode,
            stdout=self.redact(_text(proc.stdout)),
            stderr=self.redact(_text(proc.stderr)),
            seconds=time.monotonic() - started,
        )
        check(result, description=description, accept=accept, context=self.context)
        return result


def check(
    result: CommandResult, *, description: str, accept: Iterable[int], context: Mapping[str, object]
) -> None:
    """Raise ``CommandFailed`` when ``result`` has an exit code that is not accepted."""
    if result.exit_code in set(accept):
        return
    raise command_failed(
        description,
        argv=result.argv,
        exit_code=result.exit_code,
        output=result.stderr or result.stdout,
        context=context,
    )


# Shared with the fakes (drkit.testing) so a faked command fails with the same error and words.


def command_failed(
    description: str, *, argv: Sequence[str], exit_code: int, output: str, context: Mapping[str, object]
) -> CommandFailed:
    """A command (``description`` names it and the site) exited with ``exit_code``, printing ``output``."""
    return CommandFailed(
        f"{description} failed",
        argv=argv,
        exit_code=exit_code,
        output_tail=tail(output),
        context=dict(context),
    )


def timed_out(
    description: str, *, argv: Sequence[str], timeout: float, output: str, context: Mapping[str, object]
) -> CommandTimedOut:
    """A command did not finish within ``timeout`` seconds (retryable)."""
    return CommandTimedOut(
        f"{description}: timed out after {timeout:.0f}s",
        argv=argv,
        exit_code=None,
        output_tail=tail(output),
        hint="check that the cluster is reachable; the call is retried",
        context=dict(context),
    )


def _text(data: bytes | str | None) -> str:
    if data is None:
        return ""
    return data if isinstance(data, str) else data.decode("utf-8", errors="replace")
