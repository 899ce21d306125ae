"""The operator's path through the real Prefect UI, in Debian's chromium driven by Playwright.

A real ``prefect server`` with its UI and API authentication (as ``make server`` runs it), the
``relocate``, ``failover`` and ``failback`` deployments served as ``make up`` serves them
(``serve_operations.py``), and the real two-site lab. In the browser the test does what the
operator's guide (docs/operator-guide.md) tells an operator to do:

0. opens the UI, which asks to sign in: a wrong auth string is refused, the right one lets it in
   (the API refuses a call without it);
1. goes to Deployments, opens ``failover``, and starts it from Run -> Custom run,
   filling the form (app, target site, dry_run off, a run name);
2. sees the run Paused and, in its Resume dialog, the plan (markdown) above the approval form;
3. fills in and submits the approval form, with the acknowledgements the plan asks for (none
   while site-a answers: a failover fences a reachable old primary, so nothing is forced);
4. sees the run Completed;
5. opens the ``operation-timeline-nexus`` artifact from the run's Artifacts tab and reads every
   step done.

The lab must then run Nexus on site-b with the approver recorded in the journal; the app is failed
back home with the jobs API afterwards (a resync of site-a's images, then a relocate), so the lab
is left as found: Nexus primary on site-a, site-b replaying. Screenshots go to
``$STANDBY_SCREENSHOTS`` (relative to the repository; ``docs/screenshots`` refreshes the guide's)
or to the test's temporary folder. No browser is downloaded: ``/usr/bin/chromium`` (or
``$STANDBY_CHROMIUM``) is launched through ``executable_path``.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from drkit.domain import crypto
from drkit.domain.operations import Approval
from drkit.jobs.operations import approve, execute, list_journals, prepare
from drkit.jobs.world import World
from lab import seeds
from tests.labfixture import Lab
from tests.labhelpers import (
    api_auth,
    assert_home,
    fresh_backup,
    placement,
    poll,
    prefect_server,
    roles,
    runs_nexus,
    sync_now,
)
from tests.server.test_approval_server import KEY_TEXT, key, world

pytestmark = [pytest.mark.server, pytest.mark.lab, pytest.mark.browser]
# the approval test's backup key (KEY_TEXT) and its fixtures ``key`` and ``world`` (the lab checked at home)
__all__ = ["key", "world"]

ROOT = Path(__file__).resolve().parents[2]
KEY_BLOCK = "standby-backup-key"  # the Secret block the served deployments read (key_source)
APPROVER = "oncall@example.com"
ACKS = ("Acknowledge Data Loss", "Acknowledge Unfenced")  # the approval form's optional switches


# ------------------------------------------------------------------------------------ fixtures


@pytest.fixture(scope="module")
def ui_server() -> Iterator[str]:
    """A real ``prefect server`` with its UI on a free port; yields the UI's base URL."""
    with prefect_server(ui=True) as base:
        yield base


@pytest.fixture(scope="module")
def client(ui_server: str) -> Iterator[Any]:
    """A sync Prefect client of the UI's server."""
    from prefect.client.orchestration import get_client
    from prefect.settings import PREFECT_API_URL, temporary_settings

    with temporary_settings({PREFECT_API_URL: f"{ui_server}/api"}), get_client(sync_client=True) as c:
        yield c


@pytest.fixture(scope="module")
def served(ui_server: str, client: Any, lab: Lab) -> Iterator[None]:
    """The DR deployments served against the lab, with the backup key in its Secret block."""
    from prefect.blocks.system import Secret
    from prefect.settings import PREFECT_API_URL, temporary_settings

    with temporary_settings({PREFECT_API_URL: f"{ui_server}/api"}):
        Secret(value=KEY_TEXT).save(KEY_BLOCK, overwrite=True)
    env = {
        **os.environ,
        "PREFECT_API_URL": f"{ui_server}/api",
        "PYTHONPATH": str(ROOT),
        "STANDBY_CONFIG": str(lab.root / "standby.yaml"),
    }
    log = Path(tempfile.mkdtemp(prefix="standby-serve-")) / "serve.log"
    with log.open("w") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "tests.browser.serve_operations"],
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        from prefect.exceptions import ObjectNotFound

        deadline = time.monotonic() + 120
        while True:
            assert proc.poll() is None, f"serve exited ({proc.returncode}):\n{log.read_text()[-3000:]}"
            assert time.monotonic() < deadline, f"deployments not served in 120 s:\n{log.read_text()[-3000:]}"
            try:
                client.read_deployment_by_name("failover/failover")
                break
            except ObjectNotFound:
                time.sleep(0.5)
        yield
    finally:
        proc.terminate()
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)
        print(f"\nserve log: {log}")
    assert api_auth() not in log.read_text(errors="replace"), "the API's auth string is in the serve log"


