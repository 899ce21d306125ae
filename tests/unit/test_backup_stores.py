"""Backups readable from every site: a run written to each site's store, a store that was down
caught up, ``backup list`` per store, and plans and restores that read only the target's own store.

On the fake two-site world with a store per site (``fake_dr(per_site_stores=True)``), on the
shared-store world (one store, written once), and over HTTP on a moto server with two buckets
(different prefixes) and a store whose endpoint does not answer.
"""

from __future__ import annotations

import socket
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime

import boto3
import pytest
from botocore.config import Config

from drkit.adapters.objectstore import S3Credentials, S3ObjectStore
from drkit.domain import crypto
from drkit.domain.errors import IntegrityError, TransientError
from drkit.domain.layout import StoreLayout
from drkit.domain.models import S3Location
from drkit.domain.operations import Approval
from drkit.jobs.backup import app_stores, run_backup
from drkit.jobs.backup_runs import read_latest
from drkit.jobs.backup_summary import BackupSummary
from drkit.jobs.backup_sync import catch_up, holdings
from drkit.jobs.operations import Timeouts, approve, execute, prepare
from drkit.jobs.restore import restore_backup
from drkit.jobs.verify import require_ok, verify_stores
from drkit.jobs.world import StoreRef, read_placement
from drkit.testing.dr import IMAGE, NEXUS, NS, FakeDr, fake_dr
from drkit.testing.hang import Hang
from drkit.testing.kube import FakeCluster
from drkit.testing.objectstore import FakeObjectStore
from lab.s3 import start_moto
from standby.backup_cli import store_rows

KEY = crypto.MasterKey(bytes(range(96, 128)))
FAST = Timeouts(default=30.0, poll=1.0)


def _backup(dr: FakeDr, site: str = "site-a") -> BackupSummary:
    app = dr.world.config.app("nexus")
    b = dr.world.bundle(site)
    return run_backup(app, b.site, b.cluster, app_stores(dr.world, app, site), key=KEY, clock=dr.clock)


def _index_key(dr: FakeDr, run_id: str) -> str:
    return dr.world.bundle("site-a").layout.index_key("site-a", "nexus", run_id)


def _complete(store: FakeObjectStore, dr: FakeDr, run_id: str) -> bool:
    return _index_key(dr, run_id) in store.objects


def _blobs(store: FakeObjectStore) -> dict[str, bytes]:
    return {k: v for k, v in store.objects.items() if "/blobs/" in k}


# ------------------------------------------------------------------------------------ writing runs


def test_a_run_lands_complete_in_both_stores_with_the_same_sealed_bytes() -> None:
    dr = fake_dr(per_site_stores=True)
    a, b = dr.stores["site-a"], dr.stores["site-b"]
    summary = _backup(dr)
    assert [(o.store, o.complete, o.latest) for o in summary.stores] == [
        ("site-a", True, True),
        ("site-b", True, True),
    ]
    assert summary.missed == () and summary.complete_on == ("site-a", "site-b")
    assert _complete(a, dr, summary.run_id) and _complete(b, dr, summary.run_id)
    layout = dr.world.bundle("site-a").layout
    assert (
        read_latest(a, layout, "site-a", "nexus")
        == read_latest(b, layout, "site-a", "nexus")
        == summary.run_id
    )
    assert _blobs(a) == _blobs(b) and len(_blobs(a)) == summary.objects  # sealed once, the same bytes in each
    for ref in app_stores(dr.world, dr.world.config.app("nexus"), "site-a"):
        site = dr.world.bundle("site-a").site
        assert (
            require_ok(verify_stores([ref], site, "nexus", run_id=None, key=KEY)).checked == summary.objects
        )
    again = _backup(dr)  # nothing changed: a pointer in each store, no blob uploaded anywhere
    assert [(o.complete, o.same_as, o.bytes_uploaded) for o in again.stores] == [
        (True, summary.run_id, 0)
    ] * 2


def test_the_shared_store_layout_is_written_once() -> None:
    alone = fake_dr()
    b = alone.world.bundle("site-a")
    before = alone.store.puts
    run_backup(alone.world.config.app("nexus"), b.site, b.cluster, b.store, key=KEY, clock=alone.clock)
    single = alone.store.puts - before
    dr = fake_dr()
    before = dr.store.puts
    summary = _backup(dr)
    assert dr.store.puts - before == single  # both sites name the same store: one write of each object
    assert [(o.store, o.complete) for o in summary.stores] == [("site-a/site-b", True)]
    assert summary.store_lines() == []  # nothing to say per store


