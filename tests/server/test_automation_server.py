"""The breach automation end to end, on a real ``prefect server``: event -> trigger -> webhook.

A real Prefect server (its own ``PREFECT_HOME`` and port) runs its triggers and actions services.
The test registers a ``CustomWebhookNotificationBlock`` aimed at a local HTTP listener, creates
the automation with :func:`flows.automations.ensure_rpo_breach_automation`, and runs the real
``rpo-sample`` flow in a fresh process (``breach_scenario.py``) so that it emits
``standby.rpo.breach``. The listener must receive the notification naming the app and its lag.
Without a block, the automation of ``make up`` runs the served ``rpo-breach-notice`` deployment.
"""

from __future__ import annotations

import json
import os
import queue
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from tests.labhelpers import prefect_server

pytestmark = pytest.mark.server
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def real_server() -> Iterator[str]:
    """A real ``prefect server`` without its UI (on ``$STANDBY_TEST_PREFECT_PORT`` if set); yields its API URL."""
    port = int(os.environ.get("STANDBY_TEST_PREFECT_PORT") or 0) or None
    with prefect_server(port=port) as base:
        yield f"{base}/api"


@pytest.fixture
def webhook() -> Iterator[tuple[str, queue.Queue[dict[str, object]]]]:
    received: queue.Queue[dict[str, object]] = queue.Queue()

    class Hook(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            received.put(json.loads(body or b"{}"))
            self.send_response(200)
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Hook)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/hook", received
    finally:
        server.shutdown()


def _breach(api: str) -> list[dict[str, object]]:
    """Run the sampler scenario against ``api``; its two results (the second one breaches)."""
    env = {**os.environ, "PREFECT_API_URL": api, "PYTHONPATH": str(ROOT)}
    run = subprocess.run(
        [sys.executable, "-m", "tests.server.breach_scenario"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert run.returncode == 0, run.stderr[-3000:]
    results: list[dict[str, object]] = json.loads(run.stdout.strip().splitlines()[-1])
    assert [r["events"] for r in results] == [[], ["standby.rpo.breach"]]
    return results


def test_a_breach_event_reaches_the_configured_notification_through_the_real_automation(
    real_server: str, webhook: tuple[str, queue.Queue[dict[str, object]]]
) -> None:
    from prefect.blocks.notifications import CustomWebhookNotificationBlock
    from prefect.settings import PREFECT_API_URL, temporary_settings

    from flows.automations import AUTOMATION_NAME, ensure_rpo_breach_automation

    url, received = webhook
    with temporary_settings({PREFECT_API_URL: real_server}):
        CustomWebhookNotificationBlock(
            name="dr-oncall", url=url, json_data={"subject": "{{subject}}", "body": "{{body}}"}
        ).save("dr-oncall", overwrite=True)
        automation = ensure_rpo_breach_automation(notification_block="custom-webhook/dr-oncall")
    assert automation.name == AUTOMATION_NAME
    _breach(real_server)
    finished = time.monotonic()
    try:
        note = received.get(timeout=90)
    except queue.Empty:
        pytest.fail("no notification reached the webhook within 90 s of the breach event")
    print(f"\nnotification received {time.monotonic() - finished:.1f}s after the sampler process exited")
    assert note["subject"] == "RPO breach: nexus-e2e"
    body = str(note["body"])
    assert "nexus-e2e" in body and "site-b" in body and "target of 300.0s" in body, body
    time.sleep(5)  # a second notification would arrive within the same second or two
    assert received.empty(), "one breach crossing must notify once"


def test_without_a_block_the_automation_runs_the_served_notice_deployment(real_server: str) -> None:
    """``make up`` with no notification block: a breach becomes a completed ``rpo-breach-notice`` run."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterDeploymentId
    from prefect.settings import PREFECT_API_URL, temporary_settings

    env = {**os.environ, "PREFECT_API_URL": real_server, "PYTHONPATH": str(ROOT)}
    env.pop("STANDBY_NOTIFICATION_BLOCK", None)
    server = subprocess.Popen(
        [sys.executable, "-m", "tests.server.serve_notice"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        assert server.stdout is not None
        first = server.stdout.readline()
        assert "automation standby-rpo-breach: RunDeployment" in first, first
        time.sleep(3)  # let serve() start polling for runs
        _breach(real_server)
        with temporary_settings({PREFECT_API_URL: real_server}), get_client(sync_client=True) as client:
            deployment = client.read_deployment_by_name("rpo-breach-notice/log")
            runs_filter = FlowRunFilter(deployment_id=FlowRunFilterDeploymentId(any_=[deployment.id]))
            deadline = time.monotonic() + 90
            done = []
            while time.monotonic() < deadline and not done:
                runs = client.read_flow_runs(flow_run_filter=runs_filter)
                done = [r for r in runs if r.state is not None and r.state.is_completed()]
                time.sleep(1)
        assert done, f"no completed rpo-breach-notice run within 90 s: {[(r.name, r.state) for r in runs]}"
        assert done[0].parameters["app"] == "nexus-e2e"
        reason = str(done[0].parameters["reason"])
        assert reason and "{{" not in reason, reason  # the event's reason, rendered
    finally:
        server.terminate()
        server.wait(20)
