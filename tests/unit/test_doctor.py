"""``standby doctor`` on the fake two-site world: each check passes on a healthy world and fails,
naming the site and the fix, when its part is broken."""

from __future__ import annotations

import base64
import json
from datetime import timedelta

import pytest
from typer.testing import CliRunner

from drkit.adapters.kube import Access
from drkit.domain import crypto
from drkit.domain.doctor import Check, effective_schedule, judge_schedule, rbd_interval
from drkit.jobs.backup import run_backup
from drkit.jobs.doctor import run_doctor
from drkit.testing.dr import IMAGE, NS, POOL, FakeDr, fake_dr
from standby import doctor_cli
from standby.cli import app as cli

KEY = crypto.MasterKey(bytes(range(128, 160)))
OTHER_KEY = crypto.MasterKey(bytes(range(160, 192)))
ENV = "STANDBY_BACKUP_KEY"


def _backed_up(key: crypto.MasterKey | None = KEY) -> FakeDr:
    dr = fake_dr()
    b = dr.world.bundle("site-a")
    if key is None:  # Secrets are never backed up in plaintext: an app without any
        for ident in [i for i in dr.clusters["site-a"].objects if i[1] == "Secret"]:
            del dr.clusters["site-a"].objects[ident]
    summary = run_backup(dr.world.config.app("nexus"), b.site, b.cluster, b.store, key=key, clock=dr.clock)
    assert summary.status == "complete"
    return dr


def _doctor(
    dr: FakeDr, key: crypto.MasterKey | None = KEY, **options: object
) -> dict[tuple[str, str], Check]:
    checks = run_doctor(dr.world, list(dr.world.config.apps), key=key, key_env=ENV, **options)  # type: ignore[arg-type]
    found = {(c.site, c.check): c for c in checks}
    assert len(found) == len(checks), "one line per site and check"
    return found


def _failed(found: dict[tuple[str, str], Check]) -> dict[tuple[str, str], Check]:
    return {k: c for k, c in found.items() if not c.ok}


def test_a_healthy_world_passes_every_check() -> None:
    found = _doctor(_backed_up())
    assert _failed(found) == {}
    assert set(found) == {
        ("site-a", "kube-token"),
        ("site-a", "api-kinds"),
        ("site-a", "rbac"),
        ("site-a", "mirror-peers"),
        ("site-a", "mirror-daemon"),
        ("site-a", "snapshot-schedule nexus"),
        ("site-b", "kube-token"),
        ("site-b", "api-kinds"),
        ("site-b", "rbac"),
        ("site-b", "mirror-peers"),
        ("site-b", "mirror-daemon"),
        ("site-b", "snapshot-schedule nexus"),
        ("site-a/site-b", "store-conditional-writes"),
        ("site-a/site-b", "backup-age nexus"),
        ("site-a/site-b", "backup-key nexus"),
    }
    assert "key id" in found[("site-a/site-b", "backup-key nexus")].seen
    assert (
        "nexus (primary)" in found[("site-a", "rbac")].seen
        and "nexus (secondary)" in found[("site-b", "rbac")].seen
    )


def test_a_schedule_removed_on_one_site_fails_that_site_with_the_command_to_add_it() -> None:
    dr = _backed_up()
    dr.mirror.schedules["site-b"].clear()
    failed = _failed(_doctor(dr))
    assert list(failed) == [("site-b", "snapshot-schedule nexus")]
    check = failed[("site-b", "snapshot-schedule nexus")]
    assert check.seen == f"{POOL}/{IMAGE} has no mirror-snapshot schedule"
    assert check.fix == f"on site-b: rbd mirror snapshot schedule add --pool {POOL} --image {IMAGE} 1m"
    assert (
        check.line().startswith("site-b")
        and "FAIL" in check.line()
        and "(fix: on site-b: rbd mirror" in check.line()
    )


