"""A fault knob shared by the fakes: a peer that stops answering, as a frozen site (SIGSTOP) does.

``Hang.freeze()`` makes every call of the fake that holds it block; ``thaw()`` lets them go on (they
answer late, as after SIGCONT). A call blocks at most ``limit`` seconds, so a test that forgets to
thaw cannot hang for ever: the fake then raises its own timeout error, as the real adapter would.
"""

from __future__ import annotations

import threading


class Hang:
    """Calls block while frozen (at most :attr:`limit` seconds each); see the module docstring."""

    def __init__(self, limit: float = 30.0) -> None:
        self.limit = limit
        self.held = 0
        """How many calls have blocked so far."""
        self._thawed = threading.Event()
        self._thawed.set()
        self._count = threading.Lock()

    @property
    def frozen(self) -> bool:
        """Whether calls block now."""
        return not self._thawed.is_set()

    def freeze(self) -> None:
        """Make every later call block until :meth:`thaw`."""
        self._thawed.clear()

    def thaw(self) -> None:
        """Let blocked and later calls go on."""
        self._thawed.set()

    def hold(self) -> bool:
        """Block while frozen; False when :attr:`limit` ran out first (the caller raises a timeout)."""
        if self._thawed.is_set():
            return True
        with self._count:
            self.held += 1
        return self._thawed.wait(self.limit)
