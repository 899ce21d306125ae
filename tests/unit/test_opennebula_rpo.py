"""RPO of a VM app: its images live in the app's image pool (``one``), not the site's pool."""

from __future__ import annotations

from drkit.domain.rpo_reading import choose_sample
from drkit.jobs.rpo import run_sample, site_pools
from drkit.testing.dr import SITES, fake_dr
from drkit.testing.vm_dr import VM_APP, VM_IMAGES, fake_vm_dr


def test_each_site_is_sampled_once_per_pool_and_a_vm_app_is_read_in_its_image_pool() -> None:
    dr = fake_vm_dr()
    rbds = {s: dr.mirror.site(s) for s in SITES}
    run = run_sample(dr.world.config, rbds, clock=dr.clock)
    assert sorted((s.site, s.pool) for s in run.samplings) == sorted(
        (site, pool) for site in SITES for pool in ("replicapool", "one")
    )
    (reading,) = run.readings
    assert reading.app == VM_APP and reading.pool == "one" and reading.secondary_site == "site-b"
    assert {lag.image: lag.pool for lag in reading.lag.images} == dict.fromkeys(VM_IMAGES, "one")
    assert all(lag.health == "ok" for lag in reading.lag.images)


def test_an_image_is_chosen_from_its_own_pool_only() -> None:
    dr = fake_vm_dr()
    rbds = {s: dr.mirror.site(s) for s in SITES}
    samplings = run_sample(dr.world.config, rbds, clock=dr.clock).samplings
    assert choose_sample(samplings, "site-b", "one-0", "one") is not None
    assert choose_sample(samplings, "site-b", "one-0", "no-such-pool") is None


def test_a_kubernetes_only_configuration_samples_the_site_pool_alone() -> None:
    config = fake_dr().world.config
    assert [site_pools(config, site) for site in config.sites] == [("replicapool",)] * len(config.sites)