def test_a_schedule_slower_than_the_snapshot_interval_fails_and_a_pool_level_one_counts() -> None:
    dr = _backed_up()
    dr.mirror.schedules["site-a"] = {IMAGE: ["5m"]}
    check = _doctor(dr)[("site-a", "snapshot-schedule nexus")]
    assert not check.ok and "every 5m (image level), less often than snapshot_interval 1m" in check.seen
    dr.mirror.schedules["site-a"] = {"": ["1m"]}
    check = _doctor(dr)[("site-a", "snapshot-schedule nexus")]
    assert check.ok and "every 1m (pool level)" in check.seen


def test_the_most_specific_schedule_level_wins_as_in_rbd_support() -> None:
    # As Ceph 16.2.15 lists them (`rbd mirror snapshot schedule ls --pool P --recursive --format json`).
    listed = [
        {"pool": POOL, "namespace": "-", "image": "-", "items": [{"interval": "1m", "start_time": ""}]},
        {
            "pool": POOL,
            "namespace": "",
            "image": IMAGE,
            "items": [{"interval": "1h", "start_time": ""}, {"interval": "30m", "start_time": ""}],
        },
    ]
    assert effective_schedule(listed, IMAGE) == (timedelta(minutes=30), "image")
    assert effective_schedule(listed, "other") == (timedelta(minutes=1), "pool")
    assert effective_schedule([], IMAGE) == (None, "")
    app = fake_dr().world.config.app("nexus")
    assert not judge_schedule("site-a", POOL, app, listed).ok
    assert "in the toolbox pod" in judge_schedule("site-b", POOL, app, [], toolbox=True).fix


@pytest.mark.parametrize(
    ("interval", "text"),
    [
        (timedelta(minutes=1), "1m"),
        (timedelta(seconds=90), "1m"),
        (timedelta(hours=2), "2h"),
        (timedelta(days=1), "1d"),
    ],
)
def test_intervals_are_written_as_rbd_takes_them(interval: timedelta, text: str) -> None:
    assert rbd_interval(interval) == text


def test_an_unpeered_pool_and_a_stopped_daemon_fail_on_their_site() -> None:
    dr = _backed_up()
    dr.mirror.unpeered.add("site-a")
    dr.mirror.daemon_down.add("site-b")
    failed = _failed(_doctor(dr))
    assert set(failed) == {("site-a", "mirror-peers"), ("site-b", "mirror-daemon")}
    assert "has no peer" in failed[("site-a", "mirror-peers")].seen
    assert "bootstrap import --direction rx-tx" in failed[("site-a", "mirror-peers")].fix
    assert "0 of 0 daemon(s) OK" in failed[("site-b", "mirror-daemon")].seen
    assert failed[("site-b", "mirror-daemon")].fix.startswith("start rbd-mirror on site-b")


def test_a_denied_permission_names_the_rule_to_add_on_that_site() -> None:
    dr = _backed_up()
    dr.clusters["site-b"].denied.add(Access("create", "", "secrets", NS))
    failed = _failed(_doctor(dr))
    assert list(failed) == [("site-b", "rbac")]
    check = failed[("site-b", "rbac")]
    assert f"denied: create secrets in {NS}" in check.seen
    assert check.fix.startswith(
        f'add apiGroups [""] resources ["secrets"] verbs ["create"] to the standby Role in namespace {NS} on site-b'
    )


def test_a_kind_the_target_does_not_serve_fails_naming_the_crd_to_install() -> None:
    dr = _backed_up()
    del dr.clusters["site-b"].kinds[("operator.alaudadevops.io/v1alpha1", "Nexus")]
    failed = _failed(_doctor(dr))
    assert list(failed) == [("site-b", "api-kinds")]
    assert (
        failed[("site-b", "api-kinds")].seen
        == "not served on site-b: operator.alaudadevops.io/v1alpha1/Nexus"
    )
    assert failed[("site-b", "api-kinds")].fix.startswith(
        "install the CRD of operator.alaudadevops.io/v1alpha1/Nexus"
    )


def test_a_rejected_token_fails_the_token_line_with_how_to_mint_one() -> None:
    dr = _backed_up()
    dr.clusters["site-a"].token_rejected = True
    failed = _failed(_doctor(dr))
    assert list(failed) == [("site-a", "kube-token")]
    assert "401 Unauthorized" in failed[("site-a", "kube-token")].seen
    assert "create token standby" in failed[("site-a", "kube-token")].fix


