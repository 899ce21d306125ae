"""A plan appears whatever is down: on the fake two-site world, a site (or a store) whose calls hang
is shown unreachable with "no answer within Ns" and the plan is still made; what stopped answering
is not asked again in the same observation. Outcomes only, never wall time."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from datetime import timedelta

import pytest
from typer.testing import CliRunner

from drkit.adapters.probes import NoAnswer, Probe, bounded, in_parallel
from drkit.domain.errors import NotFound
from drkit.jobs.operations import prepare
from drkit.jobs.world import SiteBundle, observe_placed
from drkit.testing.dr import FakeDr, fake_dr
from drkit.testing.mirror import FakeSiteRbd
from drkit.testing.objectstore import FakeObjectStore
from standby import ops_cli
from standby.cli import app
from tests.unit.test_operations import KEY, _backup

PROBE = 0.5
"""The sites' probe_timeout in these tests (seconds)."""
LIMIT = 10.0
"""How long a frozen fake blocks a call at most, so a test that went wrong cannot hang."""


def _quick(dr: FakeDr) -> None:
    """Every site's probe_timeout set to :data:`PROBE`; the fakes' hangs bounded by :data:`LIMIT`."""
    sites = tuple(
        s.model_copy(update={"probe_timeout": timedelta(seconds=PROBE)}) for s in dr.world.config.sites
    )
    dr.world.config = dr.world.config.model_copy(update={"sites": sites})
    for site in sites:
        dr.world.sites[site.name].site = site
        dr.clusters[site.name].hang.limit = LIMIT
        dr.mirror.hangs[site.name].limit = LIMIT


def _own_stores(dr: FakeDr) -> dict[str, FakeObjectStore]:
    """Give each site a store of its own (its own endpoint) holding what the shared one holds."""
    stores: dict[str, FakeObjectStore] = {}
    sites = []
    for site in dr.world.config.sites:
        endpoint = f"memory://{site.name}"
        site = site.model_copy(update={"s3": site.s3.model_copy(update={"endpoint": endpoint})})
        store = stores[site.name] = FakeObjectStore(site=site.name, endpoint=endpoint)
        store.objects.update(dr.store.objects)
        store.hang.limit = LIMIT
        dr.world.sites[site.name] = SiteBundle(site, store, dr.clusters[site.name], dr.mirror.site(site.name))
        sites.append(site)
    dr.world.config = dr.world.config.model_copy(update={"sites": tuple(sites)})
    return stores


@pytest.fixture
def dr() -> Iterator[FakeDr]:
    """The fake world with a backup of site-a, quick probes; every frozen part thawed at the end."""
    world = fake_dr()
    _backup(world, "site-a")
    _quick(world)
    yield world
    for site in ("site-a", "site-b"):
        world.thaw(site)


def test_a_failover_planned_while_site_a_is_frozen_shows_it_unreachable_with_the_reason(dr: FakeDr) -> None:
    dr.freeze("site-a")
    prepared = prepare(dr.world, "nexus", "failover", "site-b", key=KEY)
    plan, site_a = prepared.plan, prepared.facts.view.sites["site-a"]
    assert not site_a.reachable
    assert f"rbd of site-a: no answer within {PROBE:g}s" in site_a.error
    assert plan.runnable, plan.refusals
    assert plan.needs_unfenced_ack and plan.needs_data_loss_ack
    assert any(f"no answer within {PROBE:g}s" in line for line in plan.unfenced), plan.unfenced
    assert plan.backup_run is not None
    assert dr.mirror.hangs["site-a"].held >= 1  # the frozen Ceph was really asked


def test_what_did_not_answer_is_not_asked_again_in_the_same_observation(dr: FakeDr) -> None:
    dr.freeze("site-a")
    prepare(dr.world, "nexus", "failover", "site-b", key=KEY)
    # the site view, the exact lag (which asks the primary's snapshots) and the status fall-back all
    # wanted site-a's rbd: only the first call blocked
    assert dr.mirror.hangs["site-a"].held == 1


def test_a_relocate_planned_while_site_a_is_frozen_is_refused_with_the_reason(dr: FakeDr) -> None:
    dr.freeze("site-a")
    plan = prepare(dr.world, "nexus", "relocate", "site-b", key=KEY).plan
    refused = {c.name: c.detail for c in plan.refusals}
    assert f"no answer within {PROBE:g}s" in refused["site-a reachable"]
    assert "planned move possible" in refused


