"""The engine reads time only through an injected Clock: no wall-clock read or sleep in drkit/jobs."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

JOBS = Path(__file__).resolve().parents[2] / "drkit" / "jobs"
FORBIDDEN = {
    ("datetime", "now"),
    ("datetime", "utcnow"),
    ("datetime", "today"),
    ("date", "today"),
    ("time", "time"),
    ("time", "monotonic"),
    ("time", "sleep"),
    ("time", "perf_counter"),
    ("time", "process_time"),
    ("time", "time_ns"),
    ("time", "monotonic_ns"),
}
CALLABLE_TIME = {"Callable[[], datetime]", "Callable[[], float]", "Now"}
"""Annotations of a parameter that passes time as a bare callable instead of a Clock."""
PENDING: set[str] = set()
"""Modules allowed a wall-clock read for now (none)."""


def wall_clock_reads(path: Path) -> list[str]:
    """``module.attr`` references to a wall clock or a sleep, with their line numbers."""
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if (
            isinstance(node, ast.Attribute)
            and isinstance(node.value, ast.Name)
            and (node.value.id, node.attr) in FORBIDDEN
        ):
            found.append(f"{path.name}:{node.lineno}: {node.value.id}.{node.attr}")
        if isinstance(node, ast.ImportFrom) and node.module == "time":
            found.append(f"{path.name}:{node.lineno}: from time import ...")
    return found


def time_callables(path: Path) -> list[str]:
    """Parameters that take time as a callable (``now: Callable[[], datetime]``), not a ``Clock``."""
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            args = node.args
            for arg in (*args.posonlyargs, *args.args, *args.kwonlyargs):
                if arg.annotation is not None and ast.unparse(arg.annotation) in CALLABLE_TIME:
                    found.append(
                        f"{path.name}:{arg.lineno}: {node.name}({arg.arg}: {ast.unparse(arg.annotation)})"
                    )
    return found


@pytest.mark.parametrize("path", sorted(JOBS.glob("*.py")), ids=lambda p: p.name)
def test_time_is_passed_as_a_clock(path: Path) -> None:
    found = time_callables(path)
    assert found == [], "take a Clock (drkit.adapters.clock), not a callable:\n" + "\n".join(found)


@pytest.mark.parametrize("path", sorted(JOBS.glob("*.py")), ids=lambda p: p.name)
def test_no_wall_clock_in_the_engine(path: Path) -> None:
    reads = wall_clock_reads(path)
    if path.name in PENDING:
        assert reads, f"{path.name} no longer reads the wall clock: drop it from PENDING"
    else:
        assert reads == [], "read time through the injected Clock (drkit.adapters.clock):\n" + "\n".join(
            reads
        )


def test_the_check_finds_a_read(tmp_path: Path) -> None:
    sample = tmp_path / "sample.py"
    sample.write_text("import time\nfrom datetime import datetime\nx = datetime.now()\ntime.sleep(1)\n")
    assert wall_clock_reads(sample) == ["sample.py:3: datetime.now", "sample.py:4: time.sleep"]


def test_the_check_finds_a_time_callable(tmp_path: Path) -> None:
    sample = tmp_path / "sample.py"
    sample.write_text("def run(app, *, now: Callable[[], datetime], clock: Clock) -> None: ...\n")
    assert time_callables(sample) == ["sample.py:1: run(now: Callable[[], datetime])"]
