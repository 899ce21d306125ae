"""Drill reports: built from a hand-made journal, rendered (JSON, Markdown, HTML, PNG), stored and read back."""

from __future__ import annotations

import base64
import html
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from drkit.domain.drill import Availability, DrillReport, build_report
from drkit.domain.errors import ConfigError
from drkit.domain.layout import StoreLayout
from drkit.domain.operations import Journal, Plan, StepRecord, StepSpec
from drkit.jobs.drill_report import load_reports, report_json, store_report
from drkit.testing.dr import fake_config
from drkit.testing.objectstore import FakeObjectStore
from drkit.views.drill_chart import timeline_png
from drkit.views.drill_html import report_html
from drkit.views.drill_report import history_rows, report_markdown

T0 = datetime(2026, 11, 30, 8, 15, tzinfo=UTC)
DRILL_ID = "drill-20261130T081500Z-a1b2c3"
IMAGE = "csi-vol-459e6f28"
FLOW_URL = "http://127.0.0.1:4200/runs/flow-run/0b1c2d3e"
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
# the steps of drkit.domain.drill.make_drill_plan: (name, site, seconds after T0 it starts, duration)
STEPS = [
    ("canary", "site-a", 0.0, 1.2),
    ("drill-snapshot", "site-a", 1.2, 50.3),
    ("restore-volumes", "site-b", 51.5, 8.0),
    ("drill-promote", "site-b", 59.5, 2.1),
    ("start-target", "site-b", 61.6, 7.0),
    ("drill-smoke", "site-b", 68.6, 3.4),
    ("cleanup-app", "site-b", 72.0, 4.0),
    ("cleanup-volumes", "site-b", 76.0, 2.5),
    ("demote-drill", "site-b", 78.5, 1.5),
    ("resync-drill", "site-b", 80.0, 45.0),
    ("drill-healthy", "site-b", 125.0, 5.0),
]


def _journal(*, fail: str = "", error: str = "", refused: str = "") -> Journal:
    specs = tuple(StepSpec(name=n, title=n.replace("-", " "), site=s) for n, s, _, _ in STEPS)
    plan = Plan(kind="drill", app="nexus", source="site-a", target="site-b", checks=(), steps=specs)
    records = []
    for name, site, start, seconds in STEPS:
        if refused:
            records.append(StepRecord(name=name, title=name, site=site))
            continue
        records.append(
            StepRecord(
                name=name,
                title=name,
                site=site,
                outcome="failed" if name == fail else "done",
                started_at=T0 + timedelta(seconds=start),
                ended_at=T0 + timedelta(seconds=start + seconds),
                error=error if name == fail else "",
            )
        )
    return Journal(
        op_id=DRILL_ID,
        kind="drill",
        app="nexus",
        source="site-a",
        target="site-b",
        status="refused" if refused else "completed",
        created_at=T0,
        plan=plan,
        steps=tuple(records),
        error=refused,
    )


def _report(
    journal: Journal | None = None, *, flow_run_url: str = FLOW_URL, rpo: float = 42.0
) -> DrillReport:
    measured: dict[str, Any] = {
        "canary": {
            "path": "drills/canary-a1b2c3.txt",
            "sha256": "9f" * 32,
            "written_at": T0.isoformat(),
            "verified": True,
            "verdict": "same sha256",
        },
        "smoke": {"status": 200, "writable": True, "login": True, "round_trip": True},
        "rpo_achieved_s": rpo,
        "recovery_point": T0 + timedelta(seconds=59.5 - rpo),
    }
    return build_report(
        fake_config().app("nexus"),
        journal or _journal(),
        "promote",
        measured=measured,
        availability=Availability(probes=130, writable=129, longest_unwritable_s=1.0),
        final_states={IMAGE: "up+replaying"},
        versions={"standby": "0.1.0", "ceph": "16.2.11", "python": "3.11.2"},
        flow_run_url=flow_run_url,
    )


