"""A clock that moves only when slept on (or told to)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta


class FakeClock:
    """:class:`drkit.adapters.clock.Clock` for tests: ``sleep`` advances time instantly."""

    def __init__(self, start: datetime | None = None) -> None:
        self._now = start or datetime(2026, 11, 30, 8, 0, tzinfo=UTC)
        self._mono = 0.0
        self.slept = 0.0

    def now(self) -> datetime:
        """See :class:`~drkit.adapters.clock.Clock`."""
        return self._now

    def monotonic(self) -> float:
        """See :class:`~drkit.adapters.clock.Clock`."""
        return self._mono

    def sleep(self, seconds: float) -> None:
        """Advance by ``seconds`` at once."""
        self.advance(seconds)
        self.slept += seconds

    def advance(self, seconds: float) -> None:
        """Move time forward."""
        self._mono += seconds
        self._now += timedelta(seconds=seconds)
