"""Relocate, failover and failback on the lab's real Ceph, with a canary asset written on A first.

Each test leaves the lab as it found it: Nexus on site A, the placement record on A, site B
holding only its seeded objects, mirroring A to B healthy.
"""

from __future__ import annotations

import base64
import hashlib
import os
import secrets
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from drkit.adapters.volumes import VR_KIND
from drkit.config import load_config
from drkit.domain import crypto
from drkit.domain.operations import Approval, Journal
from drkit.jobs.operations import approve, execute, prepare, read_journal
from drkit.jobs.rpo import run_sample
from drkit.jobs.world import World, build_world, read_placement
from lab import lab as lab_mod
from lab import seeds
from tests.lab.conftest import Lab
from tests.labhelpers import LAB_KEY_TEXT, fresh_backup, master_key, nexus_client, roles, runs_nexus, sync_now

pytestmark = pytest.mark.lab
KEY_TEXT = LAB_KEY_TEXT  # the lab's one key (tests/labhelpers.py)
REPO = "dr-canary"


@pytest.fixture
def key(monkeypatch: pytest.MonkeyPatch) -> crypto.MasterKey:
    return master_key(monkeypatch, KEY_TEXT)


def _upload(world: World, site: str, name: str) -> str:
    data = f"canary {name} ".encode() + secrets.token_bytes(4096)
    with nexus_client(world, site) as api:
        api.ensure_raw_repository(REPO)
        api.upload(REPO, f"canary/{name}", data)
    return hashlib.sha256(data).hexdigest()


def _download_sha(world: World, site: str, name: str) -> str:
    with nexus_client(world, site) as api:
        return hashlib.sha256(api.download(REPO, f"canary/{name}")).hexdigest()


def _operate(world: World, kind: str, target: str | None, key: crypto.MasterKey, **acks: bool) -> Journal:
    prepared = prepare(world, "nexus", kind, target, key=key)  # type: ignore[arg-type]
    assert prepared.plan.runnable, prepared.plan.refusals
    approval = Approval(approver="lab-test", reason=f"lab {kind}", at=datetime.now(UTC), **acks)
    journal = approve(world, prepared, approval, "nexus")
    return execute(world, journal, key=key)


def _wait_replaying(world: World, site: str, timeout: float = 150.0) -> None:
    b = world.bundle(site)
    deadline = time.monotonic() + timeout
    state = ""
    while time.monotonic() < deadline:
        state = str(b.rbd.image_status(b.site.pool, seeds.IMAGE_NAME).get("state"))
        if state.startswith("up+replaying"):
            return
        time.sleep(1.0)
    raise AssertionError(f"{site} is {state}, not up+replaying, after {timeout}s")


def _assert_home(world: World) -> None:
    assert read_placement(world, world.config.app("nexus")).record.primary == "site-a"
    assert roles(world) == {"site-a": True, "site-b": False}
    assert runs_nexus(world, "site-a") and not runs_nexus(world, "site-b")


@pytest.fixture
def world(lab: Lab) -> Iterator[World]:
    w = build_world(load_config(lab.root / "standby.yaml"), timeout=20.0)
    _assert_home(w)
    yield w


@pytest.mark.timeout(600)
def test_relocate_there_and_back_with_volume_replication(
    lab: Lab, world: World, key: crypto.MasterKey
) -> None:
    sha = _upload(world, "site-a", "relocate-vr")
    fresh_backup(world, "site-a", key)

    there = _operate(world, "relocate", "site-b", key)
    assert there.status == "completed", there.error
    assert not any(s.force for s in there.plan.steps) and not there.plan.forced
    assert _download_sha(world, "site-b", "relocate-vr") == sha
    assert roles(world) == {"site-a": False, "site-b": True}
    assert runs_nexus(world, "site-b") and not runs_nexus(world, "site-a")
    _wait_replaying(world, "site-a")
    vr = world.bundle("site-b").cluster.get(VR_KIND, seeds.PVC_NAME, seeds.NAMESPACE)
    assert vr["spec"]["replicationState"] == "primary" and vr["spec"]["autoResync"] is False
    assert read_placement(world, world.config.app("nexus")).record.primary == "site-b"

    # After the move, a backup reads from B, and the RPO is measured on A (the new secondary).
    fresh_backup(world, "site-b", key)
    placements = {"nexus": read_placement(world, world.config.app("nexus")).record}
    rbds = {s: world.bundle(s).rbd for s in ("site-a", "site-b")}
    reading = run_sample(world.config, rbds, clock=world.clock, placements=placements)
    assert [r.secondary_site for r in reading.readings if r.app == "nexus"] == ["site-a"]

    # Back home through the CLI: the plan, then the operation id as the last line, exit 0.
    sync_now(world, "site-b", "site-a")  # the lag guard wants A's first snapshot after the move
    env = {**os.environ, "STANDBY_CONFIG": str(lab.root / "standby.yaml"), "STANDBY_BACKUP_KEY": KEY_TEXT}
    cli = subprocess.run(
        [sys.executable, "-m", "standby.cli", "relocate", "--app", "nexus", "--to", "site-a", "--yes"],
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
        check=False,
    )
    assert cli.returncode == 0, cli.stderr[-2000:]
    last = cli.stdout.strip().splitlines()[-1]
    assert last.startswith("relocate-"), cli.stdout[-500:]
    assert _download_sha(world, "site-a", "relocate-vr") == sha
    _assert_home(world)
    _wait_replaying(world, "site-b")


