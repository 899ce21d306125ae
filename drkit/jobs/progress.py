"""How a long job reports progress: ``progress(done, total, message)``, called as it goes."""

from __future__ import annotations

from collections.abc import Callable

Progress = Callable[[int, int, str], None]
"""Called with the units done, the units in all, and what is being done."""
