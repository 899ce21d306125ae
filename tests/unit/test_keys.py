"""The key story without Prefect: the ring's text, weak key text refused, ``standby key generate`` /
``id`` / ``check``, a rotation whose older runs stay readable, verify naming a run whose key the
ring lacks, and doctor comparing the rings of the routes it can see (the fake two-site world)."""

from __future__ import annotations

import base64

import pytest
from typer.testing import CliRunner

from drkit.adapters.kube import Access
from drkit.domain import crypto
from drkit.domain.doctor import judge_key_routes
from drkit.domain.errors import ConfigError
from drkit.domain.keyring import join_ring, new_key_text, parse_ring, rotated, split_ring, weakness
from drkit.jobs.backup import app_stores, key_from_text, run_backup
from drkit.jobs.backup_summary import BackupSummary
from drkit.jobs.doctor import job_secret_ring
from drkit.jobs.operations import trial_key
from drkit.jobs.restore import restore_backup
from drkit.jobs.verify import require_ok, verify_stores
from drkit.testing.dr import NS, PASSWORD, FakeDr, fake_dr
from drkit.testing.kube import FakeCluster
from standby import key_cli
from standby.cli import app as cli

OLD = base64.b64encode(bytes(range(128, 160))).decode()
NEW = base64.b64encode(bytes(range(160, 192))).decode()
WEAK = "NexusPassword2024NexusPassword2024NexusPass"


def _id(text: str) -> str:
    return crypto.MasterKey.parse(text).key_id


# ----------------------------------------------------------------------------------- the ring's text


def test_one_key_is_a_ring_of_one_and_a_ring_lists_the_current_key_first() -> None:
    single = parse_ring(OLD)
    assert single is not None and single.key_ids == (_id(OLD),)
    for text in (f"{NEW},{OLD}", f" {NEW}\n{OLD}\n", f"{NEW}, {OLD}"):
        ring = parse_ring(text)
        assert ring is not None and ring.key_ids == (_id(NEW), _id(OLD)) and ring.key_id == _id(NEW)
    assert parse_ring("  ") is None and split_ring(join_ring([NEW, OLD])) == [NEW, OLD]
    with pytest.raises(ConfigError, match=f"names key id {_id(OLD)} twice"):
        parse_ring(f"{OLD},{OLD}")


@pytest.mark.parametrize(
    ("text", "why"),
    [
        (WEAK, "distinct characters"),  # the key: 43 characters of base64 alphabet
        ("Xk9fQ2mLp7RtVw3ZbN8cHd4JsG6yTe1uKa5Xk9fQ2mL", "repeats a run"),
        ("qwertyuiopasdfghjklzxcvbnm0123456789mnbvcxz", "upper-case or lower-case"),
        (base64.b64encode(b"correct horse battery staple!!!!").decode(), "printable characters"),
        (base64.b64encode(b"0123456789abcdef0123456789abcdef").decode(), "printable characters"),
        ("BAUC+/wDAgIB+/0FAQT9/foFAwIFBAEFBQQDBQX6Av4=", "distinct byte values"),  # 10 values, no repeat
    ],
)
def test_weak_key_text_is_refused_with_generate_as_the_way_out(text: str, why: str) -> None:
    assert why in (weakness(text) or "")
    with pytest.raises(ConfigError) as refused:
        key_from_text(text, source="environment variable STANDBY_BACKUP_KEY")
    assert refused.value.message.startswith("environment variable STANDBY_BACKUP_KEY: the current key")
    assert "weak key text" in refused.value.message and "standby key generate" in refused.value.hint
    assert text not in str(refused.value)
    with pytest.raises(ConfigError, match="older key #1 of the ring"):
        parse_ring(f"{NEW},{text}")


def test_generated_keys_are_never_weak_and_a_drawn_weak_key_is_drawn_again() -> None:
    assert all(weakness(new_key_text()) is None for _ in range(500))
    draws = iter([b"A" * 32, bytes(range(160, 192))])
    assert new_key_text(lambda n: next(draws)) == NEW


def test_a_rotation_puts_the_new_key_first_keeps_the_older_ones_and_drops_on_request() -> None:
    third = base64.b64encode(bytes(range(192, 224))).decode()
    ring = rotated(OLD, NEW)
    assert ring == f"{NEW},{OLD}"
    assert rotated(ring, third) == f"{third},{NEW},{OLD}"
    assert rotated(ring, third, drop=[_id(OLD)]) == f"{third},{NEW}"
    with pytest.raises(ConfigError, match="already in the ring"):
        rotated(ring, OLD)
    with pytest.raises(ConfigError, match="--drop"):
        rotated(ring, third, drop=["0123456789abcdef"])
    with pytest.raises(ConfigError, match="weak key text"):
        rotated(ring, WEAK)


