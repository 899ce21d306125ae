"""``deployments/prefect.yaml`` and ``deployments/serve.py`` declare the same deployments, and each
deployment's parameters are valid for its flow (a typo there would only show at 01:30)."""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Any

import pytest
import yaml

from deployments.serve import deployments

YAML = Path(__file__).resolve().parents[2] / "deployments" / "prefect.yaml"
# parameters a deployment gets from its caller rather than from the yaml (the breach automation)
CALLER_PARAMETERS: dict[str, dict[str, Any]] = {"log": {"app": "nexus", "reason": "lag over target"}}


def _declared() -> dict[str, dict[str, Any]]:
    doc = yaml.safe_load(YAML.read_text())
    return {d["name"]: d for d in doc["deployments"]}


def _schedule(s: Any) -> dict[str, Any]:
    if hasattr(s, "cron"):
        return {"cron": s.cron, "timezone": s.timezone}
    return {"interval": int(s.interval.total_seconds())}


def test_serve_and_prefect_yaml_declare_the_same_deployments() -> None:
    declared = _declared()
    served = {d.name: d for d in deployments()}
    assert sorted(served) == sorted(declared)
    for name, d in served.items():
        y = declared[name]
        assert d.entrypoint == y["entrypoint"], name
        assert d.parameters == y.get("parameters", {}), name
        assert [_schedule(s.schedule) for s in d.schedules] == y.get("schedules", []), name
        limit = (
            d.concurrency_limit
            if isinstance(d.concurrency_limit, int) or d.concurrency_limit is None
            else d.concurrency_limit.limit
        )
        assert limit == y.get("concurrency_limit"), name


@pytest.mark.parametrize("name", sorted(_declared()))
def test_each_deployment_passes_valid_parameters_to_its_flow(name: str) -> None:
    y = _declared()[name]
    path, attr = y["entrypoint"].split(":")
    flow = getattr(importlib.import_module(path.removesuffix(".py").replace("/", ".")), attr)
    flow.validate_parameters(
        CALLER_PARAMETERS.get(name, {}) | dict(y.get("parameters", {}))
    )  # raises on a bad name/type


def test_every_parameter_of_the_operation_and_drill_flows_has_a_description() -> None:
    """The run form is built from the flow's schema: a bare parameter name helps nobody at 3 am."""
    from flows.drill import drill, drill_cleanup_flow
    from flows.operations import failback, failover, relocate

    for flow_ in (relocate, failover, failback, drill, drill_cleanup_flow):
        props = flow_.parameters.model_dump()["properties"]
        assert props, flow_.name
        missing = [name for name, spec in props.items() if not spec.get("description")]
        assert not missing, (flow_.name, missing)