@pytest.mark.timeout(600)
def test_relocate_there_and_back_with_rbd(lab: Lab, world: World, key: crypto.MasterKey) -> None:
    base = world.config
    app = base.app("nexus")
    kinds = tuple(k for k in app.backup.kinds if k.kind != "VolumeReplication")
    rbd_app = app.model_copy(
        update={
            "mirroring": app.mirroring.model_copy(update={"control": "rbd"}),
            "backup": app.backup.model_copy(update={"kinds": kinds}),
        }
    )
    rbd_world = World(config=base.model_copy(update={"apps": (rbd_app,)}), sites=world.sites)
    site_a = world.bundle("site-a").cluster
    vr = site_a.get(VR_KIND, seeds.PVC_NAME, seeds.NAMESPACE)
    site_a.delete(
        VR_KIND, seeds.PVC_NAME, seeds.NAMESPACE
    )  # a VR would fight rbd; deleting it keeps mirroring
    try:
        sha = _upload(rbd_world, "site-a", "relocate-rbd")
        # No backup taken by hand, either way: each move backs up its running source itself first.
        there = _operate(rbd_world, "relocate", "site-b", key)
        assert there.status == "completed", there.error
        assert there.plan.final_backup and there.step("final-backup").observed["run"]
        assert _download_sha(rbd_world, "site-b", "relocate-rbd") == sha
        assert roles(rbd_world) == {"site-a": False, "site-b": True}
        assert not any(world.bundle(s).cluster.list(VR_KIND, seeds.NAMESPACE) for s in ("site-a", "site-b"))
        _wait_replaying(rbd_world, "site-a")
        sync_now(rbd_world, "site-b", "site-a")
        back = _operate(rbd_world, "relocate", "site-a", key)
        assert back.status == "completed", back.error
        assert back.step("final-backup").site == "site-b" and back.step("final-backup").observed["run"]
        assert _download_sha(rbd_world, "site-a", "relocate-rbd") == sha
    finally:
        meta = {k: vr["metadata"][k] for k in ("name", "namespace", "labels") if k in vr["metadata"]}
        site_a.create(
            {"apiVersion": vr["apiVersion"], "kind": vr["kind"], "metadata": meta, "spec": vr["spec"]}
        )
    _assert_home(world)
    _wait_replaying(world, "site-b")


@pytest.mark.timeout(300)
def test_relocate_with_a_wrong_key_or_none_is_refused_and_nexus_keeps_serving(
    lab: Lab, world: World, key: crypto.MasterKey
) -> None:
    fresh_backup(world, "site-a", key)  # sealed with the operations tests' key
    wrong = base64.b64encode(bytes(range(100, 132))).decode()
    base_env = {k: v for k, v in os.environ.items() if k != "STANDBY_BACKUP_KEY"}
    base_env["STANDBY_CONFIG"] = str(lab.root / "standby.yaml")
    for label, env, expected in (
        (
            "wrong key",
            {**base_env, "STANDBY_BACKUP_KEY": wrong},
            f"the key given has id {crypto.MasterKey(base64.b64decode(wrong)).key_id}",
        ),
        ("no key", base_env, "but no backup key was given"),
    ):
        cli = subprocess.run(
            [sys.executable, "-m", "standby.cli", "relocate", "--app", "nexus", "--to", "site-b", "--yes"],
            capture_output=True,
            text=True,
            env=env,
            timeout=300,
            check=False,
        )
        assert cli.returncode == 1, (label, cli.stdout[-1500:], cli.stderr[-1500:])
        # a wrong key cannot check the placement record an earlier operation signed: refused before the plan
        signed = f"integrity check failed: placement record of app nexus in the store of site-a is signed with key id {key.key_id}"
        assert ("backup key opens the backup" in cli.stderr and expected in cli.stderr) or (
            label == "wrong key" and signed in cli.stderr
        ), (label, cli.stderr[-1500:])
        assert f"load the key whose id is {key.key_id}" in cli.stderr, (label, cli.stderr[-1500:])
        _assert_home(world)  # nothing was stopped, demoted or taken
        sha = _upload(world, "site-a", f"after-refusal-{label.replace(' ', '-')}")
        assert _download_sha(world, "site-a", f"after-refusal-{label.replace(' ', '-')}") == sha
    record = read_placement(world, world.config.app("nexus")).record
    assert record.operation is None