def test_a_lost_site_fails_its_own_lines_and_asks_each_adapter_once() -> None:
    dr = _backed_up()
    dr.lose("site-a")
    calls = len(dr.mirror.calls)
    failed = _failed(_doctor(dr))
    assert set(failed) == {("site-a", "kube-token"), ("site-a", "mirror-peers")}
    assert "rbd did not answer" in failed[("site-a", "mirror-peers")].seen
    assert [c for c in dr.mirror.calls[calls:] if c[0] == "site-a"] == [("site-a", "mirror pool info", False)]


def test_a_store_that_ignores_conditional_writes_fails_and_the_probe_is_removed() -> None:
    dr = _backed_up()
    before = set(dr.store.objects)
    assert _doctor(dr)[("site-a/site-b", "store-conditional-writes")].ok
    dr.store.ignores_conditions = True
    check = _doctor(dr)[("site-a/site-b", "store-conditional-writes")]
    assert not check.ok
    assert check.seen == "a second If-None-Match put was taken; a put with a stale If-Match ETag was taken"
    assert set(dr.store.objects) == before


def test_no_backup_and_an_old_backup_fail_the_age_line() -> None:
    dr = fake_dr()
    check = _doctor(dr)[("site-a/site-b", "backup-age nexus")]
    assert not check.ok and check.fix.startswith("standby backup run --app nexus")
    assert _doctor(dr)[("site-a/site-b", "backup-key nexus")].ok  # nothing to open yet
    dr = _backed_up()
    dr.clock.advance(27 * 3600)
    check = _doctor(dr)[("site-a/site-b", "backup-age nexus")]
    assert not check.ok and "finished 27h00m ago; limit 26h00m" in check.seen
    assert _doctor(dr, max_backup_age=timedelta(hours=30))[("site-a/site-b", "backup-age nexus")].ok


def test_a_wrong_key_or_no_key_fails_the_key_line_naming_the_key_id_needed() -> None:
    dr = _backed_up()
    wrong = _doctor(dr, key=OTHER_KEY)[("site-a/site-b", "backup-key nexus")]
    assert not wrong.ok
    assert (
        f"sealed with key id {KEY.key_id}, but the key in $STANDBY_BACKUP_KEY has id {OTHER_KEY.key_id}"
        in wrong.seen
    )
    missing = _doctor(dr, key=None)[("site-a/site-b", "backup-key nexus")]
    assert not missing.ok and f"key id {KEY.key_id}; no key in $STANDBY_BACKUP_KEY" in missing.seen
    assert missing.fix.startswith("export STANDBY_BACKUP_KEY=")


def test_a_sealed_object_that_does_not_open_fails_the_key_line() -> None:
    dr = _backed_up()
    for sealed in [k for k in dr.store.objects if k.endswith(".enc")]:
        dr.store.objects[sealed] = dr.store.objects[sealed][:-1] + bytes([dr.store.objects[sealed][-1] ^ 1])
    check = _doctor(dr)[("site-a/site-b", "backup-key nexus")]
    assert not check.ok and "failed to open" in check.seen


def test_no_key_is_fine_when_the_backup_holds_nothing_sealed() -> None:
    check = _doctor(_backed_up(key=None), key=None)[("site-a/site-b", "backup-key nexus")]
    assert check.ok and "holds no sealed object (no key in $STANDBY_BACKUP_KEY; none needed)" in check.seen


def test_after_a_move_the_roles_and_so_the_permissions_checked_follow_the_placement() -> None:
    from drkit.jobs.world import update_placement

    dr = _backed_up()
    app = dr.world.config.app("nexus")
    update_placement(
        dr.world,
        app,
        lambda p: p.model_copy(update={"primary": "site-b", "secondary": "site-a", "epoch": p.epoch + 1}),
        required="site-b",
    )
    dr.clusters["site-a"].denied.add(Access("create", "", "secrets", NS))
    found = _doctor(dr)
    assert "nexus (secondary)" in found[("site-a", "rbac")].seen and not found[("site-a", "rbac")].ok
    assert "nexus (primary)" in found[("site-b", "rbac")].seen