def test_a_store_down_misses_the_run_then_the_next_run_and_verify_catch_it_up() -> None:
    dr = fake_dr(per_site_stores=True)
    a, b = dr.stores["site-a"], dr.stores["site-b"]
    b.unreachable = True
    first = _backup(dr)
    assert first.status == "complete" and first.complete_on == ("site-a",)
    (missed,) = first.missed
    assert missed.store == "site-b" and not missed.complete and "memory://fake-s3-site-b" in missed.reason
    text = "\n".join(first.lines())
    assert (
        "store of site-b: NOT complete (no index there)" in text
        and "standby backup verify --app nexus" in text
    )
    assert not b.objects and _complete(a, dr, first.run_id)

    b.unreachable = False
    held = holdings(app_stores(dr.world, dr.world.config.app("nexus"), "site-a"), "site-a", "nexus", key=KEY)
    rows = store_rows(held, "nexus", "site-a")
    assert "store of site-b: no finished backup of app nexus on site site-a" in rows
    assert any(
        r.startswith(
            f"run {first.run_id} is complete in the store of site-a but missing from the store of site-b"
        )
        for r in rows
    )

    dr.clock.advance(60)
    second = _backup(dr)  # the next run writes to every store again
    assert second.complete_on == ("site-a", "site-b") and not second.missed
    assert _complete(b, dr, second.run_id) and not _complete(b, dr, first.run_id)
    assert {o.store: o.same_as for o in second.stores} == {"site-a": first.run_id, "site-b": None}

    site = dr.world.bundle("site-a").site
    refs = app_stores(dr.world, dr.world.config.app("nexus"), "site-a")
    result = require_ok(
        verify_stores(refs, site, "nexus", run_id=first.run_id, key=KEY)
    )  # copies the missed run
    assert result.sync is not None and [(c.run_id, c.into, c.source) for c in result.sync.copied] == [
        (first.run_id, "site-b", "site-a")
    ]
    assert _complete(b, dr, first.run_id) and len(result.reports) == 2
    layout = dr.world.bundle("site-a").layout
    assert read_latest(b, layout, "site-a", "nexus") == second.run_id  # latest stays the newest
    assert store_rows(holdings(refs, "site-a", "nexus", key=KEY), "nexus", "site-a")[-1].startswith(
        "* "
    )  # none missing


def test_catch_up_copies_the_runs_newer_than_a_stores_newest_and_moves_latest() -> None:
    dr = fake_dr(per_site_stores=True)
    a, b = dr.stores["site-a"], dr.stores["site-b"]
    old = _backup(dr)
    b.unreachable = True
    dr.clusters["site-a"].objects[("v1", "Secret", NS, "nexus-root-password")]["data"]["extra"] = "eA=="
    dr.clock.advance(60)
    new = _backup(dr)
    assert new.complete_on == ("site-a",)
    b.unreachable = False
    refs = app_stores(dr.world, dr.world.config.app("nexus"), "site-a")
    caught = catch_up(refs, "site-a", "nexus", key=KEY)
    assert caught.ok and [(c.run_id, c.into, c.blobs) for c in caught.copied] == [(new.run_id, "site-b", 1)]
    layout = dr.world.bundle("site-a").layout
    assert read_latest(b, layout, "site-a", "nexus") == new.run_id
    assert _blobs(a) == _blobs(b) and old.run_id != new.run_id
    assert catch_up(refs, "site-a", "nexus", key=KEY).copied == ()  # converged


def _puts_to_b() -> int:
    dr = fake_dr(per_site_stores=True)
    _backup(dr)
    return dr.stores["site-b"].puts


PUTS_TO_B = _puts_to_b()  # the blobs, the index, then `latest`


@pytest.mark.parametrize("k", range(PUTS_TO_B))
def test_a_store_failing_mid_run_has_no_index_and_the_run_is_complete_on_the_source(k: int) -> None:
    dr = fake_dr(per_site_stores=True)
    a, b = dr.stores["site-a"], dr.stores["site-b"]
    b.fail_put_after = k  # the k+1-th put to site-b's store fails
    summary = _backup(dr)
    (on_b,) = [o for o in summary.stores if o.store == "site-b"]
    assert _complete(a, dr, summary.run_id) and summary.complete_on[0] == "site-a"
    last = k == PUTS_TO_B - 1  # only a failed `latest` leaves the index: the run is complete there
    assert on_b.complete == last and not on_b.latest
    assert _complete(b, dr, summary.run_id) == last
    assert "fail_put_after" in on_b.reason and summary.missed == (on_b,)
    b.fail_put_after = None
    dr.clock.advance(60)
    again = _backup(dr)
    assert again.complete_on == ("site-a", "site-b")
    site = dr.world.bundle("site-a").site
    refs = app_stores(dr.world, dr.world.config.app("nexus"), "site-a")
    assert require_ok(verify_stores(refs, site, "nexus", run_id=None, key=KEY)).ok