def _earlier(
    report: DrillReport, days: int, suffix: str, rto: float | None, rpo: float | None
) -> DrillReport:
    start = report.started_at - timedelta(days=days)
    return report.model_copy(
        update={
            "drill_id": f"drill-{start:%Y%m%dT%H%M%SZ}-{suffix}",
            "started_at": start,
            "ended_at": start + timedelta(seconds=130),
            "rto_promotion_to_writable_s": rto,
            "rpo_achieved_s": rpo,
        }
    )


class RecordingStore(FakeObjectStore):
    """A fake store that remembers the order of the keys it was given."""

    def __init__(self) -> None:
        super().__init__()
        self.order: list[str] = []

    def put(self, key: str, data: bytes, **kwargs: Any) -> str:
        self.order.append(key)
        return super().put(key, data, **kwargs)


# ----------------------------------------------------------------------------------------- formats


def test_build_report_from_the_journal() -> None:
    report = _report()
    assert report.passed and not report.failed_step and not report.refused
    assert report.rto_promotion_to_writable_s == pytest.approx(9.1)  # promote start -> start-target end
    assert report.rto_start_to_canary_s == pytest.approx(72.0)
    assert report.cleanup_s == pytest.approx(58.0)
    assert report.protection_gap_s == pytest.approx(45.0)
    assert [s.phase for s in report.steps].count("cleanup") == 5


def test_json_round_trips_with_schema_version_first() -> None:
    report = _report()
    data = report_json(report)
    assert DrillReport.model_validate_json(data) == report
    doc = json.loads(data)
    assert doc["schema_version"] == 1
    assert next(iter(doc)) == "schema_version"
    assert data.startswith(b'{\n  "schema_version": 1')


@pytest.mark.parametrize(
    ("journal", "verdict"),
    [
        (None, "PASSED"),
        ("failed", "FAILED"),
        ("refused", "REFUSED"),
    ],
)
def test_markdown_and_html_name_the_verdict_every_step_and_every_check(
    journal: str | None, verdict: str
) -> None:
    if journal == "failed":
        report = _report(_journal(fail="start-target", error="Nexus not writable after 300s"))
    elif journal == "refused":
        report = _report(_journal(refused="lag: 900s (limit 180s = 3 x snapshot interval)"))
    else:
        report = _report()
    md = report_markdown(report, [])
    page = report_html(report, [], timeline_png(report))
    assert f"# nexus drill (promote): {verdict}, {DRILL_ID}" in md
    assert f'<span class="badge {verdict}">{verdict}</span>' in page
    for step in report.steps:
        assert f"| {step.name} |" in md
        assert f"<td>{step.name}</td>" in page
    for check in report.checks:
        assert f"| {check.name} |" in md
        assert f'<td class="wrap">{html.escape(check.name)}</td>' in page
    if journal == "failed":
        assert "| Failed step | start-target |" in md
        assert "Nexus not writable after 300s" in md and "Nexus not writable after 300s" in page
        assert '<tr class="fail">' in page
    if journal == "refused":
        assert "| Refusal reason | lag: 900s (limit 180s = 3 x snapshot interval) |" in md


def test_markdown_summary_figures() -> None:
    md = report_markdown(_report(), [])
    for line in [
        "| RTO, promotion \u2192 writable | 9.1 s |",
        "| RTO, drill start \u2192 canary verified | 72.0 s |",
        "| Achieved RPO | 42.0 s |",
        "| Recovery point (time on the primary of the data recovered) | 2026-11-30 08:15:17Z |",
        "| Primary availability | 130 probes, 99.2 % writable, longest unwritable run 1.0 s |",
        "| Cleanup duration | 58.0 s |",
        "| Protection gap (no consistent copy on the secondary) | 45.0 s |",
        f"| Final mirror state | {IMAGE}: up+replaying |",
        "| Failed step | - |",
        "| Refusal reason | - |",
        "| Versions | standby 0.1.0, ceph 16.2.11, python 3.11.2 |",
        f"| Flow run | [{FLOW_URL}]({FLOW_URL}) |",
        "| RTO: promotion to writable | pass | 9.1s | <= 60s |",
        "| cleanup | resync-drill | site-b | done | 08:16:20Z | 08:17:05Z | 45.0 |   |",
    ]:
        assert line in md, line
    assert "No earlier drill of this app." in md


