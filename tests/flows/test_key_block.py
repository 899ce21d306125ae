"""The key story through a Prefect Secret block (the flows' ``key_source: secret:NAME``), under the
Prefect test harness: ``standby key generate --block``, ``export`` and ``id`` agree, ``rotate`` writes
a ring the flows load, and a run from before the rotation and one after both restore and verify."""

from __future__ import annotations

import base64
import uuid

import pytest
from prefect.settings import PREFECT_API_URL
from typer.testing import CliRunner

from drkit.domain import crypto
from drkit.domain.keyring import split_ring
from drkit.jobs.backup import app_stores, run_backup
from drkit.jobs.backup_summary import BackupSummary
from drkit.jobs.restore import restore_backup
from drkit.jobs.verify import require_ok, verify_stores
from drkit.testing.dr import NS, PASSWORD, FakeDr, fake_dr
from drkit.testing.kube import FakeCluster
from standby.cli import app as cli
from standby.doctor_cli import key_routes
from tasks.backup import master_key


def _backup(dr: FakeDr, key: crypto.MasterKey | None) -> BackupSummary:
    app = dr.world.config.app("nexus")
    b = dr.world.bundle("site-a")
    summary = run_backup(app, b.site, b.cluster, app_stores(dr.world, app, "site-a"), key=key, clock=dr.clock)
    assert summary.status == "complete"
    return summary


def test_generate_export_rotate_through_a_secret_block_keep_older_runs_readable(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    runner = CliRunner()
    name = f"key-{uuid.uuid4().hex[:8]}"
    made = runner.invoke(cli, ["key", "generate", "--block", name])
    assert made.exit_code == 0, made.output
    exported = runner.invoke(cli, ["key", "export", "--block", name])
    assert exported.exit_code == 0, exported.output
    first_text = exported.stdout.strip()
    first_id = crypto.MasterKey.parse(first_text).key_id
    assert f"with key id {first_id}" in made.stdout and first_text not in made.stdout  # only its id
    assert runner.invoke(cli, ["key", "id", "--block", name]).stdout.splitlines() == [f"{first_id} current"]
    again = runner.invoke(cli, ["key", "generate", "--block", name])
    assert (
        again.exit_code == 2
        and "already holds a key" in again.stderr
        and "standby key rotate" in again.stderr
    )

    dr = fake_dr(per_site_stores=True)
    old = master_key(f"secret:{name}")  # what the flows load
    assert old is not None and old.key_id == first_id
    before = _backup(dr, old)
    dr.clock.advance(3600)

    turned = runner.invoke(cli, ["key", "rotate", "--block", name])
    assert turned.exit_code == 0, turned.output
    ring = master_key(f"secret:{name}")
    assert ring is not None and ring.key_ids[1:] == (first_id,)
    assert f"new runs are sealed with key id {ring.key_id}" in turned.stdout
    assert "kubectl -n standby create secret generic standby-backup-key" in turned.stdout
    ring_text = runner.invoke(cli, ["key", "export", "--block", name]).stdout.strip()
    assert split_ring(ring_text)[1] == first_text
    after = _backup(dr, ring)
    assert (before.key_id, after.key_id) == (first_id, ring.key_id)

    app = dr.world.config.app("nexus")
    site_a, b = dr.world.bundle("site-a").site, dr.world.bundle("site-b")
    for run in (before, after):
        result = require_ok(
            verify_stores(app_stores(dr.world, app, "site-a"), site_a, "nexus", run_id=run.run_id, key=ring)
        )
        assert len(result.keys) == 4  # two runs in each of two stores, every one opened by the ring
        target = FakeCluster(site="site-b")
        restore_backup(b.store, site_a, app, target, b.site, key=ring, run_id=run.run_id, layout=b.layout)
        secret = next(o for (_, kind, ns, _), o in target.objects.items() if kind == "Secret" and ns == NS)
        assert PASSWORD in {base64.b64decode(v).decode() for v in secret["data"].values()}

    # doctor sees the block (PREFECT_API_URL set) and the environment variable: same ring, then not
    monkeypatch.setenv("PREFECT_API_URL", str(PREFECT_API_URL.value()))
    same = key_routes(dr.world, ring, "STANDBY_BACKUP_KEY", name, None)
    assert [ids for _, ids, _ in same] == [ring.key_ids, ring.key_ids]
    stale = key_routes(dr.world, old, "STANDBY_BACKUP_KEY", name, None)
    assert [ids for _, ids, _ in stale] == [(first_id,), ring.key_ids]
