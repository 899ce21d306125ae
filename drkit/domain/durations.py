"""Durations as people write them (``"90s"``, ``"5m"``, ``"24h"``, ``"7d"``): the one parser.

The configuration, the CLI and the flows' parameters all read durations through
:func:`parse_duration`; :func:`parse_window` adds the rule of a report window (positive) and the
user-facing error.
"""

from __future__ import annotations

import re
from datetime import timedelta

from pydantic import TypeAdapter

from drkit.domain.errors import ConfigError

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d|w)?\s*$")
_UNIT_SECONDS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800, None: 1}
_ISO_DURATION: TypeAdapter[timedelta] = TypeAdapter(timedelta)


def parse_duration(value: object) -> timedelta:
    """Parse ``"90s"``, ``"5m"``, ``"12h"``, ``"1d"``, a number of seconds, ISO 8601 (``"PT5M"``, as a
    model dumped to JSON writes it, e.g. in a Prefect block), or a ``timedelta``.

    Raises :class:`ValueError` (pydantic turns it into a validation error naming the field).
    """
    if isinstance(value, timedelta):
        return value
    if isinstance(value, bool):
        raise ValueError("expected a duration like '5m' or '300s', got a boolean")
    if isinstance(value, int | float):
        return timedelta(seconds=float(value))
    if isinstance(value, str):
        match = _DURATION.match(value)
        if match:
            return timedelta(seconds=float(match.group(1)) * _UNIT_SECONDS[match.group(2)])
        if value.strip().startswith("P"):
            try:
                return _ISO_DURATION.validate_python(value.strip())
            except ValueError:
                pass
    raise ValueError(f"expected a duration like '5m', '300s' or '1h', got {value!r}")


def parse_window(text: str, *, option: str = "--since") -> timedelta:
    """A report window (``"24h"``, ``"90m"``, ``"7d"``): positive, else a :class:`ConfigError`."""
    try:
        window = parse_duration(text)
    except ValueError:
        window = None
    if window is None or window <= timedelta(0):
        raise ConfigError(f"{option} {text!r} is not a duration", hint="write it like 24h, 90m or 7d")
    return window