# ------------------------------------------------------------------------------------------ the CLI


def test_generate_prints_a_key_once_and_id_reads_it_back(monkeypatch: pytest.MonkeyPatch) -> None:
    runner = CliRunner()
    made = runner.invoke(cli, ["key", "generate"])
    assert made.exit_code == 0, made.output
    text = made.stdout.strip()
    assert len(text.splitlines()) == 1 and weakness(text) is None
    key_id = _id(text)
    assert f"key id {key_id}" in made.stderr and text not in made.stderr
    monkeypatch.setenv("STANDBY_BACKUP_KEY", text)
    assert runner.invoke(cli, ["key", "id"]).stdout.splitlines() == [f"{key_id} current"]
    ring = runner.invoke(cli, ["key", "id", "--stdin"], input=f"{NEW},{text}\n")
    assert ring.stdout.splitlines() == [f"{_id(NEW)} current", f"{key_id} older"]


def test_key_id_refuses_weak_key_text_in_one_line(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STANDBY_BACKUP_KEY", WEAK)
    result = CliRunner().invoke(cli, ["key", "id"])
    assert result.exit_code == 2
    assert len(result.stderr.strip().splitlines()) == 1 and "weak key text" in result.stderr
    assert "standby key generate" in result.stderr and WEAK not in result.stderr


# ------------------------------------------------------------------------------ rotation, on fakes


def _backup(dr: FakeDr, key: crypto.MasterKey) -> BackupSummary:
    app = dr.world.config.app("nexus")
    b = dr.world.bundle("site-a")
    summary = run_backup(app, b.site, b.cluster, app_stores(dr.world, app, "site-a"), key=key, clock=dr.clock)
    assert summary.status == "complete"
    return summary


def _rotated_world() -> tuple[FakeDr, BackupSummary, BackupSummary]:
    dr = fake_dr(per_site_stores=True)
    old_key = key_from_text(OLD, source="test")
    assert old_key is not None
    before = _backup(dr, old_key)
    dr.clock.advance(3600)
    ring = key_from_text(rotated(OLD, NEW), source="test")
    assert ring is not None
    after = _backup(dr, ring)
    return dr, before, after


def test_after_a_rotation_runs_from_before_and_after_both_restore_and_verify_with_the_ring() -> None:
    dr, before, after = _rotated_world()
    assert (before.key_id, after.key_id) == (_id(OLD), _id(NEW))
    ring = key_from_text(f"{NEW},{OLD}", source="test")
    app = dr.world.config.app("nexus")
    site_a, b = dr.world.bundle("site-a").site, dr.world.bundle("site-b")
    refs = app_stores(dr.world, app, "site-a")
    for run in (before, after):
        result = require_ok(verify_stores(refs, site_a, "nexus", run_id=run.run_id, key=ring))
        assert result.encrypted > 0 and {k.run for k in result.keys} == {before.run_id, after.run_id}
        target = FakeCluster(site="site-b")
        done = restore_backup(
            b.store, site_a, app, target, b.site, key=ring, run_id=run.run_id, layout=b.layout
        )
        assert done.run_id == run.run_id
        secret = next(o for (_, kind, ns, _), o in target.objects.items() if kind == "Secret" and ns == NS)
        assert PASSWORD in {base64.b64decode(v).decode() for v in secret["data"].values()}
    trial = trial_key(dr.world, app, "site-a", "site-b", before.run_id, ring)
    assert trial.opened and trial.given_key_id == _id(OLD)  # a failover to the old run is not refused


def test_verify_names_every_retained_run_whose_key_the_ring_lacks() -> None:
    dr, before, after = _rotated_world()
    app = dr.world.config.app("nexus")
    refs = app_stores(dr.world, app, "site-a")
    only_new = key_from_text(NEW, source="test")
    result = verify_stores(refs, dr.world.bundle("site-a").site, "nexus", run_id=None, key=only_new)
    assert result.run_id == after.run_id and all(r.ok for r in result.reports)  # the newest run is fine
    assert not result.ok
    missing = [p for p in result.problems() if before.run_id in p]
    assert len(missing) == 2 and all(f"key id {_id(OLD)}, which the key ring lacks" in p for p in missing)
    assert any(f"run {before.run_id} is sealed" in line for line in result.lines())
    assert not [p for p in result.problems() if after.run_id in p]


def test_key_check_passes_with_the_ring_and_names_the_key_id_a_run_needs(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    dr, _, after = _rotated_world()
    monkeypatch.setattr(key_cli, "world_of", lambda config, **names: dr.world)
    monkeypatch.setenv("STANDBY_BACKUP_KEY", f"{NEW},{OLD}")
    ok = CliRunner().invoke(cli, ["key", "check"])
    assert ok.exit_code == 0, ok.output
    assert f"run {after.run_id} sealed with key id {_id(NEW)}, held by the key ring" in ok.stdout
    monkeypatch.setenv("STANDBY_BACKUP_KEY", OLD)
    bad = CliRunner().invoke(cli, ["key", "check"])
    assert bad.exit_code == 1
    assert (
        f"run {after.run_id} is sealed with key id {_id(NEW)}, but the key in $STANDBY_BACKUP_KEY"
        in bad.stdout
    )


# -------------------------------------------------------------------------------- routes that agree


def test_key_routes_agree_when_every_seen_ring_is_the_same() -> None:
    a, b = (_id(NEW), _id(OLD)), (_id(NEW),)
    assert judge_key_routes([("$STANDBY_BACKUP_KEY", a, ""), ("Secret block k", a, "")]).ok
    one = judge_key_routes(
        [("$STANDBY_BACKUP_KEY", a, ""), ("Secret block k", None, "PREFECT_API_URL is not set")]
    )
    assert one.ok and "not seen: Secret block k: PREFECT_API_URL is not set" in one.seen
    differ = judge_key_routes([("$STANDBY_BACKUP_KEY", a, ""), ("Secret standby/k on site-a", b, "")])
    assert not differ.ok and "Secret standby/k on site-a" in differ.fix and _id(OLD) in differ.seen


def test_doctor_reads_the_job_secret_only_when_its_credential_already_may() -> None:
    dr = fake_dr()
    cluster = dr.clusters["site-a"]
    cluster.seed(
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": "standby-backup-key", "namespace": "standby"},
            "data": {"STANDBY_BACKUP_KEY": base64.b64encode(f"{NEW},{OLD}".encode()).decode()},
        }
    )
    ids, why = job_secret_ring(dr.world, "site-a", "standby", "standby-backup-key", "STANDBY_BACKUP_KEY")
    assert ids == (_id(NEW), _id(OLD)) and why == ""
    cluster.denied.add(Access("get", "", "secrets", "standby", "standby-backup-key"))
    ids, why = job_secret_ring(dr.world, "site-a", "standby", "standby-backup-key", "STANDBY_BACKUP_KEY")
    assert ids is None and "may not read Secret standby/standby-backup-key" in why


def test_doctor_fails_key_routes_when_the_job_secret_holds_another_ring(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from standby import doctor_cli

    dr, _, _ = _rotated_world()
    monkeypatch.setattr(doctor_cli, "world_of", lambda config, **names: dr.world)
    monkeypatch.delenv("PREFECT_API_URL", raising=False)
    monkeypatch.setenv("STANDBY_BACKUP_KEY", f"{NEW},{OLD}")
    dr.clusters["site-a"].seed(
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": "standby-backup-key", "namespace": "standby"},
            "data": {
                "STANDBY_BACKUP_KEY": base64.b64encode(OLD.encode()).decode()
            },  # not updated after the rotation
        }
    )
    args = ["doctor", "--job-secret", "site-a/standby/standby-backup-key"]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 1
    failed = [ln for ln in result.stdout.splitlines() if " FAIL " in ln]
    assert (
        len(failed) == 1
        and "key-routes" in failed[0]
        and "Secret standby/standby-backup-key on site-a" in failed[0]
    )
    assert "not seen: Secret block standby-backup-key: PREFECT_API_URL is not set" in failed[0]
    monkeypatch.setenv(
        "STANDBY_BACKUP_KEY", OLD
    )  # the same ring as the job's: the routes agree, but the new run fails
    agreed = CliRunner().invoke(cli, args)
    routes = next(ln for ln in agreed.stdout.splitlines() if "key-routes" in ln)
    assert " pass " in routes and "2 routes hold the same key ring" in routes
    bad = CliRunner().invoke(cli, ["doctor", "--job-secret", "standby-backup-key"])
    assert bad.exit_code == 2 and "is not SITE/NAMESPACE/NAME" in bad.stderr
