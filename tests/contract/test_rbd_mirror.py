"""Contract suite of ``RbdMirror``: the fake, and the real ``RbdCli`` over both transports in the lab.

Every implementation must give documents that the pure parser reads the same way, count one call
per pool status (never per image), raise ``CommandFailed`` naming the command for a missing image
or a refused operation, and round-trip demote/promote. The fake's fault knobs are checked to turn
into *invalid samples* with a reason (never an exception) in the sampling job.

Parametrizations: ``fake``; ``local`` (rbd CLI with the site's ceph.conf) and ``toolbox`` (exec into
``rook-ceph/rook-ceph-tools`` through the lab's Kubernetes API), both marked ``lab``, on an image
of their own (never the Nexus image).
"""

from __future__ import annotations

import dataclasses
import time
import uuid
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from drkit.adapters.clock import SystemClock
from drkit.adapters.kube_exec import KubeExecRunner
from drkit.adapters.rbd import RbdCli, RbdMirror
from drkit.adapters.runner import CommandResult, Runner
from drkit.domain.doctor import effective_schedule, judge_peers
from drkit.domain.errors import CommandFailed, CommandTimedOut, Conflict, StandbyError, TransientError
from drkit.domain.models import CephAccess, StandbyConfig
from drkit.domain.rbd_status import parse_image_status, parse_pool_status, parse_snap_ls
from drkit.jobs.rpo import sample_site, sample_sites
from drkit.jobs.sites import cluster_for
from drkit.testing.rbd import FakeRbdMirror
from tests.labfixture import Lab, delete_mirrored_image

POOL = "replicapool"


@dataclass
class CountingRunner:
    """Wraps a runner and records every argv it runs (to count rbd calls)."""

    inner: Runner
    argvs: list[tuple[str, ...]] = field(default_factory=list)

    def run(
        self,
        argv: Sequence[str],
        *,
        description: str,
        accept: Iterable[int] = (0,),
        timeout: float = 30.0,
        stdin: bytes | None = None,
    ) -> CommandResult:
        self.argvs.append(tuple(argv))
        return self.inner.run(argv, description=description, accept=accept, timeout=timeout, stdin=stdin)


@dataclass
class Env:
    """Two sites of one implementation, with the image under test (primary on A)."""

    name: str
    primary: RbdMirror
    secondary: RbdMirror
    image: str
    config: StandbyConfig | None = None
    counters: dict[str, CountingRunner] = field(default_factory=dict)

    def calls(self, site: str, *words: str) -> int:
        """How many calls of ``site`` contained ``words`` in order."""
        fake = self.primary if self.primary.site == site else self.secondary
        if isinstance(fake, FakeRbdMirror):
            return sum(1 for op, _, _ in fake.calls if op == " ".join(words))
        return sum(1 for argv in self.counters[site].argvs if _contains(argv, words))


def _contains(argv: Sequence[str], words: Sequence[str]) -> bool:
    n = len(words)
    return any(tuple(argv[i : i + n]) == tuple(words) for i in range(len(argv) - n + 1))


def _fake_env() -> Env:
    now = datetime.now(UTC)
    a, b = FakeRbdMirror(site="site-a"), FakeRbdMirror(site="site-b")
    image = "contract-fake"
    a.add_image(
        POOL, image, primary=True, peer_site="site-b", local_snapshot_time=now - timedelta(seconds=40)
    )
    b.add_image(POOL, image, peer_site="site-a", local_snapshot_time=now - timedelta(seconds=40))
    for i in range(30):  # other images: a pool status still costs one call
        b.add_image(POOL, f"other-{i:02d}", local_snapshot_time=now - timedelta(seconds=i))
    snap = a.add_snapshot(POOL, image, created_at=now - timedelta(seconds=40))
    b.add_snapshot(POOL, image, created_at=now - timedelta(seconds=39), primary_snap_id=snap)
    for side in (a, b):  # as the lab schedules its app images on both sites
        side.schedules = [
            {
                "pool": POOL,
                "namespace": "",
                "image": "csi-vol-app",
                "items": [{"interval": "1m", "start_time": ""}],
            }
        ]
    return Env("fake", a, b, image)


def _counted(cli: RbdCli) -> tuple[RbdCli, CountingRunner]:
    counter = CountingRunner(cli.runner)
    return dataclasses.replace(cli, runner=counter), counter