def test_html_is_self_contained_with_the_chart_inline() -> None:
    report = _report()
    png = timeline_png(report)
    page = report_html(report, [], png)
    assert page.startswith("<!DOCTYPE html>")
    assert f'src="data:image/png;base64,{base64.b64encode(png).decode()}"' in page
    assert page.count("http") == page.count(FLOW_URL) == 2  # the flow run's link (href and text) only
    assert "<link" not in page and "<script" not in page and "@import" not in page
    without = report_html(_report(flow_run_url=""), [], png)
    assert "http" not in without


def test_flow_run_url_that_is_not_http_is_not_a_link() -> None:
    page = report_html(_report(flow_run_url="javascript:alert(1)"), [], b"")
    assert "href" not in page
    assert "javascript:alert(1)" in page  # shown as text


def test_timeline_is_a_png() -> None:
    assert timeline_png(_report()).startswith(PNG_SIGNATURE)
    assert timeline_png(_report(_journal(fail="drill-smoke", error="login 401"))).startswith(PNG_SIGNATURE)
    assert timeline_png(_report(_journal(refused="lag unknown"))).startswith(PNG_SIGNATURE)


def test_markup_in_a_step_error_is_escaped() -> None:
    error = '<script>alert("password=hunter2")</script><img src=x onerror=alert(1)> | a&b'
    report = _report(_journal(fail="drill-smoke", error=error))
    page = report_html(report, [], timeline_png(report))
    assert "<script" not in page and "<img src=x" not in page
    assert html.escape(error) in page
    md = report_markdown(report, [])
    assert "<script" not in md and "<img" not in md and "&lt;script>alert" in md
    assert "\\| a&b" in md  # the cell's pipe cannot split the table


# ----------------------------------------------------------------------------------------- history


def test_history_table_and_trend() -> None:
    report = _report()
    older = _earlier(report, 60, "0a0b0c", 10.0, 30.0)
    previous = _earlier(report, 30, "0d0e0f", 9.5, 39.0)
    refused = _earlier(report, 10, "101112", None, None).model_copy(
        update={"refused": "lag", "passed": False}
    )
    later = _earlier(report, -30, "131415", 1.0, 1.0)  # not earlier: left out
    history = [later, older, report, refused, previous]
    md = report_markdown(report, history)
    assert f"RTO 9.1 s (\u22120.4 s vs previous, {previous.drill_id})" in md
    assert f"RPO 42.0 s (+3.0 s vs previous, {previous.drill_id})" in md
    rows = [line for line in md.splitlines() if line.startswith("| 2026-")]
    assert [r.split(" | ")[1] for r in rows] == [refused.drill_id, previous.drill_id, older.drill_id]
    assert rows[0].endswith("| REFUSED | - | - | 58.0 |")
    assert later.drill_id not in md
    page = report_html(report, history, b"")
    assert f"RTO 9.1 s (\u22120.4 s vs previous, {previous.drill_id})" in page
    assert previous.drill_id in page and later.drill_id not in page


def test_trend_without_earlier_measurement() -> None:
    report = _report()
    md = report_markdown(report, [_earlier(report, 30, "0d0e0f", None, None)])
    assert "RTO 9.1 s (no earlier measurement)" in md
    assert "RPO - (not measured)" not in md


def test_history_rows_are_json() -> None:
    report = _report()
    rows = history_rows([_earlier(report, 30, "0d0e0f", 9.46, None), report])
    assert json.loads(json.dumps(rows)) == rows
    assert rows[0]["rto_promotion_to_writable_s"] == 9.5 and rows[0]["rpo_achieved_s"] is None
    assert rows[1] | {} == rows[1] and rows[1]["verdict"] == "PASSED" and rows[1]["drill_id"] == DRILL_ID
    assert rows[1]["started_at"] == "2026-11-30 08:15:00Z"


