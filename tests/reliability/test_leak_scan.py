"""No Secret value and no Nexus password anywhere after a backup, a drill and a failover in the lab, in plaintext or base64;
no Secret name in clear in the backups (the index is sealed with a key).

The three run as Prefect flows under the test server (so their logs, artifacts and events exist);
the failover's approval form is answered through the API, as the UI does. Then every object in
both sites' stores (gzip'd objects opened, parquet read back as text), every flow-run log line,
every artifact, every event, and the journals and reports among the objects are searched for each
value of each Secret of the app's namespace on both sites, the Nexus admin password, the backup
master key and the S3 secret key. Finally a failback brings the app home for the lab's other tests.
"""

from __future__ import annotations

import base64
import gzip
import io
import json
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest

from drkit.adapters.clock import SystemClock
from drkit.config import load_config
from drkit.domain import crypto
from drkit.domain.models import KindRef
from drkit.domain.operations import Approval
from drkit.jobs import backup as backups
from drkit.jobs.operations import approve, execute, prepare
from drkit.jobs.world import World, build_world, read_placement
from lab import lab as lab_mod
from lab import seeds
from tests.labfixture import Lab
from tests.labhelpers import LAB_KEY_TEXT

pytestmark = pytest.mark.lab
KEY_TEXT = LAB_KEY_TEXT  # the lab's one key (tests/labhelpers.py)
SECRET = KindRef(group="", version="v1", kind="Secret")


def _needles(world: World, lab: Lab) -> dict[str, str]:
    """name -> value, for every secret value to look for."""
    values: dict[str, str] = {"backup master key": KEY_TEXT}
    for site in ("site-a", "site-b"):
        for obj in world.bundle(site).cluster.list(SECRET, seeds.NAMESPACE):
            for field, encoded in (obj.get("data") or {}).items():
                text = base64.b64decode(encoded).decode(errors="replace")
                if len(text) >= 6:
                    values[f"{site} Secret {obj['metadata']['name']}.{field}"] = text
    password = lab_mod.read_admin_password(lab.root, "site-a")
    assert password, "the lab's Nexus admin password could not be read"
    values["Nexus admin password"] = password
    store = world.bundle("site-a").store
    creds = getattr(store, "_credentials", None) or getattr(store, "credentials", None)
    secret_key = getattr(creds, "secret_access_key", None)
    if secret_key:
        values["S3 secret key"] = str(getattr(secret_key, "get_secret_value", lambda: secret_key)())
    needles = {}
    for name, value in values.items():
        if not value:
            continue
        needles[f"{name} (plain)"] = value
        needles[f"{name} (base64)"] = base64.b64encode(value.encode()).decode()
    return needles


def _text_of(key: str, data: bytes) -> str:
    if data[:2] == b"\x1f\x8b":
        data = gzip.decompress(data)
    if key.endswith(".parquet"):
        import pandas as pd

        return pd.read_parquet(io.BytesIO(data)).to_csv()
    return data.decode("utf-8", errors="replace")


def _secret_names(world: World) -> set[str]:
    """The names of the Secrets of the app's namespace on both sites (long enough to be told apart)."""
    return {
        str(obj["metadata"]["name"])
        for site in ("site-a", "site-b")
        for obj in world.bundle(site).cluster.list(SECRET, seeds.NAMESPACE)
        if len(str(obj["metadata"]["name"])) >= 6
    }


def _sources(
    world: World, flow_run_ids: list[Any], *, stores_only: bool = False
) -> Iterator[tuple[str, str]]:
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId, LogFilter, LogFilterFlowRunId
    from prefect.events.filters import EventFilter

    for ref in world.stores():
        for info in ref.store.list(ref.layout.prefix + "/"):
            yield f"s3:{ref.name}:{info.key}", _text_of(info.key, ref.store.get(info.key))
    if stores_only:
        return
    with get_client(sync_client=True) as client:  # the API pages: at most 200 logs or artifacts, 50 events
        log_filter = LogFilter(flow_run_id=LogFilterFlowRunId(any_=flow_run_ids))
        for offset in range(0, 100_000, 200):
            logs = client.read_logs(log_filter=log_filter, limit=200, offset=offset)
            for log in logs:
                yield f"log:{log.flow_run_id}", log.message
            if len(logs) < 200:
                break
        for offset in range(0, 100_000, 200):
            artifacts = client.read_artifacts(limit=200, offset=offset)
            for artifact in artifacts:
                yield f"artifact:{artifact.key}", json.dumps(artifact.data) + str(artifact.description or "")
            if len(artifacts) < 200:
                break
        page = client.read_events(filter=EventFilter(), limit=50)
        for _ in range(2_000):
            for event in page.events:
                yield f"event:{event.event}", event.model_dump_json()
            if not page.next_page:
                break
            page = client.read_events_page(str(page.next_page))
        runs = client.read_flow_runs(flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=flow_run_ids)))
        for run in runs:
            yield f"flow-run:{run.name}", json.dumps(run.parameters, default=str) + str(run.state)


