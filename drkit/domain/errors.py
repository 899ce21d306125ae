"""The error tree of Standby.

Every error a user can cause or meet carries three things an operator needs:

* ``message``: what went wrong, naming the object and the site;
* ``hint``: the next action to take;
* ``context``: a small mapping of facts (site, object, command...) for logs and reports.

``str(error)`` renders all of it as one readable line, so a CLI can print it as is.
Secrets never go into an error: callers pass names, never values.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence


class StandbyError(Exception):
    """Base of every error raised on purpose by Standby."""

    def __init__(self, message: str, *, hint: str = "", context: Mapping[str, object] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint
        self.context: dict[str, object] = dict(context or {})

    def __str__(self) -> str:
        text = self.message
        if self.hint:
            text = f"{text} (next: {self.hint})"
        return text


class ConfigError(StandbyError):
    """The configuration file or a block is invalid. Never retried."""


class PreconditionFailed(StandbyError):
    """A guard refused to go on (for example the lag is too high for a drill). Never retried."""


class AccessDenied(PreconditionFailed):
    """The apiserver refused a request: ``403 Forbidden`` (a permission is missing) or ``401
    Unauthorized`` (the token is expired or wrong). Never retried: the hint says what to change."""

    def __init__(
        self,
        message: str,
        *,
        code: int,
        hint: str = "",
        rule: str = "",
        context: Mapping[str, object] | None = None,
    ) -> None:
        super().__init__(message, hint=hint, context=context)
        self.code = code
        self.rule = rule


class OperationFailed(StandbyError):
    """An operation failed part-way and still holds its app: the hint names ``resume``, ``abort`` or
    the take-over. Never retried (the operator decides)."""


class TransientError(StandbyError):
    """A failure that may pass on its own (a 5xx, a timeout, EBUSY). Retried by Prefect."""


class NotFound(StandbyError):
    """An object that must exist does not."""


class Conflict(StandbyError):
    """An object exists in a state that contradicts what was asked."""


class RpoBreached(StandbyError):
    """The measured lag of an app is over its RPO target."""


class IntegrityError(StandbyError):
    """Stored data does not match its recorded checksum, or cannot be decrypted."""


class CommandFailed(StandbyError):
    """An external command exited with an exit code that was not accepted.

    ``output_tail`` is the redacted end of its output, for the operator to read.
    """

    def __init__(
        self,
        message: str,
        *,
        argv: Sequence[str],
        exit_code: int | None,
        output_tail: str,
        hint: str = "",
        context: Mapping[str, object] | None = None,
    ) -> None:
        ctx = dict(context or {})
        ctx.update({"argv": list(argv), "exit_code": exit_code})
        super().__init__(message, hint=hint, context=ctx)
        self.argv = list(argv)
        self.exit_code = exit_code
        self.output_tail = output_tail

    def __str__(self) -> str:
        tail = self.output_tail.strip().splitlines()[-1:] if self.output_tail.strip() else []
        text = f"{self.message}: `{' '.join(self.argv)}` exited with {self.exit_code}"
        if tail:
            text += f": {tail[0]}"
        if self.hint:
            text += f" (next: {self.hint})"
        return text


class CommandTimedOut(CommandFailed, TransientError):
    """An external command did not finish within its timeout."""


def is_retryable(error: BaseException) -> bool:
    """Whether Prefect should retry after ``error``: only transient errors are retried."""
    return isinstance(error, TransientError)


class ParseError(StandbyError):
    """Text from an external tool (``rbd ... --format json``) is not what was expected. Never retried."""


class OpenNebulaError(StandbyError):
    """An OpenNebula front-end failed a call: ``code`` is oned's error code when it gave one
    (``0x2000`` INTERNAL, for a template it could not parse), else 0. The adapter raises subclasses
    that are also the matching kind above (``NotFound``, ``Conflict``, ``TransientError``...)."""

    def __init__(
        self, message: str, *, code: int = 0, hint: str = "", context: Mapping[str, object] | None = None
    ) -> None:
        super().__init__(message, hint=hint, context=context)
        self.code = code
