"""The approval gate of the DR flows end to end: a real ``prefect server`` and the real two-site lab.

The ``relocate`` flow runs in its own process against the server (as a worker would run it) and
pauses for the typed approval; the test answers through the Prefect API as an operator does from
the UI:

1. the run is Paused, the ``operation-plan-nexus`` artifact exists, and the paused run's input
   (``state_details.run_input_keyset``) holds the plan as its description and the form's schema;
2. input the server accepts but the plan refuses (wrong app name) makes the run ask again (a new
   pause key, the reasons on top of the plan) and changes nothing on the lab;
3. valid input lets the run complete: Nexus runs on site-b and the placement record says so;
4. the app is moved back home with the jobs API, so the lab is left as found.

A second run (``failover``) whose approval never comes times out: the run ends Failed and the
lab is untouched (placement epoch, image roles, Nexus on site-a only).
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from drkit.domain import crypto
from drkit.domain.operations import Approval
from drkit.domain.placement import Placement
from drkit.jobs.operations import approve, execute, list_journals, prepare
from drkit.jobs.world import World
from tests.labfixture import Lab
from tests.labhelpers import (
    LAB_KEY_TEXT,
    assert_home,
    fresh_backup,
    home_world,
    key_of,
    placement,
    roles,
    runs_nexus,
    sync_now,
)
from tests.server.test_automation_server import real_server

pytestmark = [pytest.mark.server, pytest.mark.lab]
# the module-scoped real ``prefect server`` fixture of the automation test (one server for this module)
__all__ = ["real_server"]

ROOT = Path(__file__).resolve().parents[2]
KEY_VAR = "STANDBY_BACKUP_KEY"
KEY_TEXT = LAB_KEY_TEXT  # the lab's one key (tests/labhelpers.py)
PLAN_ARTIFACT = "operation-plan-nexus"


# ------------------------------------------------------------------------------------------- lab


@pytest.fixture
def key() -> crypto.MasterKey:
    return key_of(KEY_TEXT, KEY_VAR)


@pytest.fixture
def world(lab: Lab) -> World:
    return home_world(lab.root)


# ---------------------------------------------------------------------------------------- prefect


class FlowProcess:
    """One DR flow run in its own process against the real server, found back by its run name."""

    def __init__(self, api: str, config: Path, logs: Path, kind: str, to: str, approval_timeout: int) -> None:
        self.name = f"{kind}-{uuid.uuid4().hex[:8]}"
        self.log = logs / f"{self.name}.log"
        call = (
            f"from flows.operations import {kind}; {kind}.with_options(flow_run_name={self.name!r})("
            f"app='nexus', to={to!r}, config={str(config)!r}, key_source='env:{KEY_VAR}', "
            f"approval_timeout={approval_timeout})"
        )
        env = {**os.environ, "PREFECT_API_URL": api, "PYTHONPATH": str(ROOT), KEY_VAR: KEY_TEXT}
        self.started = time.monotonic()
        with self.log.open("w") as out:
            self.proc = subprocess.Popen(
                [sys.executable, "-c", call], cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT
            )

    def output(self) -> str:
        return self.log.read_text(errors="replace")[-4000:]

    def wait_exit(self, timeout: float) -> int:
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(10)
            raise AssertionError(f"{self.name} still running after {timeout}s:\n{self.output()}") from None

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)


@pytest.fixture
def flows(real_server: str, lab: Lab, tmp_path: Path) -> Iterator[Callable[..., FlowProcess]]:
    """Start DR flow runs against the real server; any still running at the end is killed."""
    started: list[FlowProcess] = []

    def start(kind: str, to: str, approval_timeout: int = 600) -> FlowProcess:
        started.append(
            FlowProcess(real_server, lab.root / "standby.yaml", tmp_path, kind, to, approval_timeout)
        )
        return started[-1]

    yield start
    for p in started:
        p.stop()


@pytest.fixture
def client(real_server: str) -> Iterator[Any]:
    """A sync Prefect client of the real server; ``resume_flow_run`` and friends use it too."""
    from prefect.client.orchestration import get_client
    from prefect.settings import PREFECT_API_URL, temporary_settings

    with temporary_settings({PREFECT_API_URL: real_server}), get_client(sync_client=True) as c:
        yield c


def _flow_run(client: Any, name: str) -> Any | None:
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterName

    runs = client.read_flow_runs(flow_run_filter=FlowRunFilter(name=FlowRunFilterName(any_=[name])))
    return runs[0] if runs else None


def _wait_paused(
    client: Any, flow: FlowProcess, pause_key: str, timeout: float = 180.0
) -> tuple[Any, dict[str, Any]]:
    """The run once it is Paused on ``pause_key`` with its form saved; and that form (schema, description)."""
    from prefect.input.actions import read_flow_run_input

    deadline = time.monotonic() + timeout
    state = None
    while time.monotonic() < deadline:
        if flow.proc.poll() is not None:
            raise AssertionError(
                f"{flow.name} exited ({flow.proc.returncode}) instead of pausing:\n{flow.output()}"
            )
        run = _flow_run(client, flow.name)
        state = run.state if run else None
        if (
            run is not None
            and state is not None
            and state.is_paused()
            and state.state_details.pause_key == pause_key
        ):
            keyset = state.state_details.run_input_keyset
            assert keyset, state.state_details
            # The run is Paused before it saves its form; the server refuses a resume until then.
            schema = read_flow_run_input(keyset["schema"], flow_run_id=run.id)
            if schema is not None:
                description = read_flow_run_input(keyset["description"], flow_run_id=run.id)
                return run, {"schema": schema, "description": description, "keyset": keyset}
        time.sleep(0.5)
    raise AssertionError(
        f"{flow.name} not paused on {pause_key} in {timeout}s (state {state}):\n{flow.output()}"
    )


def _final_state(client: Any, flow: FlowProcess, timeout: float = 30.0) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        run = _flow_run(client, flow.name)
        if run is not None and run.state is not None and run.state.is_final():
            return run.state
        if time.monotonic() > deadline:
            raise AssertionError(f"{flow.name}: no final state in {timeout}s ({run.state if run else None})")
        time.sleep(0.5)


def _unchanged(world: World, before: Placement, journals: int) -> None:
    """Nothing moved: the same record (epoch included), A primary and running Nexus, no new journal."""
    assert placement(world) == before
    assert roles(world) == {"site-a": True, "site-b": False}
    assert runs_nexus(world, "site-a") and not runs_nexus(world, "site-b")
    assert len(list_journals(world, "nexus")) == journals


# ------------------------------------------------------------------------------------------ tests


@pytest.mark.timeout(1500)
def test_relocate_waits_for_a_valid_typed_approval_then_moves_the_app(
    world: World, key: crypto.MasterKey, client: Any, flows: Callable[..., FlowProcess]
) -> None:
    from prefect.client.schemas.filters import (
        ArtifactFilter,
        ArtifactFilterKey,
        FlowRunFilter,
        FlowRunFilterId,
    )
    from prefect.flow_runs import resume_flow_run

    fresh_backup(world, "site-a", key)
    sync_now(world, "site-a", "site-b")  # the lag guard passes whatever the lab's schedule did so far
    before, journals = placement(world), len(list_journals(world, "nexus"))
    flow = flows("relocate", "site-b")

    # 1. Paused on the first approval, with the plan published and shown in the form.
    run, form = _wait_paused(client, flow, "approval-1")
    print(f"\nrelocate paused for approval {time.monotonic() - flow.started:.1f}s after start")
    artifacts = client.read_artifacts(
        artifact_filter=ArtifactFilter(key=ArtifactFilterKey(any_=[PLAN_ARTIFACT])),
        flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[run.id])),
    )
    assert artifacts, f"no {PLAN_ARTIFACT} artifact for {flow.name}"
    plan_md = str(artifacts[0].data)
    assert plan_md.startswith("# relocate of nexus: site-a → site-b"), plan_md[:200]
    description = str(form["description"])
    assert description == plan_md, (description[:300], plan_md[:300])  # the form shows the very plan
    assert "| precondition | result | seen |" in description and "demote the images" in description
    schema = form["schema"]
    assert set(schema["required"]) == {"confirm_app", "approver", "reason"}, schema
    assert "nexus" in schema["properties"]["confirm_app"]["description"], schema  # the form's field help
    _unchanged(world, before, journals)

    # Input the server refuses (missing fields): the run stays paused on the same key.
    with pytest.raises(RuntimeError, match="Cannot resume"):
        resume_flow_run(run.id, run_input={"confirm_app": "nexus"})
    assert client.read_flow_run(run.id).state.state_details.pause_key == "approval-1"

    # 2. Input the plan refuses: asked again (a new pause), nothing changed.
    resume_flow_run(run.id, run_input={"confirm_app": "wrong", "approver": "x", "reason": "y"})
    run, form = _wait_paused(client, flow, "approval-2", timeout=60)
    again = str(form["description"])
    assert again.startswith("**Not approved, please fix:**") and "'wrong'" in again, again[:300]
    assert "# relocate of nexus: site-a → site-b" in again
    _unchanged(world, before, journals)

    # 3. A valid approval: the run completes and Nexus runs on site-b.
    approved_at = time.monotonic()
    resume_flow_run(run.id, run_input={"confirm_app": "nexus", "approver": "tester", "reason": "test"})
    code = flow.wait_exit(900)
    print(f"relocate completed {time.monotonic() - approved_at:.1f}s after the approval")
    assert code == 0, flow.output()
    assert _final_state(client, flow).is_completed()
    record = placement(world)
    assert record.primary == "site-b" and record.secondary == "site-a" and record.operation is None, record
    assert record.epoch > before.epoch
    assert roles(world) == {"site-a": False, "site-b": True}
    assert runs_nexus(world, "site-b") and not runs_nexus(world, "site-a")
    done = [j for j in list_journals(world, "nexus") if j.status == "completed" and j.target == "site-b"]
    assert done and done[-1].approval is not None and done[-1].approval.approver == "tester"

    # 4. Home again with the jobs API, so the lab is left as found.
    fresh_backup(world, "site-b", key)
    sync_now(world, "site-b", "site-a")  # the lag guard wants A's first snapshot after the move
    prepared = prepare(world, "nexus", "relocate", "site-a", key=key)
    assert prepared.plan.runnable, prepared.plan.refusals
    approval = Approval(approver="approval-test", reason="back home", at=datetime.now(UTC))
    back = execute(world, approve(world, prepared, approval, "nexus"), key=key)
    assert back.status == "completed", back.error
    assert_home(world)


@pytest.mark.timeout(600)
def test_an_approval_that_never_comes_fails_the_run_and_changes_nothing(
    world: World, key: crypto.MasterKey, client: Any, flows: Callable[..., FlowProcess]
) -> None:
    from prefect.exceptions import PrefectException
    from prefect.flow_runs import resume_flow_run

    fresh_backup(world, "site-a", key)
    before, journals = placement(world), len(list_journals(world, "nexus"))
    flow = flows("failover", "site-b", approval_timeout=5)
    run, form = _wait_paused(client, flow, "approval-1")
    assert str(form["description"]).startswith("# failover of nexus: site-a → site-b")
    paused_at = time.monotonic()
    code = flow.wait_exit(120)
    print(f"\nfailover run exited {time.monotonic() - paused_at:.1f}s after pausing (approval_timeout=5)")
    assert code != 0
    assert "FlowPauseTimeout" in flow.output() or "never resumed" in flow.output(), flow.output()
    state = _final_state(client, flow)
    assert state.is_failed() or state.is_crashed(), state
    with pytest.raises((PrefectException, RuntimeError)):  # too late: the run is no longer paused
        resume_flow_run(run.id, run_input={"confirm_app": "nexus", "approver": "late", "reason": "late"})
    _unchanged(world, before, journals)
