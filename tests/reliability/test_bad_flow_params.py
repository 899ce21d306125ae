"""Flow parameters as the Prefect UI sends them (JSON: strings where numbers go, unknown names, out-of-range values): the run fails with one line.

Each flow runs under the Prefect test server, with a configuration whose S3 answers (moto), as in
a deployment. A name the configuration does not know fails the run with the same one line as the
CLI (the object, the next step). A value the form's schema forbids is refused by the form itself
(the schema carries the bound); sent anyway through the API, Prefect's own parameter validation
fails the run before any step with a message naming the parameter (Prefect's format: two lines).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.reliability.helpers import assert_one_line
from tests.unit.test_backup_cli import Servers, write_config

CONFIG = "<config>"


@pytest.fixture(autouse=True)
def _harness(prefect_harness: None, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("STANDBY_CONFIG", raising=False)


@pytest.fixture
def config(servers: Servers, tmp_path: Path, env: dict[str, str]) -> str:
    return str(write_config(servers, tmp_path))


def _flows() -> dict[str, Callable[..., Any]]:
    from flows.backup import backup
    from flows.drill import drill
    from flows.operations import failover, relocate
    from flows.restore import restore
    from flows.rpo_sample import rpo_sample
    from flows.rpo_watch import rpo_watch

    return {
        "backup": backup,
        "drill": drill,
        "failover": failover,
        "relocate": relocate,
        "restore": restore,
        "rpo-sample": rpo_sample,
        "rpo-watch": rpo_watch,
    }


CASES: dict[str, tuple[str, dict[str, Any], str]] = {
    "unknown app": ("backup", {"app": "nope", "config": CONFIG}, "unknown app 'nope'"),
    "missing config file": ("backup", {"app": "nexus", "config": "/nonexistent/standby.yaml"}, "not found"),
    "unknown target site": (
        "restore",
        {"app": "nexus", "target_site": "site-z", "config": CONFIG},
        "unknown site 'site-z'",
    ),
    "failover to an unknown site": (
        "failover",
        {"app": "nexus", "to": "site-z", "config": CONFIG},
        "unknown site 'site-z'",
    ),
    "relocate of an unknown app": (
        "relocate",
        {"app": "Nexus", "to": "site-b", "config": CONFIG},
        "unknown app 'Nexus'",
    ),
    "drill mode misspelt": ("drill", {"app": "nexus", "mode": "sideways", "config": CONFIG}, "mode"),
    "watch minutes negative": ("rpo-watch", {"minutes": "-5", "config": CONFIG}, "minutes"),
    "watch minutes a word": ("rpo-watch", {"minutes": "ten", "config": CONFIG}, "minutes"),
    "sample exact misspelt": ("rpo-sample", {"exact": "sometimes", "config": CONFIG}, "exact"),
}


SCHEMA_BOUND = ("watch", "sample", "drill mode")  # values the form's schema bounds (a Literal, gt/ge)
NAMES = {k: v for k, v in CASES.items() if not k.startswith(SCHEMA_BOUND)}
VALUES = {k: v for k, v in CASES.items() if k.startswith(SCHEMA_BOUND)}


def _run(name: str, params: dict[str, Any], config: str) -> Any:
    params = {k: (config if v == CONFIG else v) for k, v in params.items()}
    state = _flows()[name](**params, return_state=True)
    assert state.is_failed(), state
    return state


@pytest.mark.parametrize("case", list(NAMES))
def test_unknown_name_fails_the_run_with_one_line(case: str, config: str) -> None:
    name, params, expected = NAMES[case]
    assert_one_line(str(_run(name, params, config).message), expected)


@pytest.mark.parametrize("case", list(VALUES))
def test_value_out_of_the_form_is_refused_by_the_schema_and_by_prefect(case: str, config: str) -> None:
    from prefect.utilities.callables import parameter_schema

    name, params, expected = VALUES[case]
    schema = parameter_schema(_flows()[name]).model_dump()["properties"][expected]
    shown = json.dumps(schema)
    assert any(bound in shown for bound in ("exclusiveMinimum", "minimum", "enum")), (
        shown
    )  # the form refuses it
    message = str(_run(name, params, config).message)
    assert "Traceback" not in message and expected in message and "invalid parameters" in message