@pytest.fixture
def shots(tmp_path: Path) -> Path:
    """Where the screenshots go: ``$STANDBY_SCREENSHOTS`` (relative to the repository) or tmp."""
    chosen = os.environ.get("STANDBY_SCREENSHOTS")
    folder = (ROOT / chosen) if chosen else tmp_path / "screenshots"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


@pytest.fixture
def page(shots: Path) -> Iterator[Any]:
    """A Playwright page in Debian's chromium (no downloaded browser)."""
    from playwright.sync_api import sync_playwright

    chromium = os.environ.get("STANDBY_CHROMIUM", "/usr/bin/chromium")
    if not Path(chromium).exists():
        pytest.fail(
            f"no chromium at {chromium}: run scripts/sysdeps.sh (apt-get install chromium) "
            "or set STANDBY_CHROMIUM"
        )
    args = ["--no-sandbox"] if os.geteuid() == 0 else []  # chromium refuses to sandbox as root
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=chromium, args=args)
        context = browser.new_context(viewport={"width": 1280, "height": 860})
        context.set_default_timeout(30_000)
        try:
            yield context.new_page()
        finally:
            context.close()
            browser.close()
    print(f"\nscreenshots: {shots}")


def _image_state(world: World, site: str) -> object:
    b = world.bundle(site)
    return b.rbd.image_status(b.site.pool, seeds.IMAGE_NAME).get("state")


# ------------------------------------------------------------------------------------ UI helpers


def _field(scope: Any, label: str) -> Any:
    """The input of the form field labelled ``label`` (Prefect appends `` (Optional)``).

    Prefect's schema form does not tie its labels to the inputs, so the field is the innermost
    element that holds both the label text and an input.
    """
    page = getattr(scope, "page", scope)
    text = page.get_by_text(re.compile(rf"^{re.escape(label)}( \(Optional\))?$"))
    control = page.get_by_role("textbox").or_(page.get_by_role("switch")).or_(page.get_by_role("spinbutton"))
    box = scope.locator("div").filter(has=text).filter(has=control).last
    return box.get_by_role("textbox").or_(box.get_by_role("switch")).or_(box.get_by_role("spinbutton")).first


def _state_badge(page: Any, state: str) -> Any:
    """The run's state badge in the page header."""
    return page.get_by_role("banner").get_by_text(state, exact=True)


def _shot(page: Any, shots: Path, name: str, *, full: bool = False) -> None:
    page.wait_for_timeout(800)  # let transitions and lazy tables settle
    page.screenshot(path=str(shots / name), full_page=full)


def _flow_run_by_name(client: Any, name: str, timeout: float = 30.0) -> Any:
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterName

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        runs = client.read_flow_runs(flow_run_filter=FlowRunFilter(name=FlowRunFilterName(any_=[name])))
        if runs:
            return runs[0]
        time.sleep(0.5)
    raise AssertionError(f"no flow run named {name} within {timeout}s of submitting the form")