def test_a_frozen_site_and_its_frozen_store_still_give_a_plan_from_the_other_store(dr: FakeDr) -> None:
    stores = _own_stores(dr)
    dr.freeze("site-a")
    stores["site-a"].hang.freeze()
    try:
        placed, view = observe_placed(dr.world.probing(), dr.world.config.app("nexus"))
        assert f"object store of site-a: no answer within {PROBE:g}s" in placed.errors["site-a"]
        assert placed.record.primary == "site-a"
        assert not view.sites["site-a"].reachable and view.sites["site-b"].reachable
        prepared = prepare(dr.world, "nexus", "failover", "site-b", key=KEY)
        assert prepared.plan.runnable, prepared.plan.refusals
        assert prepared.facts.backup_run is not None
    finally:
        stores["site-a"].hang.thaw()


def test_both_sites_frozen_give_a_refused_plan_not_a_wait(dr: FakeDr) -> None:
    dr.freeze("site-a")
    dr.freeze("site-b")
    plan = prepare(dr.world, "nexus", "failover", "site-b", key=KEY).plan
    refused = {c.name: c.detail for c in plan.refusals}
    assert f"rbd of site-b: no answer within {PROBE:g}s" in refused["site-b reachable"]


def test_the_steps_that_act_keep_the_normal_adapters(dr: FakeDr) -> None:
    probing = dr.world.probing()
    assert isinstance(dr.world.sites["site-a"].rbd, FakeSiteRbd)
    assert isinstance(dr.world.sites["site-a"].store, FakeObjectStore)
    assert not isinstance(probing.sites["site-a"].rbd, FakeSiteRbd)
    assert repr(probing.sites["site-a"].store).startswith("bounded(")


def test_status_shows_a_frozen_site_unreachable_with_the_reason(
    dr: FakeDr, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(ops_cli, "world_of", lambda config, **names: dr.world)
    monkeypatch.setenv("STANDBY_BACKUP_KEY", base64.b64encode(bytes(range(32))).decode())
    dr.freeze("site-a")
    result = CliRunner().invoke(app, ["status", "--json"])
    assert result.exit_code == 0, result.output
    status = json.loads(result.output)["apps"]["nexus"]
    assert status["primary"] == "site-a"
    assert any(
        w.startswith(f"site-a unreachable: rbd of site-a: no answer within {PROBE:g}s")
        for w in status["warnings"]
    )


# ------------------------------------------------------------------------------------- the probes


def test_a_bounded_call_that_hangs_raises_no_answer_and_later_calls_do_not_wait() -> None:
    store = FakeObjectStore()
    store.hang.limit = LIMIT
    store.put("k", b"v")
    probe = Probe("object store of site-a", "site-a", PROBE)
    quick = bounded(store, probe)
    assert quick.read("k")[0] == b"v"
    with pytest.raises(NotFound):  # an answer, even a "no": passed on as it is
        quick.get("missing")
    store.hang.freeze()
    try:
        with pytest.raises(NoAnswer, match=f"object store of site-a: no answer within {PROBE:g}s"):
            quick.get("k")
        with pytest.raises(NoAnswer):
            list(quick.list(""))
        assert store.hang.held == 1
        assert probe.silent is not None
    finally:
        store.hang.thaw()


def test_a_bounded_listing_is_bounded_item_by_item() -> None:
    store = FakeObjectStore(page_size=1)
    store.hang.limit = LIMIT
    for key in ("a", "b", "c"):
        store.put(key, b"x")
    listing = bounded(store, Probe("object store of site-a", "site-a", PROBE)).list("")
    assert next(listing).key == "a"
    store.hang.freeze()
    try:
        with pytest.raises(NoAnswer):
            list(listing)
    finally:
        store.hang.thaw()


def test_in_parallel_returns_results_in_order_and_raises_the_first_error() -> None:
    assert in_parallel(lambda: 1, lambda: 2, lambda: 3) == [1, 2, 3]

    def boom() -> int:
        raise NotFound("x", hint="y")

    with pytest.raises(NotFound):
        in_parallel(lambda: 1, boom)
