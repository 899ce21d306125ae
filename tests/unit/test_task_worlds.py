"""Tasks that take the run's World never have Prefect hash or persist it (it holds live clients and,
from blocks, credentials in memory), and the flows build it once through one helper."""

from __future__ import annotations

import inspect
import pkgutil
from importlib import import_module
from pathlib import Path

from prefect.cache_policies import NO_CACHE
from prefect.tasks import Task

import flows
import tasks

ROOT = Path(__file__).resolve().parents[2]


def _tasks() -> list[Task]:  # type: ignore[type-arg]
    found = []
    for info in pkgutil.iter_modules(tasks.__path__):
        module = import_module(f"tasks.{info.name}")
        found += [v for v in vars(module).values() if isinstance(v, Task) and v.__module__ == module.__name__]
    return found


def test_every_task_given_a_world_has_no_cache_policy() -> None:
    given = [
        t
        for t in _tasks()
        if any("World" in str(p.annotation) for p in inspect.signature(t.fn).parameters.values())
    ]
    assert len(given) >= 10, [
        t.name for t in given
    ]  # backup, verify, restore, retention, rpo, drill, operations
    assert [t.name for t in given if t.cache_policy is not NO_CACHE] == []


def test_no_task_takes_a_configuration_path() -> None:
    for t in _tasks():
        names = set(inspect.signature(t.fn).parameters)
        assert not names & {"config", "config_path"}, t.name


def test_the_flows_build_their_world_through_one_helper() -> None:
    for info in pkgutil.iter_modules(flows.__path__):
        text = (ROOT / "flows" / f"{info.name}.py").read_text()
        assert "build_world" not in text and "load_placed_config" not in text, info.name
