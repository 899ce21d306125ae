"""Every test here runs under the session's Prefect test harness."""

from __future__ import annotations

import pytest


@pytest.fixture(autouse=True)
def _harness(prefect_harness: None) -> None:
    """Start (once) and use the session's Prefect test harness."""