def _lab_rbd(lab: Lab, config: StandbyConfig, site: str, transport: str) -> RbdCli:
    cs = lab.sites[site]
    if transport == "local":
        access = CephAccess(mode="local", cluster=cs.cluster, conf=cs.conf, client_id="admin")
        return RbdCli.local(access, site=site)
    kube = cluster_for(config.site(site))
    return RbdCli(runner=KubeExecRunner(kube.api_client, "rook-ceph/rook-ceph-tools", site=site), site=site)


@pytest.fixture(scope="module")
def lab_image(lab: Lab) -> Iterator[str]:
    """An image of this suite, mirrored A -> B with one synced mirror snapshot; deleted afterwards."""
    from lab import ceph

    a, b = lab.sites["site-a"], lab.sites["site-b"]
    image = f"contract-{uuid.uuid4().hex[:8]}"
    ceph.create_mirrored_image(a, b, POOL, image, size_mb=16, schedule=None)
    ceph.run(a.cli("mirror", "image", "snapshot", f"{POOL}/{image}"))

    def synced() -> bool:
        snaps = ceph.run_json(
            b.cli("snap", "ls", "--all", f"{POOL}/{image}", "--format", "json"), check=False
        )
        return any((s.get("namespace") or {}).get("complete") for s in snaps or [])

    ceph.wait_for(synced, 120, 1.0, f"{image} synced to site-b")

    def replaying() -> bool:
        status = ceph.mirror_image_status(b, POOL, image)
        return status.get("state") == "up+replaying" and "local_snapshot_timestamp" in status.get(
            "description", ""
        )

    ceph.wait_for(replaying, 120, 1.0, f"{image} up+replaying on site-b with a synced point")
    yield image
    delete_mirrored_image(lab, image)


@pytest.fixture(
    params=[
        "fake",
        pytest.param("local", marks=pytest.mark.lab),
        pytest.param("toolbox", marks=pytest.mark.lab),
    ]
)
def env(request: pytest.FixtureRequest) -> Env:
    if request.param == "fake":
        return _fake_env()
    lab: Lab = request.getfixturevalue("lab")
    image: str = request.getfixturevalue("lab_image")
    config = lab.admin_config()
    a, ca = _counted(_lab_rbd(lab, config, "site-a", request.param))
    b, cb = _counted(_lab_rbd(lab, config, "site-b", request.param))
    return Env(request.param, a, b, image, config, {"site-a": ca, "site-b": cb})