def _approve_when_paused(
    run_name: str, answer: dict[str, Any], stop: threading.Event, errors: list[BaseException]
) -> None:
    """Answer the run's approval form as the UI does: the form's own fields, once the form is saved.

    The acknowledgements are in the form only when the plan needs them, and the server refuses
    fields the form does not have, so the answer is cut to the form's schema. Errors are kept for
    the test to report (a thread's exception would vanish).
    """
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterName
    from prefect.flow_runs import resume_flow_run
    from prefect.input.actions import read_flow_run_input

    answered: set[str] = set()
    try:
        while not stop.is_set():
            with get_client(sync_client=True) as client:
                for run in client.read_flow_runs(
                    flow_run_filter=FlowRunFilter(name=FlowRunFilterName(any_=[run_name]))
                ):
                    state = run.state
                    if state is None or not state.is_paused() or state.state_details.pause_key in answered:
                        continue
                    keyset = state.state_details.run_input_keyset
                    schema = read_flow_run_input(keyset["schema"], flow_run_id=run.id) if keyset else None
                    if schema is None:  # paused, form not saved yet: the server would refuse a resume
                        continue
                    fields = dict(schema.get("properties") or {})
                    resume_flow_run(run.id, run_input={k: v for k, v in answer.items() if k in fields})
                    answered.add(str(state.state_details.pause_key))
            time.sleep(0.5)
    except BaseException as exc:  # reported by the test
        errors.append(exc)


@pytest.mark.timeout(900)
def test_no_secret_in_bucket_logs_artifacts_events_journals_or_reports(
    lab: Lab, prefect_harness: None, monkeypatch: pytest.MonkeyPatch, record_property: Any
) -> None:
    from flows.backup import backup
    from flows.drill import drill
    from flows.operations import failover

    monkeypatch.setenv("STANDBY_BACKUP_KEY", KEY_TEXT)
    config_path = str(lab.root / "standby.yaml")
    world = build_world(load_config(lab.root / "standby.yaml"), timeout=20.0)
    assert read_placement(world, world.config.app("nexus")).record.primary == "site-a"
    started = time.monotonic()
    run_ids: list[Any] = []

    state = backup(app="nexus", config=config_path, return_state=True)
    assert state.is_completed(), state.message
    run_ids.append(state.state_details.flow_run_id)
    state = drill(app="nexus", config=config_path, mode="isolated", return_state=True)
    assert state.is_completed(), state.message
    run_ids.append(state.state_details.flow_run_id)

    stop = threading.Event()
    answer = {
        "confirm_app": "nexus",
        "approver": "leak-scan",
        "reason": "reliability battery",
        "acknowledge_data_loss": True,
        "acknowledge_unfenced": True,
    }
    errors: list[BaseException] = []
    approver = threading.Thread(
        target=_approve_when_paused, args=("leak-scan-failover", answer, stop, errors), daemon=True
    )
    approver.start()
    try:
        state = failover.with_options(flow_run_name="leak-scan-failover")(
            app="nexus", to="site-b", config=config_path, approval_timeout=180, return_state=True
        )
    finally:
        stop.set()
        approver.join(timeout=10)
    assert not errors, errors
    assert state.is_completed(), state.message
    run_ids.append(state.state_details.flow_run_id)
    record_property("figure", f"backup, drill and failover in the lab: {time.monotonic() - started:.0f} s")

    try:
        needles = _needles(world, lab)
        assert len(needles) >= 4, sorted(needles)
        scanned = 0
        found: list[str] = []
        for where, text in _sources(world, run_ids):
            scanned += 1
            found += [f"{name} in {where}" for name, value in needles.items() if value in text]
        record_property("figure", f"leak scan: {scanned} sources, {len(needles)} needles, {len(found)} found")
        assert scanned > 50
        assert not found, found[:5]
        # with a key the backups (sealed index and blobs) name no Secret either: only app, site, run ids
        names = _secret_names(world)
        assert names, "the app's namespace holds no Secret to look for"
        named = [
            f"Secret name {name} in {where}"
            for where, text in _sources(world, [], stores_only=True)
            if "/backups/" in where
            for name in names
            if name in text
        ]
        record_property("figure", f"Secret names in clear in the backups: {len(named)} ({len(names)} names)")
        assert not named, named[:5]
    finally:
        # Home again (A primary, B replaying) for the lab's other tests: a backup on B, a failback.
        key = crypto.MasterKey(base64.b64decode(KEY_TEXT))
        b = world.bundle("site-b")
        app = world.config.app("nexus")
        backups.run_backup(
            app,
            b.site,
            b.cluster,
            backups.app_stores(world, app, "site-b", spare=False),
            key=key,
            clock=SystemClock(),
        )
        prepared = prepare(world, "nexus", "failback", None, key=key)
        assert prepared.plan.runnable, prepared.plan.refusals
        journal = approve(
            world, prepared, Approval(approver="leak-scan", reason="home", at=datetime.now(UTC)), "nexus"
        )
        done = execute(world, journal, key=key)
        assert done.status == "completed", done.error