def test_the_sources_store_down_the_run_completes_on_the_other_and_says_so_loudly() -> None:
    dr = fake_dr(per_site_stores=True)
    dr.stores["site-a"].unreachable = True
    summary = _backup(dr)
    assert summary.complete_on == ("site-b",) and summary.status == "complete"
    text = "\n".join(summary.lines())
    assert "WARNING: the store of site-a (the source's own) did not take run" in text
    assert "it is complete on the store of site-b only" in text
    assert _complete(dr.stores["site-b"], dr, summary.run_id)


def test_no_store_answering_raises_the_sources_error_and_writes_nothing() -> None:
    dr = fake_dr(per_site_stores=True)
    for store in dr.stores.values():
        store.unreachable = True
    with pytest.raises(TransientError, match="memory://fake-s3-site-a"):
        _backup(dr)
    assert not dr.stores["site-a"].objects and not dr.stores["site-b"].objects


# ------------------------------------------------------------------------------- reading: plans


def _approval(**acks: bool) -> Approval:
    return Approval(approver="tester", reason="unit", at=datetime(2026, 12, 7, tzinfo=UTC), **acks)


def test_a_failover_with_site_as_store_down_completes_from_site_bs_store() -> None:
    dr = fake_dr(per_site_stores=True)
    _backup(dr)
    dr.mirror.site("site-a").mirror_snapshot("replicapool", IMAGE)
    dr.lose("site-a")
    dr.stores["site-a"].unreachable = True  # the whole site is gone, its S3 with it
    prepared = prepare(dr.world, "nexus", "failover", "site-b", key=KEY)
    assert prepared.plan.runnable, [c for c in prepared.plan.checks if not c.ok]
    journal = approve(dr.world, prepared, _approval(unfenced=True, data_loss=True), "nexus")
    done = execute(dr.world, journal, key=KEY, timeouts=FAST)
    assert done.status == "completed", done.error
    assert dr.nexus["site-b"].running and dr.mirror.images[IMAGE].primary["site-b"]
    assert read_placement(dr.world, dr.world.config.app("nexus")).record.primary == "site-b"
    assert ("operator.alaudadevops.io/v1alpha1", "Nexus", NS, NEXUS) in dr.clusters["site-b"].objects


def test_a_failover_whose_target_store_lacks_the_backup_is_refused_naming_the_store() -> None:
    dr = fake_dr(per_site_stores=True)
    a = dr.world.bundle("site-a")
    run_backup(
        dr.world.config.app("nexus"), a.site, a.cluster, a.store, key=KEY, clock=dr.clock
    )  # site-a only
    prepared = prepare(dr.world, "nexus", "failover", "site-b", key=KEY)
    (check,) = [c for c in prepared.plan.checks if c.name == "backup readable from the target"]
    assert not check.ok and not prepared.plan.runnable
    assert "store of site-b (the target's own)" in check.detail, check.detail
    assert (
        "standby backup verify --app nexus" in check.detail
        and "standby backup run --app nexus" in check.detail
    )
    caught = catch_up(
        app_stores(dr.world, dr.world.config.app("nexus"), "site-a"), "site-a", "nexus", key=KEY
    )
    assert len(caught.copied) == 1  # the way out the message names
    assert prepare(dr.world, "nexus", "failover", "site-b", key=KEY).plan.runnable


# ------------------------------------------------------------------------- over HTTP (moto)


@pytest.fixture(scope="module")
def moto_url() -> Iterator[str]:
    server, url = start_moto("unused", access_key="stores", secret_key="stores-secret")
    try:
        yield url
    finally:
        server.stop()


def _s3_ref(url: str, site: str, prefix: str, *, create: bool = True) -> StoreRef:
    bucket = f"{site}-{uuid.uuid4().hex[:8]}"
    if create:
        boto3.client(
            "s3",
            endpoint_url=url,
            region_name="us-east-1",
            aws_access_key_id="stores",
            aws_secret_access_key="stores-secret",
            config=Config(s3={"addressing_style": "path"}),
        ).create_bucket(Bucket=bucket)
    store = S3ObjectStore(
        S3Location(endpoint=url, bucket=bucket, prefix=prefix),
        site=site,
        credentials=S3Credentials("stores", "stores-secret"),
        max_attempts=1,
        connect_timeout=1,
    )
    return StoreRef(site, (site,), store, StoreLayout(prefix))


def _dead_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


