"""``deployments/prefect.yaml`` is the one definition of Standby's deployments, and it is sound.

``make up`` (``deployments/serve.py``) builds its deployments from the YAML, so this module checks
the YAML itself and what serve.py makes of it: every deployment loads, its entrypoint resolves to a
flow, its parameters are valid for that flow, its schedules are valid, it has a description and
tags, and every parameter of its run form has a description (a bare name helps nobody at 3 am).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from prefect.client.schemas.schedules import CronSchedule, IntervalSchedule
from prefect.utilities.callables import parameter_schema

from deployments import serve

ROOT = Path(__file__).resolve().parents[2]
DECLARED = {d["name"]: d for d in serve.declared()}
# every use case is served (name in prefect.yaml -> flow)
EXPECTED = {
    "nightly": "backup",
    "verify": "verify-backup",
    "sampler": "rpo-sample",
    "status": "status",
    "watcher": "rpo-watch",
    "daily": "rpo-report",
    "on-demand": "restore",
    "log": "rpo-breach-notice",
    "relocate": "relocate",
    "failover": "failover",
    "failback": "failback",
    "abort-operation": "abort-operation",
    "monthly": "drill",
    "drill-cleanup": "drill-cleanup",
}
# parameters a deployment gets from its caller rather than from the yaml (the breach automation)
CALLER_PARAMETERS: dict[str, dict[str, Any]] = {
    "log": {"app": "nexus", "reason": "lag over target"},
    "abort-operation": {"op_id": "relocate-20261130T081500Z-a1b2c3"},  # the operator types it in the run form
}


def test_every_use_case_is_declared_once() -> None:
    assert len(DECLARED) == len(serve.declared())  # no name twice
    assert {name: serve.load_flow(d["entrypoint"]).name for name, d in DECLARED.items()} == EXPECTED


def test_serve_builds_exactly_what_the_yaml_declares(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(ROOT)  # entrypoints are relative to the repository root, as for `prefect deploy`
    monkeypatch.delenv("STANDBY_CONFIG", raising=False)
    served = {d.name: d for d in serve.deployments()}
    assert sorted(served) == sorted(DECLARED)
    for name, d in served.items():
        y = DECLARED[name]
        assert d.entrypoint == y["entrypoint"], name
        assert d.description == y["description"], name
        assert d.tags == y["tags"], name
        assert d.parameters == y.get("parameters", {}), name
        assert len(d.schedules) == len(y.get("schedules", [])), name
        limit = d.concurrency_limit
        assert (limit if limit is None or isinstance(limit, int) else limit.limit) == y.get(
            "concurrency_limit"
        )
        # the schema the served deployment sends to the server, from which the UI draws its form
        form = d._parameter_openapi_schema.model_dump()["properties"]
        assert form and all((p.get("description") or "").strip() for p in form.values()), (name, form)


def test_standby_config_replaces_only_the_config_parameter(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STANDBY_CONFIG", "/srv/standby/lab.yaml")
    for d in serve.deployments():
        declared = DECLARED[d.name].get("parameters", {})
        expected = {**declared, "config": "/srv/standby/lab.yaml"} if "config" in declared else declared
        assert d.parameters == expected, d.name


@pytest.mark.parametrize("name", sorted(DECLARED))
def test_each_deployment_passes_valid_parameters_to_its_flow(name: str) -> None:
    y = DECLARED[name]
    flow = serve.load_flow(y["entrypoint"])
    flow.validate_parameters(CALLER_PARAMETERS.get(name, {}) | dict(y.get("parameters", {})))  # raises


@pytest.mark.parametrize("name", sorted(DECLARED))
def test_each_schedule_is_valid(name: str) -> None:
    for spec in DECLARED[name].get("schedules", []):
        made = serve.schedule(spec)
        if "cron" in spec:
            assert isinstance(made, CronSchedule) and spec.get("timezone"), (
                name,
                "a cron needs its timezone",
            )
            assert made.timezone == spec["timezone"]
        else:
            assert (
                isinstance(made, IntervalSchedule) and made.interval.total_seconds() == spec["interval"] > 0
            )


@pytest.mark.parametrize("name", sorted(DECLARED))
def test_every_parameter_of_the_run_form_has_a_description(name: str) -> None:
    """The run form is built from this schema (what Prefect 3.8.8 really computes from the flow)."""
    flow = serve.load_flow(DECLARED[name]["entrypoint"])
    props = parameter_schema(flow.fn).model_dump()["properties"]
    assert props, name
    missing = [p for p, spec in props.items() if not (spec.get("description") or "").strip()]
    assert not missing, (name, missing)
    # The UI renders a description as Markdown: a placeholder like <name> vanishes as an HTML tag.
    tagged = {
        p: spec["description"]
        for p, spec in props.items()
        if re.search(r"<[A-Za-z_-]+>", spec["description"])
    }
    assert not tagged, (name, tagged)
    assert DECLARED[name]["description"].strip() and DECLARED[name]["tags"], name


def test_an_unknown_key_in_the_yaml_is_refused(tmp_path: Path) -> None:
    bad = tmp_path / "prefect.yaml"
    bad.write_text(
        "deployments:\n  - {name: x, entrypoint: 'flows/backup.py:backup', description: d, tags: [t],"
        " schedule: {cron: '0 1 * * *'}}\n"
    )
    with pytest.raises(ValueError, match=r"deployment x: unknown key\(s\) \['schedule'\]"):
        serve.declared(bad)


def test_a_deployment_without_description_or_tags_is_refused(tmp_path: Path) -> None:
    bad = tmp_path / "prefect.yaml"
    bad.write_text("deployments:\n  - {name: x, entrypoint: 'flows/backup.py:backup'}\n")
    with pytest.raises(ValueError, match="deployment x: missing description, tags"):
        serve.declared(bad)


def test_an_entrypoint_that_is_not_a_flow_is_refused() -> None:
    with pytest.raises(ValueError, match="is not a Prefect flow"):
        serve.load_flow("flows/backup.py:RetentionPolicy")


def test_the_readme_table_lists_every_deployment_as_declared() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    table = [line for line in readme.splitlines() if line.startswith("| `") and "/" in line.split("|")[1]]
    assert table == serve.table_rows(serve.declared()), "README's deployment table differs from prefect.yaml"


# scheduled deployments that protect apps: they name no app, so each run covers every configured app
EVERY_APP = ("nightly", "sampler", "monthly")


@pytest.mark.parametrize("name", EVERY_APP)
def test_the_scheduled_protection_covers_every_configured_app(name: str) -> None:
    y = DECLARED[name]
    assert y.get("schedules") and "app" not in y.get("parameters", {}), (name, "names an app")
    flow = serve.load_flow(y["entrypoint"])
    flow.validate_parameters(dict(y.get("parameters", {})))  # no app: valid, every app
    flow.validate_parameters({**y.get("parameters", {}), "app": "nexus"})  # one app, as before
    form = parameter_schema(flow.fn).model_dump()["properties"]["app"]
    assert (
        form.get("default") is None and "every" in form["description"] and "when empty" in form["description"]
    )
