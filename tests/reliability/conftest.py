"""The reliability battery: one module per family; each run's counts go to the pytest cache.

``pytest_runtest_logreport`` counts each test's outcome under its family (the module's name without
``test_``); figures a test records with ``record_property("figure", "...")`` are kept with it.
At the end of the session the counts are written to ``.pytest_cache`` (key
``standby/reliability``), from which ``python -m tests.reliability.report`` renders
``docs/reliability.md``. Nothing in the table is typed by hand.
"""

from __future__ import annotations

import platform
import subprocess
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

CACHE_KEY = "standby/reliability"
_RUN: dict[str, Any] = {"families": {}, "started": time.monotonic()}


def _family(nodeid: str) -> str:
    module = nodeid.split("::", 1)[0]
    return Path(module).stem.removeprefix("test_")


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    if not report.nodeid.startswith("tests/reliability/"):
        return
    if report.when != "call" and not (report.failed or report.skipped):
        return
    fam = _RUN["families"].setdefault(
        _family(report.nodeid), {"passed": 0, "failed": 0, "skipped": 0, "seconds": 0.0, "figures": []}
    )
    outcome = "failed" if report.failed else report.outcome
    fam[outcome] += 1
    fam["seconds"] += report.duration
    for name, value in report.user_properties:
        if name == "figure":
            fam["figures"].append(str(value))


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    cache = getattr(session.config, "cache", None)
    if not _RUN["families"] or cache is None:
        return
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            check=False,
            cwd=Path(__file__).parent,
        ).stdout.strip()
    except OSError:
        commit = ""
    # Under pytest-xdist each worker records the families it ran; workers of one run (same
    # testrunuid) merge into one record, and a new run replaces the old one.
    run_id = getattr(session.config, "workerinput", {}).get("testrunuid", "")
    families = dict(_RUN["families"])
    earlier = cache.get(CACHE_KEY, None)
    if run_id and isinstance(earlier, dict) and earlier.get("run_id") == run_id:
        families = {**earlier.get("families", {}), **families}
    cache.set(
        CACHE_KEY,
        {
            "finished": datetime.now(UTC).isoformat(timespec="seconds"),
            "commit": commit,
            "python": platform.python_version(),
            "wall_seconds": round(time.monotonic() - _RUN["started"], 1),
            "run_id": run_id,
            "families": families,
        },
    )


# ----------------------------------------------------------------------------- shared servers
from tests.unit.test_backup_cli import Servers, env, servers  # noqa: E402  (moto + two fake apiservers)

__all__ = ["Servers", "env", "servers"]
