"""A two-site world in memory with a VM app (``checks.kind: opennebula``): :func:`fake_vm_dr`.

The sites of :func:`drkit.testing.dr.fake_dr`, each with an OpenNebula front-end in memory
(:func:`~drkit.testing.opennebula.fake_site_a`, :func:`~drkit.testing.opennebula.fake_site_b`)
handed to the world as the Kubernetes clusters and ``rbd`` are, a fake mirror pair of pool ``one``
holding the VMs' disks, and the app ``vms``: the VMs labelled ``STANDBY_APP=vms`` on site A.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from drkit.domain.models import StandbyConfig
from drkit.jobs.world import SiteBundle, World
from drkit.testing.clock import FakeClock
from drkit.testing.dr import SITES, FakeDr, fake_config
from drkit.testing.kube import FakeCluster
from drkit.testing.mirror import FakeMirrorPair
from drkit.testing.objectstore import FakeObjectStore
from drkit.testing.opennebula import LABEL_KEY, LABEL_VALUE, POOL, FakeOneFrontend, fake_site_a, fake_site_b

VM_APP = "vms"
VM_IMAGES = ("one-0", "one-1")
"""The RBD images of the seeded VMs' disks (``web-0``'s and ``db-0``'s persistent images)."""
SESSION_ENV = "STANDBY_FAKE_ONE_SESSION"
"""The variable the fake configuration names for the session (never read: the fronts are handed in)."""


def vm_app(**opennebula: Any) -> dict[str, Any]:
    """The VM app's configuration (``opennebula`` fields override the section's)."""
    section: dict[str, Any] = {
        "vm_label": f"{LABEL_KEY}={LABEL_VALUE}",
        "image_pool": POOL,
        "datastores": {"site-a": 1, "site-b": 100},
        "networks": {"lan-a": "lan-b"},
        "unmapped_nic": "drop-context",
        "source_only": "drop",
        **opennebula,
    }
    return {
        "name": VM_APP,
        "home_site": "site-a",
        "secondary_site": "site-b",
        "volumes": [{"image": image} for image in VM_IMAGES],
        "mirroring": {"control": "rbd", "mode": "snapshot"},
        "snapshot_interval": "1m",
        "rpo_target": "5m",
        "checks": {"kind": "opennebula"},
        "opennebula": section,
    }


def fake_vm_config(**opennebula: Any) -> StandbyConfig:
    """:func:`~drkit.testing.dr.fake_config`'s sites, each with a front-end, and the VM app only."""
    data = fake_config(control="rbd").model_dump(mode="json", exclude_none=True)
    for site in data["sites"]:
        site["opennebula"] = {
            "endpoint": f"http://one-{site['name']}.fake:2633/RPC2",
            "credentials_env": SESSION_ENV,
        }
    data["apps"] = [vm_app(**opennebula)]
    return StandbyConfig.model_validate(data)


@dataclass
class FakeVmDr(FakeDr):
    """:class:`~drkit.testing.dr.FakeDr` with a front-end per site (:attr:`fronts`)."""

    fronts: dict[str, FakeOneFrontend] = field(default_factory=dict)

    def lose(self, site: str) -> None:
        """The site stops answering, its front-end too."""
        super().lose(site)
        self.fronts[site].running = False

    def regain(self, site: str) -> None:
        """The site answers again, its front-end too."""
        super().regain(site)
        self.fronts[site].running = True


def fake_vm_dr(**opennebula: Any) -> FakeVmDr:
    """A fresh VM world: the app's VMs run on site A, their disks mirrored to B; no backup yet."""
    clock = FakeClock()
    config = fake_vm_config(**opennebula)
    mirror = FakeMirrorPair(POOL, list(VM_IMAGES), now=clock.now)
    store = FakeObjectStore(site="site-a")
    clusters = {s: FakeCluster(site=s) for s in SITES}
    fronts = {"site-a": fake_site_a(), "site-b": fake_site_b()}
    bundles = {
        s.name: SiteBundle(s, store, clusters[s.name], mirror.site(s.name), opennebula=fronts[s.name])
        for s in config.sites
    }
    return FakeVmDr(
        world=World(config=config, sites=bundles, clock=clock),
        mirror=mirror,
        clusters=clusters,
        store=store,
        clock=clock,
        stores={s: store for s in SITES},
        fronts=fronts,
    )