# ----------------------------------------------------------------------------------------- the CLI


@pytest.fixture
def cli_world(monkeypatch: pytest.MonkeyPatch) -> FakeDr:
    dr = _backed_up()
    monkeypatch.setattr(doctor_cli, "world_of", lambda config, **names: dr.world)
    monkeypatch.setenv(ENV, base64.b64encode(bytes(range(128, 160))).decode())
    return dr


def test_the_command_exits_0_when_all_pass_and_1_naming_the_failed_line(cli_world: FakeDr) -> None:
    result = CliRunner().invoke(cli, ["doctor"])
    assert result.exit_code == 0, result.output
    assert result.output.strip().splitlines()[-1] == "16 passed, 0 failed"
    cli_world.mirror.schedules["site-a"].clear()
    result = CliRunner().invoke(cli, ["doctor", "--app", "nexus"])
    assert result.exit_code == 1
    failed = [ln for ln in result.output.splitlines() if " FAIL " in ln]
    assert len(failed) == 1 and failed[0].startswith("site-a") and "snapshot-schedule nexus" in failed[0]
    assert "(fix: on site-a: rbd mirror snapshot schedule add" in failed[0]


@pytest.mark.parametrize("spelling", [["--json"], ["-o", "json"], ["-o", "yaml"]])
def test_json_holds_every_check_and_the_verdict(
    cli_world: FakeDr, monkeypatch: pytest.MonkeyPatch, spelling: list[str]
) -> None:
    import yaml

    monkeypatch.setenv(ENV, base64.b64encode(bytes(range(160, 192))).decode())
    result = CliRunner().invoke(cli, ["doctor", *spelling])
    assert result.exit_code == 1
    doc = yaml.safe_load(result.output) if "yaml" in spelling else json.loads(result.output)
    assert doc["ok"] is False
    bad = [c for c in doc["checks"] if not c["ok"]]
    assert [(c["site"], c["check"]) for c in bad] == [("site-a/site-b", "backup-key nexus")]
    assert set(bad[0]) == {"site", "check", "ok", "seen", "fix"}


def test_a_bad_max_age_is_a_usage_error() -> None:
    result = CliRunner().invoke(cli, ["doctor", "--max-backup-age", "soon"])
    assert result.exit_code == 2 and result.output.startswith(
        "error: --max-backup-age 'soon' is not a duration"
    )


def test_the_rbac_audit_counts_doctor_s_self_reviews_as_the_cluster_default_role_s() -> None:
    from lab import rbac as lab_rbac
    from tests.lab.rbac_audit import STANDBY_USER, coverage

    review = {
        "user": STANDBY_USER,
        "verb": "create",
        "apiGroup": "authorization.k8s.io",
        "resource": "selfsubjectaccessreviews",
        "subresource": "",
        "namespace": "",
        "name": "",
        "code": 201,
    }
    other = {**review, "apiGroup": "", "resource": "pods", "verb": "list", "namespace": "nexus-dr"}
    cov = coverage("site-a", lab_rbac.site_manifests("site-a"), [review, review])
    assert cov.requests == 2 and cov.uncovered == () and cov.denied == ()
    assert coverage("site-a", lab_rbac.site_manifests("site-a"), [other]).uncovered  # still caught


def test_a_site_whose_kubeconfig_cannot_be_loaded_fails_its_token_line_only() -> None:
    from drkit.domain.errors import ConfigError
    from drkit.jobs.world import SiteBundle

    class Broken(SiteBundle):
        @property
        def cluster(self):  # type: ignore[no-untyped-def]
            raise ConfigError("site site-b: cannot load kubeconfig /nowhere", hint="fix sites[site-b].kube")

    dr = _backed_up()
    old = dr.world.sites["site-b"]
    dr.world.sites["site-b"] = Broken(old.site, old.store, rbd=old.rbd)
    failed = _failed(_doctor(dr))
    assert list(failed) == [("site-b", "kube-token")]
    assert failed[("site-b", "kube-token")].fix == "fix sites[site-b].kube"