def _until_paused(client: Any, run_id: Any, timeout: float = 180.0) -> None:
    """Wait, through the API, until the run pauses; a run that ends first fails the test with its
    logs and its plan artifact (the reason a guard refused is there, not in the page)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        state = client.read_flow_run(run_id).state
        if state is not None and state.is_paused():
            return
        if state is not None and state.is_final():
            from prefect.client.schemas.filters import (
                ArtifactFilter,
                ArtifactFilterFlowRunId,
                LogFilter,
                LogFilterFlowRunId,
            )

            logs = client.read_logs(log_filter=LogFilter(flow_run_id=LogFilterFlowRunId(any_=[run_id])))
            arts = client.read_artifacts(
                artifact_filter=ArtifactFilter(flow_run_id=ArtifactFilterFlowRunId(any_=[run_id]))
            )
            text = "\n".join(f"{entry.level} {entry.message}" for entry in logs)
            plans = "\n".join(f"--- {a.key}\n{a.data}" for a in arts if a.key and "plan" in a.key)
            raise AssertionError(
                f"the run ended {state.name} before its approval pause: {state.message}\n"
                f"{text[-4000:]}\n{plans[-4000:]}"
            )
        time.sleep(1)
    raise AssertionError(f"the run did not pause within {timeout:.0f}s")


# ------------------------------------------------------------------------------------------ test


@pytest.mark.timeout(1200)
def test_an_operator_fails_over_nexus_from_the_prefect_ui(
    ui_server: str, client: Any, served: None, world: World, key: crypto.MasterKey, page: Any, shots: Path
) -> None:
    from playwright.sync_api import expect

    fresh_backup(world, "site-a", key)
    sync_now(world, "site-a", "site-b")  # the lag guard passes whatever the lab's schedule did so far
    before, journals = placement(world), len(list_journals(world, "nexus"))
    run_name = f"ui-failover-{uuid.uuid4().hex[:6]}"

    # 0. Open the UI: its API needs the auth string, so it asks to sign in (the V1 UI's login form).
    # Prefect 3.8.8 opens its new V2 UI at /; the guide and this test use the V1 UI's routes
    # (its side bar has "Switch to V2 UI"), where the approval form was checked.
    started = time.monotonic()
    assert httpx.post(f"{ui_server}/api/flows/filter", json={}, timeout=10).status_code == 401
    page.goto(f"{ui_server}/dashboard")
    password = page.get_by_placeholder("admin:pass")
    expect(password).to_be_visible()
    expect(password).to_have_attribute("type", "password")  # the screenshot shows dots, not the string
    password.fill("standby:not-the-auth-string")
    page.get_by_role("button", name="Login", exact=True).click()
    expect(page.get_by_text("Authentication failed.").first).to_be_visible()
    expect(password).to_be_visible()  # still on the login page
    page.reload()  # the login page afresh, without the first attempt's notices, for the screenshot
    expect(password).to_be_visible()
    password.fill(api_auth())
    _shot(page, shots, "00-sign-in.png")
    page.get_by_role("button", name="Login", exact=True).click()
    expect(password).to_be_hidden()

    # 1. Go to Deployments, open failover, Run -> Custom run, fill in the form.
    page.goto(f"{ui_server}/dashboard")
    page.get_by_role("button", name="Deployments", exact=True).click()
    expect(page.get_by_role("link", name="relocate", exact=True).first).to_be_visible()
    _shot(page, shots, "01-deployments.png")
    page.get_by_role("link", name="failover", exact=True).first.click()
    page.get_by_role("button", name="Run", exact=True).click()
    page.get_by_text("Custom run", exact=True).click()
    expect(page.get_by_role("heading", name="Parameters")).to_be_visible()
    _field(page, "Run Name").fill(run_name)
    _field(page, "app").fill("nexus")
    _field(page, "to").fill("site-b")
    dry_run = _field(page, "dry_run")
    if dry_run.is_checked():
        dry_run.click()
    expect(dry_run).not_to_be_checked()
    expect(page.get_by_text("name of the protected app")).to_be_visible()  # the form's field help
    _shot(page, shots, "02-run-form.png", full=True)
    submitted = time.monotonic()
    page.get_by_role("button", name="Submit", exact=True).click()
    run = _flow_run_by_name(client, run_name)
    assert run.parameters["app"] == "nexus" and run.parameters["to"] == "site-b", run.parameters
    assert run.parameters["dry_run"] is False, run.parameters

    # 2. The run pauses; its Resume dialog shows the plan above the approval form.
    _until_paused(client, run.id)
    page.goto(f"{ui_server}/runs/flow-run/{run.id}")
    expect(_state_badge(page, "Paused")).to_be_visible(timeout=60_000)
    print(f"\nfailover paused {time.monotonic() - submitted:.1f}s after the form was submitted")
    assert client.read_flow_run(run.id).state.state_details.pause_key == "approval-1"
    page.get_by_role("button", name="Resume", exact=True).click()
    dialog = page.get_by_role("dialog")
    plan = dialog.get_by_role("heading", name="failover of nexus: site-a → site-b")
    expect(plan).to_be_visible()
    expect(dialog.get_by_role("columnheader", name="precondition")).to_be_visible()
    expect(
        dialog.get_by_role("cell", name="stop the app and demote the images where reachable")
    ).to_be_attached()
    expect(dialog.get_by_role("cell", name="promote the images (not forced)", exact=True)).to_be_attached()
    confirm = _field(dialog, "Confirm App")
    expect(dialog.get_by_text("type the app's name (nexus) to confirm")).to_be_visible()
    assert plan.bounding_box()["y"] < confirm.bounding_box()["y"], "the plan must be above the form"
    assert placement(world) == before  # nothing changed while paused

    # 3. Fill in and submit the approval form.
    confirm.fill("nexus")
    _field(dialog, "Approver").fill(APPROVER)
    _field(dialog, "Reason").fill("site-a cannot be trusted")
    # The acknowledgements the plan asks for (data loss, an unfenced old primary): none while
    # site-a answers, since the failover then stops and demotes it and forces nothing.
    acks = [label for label in ACKS if dialog.get_by_text(re.compile(rf"^{label}")).count()]
    for label in acks:
        switch = _field(dialog, label)
        switch.click()
        expect(switch).to_be_checked()
    _shot(page, shots, "03-approval.png")
    approved = time.monotonic()
    dialog.get_by_role("button", name="Submit", exact=True).click()

    # 4. The run completes.
    expect(_state_badge(page, "Completed")).to_be_visible(timeout=300_000)
    print(f"failover Completed in the UI {time.monotonic() - approved:.1f}s after the approval")
    _shot(page, shots, "04-completed.png")
    assert client.read_flow_run(run.id).state.is_completed()

    # 5. The timeline artifact, from the run's Artifacts tab: every step done (or skipped).
    page.get_by_role("tablist").get_by_text("Artifacts", exact=True).click()
    timeline = page.get_by_role("link", name=re.compile("operation-timeline-nexus")).filter(
        has_text="completed"
    )
    timeline.click()
    expect(page.get_by_text(re.compile(r"failover failover-\S+: completed"))).to_be_visible()
    table = page.get_by_role("table")
    expect(table.get_by_role("columnheader", name="outcome")).to_be_visible()
    steps = [s.name for s in list_journals(world, "nexus")[-1].steps]
    for step in steps:
        expect(table.get_by_text(step, exact=True)).to_be_visible()
    outcomes = {t.strip() for t in table.get_by_role("row").locator("td:nth-child(3)").all_inner_texts()}
    assert outcomes and outcomes <= {"done", "skipped"}, outcomes
    _shot(page, shots, "05-timeline.png", full=True)

    # The auth string is in no log and no artifact of the run.
    from prefect.client.schemas.filters import (
        ArtifactFilter,
        ArtifactFilterFlowRunId,
        LogFilter,
        LogFilterFlowRunId,
    )

    logs = client.read_logs(log_filter=LogFilter(flow_run_id=LogFilterFlowRunId(any_=[run.id])))
    arts = client.read_artifacts(
        artifact_filter=ArtifactFilter(flow_run_id=ArtifactFilterFlowRunId(any_=[run.id]))
    )
    texts = [*(entry.message for entry in logs), *(str(a.data) + str(a.description) for a in arts)]
    assert logs and arts and not [t for t in texts if api_auth() in t]

    # The lab agrees: Nexus on site-b, the approver in the journal.
    record = placement(world)
    assert record.primary == "site-b" and record.operation is None and record.epoch > before.epoch, record
    assert roles(world) == {"site-a": False, "site-b": True}
    assert runs_nexus(world, "site-b") and not runs_nexus(world, "site-a")
    found = list_journals(world, "nexus")
    assert len(found) == journals + 1
    journal = found[-1]
    assert journal.kind == "failover" and journal.status == "completed" and journal.approval is not None
    assert journal.approval.approver == APPROVER
    assert not journal.plan.forced and not journal.plan.unfenced, journal.plan  # site-a was fenced
    assert acks == [], f"the plan of a failover with site-a up asks no acknowledgement, the form had {acks}"
    assert (journal.approval.data_loss, journal.approval.unfenced) == (
        journal.plan.needs_data_loss_ack,
        journal.plan.needs_unfenced_ack,
    )
    print(f"operator path total {time.monotonic() - started:.1f}s (form to timeline)")

    # Home again with the jobs API (a failback: resync site-a, then relocate), so the lab is left
    # as found.
    fresh_backup(world, "site-b", key)
    prepared = prepare(world, "nexus", "failback", None, key=key)
    assert prepared.plan.runnable, prepared.plan.refusals
    back = execute(
        world,
        approve(
            world,
            prepared,
            Approval(approver="browser-test", reason="back home", at=datetime.now(UTC)),
            "nexus",
        ),
        key=key,
    )
    assert back.status == "completed", back.error
    if back.finished_at:
        print(f"failback through the jobs API {(back.finished_at - back.created_at).total_seconds():.1f}s")
    assert_home(world)
    poll(
        "site-b replaying", lambda: str(_image_state(world, "site-b")).startswith("up+replaying"), timeout=150
    )