@pytest.mark.timeout(900)
def test_failover_with_site_a_down_then_failback(lab: Lab, world: World, key: crypto.MasterKey) -> None:
    before = _upload(world, "site-a", "before-outage")
    fresh_backup(world, "site-a", key)
    sync_now(world, "site-a", "site-b")  # the canary is in the last complete snapshot
    lab_mod.site_down(lab.root, "site-a", log=lambda m: None)
    try:
        prepared = prepare(world, "nexus", "failover", "site-b", key=key)
        plan = prepared.plan
        assert plan.needs_data_loss_ack and plan.needs_unfenced_ack and plan.forced
        refused = Approval(approver="lab-test", reason="outage", at=datetime.now(UTC))
        with pytest.raises(Exception, match="acknowledge"):
            approve(world, prepared, refused, "nexus")
        # The failover itself through the CLI alone (no Prefect server in the lab tests): placement and
        # journals come from site B's own store, site A's store being frozen with the rest of site A.
        env = {**os.environ, "STANDBY_CONFIG": str(lab.root / "standby.yaml"), "STANDBY_BACKUP_KEY": KEY_TEXT}
        cli = subprocess.run(
            [
                sys.executable,
                "-m",
                "standby.cli",
                "failover",
                "--app",
                "nexus",
                "--to",
                "site-b",
                "--yes",
                "--reason",
                "site-a lost",
                "--acknowledge-data-loss",
                "--acknowledge-unfenced",
            ],
            capture_output=True,
            text=True,
            env=env,
            timeout=600,
            check=False,
        )
        assert cli.returncode == 0, cli.stdout[-2000:] + cli.stderr[-2000:]
        op_id = cli.stdout.strip().splitlines()[-1]
        assert op_id.startswith("failover-"), cli.stdout[-500:]
        journal = read_journal(world, op_id)
        assert journal.status == "completed", journal.error
        assert _download_sha(world, "site-b", "before-outage") == before
        during = _upload(world, "site-b", "during-outage")
        # After the failover, backups read from B and the RPO's secondary is A (whose store is down).
        fresh_backup(world, "site-b", key, every_store=False)
    finally:
        lab_mod.site_up(lab.root, "site-a", log=lambda m: None)
    placements = {"nexus": read_placement(world, world.config.app("nexus")).record}
    rbds = {s: world.bundle(s).rbd for s in ("site-a", "site-b")}
    reading = run_sample(world.config, rbds, clock=world.clock, placements=placements)
    assert [r.secondary_site for r in reading.readings if r.app == "nexus"] == ["site-a"]

    back = _operate(world, "failback", None, key)
    assert back.status == "completed", back.error
    _assert_home(world)
    assert _download_sha(world, "site-a", "during-outage") == during
    assert _download_sha(world, "site-a", "before-outage") == before
    _wait_replaying(world, "site-b")


def test_second_operation_on_the_same_app_is_refused(lab: Lab, world: World, key: crypto.MasterKey) -> None:
    prepared = prepare(world, "nexus", "relocate", "site-b", key=key)
    approval = Approval(approver="lab-test", reason="hold", at=datetime.now(UTC))
    first = approve(world, prepared, approval, "nexus")
    try:
        again = prepare(world, "nexus", "relocate", "site-b", key=key)
        assert not again.plan.runnable
        assert any(c.name == "no other operation" and first.op_id in c.detail for c in again.plan.refusals)
        with pytest.raises(Exception, match="refused"):
            approve(world, again, approval, "nexus")
    finally:
        from drkit.domain.placement import released
        from drkit.jobs.world import update_placement

        update_placement(
            world,
            world.config.app("nexus"),
            lambda p: released(p, first.op_id, datetime.now(UTC)),
            required="site-b",
        )
    _assert_home(world)


def test_cli_status_json_names_the_primary(lab: Lab) -> None:
    env = {**os.environ, "STANDBY_CONFIG": str(lab.root / "standby.yaml")}
    out = subprocess.run(
        [sys.executable, "-m", "standby.cli", "status", "--json"],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )
    assert out.returncode == 0, out.stderr
    import json

    data = json.loads(out.stdout)
    assert data["apps"]["nexus"]["primary"] == "site-a"
    assert data["apps"]["nexus"]["observed_primary"] == "site-a"
    assert Path(lab.root / "standby.yaml").exists()