# ------------------------------------------------------------------------------------------- store


def test_store_and_load_round_trip_json_last() -> None:
    store, layout = RecordingStore(), StoreLayout("standby")
    report = _report()
    previous = _earlier(report, 30, "0d0e0f", 9.5, 39.0)
    store_report(store, layout, previous, [])
    store.order.clear()
    keys = store_report(store, layout, report, [previous])
    root = f"standby/drills/nexus/{DRILL_ID}"
    assert keys == {
        "png": f"{root}/charts/timeline.png",
        "md": f"{root}/report.md",
        "html": f"{root}/report.html",
        "json": f"{root}/report.json",
    }
    assert store.order[-1] == keys["json"] and sorted(store.order) == sorted(keys.values())
    assert store.objects[keys["png"]].startswith(PNG_SIGNATURE)
    assert "RTO 9.1 s (\u22120.4 s vs previous" in store.objects[keys["md"]].decode()
    assert store.objects[keys["html"]].decode().startswith("<!DOCTYPE html>")
    assert load_reports(store, layout, "nexus") == [previous, report]
    assert load_reports(store, layout, "other") == []


def test_load_reports_skips_corrupt_and_incomplete_reports() -> None:
    store, layout = FakeObjectStore(), StoreLayout("standby")
    report = _report()
    store_report(store, layout, report, [])
    corrupt = layout.drill_report_key("nexus", "drill-20261030T081500Z-ffffff", "json")
    store.put(corrupt, b'{"schema_version": 1, "drill_id": ')
    wrong_shape = layout.drill_report_key("nexus", "drill-20261031T081500Z-eeeeee", "json")
    store.put(wrong_shape, b'{"hello": "world"}')
    moved = layout.drill_report_key("nexus", "drill-20261101T081500Z-dddddd", "json")
    store.put(moved, report_json(report))  # names another drill than its folder
    no_json = layout.drill_report_key("nexus", "drill-20261102T081500Z-cccccc", "md")
    store.put(no_json, b"# half-written")  # no report.json: incomplete, not listed
    store.put("standby/drills/nexus/notes.json", b"{}")
    skipped: list[str] = []
    assert load_reports(store, layout, "nexus", skipped=skipped) == [report]
    assert [s.split(":")[0] for s in skipped] == [corrupt, wrong_shape, moved]
    assert load_reports(store, layout, "nexus") == [report]  # without collecting why


# ------------------------------------------------------------------------------------------ layout


def test_drill_keys_take_operation_ids_and_run_ids() -> None:
    layout = StoreLayout("standby")
    assert layout.drills_prefix("nexus") == "standby/drills/nexus/"
    assert (
        layout.drill_report_key("nexus", DRILL_ID, "json") == f"standby/drills/nexus/{DRILL_ID}/report.json"
    )
    assert layout.drill_chart_key("nexus", DRILL_ID, "timeline") == (
        f"standby/drills/nexus/{DRILL_ID}/charts/timeline.png"
    )
    assert (
        layout.drill_root("nexus", "20261130T081500Z-a1b2c3")
        == "standby/drills/nexus/20261130T081500Z-a1b2c3"
    )
    key = layout.drill_report_key("nexus", DRILL_ID, "json")
    assert layout.drill_id_of_report_key("nexus", key) == DRILL_ID
    assert layout.drill_id_of_report_key("nexus", layout.drill_report_key("nexus", DRILL_ID, "md")) is None
    assert layout.drill_id_of_report_key("other", key) is None


@pytest.mark.parametrize(
    "bad", ["failover-20261130T081500Z-a1b2c3", "drill-20261130T081500Z-ABCDEF", "drill-x", "../x", ""]
)
def test_drill_root_refuses_other_ids(bad: str) -> None:
    with pytest.raises(ConfigError, match="is not a drill id"):
        StoreLayout().drill_root("nexus", bad)
