"""Authenticated state on the fake two-site world: with a key, placement records, journals and drill
reports carry a MAC; what a writer of the bucket forges (without the key) is refused with one line
naming the object and the store, and never decides the primary, never runs, never reaches a report.
Without a key the run says once that its state is unauthenticated."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from drkit.domain import crypto
from drkit.domain.errors import IntegrityError, PreconditionFailed
from drkit.domain.placement import Placement
from drkit.domain.signed_state import UNAUTHENTICATED, journal_context, placement_context, seal, unseal
from drkit.jobs.abort import abort_operation
from drkit.jobs.drill import prepare_drill, run_drill, start_drill
from drkit.jobs.drill_report import drill_reports, load_reports
from drkit.jobs.operations import approve, list_journals, prepare, read_journal, resume, write_journal
from drkit.jobs.world import read_placement, sign_placement, update_placement
from drkit.testing.dr import IMAGE, FakeDr, fake_dr
from standby import ops_cli
from standby.cli import app as cli
from tests.unit.test_operations import FAST, KEY, _approval, _backup

OTHER = crypto.MasterKey(bytes(range(100, 132)))
"""A key the attacker made up (or another installation's)."""
APP = "nexus"


def _placement_key(dr: FakeDr, site: str = "site-a") -> str:
    return dr.world.bundle(site).layout.placement_key(APP)


def _forge_placement(dr: FakeDr, site: str = "site-a", **fields: object) -> None:
    """What a writer of the bucket puts there: a record with a huge epoch and the primary flipped."""
    record = {
        "app": APP,
        "primary": "site-b",
        "secondary": "site-a",
        "epoch": 10**9,
        "operation": None,
        "operation_kind": None,
        "updated_at": "2026-11-30T00:00:00Z",
        **fields,
    }
    dr.stores[site].put(_placement_key(dr, site), json.dumps(record).encode())


def _stored(dr: FakeDr, key: str, site: str = "site-a") -> dict[str, object]:
    data: dict[str, object] = json.loads(dr.stores[site].objects[key])
    return data


def _signed_world(**options: bool) -> FakeDr:
    dr = fake_dr(**options)
    _backup(dr, "site-a")
    dr.world.use_key(KEY)
    dr.world.notices.clear()  # the backup's placement read had no key
    return dr


# -------------------------------------------------------------------------------------- placement


def test_a_forged_placement_record_is_refused_and_a_failover_does_not_answer_nothing_to_do() -> None:
    dr = _signed_world()
    _forge_placement(dr)
    with pytest.raises(IntegrityError) as refused:
        prepare(dr.world, APP, "failover", "site-b", key=KEY)
    line = refused.value.message
    assert "\n" not in line
    assert line.startswith(f"integrity check failed: placement record of app {APP} in the store of site-a")
    assert "the primary of app nexus is not decided" in line
    assert dr.mirror.promoted == []


def test_a_placement_record_signed_with_another_key_or_copied_from_another_app_is_refused() -> None:
    dr = _signed_world()
    other_app = Placement(app="other", primary="site-b", secondary="site-a", epoch=3).model_dump(mode="json")
    copied = seal(
        other_app, KEY, what="placement", context=placement_context("other")
    )  # genuine, for another app
    foreign = seal({**other_app, "app": APP}, OTHER, what="placement", context=placement_context(APP))
    for forged, why in ((copied, "does not match its MAC"), (foreign, f"signed with key id {OTHER.key_id}")):
        dr.store.put(_placement_key(dr), json.dumps(forged).encode())
        with pytest.raises(IntegrityError, match=why):
            read_placement(dr.world, dr.world.config.app(APP))


def test_a_record_written_with_the_key_is_signed_and_read_back() -> None:
    dr = _signed_world()
    app = dr.world.config.app(APP)
    update_placement(dr.world, app, lambda p: p.model_copy(update={"epoch": p.epoch + 1}), required="site-a")
    stored = _stored(dr, _placement_key(dr))
    assert stored["mac_key_id"] == KEY.key_id and isinstance(stored["mac"], str)
    assert read_placement(dr.world, app).record.epoch == 1
    assert dr.world.notices == []  # nothing to warn about


def test_when_the_stores_disagree_the_authenticated_copy_wins_and_the_failing_one_is_named_then_replaced() -> (
    None
):
    dr = _signed_world(per_site_stores=True)
    app = dr.world.config.app(APP)
    update_placement(dr.world, app, lambda p: p.model_copy(update={"epoch": p.epoch + 1}), required="site-a")
    _forge_placement(dr, "site-b")  # B's copy: a higher epoch, the primary flipped, no MAC
    read = read_placement(dr.world, app)
    assert (read.record.primary, read.record.epoch) == ("site-a", 1)
    assert list(read.refused) == ["site-b"]
    warned = [n for n in dr.world.notices if n.startswith("integrity check failed")]
    assert len(warned) == 1 and "in the store of site-b" in warned[0] and "not used" in warned[0]
    plan = prepare(dr.world, APP, "failover", "site-b", key=KEY).plan
    assert plan.nothing_to_do == ""  # the forged "already on site-b" decides nothing
    update_placement(dr.world, app, lambda p: p.model_copy(update={"epoch": p.epoch + 1}), required="site-a")
    repaired = _stored(dr, _placement_key(dr, "site-b"), "site-b")
    assert repaired["epoch"] == 2 and repaired["mac_key_id"] == KEY.key_id  # the next write replaced it
    assert read_placement(dr.world, app).refused == {}


# --------------------------------------------------------------------------------------- journals


def _forged_journal(dr: FakeDr) -> str:
    """A journal forged by someone with no key: a plan made elsewhere (forced promote of B, demote and
    resync of A), without a MAC, and a placement record holding the app for it. Its id."""
    elsewhere = fake_dr()
    _backup(elsewhere, "site-a")
    journal = approve(
        elsewhere.world, prepare(elsewhere.world, APP, "relocate", "site-b", key=KEY), _approval(), APP
    )
    data = journal.model_dump(mode="json")
    data["plan"]["steps"] = [
        {**s, "force": True} if s["name"] == "promote-target" else s for s in data["plan"]["steps"]
    ]
    dr.store.put(dr.world.bundle("site-a").layout.journal_key(APP, journal.op_id), json.dumps(data).encode())
    return journal.op_id


def test_a_forged_journal_is_never_resumed_or_aborted_and_nothing_changes() -> None:
    dr = _signed_world()
    op_id = _forged_journal(dr)
    before = dict(dr.store.objects)
    with pytest.raises(IntegrityError) as refused:
        resume(dr.world, op_id, key=KEY, timeouts=FAST)
    line = refused.value.message
    assert "\n" not in line
    assert line.startswith(
        f"integrity check failed: journal of operation {op_id} of app {APP} in the store of site-a"
    )
    assert f"operation {op_id} is not resumed or aborted from it" in line
    with pytest.raises(IntegrityError, match=f"journal of operation {op_id}"):
        abort_operation(dr.world, op_id, _approval(), APP, key=KEY, timeouts=FAST)
    assert dr.store.objects == before  # no hold taken, nothing written
    assert dr.mirror.promoted == [] and dr.mirror.images[IMAGE].primary == {"site-a": True, "site-b": False}
    assert set(dr.nexus) == {"site-a"}
    assert op_id not in [j.op_id for j in list_journals(dr.world, APP)]  # listed as warned, not used


def test_resume_of_a_forged_journal_on_the_command_line_is_one_error_line(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    dr = _signed_world()
    op_id = _forged_journal(dr)
    monkeypatch.setattr(ops_cli, "world_of", lambda config, **names: dr.world)
    monkeypatch.setenv("STANDBY_BACKUP_KEY", base64.b64encode(bytes(range(32))).decode())
    dr.world.key = None  # the command loads it
    result = CliRunner().invoke(cli, ["operation", "resume", op_id])
    assert result.exit_code == 1, result.output
    lines = [ln for ln in result.output.splitlines() if ln.startswith("error:")]
    assert len(lines) == 1 and lines[0].startswith("error: integrity check failed: journal of operation")
    assert "Traceback" not in result.output and dr.mirror.promoted == []


def test_a_journal_copied_from_another_app_or_operation_is_refused() -> None:
    dr = _signed_world()
    journal = approve(dr.world, prepare(dr.world, APP, "relocate", "site-b", key=KEY), _approval(), APP)
    layout = dr.world.bundle("site-a").layout
    body = journal.model_dump(mode="json")
    other_app = seal(body, KEY, what="journal", context=journal_context("other", journal.op_id))
    dr.store.put(layout.journal_key(APP, journal.op_id), json.dumps(other_app).encode())
    with pytest.raises(IntegrityError, match="does not match its MAC"):
        read_journal(dr.world, journal.op_id)
    write_journal(dr.world, journal)  # the genuine one again
    moved = "relocate-20261130T090000Z-abcdef"
    dr.store.put(layout.journal_key(APP, moved), dr.store.objects[layout.journal_key(APP, journal.op_id)])
    with pytest.raises(IntegrityError, match=f"journal of operation {moved}"):
        read_journal(dr.world, moved)
    assert read_journal(dr.world, journal.op_id).op_id == journal.op_id


def test_journals_are_signed_with_the_key_that_wrote_them_and_open_with_a_ring_after_a_rotation() -> None:
    dr = _signed_world()
    journal = approve(dr.world, prepare(dr.world, APP, "relocate", "site-b", key=KEY), _approval(), APP)
    stored = _stored(dr, dr.world.bundle("site-a").layout.journal_key(APP, journal.op_id))
    assert stored["mac_key_id"] == KEY.key_id
    body = unseal(stored, KEY, what="journal", context=journal_context(APP, journal.op_id), name="j")
    assert body["op_id"] == journal.op_id
    dr.world.key = OTHER.with_older((KEY,))  # rotated: the new key seals, the old one still opens
    assert read_journal(dr.world, journal.op_id).op_id == journal.op_id
    assert read_placement(dr.world, dr.world.config.app(APP)).record.operation == journal.op_id


# ------------------------------------------------------------------------------------ drill report


def test_a_forged_drill_report_is_refused_when_read_back() -> None:
    dr = _signed_world()
    prepared = prepare_drill(dr.world, APP, key=KEY)
    outcome = run_drill(dr.world, start_drill(dr.world, prepared), key=KEY, timeouts=FAST, probe_interval=1.0)
    report = outcome.report
    key = outcome.stored["json"]
    stored = _stored(dr, key)
    assert stored["mac_key_id"] == KEY.key_id
    assert [r.drill_id for r in drill_reports(dr.world, APP)] == [report.drill_id]
    forged = {**stored, "passed": not report.passed, "rpo_achieved_s": 0.0}
    dr.store.put(key, json.dumps(forged).encode())
    assert drill_reports(dr.world, APP) == []
    warned = [n for n in dr.world.notices if n.startswith(key)]
    assert len(warned) == 1
    assert (
        f"integrity check failed: drill report {report.drill_id} of app {APP} in the store of site-a"
        in warned[0]
    )
    unsigned = {k: v for k, v in forged.items() if k not in ("mac", "mac_key_id")}
    dr.store.put(key, json.dumps(unsigned).encode())
    skipped: list[str] = []
    layout = dr.world.bundle("site-a").layout
    assert load_reports(dr.store, layout, APP, key=KEY, skipped=skipped) == []
    assert "has no MAC, and a key is loaded" in skipped[0]
    assert len(load_reports(dr.store, layout, APP)) == 1  # without a key: not checked


# ---------------------------------------------------------------------------------------- no key


def test_without_a_key_the_run_says_once_that_its_state_is_unauthenticated() -> None:
    dr = fake_dr()
    app = dr.world.config.app(APP)
    update_placement(dr.world, app, lambda p: p.model_copy(update={"epoch": p.epoch + 1}), required="site-a")
    read_placement(dr.world, app)
    list_journals(dr.world, APP)
    assert dr.world.notices == [UNAUTHENTICATED]
    assert "mac" not in _stored(dr, _placement_key(dr))
    dr.world.use_key(KEY)  # the record written without the key is now refused, until signed again
    with pytest.raises(IntegrityError, match="has no MAC, and a key is loaded"):
        read_placement(dr.world, app)


def test_a_record_written_before_the_key_is_signed_once_checked_against_the_sites() -> None:
    dr = fake_dr()
    app = dr.world.config.app(APP)
    update_placement(dr.world, app, lambda p: p.model_copy(update={"epoch": p.epoch + 1}), required="site-a")
    dr.world.use_key(KEY)
    signed = sign_placement(dr.world, app)
    assert signed is not None and (signed.primary, signed.epoch) == ("site-a", 2)
    assert _stored(dr, _placement_key(dr))["mac_key_id"] == KEY.key_id
    assert read_placement(dr.world, app).record.epoch == 2
    assert sign_placement(dr.world, app) is None  # it passes now
    _forge_placement(dr)  # unsigned, and says site-b is primary while Ceph says site-a
    with pytest.raises(PreconditionFailed, match="record says site-b is primary"):
        sign_placement(dr.world, app)
    assert "mac" not in _stored(dr, _placement_key(dr))  # a forged record is not signed


def test_sign_placement_on_the_command_line(monkeypatch: pytest.MonkeyPatch) -> None:
    dr = fake_dr()
    app = dr.world.config.app(APP)
    update_placement(dr.world, app, lambda p: p.model_copy(update={"epoch": p.epoch + 1}), required="site-a")
    monkeypatch.setattr(ops_cli, "world_of", lambda config, **names: dr.world)
    monkeypatch.setenv("STANDBY_BACKUP_KEY", base64.b64encode(bytes(range(32))).decode())
    result = CliRunner().invoke(cli, ["operation", "sign-placement", "--app", APP])
    assert result.exit_code == 0, result.output
    assert result.output.strip().endswith(f"signed with key id {KEY.key_id}: primary site-a, epoch 2")


def test_status_with_a_record_refused_everywhere_shows_what_the_sites_say(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    dr = _signed_world()
    _forge_placement(dr)
    monkeypatch.setattr(ops_cli, "world_of", lambda config, **names: dr.world)
    result = CliRunner().invoke(cli, ["status", "--json"])
    assert result.exit_code == 0, result.output
    status = json.loads(result.output.strip().splitlines()[-1])["apps"][APP]
    assert status["primary"] is None and status["observed_primary"] == "site-a"
    assert any(
        w.startswith("integrity check failed: placement record of app nexus in the store of site-a")
        for w in status["warnings"]
    )


def test_a_command_without_the_key_says_once_on_stderr_that_state_is_unauthenticated(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from drkit.testing.objectstore import FakeObjectStore
    from standby.common import world_of
    from tests.unit.test_operations_cli import CONFIG

    monkeypatch.setattr("drkit.jobs.sites.store_for", lambda site, **options: FakeObjectStore(site=site.name))
    monkeypatch.delenv("STANDBY_BACKUP_KEY", raising=False)
    world = world_of(Path(CONFIG))
    assert world.key is None
    world.state_key()
    world.state_key()
    assert capsys.readouterr().err.splitlines() == [f"warning: {UNAUTHENTICATED}"]
    monkeypatch.setenv("STANDBY_BACKUP_KEY", base64.b64encode(bytes(range(32))).decode())
    keyed = world_of(Path(CONFIG))
    assert keyed.key is not None and keyed.key.key_id == KEY.key_id
    keyed.state_key()
    assert capsys.readouterr().err == ""
