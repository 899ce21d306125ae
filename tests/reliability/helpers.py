"""What every bad-input test asserts, and the ``standby`` command run in-process as its console script."""

from __future__ import annotations

import contextlib
import io
from dataclasses import dataclass

from standby.cli import main

EXIT_BAD_INPUT = 2
"""Exit status for a user's mistake (configuration, arguments): README, ``standby --help``."""
EXIT_FAILED = 1
"""Exit status for any other Standby error (a server refused, a check failed)."""


@dataclass(frozen=True)
class Outcome:
    code: int
    stdout: str
    stderr: str


def standby(*argv: str, stdin: str | None = None) -> Outcome:
    """Run ``standby ARGV`` as its console script does (``standby.cli:main``), capturing the output."""
    out, err = io.StringIO(), io.StringIO()
    code = 0
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            if stdin is None:
                main(list(argv))
            else:
                import sys

                saved = sys.stdin
                sys.stdin = io.StringIO(stdin)
                try:
                    main(list(argv))
                finally:
                    sys.stdin = saved
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else 1
    return Outcome(code, out.getvalue(), err.getvalue())


def assert_one_line(message: str, *names: str) -> str:
    """``message`` is one line, names each of ``names`` and says what to do next."""
    assert "Traceback" not in message, message
    lines = [ln for ln in message.splitlines() if ln.strip()]
    assert len(lines) == 1, message
    line = lines[0]
    for name in names:
        assert name in line, (name, line)
    assert "(next: " in line, f"no next step in: {line}"
    return line


def assert_cli_error(result: Outcome, code: int, *names: str) -> str:
    """A documented non-zero exit and one ``error:`` line on stderr."""
    assert result.code == code, (result.code, result.stderr)
    line = assert_one_line(result.stderr, *names)
    assert line.startswith("error: "), line
    return line


def failed_step(line: str) -> str:
    """The step an operation's one-line error names (``step NAME on SITE failed``)."""
    import re

    found = re.search(r"step (\S+) on site-\S+ failed", line)
    assert found, f"no step named in: {line}"
    return found.group(1)