def test_over_http_two_buckets_take_the_run_and_a_dead_endpoint_is_caught_up(moto_url: str) -> None:
    dr = fake_dr()
    app, src = dr.world.config.app("nexus"), dr.world.bundle("site-a")
    a = _s3_ref(moto_url, "site-a", "standby")
    b = _s3_ref(moto_url, "site-b", "dr/other-prefix")  # another bucket and another prefix
    dead = _s3_ref(f"http://127.0.0.1:{_dead_port()}", "site-b", "dr/other-prefix", create=False)
    first = run_backup(app, src.site, src.cluster, [a, dead], key=KEY, clock=dr.clock)
    assert first.complete_on == ("site-a",) and "127.0.0.1" in first.missed[0].reason
    dr.clock.advance(60)
    second = run_backup(app, src.site, src.cluster, [a, b], key=KEY, clock=dr.clock)
    assert second.complete_on == ("site-a", "site-b")
    result = require_ok(verify_stores([a, b], src.site, "nexus", run_id=first.run_id, key=KEY))
    assert result.sync is not None and [c.run_id for c in result.sync.copied] == [first.run_id]
    assert {r.run_id for r in result.reports} == {first.run_id}
    assert b.store.exists(b.layout.index_key("site-a", "nexus", first.run_id))
    target, site_b = FakeCluster(site="site-b"), dr.world.bundle("site-b").site
    done = restore_backup(b.store, src.site, app, target, site_b, key=KEY, dry_run=True, layout=b.layout)
    assert (
        done.run_id == second.run_id and len(done.created) == second.objects
    )  # read from site-b's bucket alone


def test_verify_fails_naming_a_store_it_could_not_reach_and_passes_once_it_answers() -> None:
    dr = fake_dr(per_site_stores=True)
    summary = _backup(dr)
    site = dr.world.bundle("site-a").site
    refs = app_stores(dr.world, dr.world.config.app("nexus"), "site-a")
    dr.stores["site-b"].unreachable = True
    result = verify_stores(refs, site, "nexus", run_id=None, key=KEY)
    assert (
        not result.ok and [r.store for r in result.reports] == ["site-a"] and result.run_id == summary.run_id
    )
    assert result.unverified[0].startswith("store of site-b: object store memory://fake-s3-site-b")
    with pytest.raises(IntegrityError, match="store of site-b") as info:
        require_ok(result)
    assert "(next: " in str(info.value)
    dr.stores["site-b"].unreachable = False
    assert require_ok(verify_stores(refs, site, "nexus", run_id=None, key=KEY)).ok


def test_a_failover_with_site_as_store_swallowing_requests_asks_it_once_then_goes_on_without_it() -> None:
    """Site A and its store frozen (requests accepted, never answered): the journal, placement and
    backup copies meant for A's store are spares, given up for the run after the first no-answer."""
    dr = fake_dr(per_site_stores=True)
    _backup(dr)
    dr.mirror.site("site-a").mirror_snapshot("replicapool", IMAGE)
    dr.freeze("site-a")
    dr.lose("site-a")
    frozen = dr.stores["site-a"]
    frozen.hang = Hang(
        limit=3.5
    )  # a blocked call gives up after 3.5 s (past the 3 s probe timeout), as a timeout would
    frozen.hang.freeze()
    prepared = prepare(dr.world, "nexus", "failover", "site-b", key=KEY)
    assert prepared.plan.runnable, [c for c in prepared.plan.checks if not c.ok]
    held_before = frozen.hang.held
    journal = approve(dr.world, prepared, _approval(unfenced=True, data_loss=True), "nexus")
    done = execute(dr.world, journal, key=KEY, timeouts=FAST)
    assert done.status == "completed", done.error
    assert frozen.hang.held - held_before == 1  # asked once in the whole run, then left out
    assert "object store of site-a" in dr.world.unanswered
    # Site A back, within the two minutes its store is left alone: the failback's final backup must
    # still reach site-a's store (the target's restore reads it), so it is asked, not skipped.
    frozen.hang.thaw()
    dr.thaw("site-a")
    dr.regain("site-a")
    prepared = prepare(dr.world, "nexus", "failback", None, key=KEY)
    assert prepared.plan.runnable, [c for c in prepared.plan.checks if not c.ok]
    back = execute(dr.world, approve(dr.world, prepared, _approval(), "nexus"), key=KEY, timeouts=FAST)
    assert back.status == "completed", back.error
    assert read_placement(dr.world, dr.world.config.app("nexus")).record.primary == "site-a"


def test_a_placement_write_reaches_the_required_store_even_when_it_missed_the_read() -> None:
    from drkit.domain.placement import moved
    from drkit.jobs.world import write_placement

    dr = fake_dr(per_site_stores=True)
    app = dr.world.config.app("nexus")
    dr.stores["site-b"].unreachable = True
    read = read_placement(dr.world, app)  # only site-a's store answered
    assert "site-b" not in read.etags
    dr.stores["site-b"].unreachable = False
    write_placement(dr.world, app, read, moved(read.record, "site-b", dr.clock.now()), required="site-b")
    ref = next(r for r in dr.world.stores() if "site-b" in r.sites)
    data, _ = ref.store.read(ref.layout.placement_key("nexus"))
    assert b'"primary": "site-b"' in data
