"""RPO of journal-mode images: an ESTIMATE kept apart from the measured lag, and its breach rule.

Journal mode reports entries behind, a replay rate and ``last_update``, never the time of the
replayed point: the figure is ``lag_estimate`` (status age + entries behind / replay rate), never
``lag``. Pure logic first (on real captures from ``tests/golden/rbd`` where there is one), then the
sampler and the report on the fakes (``FakeRbdMirror``, ``FakeMirrorPair``).
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from drkit.domain.models import StandbyConfig
from drkit.domain.rbd_status import parse_image_status
from drkit.domain.rpo import (
    AppLag,
    BreachState,
    ImageLag,
    app_lag,
    evaluate_breach,
    image_lag,
    journal_lag_estimate,
)
from drkit.domain.rpo_reading import AppReading, RpoMemory, evaluate, needs_exact
from drkit.jobs import rpo as jobs
from drkit.jobs import rpo_report as reports
from drkit.testing.clock import FakeClock
from drkit.testing.mirror import FakeMirrorPair
from drkit.testing.objectstore import FakeObjectStore
from drkit.testing.rbd import FakeRbdMirror
from drkit.views import rpo as views
from tests.rpo_config import rpo_config_doc

GOLDEN = Path(__file__).parents[1] / "golden" / "rbd"
T0 = datetime(2026, 11, 21, 20, 0, tzinfo=UTC)
TARGET = timedelta(minutes=5)


def s(seconds: float) -> timedelta:
    return timedelta(seconds=seconds)


def journal_status(behind: int | None, eps: float | None, *, written: float = 10, now: float = 20) -> Any:
    """A journal-mode sample (hand-written from the documented shape), status written at T0+written."""
    body: dict[str, Any] = {
        "bytes_per_second": 0.0,
        "non_primary_position": {"entry_tid": 0, "object_number": 12, "tag_tid": 8},
        "primary_position": {"entry_tid": 3, "object_number": 15, "tag_tid": 9},
    }
    if behind is not None:
        body["entries_behind_primary"] = behind
    if eps is not None:
        body["entries_per_second"] = eps
    doc = {
        "name": "one-7-disk-0",
        "state": "up+replaying",
        "description": "replaying, " + json.dumps(body),
        "last_update": (T0 + s(written)).strftime("%Y-%m-%d %H:%M:%S"),
    }
    return parse_image_status(doc, now=T0 + s(now), tz="UTC", site="site-b", pool="one")


# -------------------------------------------------------------------------------- the estimator


@pytest.mark.parametrize(
    ("behind", "eps", "written", "now", "estimate"),
    [
        (0, 0.0, 10, 20, 10.0),  # caught up: the status age alone
        (0, 500.0, 10, 10, 0.0),  # caught up, status written now: 0, never negative
        (300, 100.0, 10, 20, 13.0),  # 10 s old + 300 / 100
        (3, 0.0, 10, 20, None),  # entries behind and no replay rate: unknown
        (3, -1.0, 10, 20, None),  # a nonsense rate is no rate
        (None, 5.0, 10, 20, None),  # no entries_behind_primary
        (300, 100.0, 21, 20, 3.0),  # last_update 1 s in the future (within tolerance): age 0
    ],
)
def test_estimator(
    behind: int | None, eps: float | None, written: float, now: float, estimate: float | None
) -> None:
    sample = journal_status(behind, eps, written=written, now=now)
    figure, why = journal_lag_estimate(sample, T0 + s(now))
    assert (None if figure is None else figure.total_seconds()) == estimate
    assert why.startswith("journal")


def test_a_journal_image_reports_what_it_is_and_never_a_measured_lag() -> None:
    lag = image_lag(journal_status(300, 100.0), T0 + s(20))
    assert lag.lag is None and lag.lag_seconds is None  # not a measure
    assert lag.lag_estimate_seconds == 13.0 and lag.estimated and lag.source == "journal-estimate"
    assert (lag.entries_behind, lag.entries_per_second, lag.status_age_seconds) == (300, 100.0, 10.0)
    assert lag.health == "ok" and lag.mode == "journal" and "estimate" in lag.reason
    assert lag.lag_or_estimate_seconds == 13.0


def test_without_a_rate_the_estimate_is_unknown_but_the_entries_are_reported() -> None:
    lag = image_lag(journal_status(3, 0.0), T0 + s(20))
    assert lag.lag_estimate is None and lag.health == "unknown" and lag.entries_behind == 3
    assert "no replay rate" in lag.reason


def test_a_stale_journal_status_has_no_estimate() -> None:
    lag = image_lag(journal_status(0, 10.0, written=0, now=600), T0 + s(600))
    assert lag.health == "stale" and lag.lag_estimate is None and lag.status_age_seconds == 600.0


def _golden(name: str) -> tuple[Any, datetime]:
    meta = json.loads((GOLDEN / name.replace(".json", ".meta.json")).read_text())
    now = datetime.fromtimestamp(meta["captured_at_epoch"], UTC)
    doc = json.loads((GOLDEN / name).read_text())
    return parse_image_status(doc, now=now, tz=meta["timezone"]["name"], site=meta["site"]), now


def test_golden_capture_behind_gives_the_estimate_from_its_own_figures() -> None:
    """Real Ceph 16.2.15 capture while A was written: 26174 entries behind at 1152.75 entries/s."""
    sample, now = _golden("image-status-journal-secondary-b.json")
    lag = image_lag(sample, now)
    assert sample.last_update is not None
    age = (now - sample.last_update).total_seconds()
    assert lag.lag is None and lag.entries_behind == 26174 and lag.entries_per_second == 1152.75
    assert lag.status_age_seconds == pytest.approx(age)
    assert lag.lag_estimate_seconds == pytest.approx(age + 26174 / 1152.75)  # ~22.7 s + age


def test_golden_capture_caught_up_estimates_the_status_age() -> None:
    sample, now = _golden("image-status-journal-secondary-b-caught-up.json")
    lag = image_lag(sample, now)
    assert sample.last_update is not None
    assert lag.entries_behind == 0 and lag.lag_estimate == now - sample.last_update


def test_golden_capture_initial_has_entries_but_no_estimate() -> None:
    sample, now = _golden("image-status-journal-secondary-b-initial.json")
    lag = image_lag(sample, now)
    assert lag.entries_behind == 3 and lag.lag_estimate is None and lag.health == "unknown"


def test_exact_mode_is_never_run_for_a_journal_image() -> None:
    probe = image_lag(journal_status(3, 0.0), T0 + s(20))  # no figure: a snapshot image would run it
    assert not needs_exact(probe, "auto", TARGET) and not needs_exact(probe, "always", TARGET)


# ------------------------------------------------------------------------------------- per app


def _measured(image: str, seconds: float) -> ImageLag:
    return ImageLag(image=image, at=T0, lag=s(seconds), health="ok", reason="r", source="status")


def _estimated(image: str, seconds: float | None, entries: int = 0) -> ImageLag:
    return ImageLag(
        image=image,
        at=T0,
        lag=None,
        lag_estimate=None if seconds is None else s(seconds),
        entries_behind=entries,
        health="ok" if seconds is not None else "unknown",
        reason="journal estimate",
        source="journal-estimate",
        mode="journal",
    )


def test_an_app_keeps_its_measured_lag_and_its_estimate_apart() -> None:
    app = app_lag("vm", [_measured("snap-disk", 40), _estimated("journal-disk", 90, entries=12)])
    assert app.lag == s(40) and app.lag_estimate == s(90) and app.entries_behind == 12
    assert app.lag_or_estimate == s(90) and app.estimated and app.worst_image == "journal-disk"
    assert app.source == "journal-estimate" and "estimated lag of image journal-disk" in app.reason
    only_journal = app_lag("vm", [_estimated("journal-disk", 5)])
    assert only_journal.lag is None and only_journal.lag_estimate == s(5)  # known, not unknown


def test_an_unknown_estimate_makes_the_app_unknown() -> None:
    app = app_lag("vm", [_measured("snap-disk", 40), _estimated("journal-disk", None, entries=3)])
    assert app.lag is None and app.lag_estimate is None and app.worst_image == "journal-disk"
    assert app.entries_behind == 3


# ------------------------------------------------------------------------------- the breach rule


def _app(lag: float | None, estimate: float | None, entries: int | None = None) -> AppLag:
    return AppLag(
        app="vm",
        at=T0,
        lag=None if lag is None else s(lag),
        lag_estimate=None if estimate is None else s(estimate),
        entries_behind=entries,
        reason="r",
        source="journal-estimate",
        images=(),
    )


def test_the_target_applies_to_the_estimate_and_the_breach_says_estimated() -> None:
    decision = evaluate_breach(None, _app(None, 400), TARGET)
    assert decision.event == "breach" and decision.reason.startswith("estimated lag 400s is over")
    measured_wins = evaluate_breach(None, _app(400, 30), TARGET)
    assert measured_wins.event == "breach" and measured_wins.reason.startswith("lag 400s")
    assert evaluate_breach(None, _app(None, 100), TARGET).event is None


def test_entries_over_the_limit_breach_even_without_an_estimate_and_recover_with_hysteresis() -> None:
    opened = evaluate_breach(None, _app(None, None, entries=5000), TARGET, max_entries_behind=1000)
    assert opened.event == "breach" and "5000 entries behind" in opened.reason
    assert "rpo_max_entries_behind" in opened.reason and "estimated lag unknown" in opened.reason
    state = opened.state
    held = evaluate_breach(state, _app(None, 10, entries=900), TARGET, max_entries_behind=1000)
    assert held.event is None and held.state.breached and "entries behind" in held.reason
    cleared = evaluate_breach(held.state, _app(None, 10, entries=700), TARGET, max_entries_behind=1000)
    assert cleared.event == "recovered" and cleared.reason.startswith("estimated lag 10s is below")
    assert evaluate_breach(None, _app(None, 10, entries=5000), TARGET).event is None  # no limit set


def test_breach_state_without_the_limit_is_what_it_was() -> None:
    """A snapshot-mode app (no estimate, no entries) is judged exactly as before."""
    first = evaluate_breach(BreachState(), _app(400, None), TARGET)
    assert first.reason == "lag 400s is over the target 300s"


def test_the_alert_payload_labels_the_estimate() -> None:
    reading = AppReading(
        app="vm",
        target=TARGET,
        lag=app_lag("vm", [_estimated("one-7-disk-0", 400, entries=9)]),
        secondary_site="site-b",
        pool="one",
        max_entries_behind=1000,
    )
    _, alerts = evaluate(reading, RpoMemory())
    (alert,) = alerts
    assert alert.kind == "breach" and alert.payload["estimated"] is True
    assert alert.payload["lag_seconds"] is None and alert.payload["lag_estimate_seconds"] == 400
    assert alert.payload["entries_behind"] == 9 and alert.payload["max_entries_behind"] == 1000
    assert "estimated" in alert.payload["reason"]


def test_the_limit_is_configured_per_app_and_must_be_positive() -> None:
    doc = rpo_config_doc("one-7-disk-0", pool="one")
    assert StandbyConfig.model_validate(doc).apps[0].rpo_max_entries_behind is None
    doc["apps"][0]["rpo_max_entries_behind"] = 5000
    assert StandbyConfig.model_validate(doc).apps[0].rpo_max_entries_behind == 5000
    doc["apps"][0]["rpo_max_entries_behind"] = 0
    with pytest.raises(ValidationError):
        StandbyConfig.model_validate(doc)


# --------------------------------------------------------------------- the sampler on the fakes


def _vm_config(limit: int | None = None) -> StandbyConfig:
    """One app with a journal-mode disk and a snapshot-mode disk in pool ``one``."""
    doc = rpo_config_doc("one-7-disk-0", pool="one", app="vm", target="5m")
    doc["apps"][0]["volumes"].append({"pvc": "disk-1", "image": "one-8-disk-0"})
    if limit is not None:
        doc["apps"][0]["rpo_max_entries_behind"] = limit
    return StandbyConfig.model_validate(doc)


def test_sampler_on_a_mirror_pair_reports_the_journal_image_as_an_estimate_and_breaches() -> None:
    clock = FakeClock(T0)
    pair = FakeMirrorPair("one", ["one-7-disk-0", "one-8-disk-0"], now=clock.now)
    pair.journal["one-7-disk-0"] = (0, 850.0)  # caught up
    store = FakeObjectStore()
    config = _vm_config(limit=10_000)
    rbds = {site: pair.site(site) for site in pair.sites}
    records = jobs.records_for(config, {"site-a": store, "site-b": store})
    clock.advance(5)

    run = jobs.run_sample(config, rbds, clock=clock, records=records, exact="always")
    (reading,) = run.readings
    rows = {r["image"]: r for r in views.reading_rows(run.readings)}
    journal, snap = rows["one-7-disk-0"], rows["one-8-disk-0"]
    assert journal["source"] == "journal-estimate" and journal["lag_seconds"] is None
    assert journal["lag_estimate_seconds"] == 0.0 and journal["entries_behind"] == 0  # status written now
    assert journal["status_age_seconds"] == 0.0 and journal["entries_per_second"] == 850.0
    assert snap["source"] == "exact" and snap["lag_seconds"] == 5.0 and snap["lag_estimate_seconds"] is None
    assert reading.lag.lag == s(5) and reading.lag.lag_estimate == s(0) and run.alerts == ()
    # exact mode lists the snapshot-mode disk on both sites, never the journal-mode one
    assert sum(op == "snap ls" for _, op, _ in pair.calls) == 2
    doc = views.sample_json(run)
    assert doc["apps"][0]["lag_estimate_seconds"] == 0.0 and doc["apps"][0]["max_entries_behind"] == 10_000

    pair.journal["one-7-disk-0"] = (60_000, 100.0)  # 600 s of backlog: over the target and the limit
    clock.advance(60)
    pair.site("site-a").mirror_snapshot("one", "one-8-disk-0")  # the snapshot disk stays fresh
    run = jobs.run_sample(config, rbds, clock=clock, records=records)
    (alert,) = run.alerts
    assert alert.kind == "breach" and alert.payload["estimated"] is True
    assert alert.payload["lag_estimate_seconds"] == pytest.approx(600.0)
    assert alert.payload["entries_behind"] == 60_000
    assert alert.payload["reason"].startswith("estimated lag 600s is over the target 300s")

    pair.journal["one-7-disk-0"] = (0, 100.0)
    clock.advance(60)
    run = jobs.run_sample(config, rbds, clock=clock, records=records)
    assert [a.kind for a in run.alerts] == ["recovered"]


def test_recorded_rows_and_the_report_keep_the_estimates_apart() -> None:
    clock = FakeClock(T0)
    a, b = FakeRbdMirror(site="site-a", now=clock.now), FakeRbdMirror(site="site-b", now=clock.now)
    store = FakeObjectStore()
    config = _vm_config()
    records = jobs.records_for(config, {"site-a": store, "site-b": store})
    rbds = {"site-a": a, "site-b": b}
    for i, (behind, eps) in enumerate([(0, 500.0), (1000, 100.0), (20_000, 50.0), (0, 500.0)]):
        now = clock.now()
        for site, primary in ((a, True), (b, False)):
            site.add_image(
                "one",
                "one-7-disk-0",
                primary=primary,
                peer_site="site-b" if primary else "site-a",
                entries_behind=behind,
                entries_per_second=eps,
                last_update=now,
            )
            site.add_image(
                "one",
                "one-8-disk-0",
                primary=primary,
                peer_site="site-b" if primary else "site-a",
                local_snapshot_time=now - s(20),
                last_update=now,
            )
        clock.advance(10)
        jobs.run_sample(config, rbds, clock=clock, records=records, exact="never")
        clock.advance(50 if i < 3 else 0)

    rows = records.read(T0, clock.now())
    journal = rows[
        (rows["kind"] == "status") & (rows["image"] == "one-7-disk-0") & (rows["observed_from"] == "site-b")
    ]
    assert journal["lag_seconds"].isna().all()  # never mixed into the measured series
    assert list(journal["lag_estimate_seconds"]) == [10.0, 20.0, 410.0, 10.0]
    assert list(journal["entries_behind"]) == [0.0, 1000.0, 20_000.0, 0.0]

    report = reports.build_report(config, records, T0, clock.now())
    (section,) = report.apps
    assert [i.name for i in section.images] == ["one-8-disk-0"]  # the measured series: snapshot disk only
    assert section.overall is not None and section.overall.name == "app vm (measured images)"
    assert section.overall.source != "journal-estimate" and not section.overall.estimated
    names = [e.name for e in section.estimated]
    assert names == ["app vm (estimated)", "one-7-disk-0 (estimated)"]
    estimate = section.estimated[1]
    assert estimate.estimated and estimate.source == "journal-estimate" and estimate.max == 410.0
    assert estimate.within_target == 0.75
    table = views.report_table(report)
    assert [r["estimated"] for r in table] == [False, False, True, True]
    markdown = views.report_markdown(report)
    assert (
        "Estimated lag (journal mode" in markdown
        and "| one-7-disk-0 (estimated) | journal-estimate |" in markdown
    )
    png = views.render_charts(report)["vm"]
    assert png.startswith(b"\x89PNG")


# ---------------------------------------------------------------------------------------- the CLI


def test_rpo_parse_labels_the_estimate_of_a_real_journal_capture() -> None:
    from typer.testing import CliRunner

    from standby.rpo_cli import rpo_app

    meta = json.loads((GOLDEN / "image-status-journal-secondary-b.meta.json").read_text())
    text = (GOLDEN / "image-status-journal-secondary-b.json").read_text()
    result = CliRunner().invoke(rpo_app, ["parse", "--now", str(meta["captured_at_epoch"])], input=text)
    assert result.exit_code == 0, result.output
    (image,) = json.loads(result.stdout)["images"]
    assert image["lag_seconds"] is None and image["source"] == "journal-estimate"
    assert image["entries_behind"] == 26174 and image["entries_per_second"] == 1152.75
    assert image["lag_estimate_seconds"] == pytest.approx(image["status_age_seconds"] + 26174 / 1152.75)


def test_rpo_sample_table_adds_the_estimate_columns_only_for_journal_images(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import yaml
    from typer.testing import CliRunner

    from drkit.jobs import sites
    from drkit.testing.kube import FakeCluster
    from standby.rpo_cli import rpo_app

    a, b = FakeRbdMirror(site="site-a"), FakeRbdMirror(site="site-b")
    a.add_image(
        "one", "one-7-disk-0", primary=True, peer_site="site-b", entries_behind=40, entries_per_second=8.0
    )
    b.add_image("one", "one-7-disk-0", peer_site="site-a", entries_behind=40, entries_per_second=8.0)
    monkeypatch.setattr(sites, "rbd_for", lambda site, *_: {"site-a": a, "site-b": b}[site.name])
    monkeypatch.setattr(sites, "cluster_for", lambda site: FakeCluster(site=site.name))
    path = tmp_path / "standby.yaml"
    path.write_text(yaml.safe_dump(rpo_config_doc("one-7-disk-0", pool="one", app="vm")))
    result = CliRunner().invoke(rpo_app, ["sample", "-c", str(path)])
    assert result.exit_code == 0, result.output
    header, row = result.stdout.splitlines()[:2]
    columns = header.split()
    assert columns[4:8] == ["lag_seconds", "lag_estimate_seconds", "entries_behind", "status_age_seconds"]
    cells = dict(zip(columns, row.split(), strict=False))
    assert cells["lag_seconds"] == "-" and cells["entries_behind"] == "40"
    assert float(cells["lag_estimate_seconds"]) >= 5.0 and cells["source"] == "journal-estimate"


def test_a_plans_lag_of_a_journal_image_is_its_estimate_not_unknown() -> None:
    """``World``'s secondary lag (a plan's data at risk, a drill's lag check) reads the status of a
    journal-mode image as its estimate, as it did before the estimate got its own field."""
    from drkit.jobs.world import secondary_lag
    from drkit.testing.dr import IMAGE, fake_dr

    dr = fake_dr(control="rbd")
    dr.mirror.journal[IMAGE] = (200, 100.0)  # 2 s of backlog, status written now
    app = dr.world.config.apps[0]
    assert secondary_lag(dr.world, app, "site-b") == 2.0


@pytest.mark.parametrize(
    ("payload", "shown"),
    [
        ({"estimated": True, "lag_estimate_seconds": 600.0, "lag_seconds": None}, "lags an ESTIMATED 600.0s"),
        ({"lag_seconds": 400.0}, "lags 400.0s against"),  # an event of a snapshot-mode app, as before
    ],
)
def test_the_breach_notification_says_estimated(payload: dict[str, Any], shown: str) -> None:
    """The automation's message, rendered by Prefect's own (sandboxed) template renderer."""
    from prefect.server.utilities.user_templates import render_user_template_sync

    from flows.automations import BODY

    event = {
        "resource": {"standby.app": "vm", "standby.site": "site-b"},
        "payload": {"target_seconds": 300.0, "source": "journal-estimate", "reason": "r", **payload},
    }
    assert shown in render_user_template_sync(BODY, {"event": event})