def _retry(action: Any, timeout: float = 60.0) -> Any:
    """Retry ``action`` on TransientError (EBUSY/EROFS right after a role change), polling."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            return action()
        except TransientError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.5)


# ------------------------------------------------------------------------------------ the contract


def test_one_pool_status_call_covers_every_image(env: Env) -> None:
    now = datetime.now(UTC)
    doc = env.secondary.pool_status(POOL)
    assert env.calls("site-b", "mirror", "pool", "status") == 1
    status = parse_pool_status(doc, now=now, tz="UTC", site="site-b", pool=POOL)
    names = [s.image for s in status.samples]
    assert env.image in names
    ours = next(s for s in status.samples if s.image == env.image)
    assert ours.role == "secondary"
    assert ours.health in ("ok", "syncing")
    assert ours.local_snapshot_time is not None
    assert ours.local_snapshot_time <= now + timedelta(seconds=5)
    # No per-image call was made to get every image's status.
    assert env.calls("site-b", "mirror", "image", "status") == 0


def test_primary_pool_status_reports_the_secondary_through_peer_sites(env: Env) -> None:
    now = datetime.now(UTC)
    status = parse_pool_status(env.primary.pool_status(POOL), now=now, tz="UTC", site="site-a", pool=POOL)
    ours = next(s for s in status.samples if s.image == env.image)
    assert ours.from_peer and ours.site == "site-b" and ours.observed_from == "site-a"
    assert ours.health in ("ok", "syncing")


def test_image_status_matches_the_pool_status_entry(env: Env) -> None:
    now = datetime.now(UTC)
    one = parse_image_status(env.secondary.image_status(POOL, env.image), now=now, tz="UTC", site="site-b")
    pool = parse_pool_status(env.secondary.pool_status(POOL), now=now, tz="UTC", site="site-b")
    entry = next(s for s in pool.samples if s.image == env.image)
    assert one.global_id == entry.global_id != ""
    assert one.role == entry.role == "secondary"


def test_image_info_says_which_side_is_primary(env: Env) -> None:
    assert env.primary.image_info(POOL, env.image)["mirroring"]["primary"] is True
    assert env.secondary.image_info(POOL, env.image)["mirroring"]["primary"] is False


def test_snapshots_give_complete_non_primary_points_on_the_secondary(env: Env) -> None:
    b = parse_snap_ls(env.secondary.snapshots(POOL, env.image), tz="UTC")
    a = parse_snap_ls(env.primary.snapshots(POOL, env.image), tz="UTC")
    assert any(s.non_primary and s.complete and s.primary_snap_id is not None for s in b)
    primary_ids = {s.id for s in a if s.state == "primary"}
    assert any(s.primary_snap_id in primary_ids for s in b if s.non_primary)


def test_pool_info_names_the_peer_site_on_both_sides(env: Env) -> None:
    for side, peer in ((env.primary, "site-b"), (env.secondary, "site-a")):
        info = side.pool_info(POOL)
        assert info["mode"] in ("image", "pool")
        assert [p["site_name"] for p in info["peers"]] == [peer]
        assert judge_peers(side.site, POOL, info, [peer]).ok


def test_snapshot_schedules_list_every_level_with_its_intervals(env: Env) -> None:
    for side in (env.primary, env.secondary):
        listed = side.snapshot_schedules(POOL)
        assert listed and all(set(e) >= {"pool", "namespace", "image", "items"} for e in listed)
        assert all(e["pool"] == POOL and e["items"] for e in listed)
        # The suite's own image has none; the app images (the lab's seeds) are snapshotted every minute.
        assert effective_schedule(listed, env.image) == (None, "")
        assert any(effective_schedule(listed, e["image"]) == (timedelta(minutes=1), "image") for e in listed)


def test_mirror_snapshot_adds_a_primary_snapshot(env: Env) -> None:
    before = {s.id for s in parse_snap_ls(env.primary.snapshots(POOL, env.image), tz="UTC")}
    env.primary.mirror_snapshot(POOL, env.image)
    after = parse_snap_ls(env.primary.snapshots(POOL, env.image), tz="UTC")
    new = [s for s in after if s.id not in before]
    assert len(new) == 1 and new[0].state == "primary" and new[0].created_at is not None


def test_mirror_snapshot_on_the_secondary_is_refused_naming_the_command(env: Env) -> None:
    with pytest.raises(CommandFailed) as caught:
        env.secondary.mirror_snapshot(POOL, env.image)
    assert "snapshot" in caught.value.argv and f"{POOL}/{env.image}" in caught.value.argv
    assert caught.value.exit_code not in (0, None)


def test_missing_image_raises_command_failed(env: Env) -> None:
    with pytest.raises(CommandFailed) as caught:
        env.secondary.image_status(POOL, "no-such-image-here")
    assert f"{POOL}/no-such-image-here" in " ".join(caught.value.argv)
    assert "no-such-image-here" in str(caught.value)


def test_demote_then_promote_round_trips_on_the_same_site(env: Env) -> None:
    env.primary.demote(POOL, env.image)
    try:
        assert env.primary.image_info(POOL, env.image)["mirroring"]["primary"] is False
    finally:
        _retry(lambda: env.primary.promote(POOL, env.image))
    assert env.primary.image_info(POOL, env.image)["mirroring"]["primary"] is True


def test_sample_site_makes_one_call_per_pool(env: Env) -> None:
    from drkit.domain.models import Site

    site = Site.model_validate(
        {"name": "site-b", "ceph": {"mode": "rook-toolbox"}, "pool": POOL, "s3": {"bucket": "standby"}}
    )
    (sampling,) = sample_site(env.secondary, site, clock=SystemClock())
    assert sampling.valid, sampling.error
    assert len(sampling.samples) >= 1
    assert env.calls("site-b", "mirror", "pool", "status") == 1
    assert env.calls("site-b", "mirror", "image", "status") == 0


def test_copy_latest_synced_makes_a_plain_copy_and_replication_goes_on(env: Env) -> None:
    dest = f"{env.image}-drill"
    before = parse_snap_ls(env.secondary.snapshots(POOL, env.image), tz="UTC")
    newest = max(s.id for s in before if s.non_primary and s.complete)
    try:
        record = env.secondary.copy_latest_synced(POOL, env.image, dest)
        assert (
            record["dest"] == dest and record["snap_id"] >= newest and record["primary_snap_id"] is not None
        )
        primary_ids = {s.id for s in parse_snap_ls(env.primary.snapshots(POOL, env.image), tz="UTC")}
        assert record["primary_snap_id"] in primary_ids or record["snap_id"] > newest
        info = env.secondary.image_info(POOL, dest)
        assert (info.get("mirroring") or {}).get("state", "disabled") == "disabled"  # a plain image
        assert env.secondary.image_info(POOL, env.image)["mirroring"]["primary"] is False  # never promoted
        again = env.secondary.copy_latest_synced(POOL, env.image, dest)  # idempotent: the finished copy
        assert again["snap_id"] == record["snap_id"] and again.get("reused") is True
    finally:
        assert env.secondary.remove_image(POOL, dest) is True
    assert env.secondary.remove_image(POOL, dest) is False
    with pytest.raises(CommandFailed):
        env.secondary.image_info(POOL, dest)


def test_remove_image_refuses_a_mirrored_image(env: Env) -> None:
    with pytest.raises(Conflict, match="mirrored"):
        env.secondary.remove_image(POOL, env.image)
    assert env.secondary.image_info(POOL, env.image)["mirroring"]["primary"] is False


def test_timeout_raises_a_retryable_command_timed_out(env: Env) -> None:
    if isinstance(env.secondary, FakeRbdMirror):
        env.secondary.timeout = True
        rbd: RbdMirror = env.secondary
    else:
        assert isinstance(env.secondary, RbdCli)
        rbd = dataclasses.replace(env.secondary, timeout=0.001)
    with pytest.raises(CommandTimedOut) as caught:
        rbd.pool_status(POOL)
    assert isinstance(caught.value, TransientError)
    assert "status" in caught.value.argv


# ------------------------------------------------------------------------- fault knobs (fake only)

_SITE_B = {"name": "site-b", "ceph": {"mode": "rook-toolbox"}, "pool": POOL, "s3": {"bucket": "standby"}}
_SITE_A = {**_SITE_B, "name": "site-a"}


def _config() -> StandbyConfig:
    return StandbyConfig.model_validate(
        {
            "sites": [_SITE_A, _SITE_B],
            "apps": [
                {
                    "name": "demo",
                    "namespace": "demo",
                    "home_site": "site-a",
                    "secondary_site": "site-b",
                    "volumes": [{"pvc": "data", "image": "contract-fake"}],
                    "workload": {"kind": "apps/v1/StatefulSet", "name": "demo"},
                    "mirroring": {"control": "rbd"},
                    "snapshot_interval": "1m",
                    "rpo_target": "5m",
                }
            ],
        }
    )


@pytest.mark.parametrize(
    ("knob", "value", "expect"),
    [
        ("malformed_json", True, "not JSON"),
        ("timeout", True, "timed out"),
        ("exit_code", 5, "exited with 5"),
        ("wrong_shape", True, "expected an 'images' list"),
    ],
)
def test_fault_marks_that_sample_invalid_with_its_reason(knob: str, value: object, expect: str) -> None:
    env = _fake_env()
    setattr(env.secondary, knob, value)
    config = _config()
    samplings = sample_sites({"site-a": env.primary, "site-b": env.secondary}, config, clock=SystemClock())
    by_site = {s.site: s for s in samplings}
    assert by_site["site-a"].valid
    bad = by_site["site-b"]
    assert not bad.valid and bad.error is not None and expect in bad.error
    assert bad.command == f"rbd mirror pool status {POOL} --verbose --format json"
    assert bad.transient is (knob == "timeout")


def test_unknown_fields_are_tolerated_and_noted() -> None:
    env = _fake_env()
    env.secondary.unknown_fields = True  # type: ignore[attr-defined]
    (sampling,) = sample_site(env.secondary, _config().site("site-b"), clock=SystemClock())
    assert sampling.valid
    assert any("x_future_field" in n and "x_future_section" in n for n in sampling.notes)
    ours = next(s for s in sampling.samples if s.image == env.image)
    assert ours.health == "ok" and ours.local_snapshot_time is not None


def test_no_site_sampled_fails_naming_each_site_and_command() -> None:
    env = _fake_env()
    env.primary.exit_code = 1  # type: ignore[attr-defined]
    env.secondary.malformed_json = True  # type: ignore[attr-defined]
    with pytest.raises(StandbyError) as caught:
        sample_sites({"site-a": env.primary, "site-b": env.secondary}, _config(), clock=SystemClock())
    text = str(caught.value)
    assert "site-a" in text and "site-b" in text
    assert f"rbd mirror pool status {POOL} --verbose --format json" in text
    assert not isinstance(caught.value, TransientError)


def test_no_site_sampled_only_by_timeouts_is_retryable() -> None:
    env = _fake_env()
    env.primary.timeout = env.secondary.timeout = True  # type: ignore[attr-defined]
    with pytest.raises(TransientError):
        sample_sites({"site-a": env.primary, "site-b": env.secondary}, _config(), clock=SystemClock())
