"""``standby status`` on the fake two-site world: a table that reads like ``kubectl get``, the last
complete backup found in any site's store (with its age), and ``-o json|yaml`` for scripts."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime

import pytest
import yaml
from typer.testing import CliRunner

from drkit.domain import crypto
from drkit.domain.operations import Approval
from drkit.domain.placement import SiteView
from drkit.domain.status import AppStatus, BackupSeen
from drkit.jobs.backup import run_backup
from drkit.jobs.operations import Timeouts, approve, execute, prepare
from drkit.jobs.status import site_health
from drkit.testing.dr import FakeDr, fake_dr
from drkit.views.status import duration_text, status_rows
from standby import ops_cli
from standby.cli import app

KEY = crypto.MasterKey(bytes(range(32)))
FAST = Timeouts(default=30.0, poll=1.0)
HOUR = 3600.0


def _backup_on_a_then_fail_over_to_b(monkeypatch: pytest.MonkeyPatch) -> tuple[FakeDr, str]:
    """A backup taken on site-a, an hour (and a bit) later site-a is lost and the app fails over."""
    dr = fake_dr()
    b = dr.world.bundle("site-a")
    run_id = run_backup(
        dr.world.config.app("nexus"), b.site, b.cluster, b.store, key=KEY, clock=dr.clock
    ).run_id
    dr.clock.advance(HOUR + 125)
    dr.lose("site-a")
    prepared = prepare(dr.world, "nexus", "failover", "site-b", key=KEY)
    approval = Approval(
        approver="tester",
        reason="outage",
        data_loss=True,
        unfenced=True,
        at=datetime(2026, 11, 30, tzinfo=UTC),
    )
    done = execute(dr.world, approve(dr.world, prepared, approval, "nexus"), key=KEY, timeouts=FAST)
    assert done.status == "completed", done.error
    monkeypatch.setattr(ops_cli, "world_of", lambda config, **names: dr.world)
    monkeypatch.setenv("STANDBY_BACKUP_KEY", base64.b64encode(bytes(range(32))).decode())
    return dr, run_id


def test_status_after_a_backup_on_site_a_and_a_failover_to_site_b_names_that_backup_and_its_age(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    _, run_id = _backup_on_a_then_fail_over_to_b(monkeypatch)
    result = CliRunner().invoke(app, ["status"])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    header = lines[0].split()
    assert header[:4] == ["APP", "HOME", "PRIMARY", "OBSERVED"], lines[0]
    assert "LAG" in header and "AGE" in header and "OPERATION" in header
    row = lines[1]
    assert row.split()[:4] == ["nexus", "site-a", "site-b", "site-b"], row
    assert f"{run_id} (site-a)" in row  # taken on site-a, found although site-b is the primary now
    assert " 1h0" in row  # its age, with a unit (1h02m or more: the failover took its time too)
    assert "unreachable" in row  # site-a's mirroring column: the lost site
    assert "{" not in result.output and "lag_seconds" not in result.output  # no Python dict repr
    assert any(ln.startswith("warning: nexus: site-a unreachable") for ln in lines[2:])


def test_status_json_keeps_its_shape_and_adds_the_backup_fields(monkeypatch: pytest.MonkeyPatch) -> None:
    _, run_id = _backup_on_a_then_fail_over_to_b(monkeypatch)
    for argv in (["status", "--json"], ["status", "-o", "json"]):  # --json: the deprecated spelling
        result = CliRunner().invoke(app, argv)
        assert result.exit_code == 0, result.output
        st = json.loads(result.output.strip().splitlines()[-1])["apps"]["nexus"]
        old = {
            "primary",
            "secondary",
            "home",
            "epoch",
            "observed_primary",
            "mirroring",
            "lag_seconds",
            "last_backup",
            "last_operation",
            "operation_in_progress",
            "warnings",
        }
        assert old <= set(st), sorted(st)
        assert st["last_backup"] == run_id and st["last_backup_site"] == "site-a"
        assert st["last_backup_age_seconds"] > HOUR and st["last_backup_at"].startswith("2026-11-30T08:00")
        assert st["primary"] == "site-b" and st["mirroring_health"]["site-a"] == "unreachable"
    result = CliRunner().invoke(app, ["status", "-o", "yaml"])
    assert result.exit_code == 0, result.output
    assert yaml.safe_load(result.output)["apps"]["nexus"]["last_backup"] == run_id


def test_status_of_a_healthy_pair_shows_the_roles_and_the_lag_with_its_unit(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    dr = fake_dr()
    monkeypatch.setattr(ops_cli, "world_of", lambda config, **names: dr.world)
    result = CliRunner().invoke(app, ["status", "--app", "nexus"])
    assert result.exit_code == 0, result.output
    row = dict(zip(status_columns(result.output), result.output.splitlines()[1].split("   "), strict=False))
    assert row["LAST BACKUP"].strip() == "-" and row["PRIMARY"].strip() == "site-a"
    assert row["MIRRORING SITE-A"].strip().startswith("primary")
    assert row["MIRRORING SITE-B"].strip().startswith("secondary")
    lag = row["LAG"].strip()
    assert lag == "-" or lag.endswith(("s", "m")), lag


def status_columns(output: str) -> list[str]:
    """The header's column names (separated by three spaces or more)."""
    return [c.strip() for c in output.splitlines()[0].split("   ") if c.strip()]


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (None, "-"),
        (9.79905, "9.8s"),
        (59.96, "60.0s"),
        (75, "1m15s"),
        (3725, "1h02m"),
        (2 * 86400 + 5000, "2d1h"),
    ],
)
def test_durations_carry_their_unit(seconds: float | None, text: str) -> None:
    assert duration_text(seconds) == text


def test_a_site_health_line_names_role_and_state_or_each_image_when_they_differ() -> None:
    same = SiteView(
        site="a",
        reachable=True,
        roles={"i1": "primary", "i2": "primary"},
        states={"i1": "up+stopped", "i2": "up+stopped"},
    )
    assert site_health(same) == "primary up+stopped"
    mixed = SiteView(
        site="a",
        reachable=True,
        roles={"i1": "primary", "i2": "secondary"},
        states={"i1": "up+stopped", "i2": "up+replaying"},
    )
    assert site_health(mixed) == "i1=primary up+stopped, i2=secondary up+replaying"
    assert site_health(SiteView(site="a", reachable=False, error="no answer")) == "unreachable"


def test_the_rows_have_one_mirroring_column_per_site_and_the_backup_age() -> None:
    at = datetime(2026, 11, 30, 8, 0, tzinfo=UTC)
    st = AppStatus(
        app="nexus",
        home="site-a",
        primary="site-b",
        secondary="site-a",
        epoch=3,
        observed_primary="site-b",
        mirroring={},
        mirroring_health={"site-a": "unreachable", "site-b": "primary up+stopped"},
        lag_seconds=None,
        last_backup=BackupSeen(run_id="20261130T080000Z-abc123", site="site-a", store="site-a", taken_at=at),
        last_operation="failover-x completed",
        operation_in_progress=None,
        observed_at=at.replace(hour=9, minute=30),
    )
    (row,) = status_rows([st])
    assert row["MIRRORING SITE-A"] == "unreachable" and row["MIRRORING SITE-B"] == "primary up+stopped"
    assert row["BACKUP AGE"] == "1h30m" and row["LAG"] == "-" and row["WARNINGS"] == "0"
    (shown,) = status_rows([st], unknown="—")  # the artifact's cells: Markdown, where "-" is a bullet
    assert shown["LAG"] == "—" and shown["BACKUP AGE"] == "1h30m" and "-" not in shown.values()
