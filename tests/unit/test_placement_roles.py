"""One placement for every job of a run: after a failover to site-b (fake two-site world), the
backup, verify, restore and RPO jobs all take site-b as the primary and site-a as the secondary,
while the configuration still names site-a as the app's home."""

from __future__ import annotations

from datetime import UTC, datetime

from drkit.domain import crypto
from drkit.domain.operations import Approval
from drkit.jobs.backup import back_up, run_backup
from drkit.jobs.operations import Timeouts, approve, execute, prepare
from drkit.jobs.requests import BackupRequest, RestoreRequest, VerifyRequest
from drkit.jobs.restore import run_restore
from drkit.jobs.rpo import run_sample
from drkit.jobs.verify import run_verify
from drkit.jobs.world import World, read_placement
from drkit.testing.dr import IMAGE, FakeDr, fake_dr

KEY = crypto.MasterKey(bytes(range(32)))
FAST = Timeouts(default=30.0, poll=1.0)


def _failed_over() -> tuple[FakeDr, str]:
    """A backup on site-a, then site-a lost and the app failed over to site-b; the site-a run id."""
    dr = fake_dr()
    app = dr.world.config.app("nexus")
    b = dr.world.bundle("site-a")
    home_run = run_backup(app, b.site, b.cluster, b.store, key=KEY, clock=dr.clock).run_id
    assert dr.world.placement("nexus").primary == "site-a"  # read once, before the failover
    dr.mirror.site("site-a").mirror_snapshot("replicapool", IMAGE)
    dr.lose("site-a")
    prepared = prepare(dr.world, "nexus", "failover", "site-b", key=KEY)
    at = datetime(2026, 11, 30, tzinfo=UTC)
    approval = Approval(approver="t", reason="unit", at=at, data_loss=True, unfenced=True)
    journal = approve(dr.world, prepared, approval, "nexus")
    assert execute(dr.world, journal, key=KEY, timeouts=FAST).status == "completed"
    dr.clock.advance(60)
    return dr, home_run


def test_after_a_failover_the_run_takes_the_written_placement_and_the_config_keeps_the_home() -> None:
    dr, _ = _failed_over()
    assert dr.world.config.app("nexus").home_site == "site-a"
    assert dr.world.placement("nexus").primary == "site-b"  # the failover's write replaced what was read
    assert dr.world.placements()["nexus"].secondary == "site-a"
    fresh = World(
        config=dr.world.config, sites=dr.world.sites, clock=dr.clock
    )  # another run: reads the record
    assert fresh.placement("nexus") == read_placement(dr.world, dr.world.config.app("nexus")).record


def test_after_a_failover_backup_verify_and_restore_default_to_the_placed_primary() -> None:
    dr, home_run = _failed_over()
    world = dr.world.use_key(KEY)
    taken = back_up(world, BackupRequest(app="nexus"), key=KEY, clock=dr.clock)
    assert f"/backups/site-b/nexus/{taken.run_id}/" in taken.index_key

    verified = run_verify(world, VerifyRequest(app="nexus"), key=KEY)
    assert verified.ok, verified.lines()
    assert verified.run_id == taken.run_id != home_run  # the configured home's run was verified before

    restored = run_restore(world, RestoreRequest(app="nexus", target_site="site-b", dry_run=True), key=KEY)
    assert restored.run_id == taken.run_id  # not the run taken on the home site before the failover


def test_after_a_failover_the_rpo_is_measured_on_the_placed_secondary() -> None:
    dr, _ = _failed_over()
    dr.regain("site-a")
    rbds = {s: dr.world.bundle(s).rbd for s in ("site-a", "site-b")}
    placed = run_sample(dr.world.config, rbds, clock=dr.clock, placements=dr.world.placements())
    assert [r.secondary_site for r in placed.readings if r.app == "nexus"] == ["site-a"]
    home = run_sample(dr.world.config, rbds, clock=dr.clock)  # no placement given: the app on its home
    assert [r.secondary_site for r in home.readings if r.app == "nexus"] == ["site-b"]
