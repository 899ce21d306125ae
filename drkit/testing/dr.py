"""A whole two-site world in memory, for testing DR operations without the lab: :func:`fake_dr`.

Two fake clusters with small controllers (VolumeReplication, Nexus), one shared fake object
store (or, with ``per_site_stores=True``, one store per site: its own endpoint and bucket), a fake
mirror pair and a fake Nexus per running app; site A is seeded like the lab, site B holds the
namespace and the admin Secret.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass, field
from typing import Any

from drkit.adapters.nexus import NexusApi
from drkit.domain.errors import StandbyError
from drkit.domain.models import StandbyConfig
from drkit.jobs.world import SiteBundle, World
from drkit.testing.clock import FakeClock
from drkit.testing.kube import FakeCluster
from drkit.testing.mirror import FakeMirrorPair
from drkit.testing.nexus import FakeNexus
from drkit.testing.objectstore import FakeObjectStore

NS = "nexus-dr"
NEXUS = "nexus-ddrs"
PVC = f"nexus-data-{NEXUS}-nxrm-ha-0"
PV = "pvc-231a9021-2548-433e-8583-f7b56d74aca7"
IMAGE = "csi-vol-459e6f28-a158-4ae9-b5da-163448c35119"
POOL = "replicapool"
PASSWORD = "fake-admin-password-7f3a"
VR_API = "replication.storage.openshift.io/v1alpha1"
NEXUS_API = "operator.alaudadevops.io/v1alpha1"
SITES = ("site-a", "site-b")


def _s3(site: str, per_site: bool) -> dict[str, str]:
    if per_site:
        return {"endpoint": f"memory://fake-s3-{site}", "bucket": f"standby-{site}", "prefix": "standby"}
    return {"endpoint": "memory://fake-s3", "bucket": "standby", "prefix": "standby"}


def fake_config(
    *, control: str = "volume-replication", routing: str = "ingress", per_site_stores: bool = False
) -> StandbyConfig:
    """The lab's configuration, on fakes (paths and endpoints are never used); with
    ``per_site_stores`` each site names its own S3 endpoint and bucket."""
    sites = [
        {
            "name": s,
            "ceph": {"mode": "local", "cluster": s, "conf": f"/fake/{s}.conf"},
            "pool": POOL,
            "storage_class": "ceph-rbd",
            "s3": _s3(s, per_site_stores),
        }
        for s in SITES
    ]
    kinds = [
        "v1/Secret",
        "v1/ConfigMap",
        "v1/PersistentVolumeClaim",
        "v1/Service",
        "networking.k8s.io/v1/Ingress",
        f"{NEXUS_API}/Nexus",
    ] + ([f"{VR_API}/VolumeReplication"] if control != "rbd" else [])
    app = {
        "name": "nexus",
        "namespace": NS,
        "home_site": "site-a",
        "secondary_site": "site-b",
        "backup": {"kinds": kinds},
        "volumes": [{"pvc": PVC, "image": IMAGE}],
        "workload": {"kind": f"{NEXUS_API}/Nexus", "name": NEXUS},
        "mirroring": {"control": control, "volume_replication_class": "rbd-volumereplicationclass"},
        "snapshot_interval": "1m",
        "rpo_target": "5m",
        "checks": {"kind": "nexus", "admin_secret": "nexus-root-password"},
        "routing": {"mode": routing},
    }
    return StandbyConfig.model_validate({"sites": sites, "apps": [app]})


def _meta(name: str, namespace: str | None = None) -> dict[str, Any]:
    return {"name": name, **({"namespace": namespace} if namespace else {})}


def seed_common() -> list[dict[str, Any]]:
    """What both sites hold: the namespace, the isolated drill's namespace (installed once, with
    Standby's Role in it) and the admin Secret."""
    return [
        {"apiVersion": "v1", "kind": "Namespace", "metadata": _meta(NS)},
        {"apiVersion": "v1", "kind": "Namespace", "metadata": _meta(f"{NS}-drill")},
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": _meta("nexus-root-password", NS),
            "type": "Opaque",
            "data": {"password": base64.b64encode(PASSWORD.encode()).decode()},
        },
    ]


def seed_app(*, with_vr: bool = True) -> list[dict[str, Any]]:
    """What the primary holds: PV, PVC, VolumeReplication, Nexus CR, Service and Ingress."""
    attrs = {"imageName": IMAGE, "pool": POOL, "clusterID": "rook-ceph"}
    objs: list[dict[str, Any]] = [
        {
            "apiVersion": "v1",
            "kind": "PersistentVolume",
            "metadata": _meta(PV),
            "spec": {
                "capacity": {"storage": "5Gi"},
                "accessModes": ["ReadWriteOnce"],
                "storageClassName": "ceph-rbd",
                "persistentVolumeReclaimPolicy": "Delete",
                "claimRef": {"kind": "PersistentVolumeClaim", "namespace": NS, "name": PVC},
                "csi": {
                    "driver": "rook-ceph.rbd.csi.ceph.com",
                    "volumeHandle": "0001-fake",
                    "volumeAttributes": attrs,
                },
            },
        },
        {
            "apiVersion": "v1",
            "kind": "PersistentVolumeClaim",
            "metadata": _meta(PVC, NS),
            "spec": {
                "accessModes": ["ReadWriteOnce"],
                "resources": {"requests": {"storage": "5Gi"}},
                "storageClassName": "ceph-rbd",
                "volumeName": PV,
            },
        },
        {
            "apiVersion": NEXUS_API,
            "kind": "Nexus",
            "metadata": _meta(NEXUS, NS),
            "spec": {"externalURL": "http://nexus.fake"},
        },
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": _meta(f"{NEXUS}-nxrm-ha", NS),
            "spec": {"ports": [{"port": 8081}]},
        },
        {
            "apiVersion": "networking.k8s.io/v1",
            "kind": "Ingress",
            "metadata": _meta(NEXUS, NS),
            "spec": {"rules": []},
        },
    ]
    if with_vr:
        objs.append(
            {
                "apiVersion": VR_API,
                "kind": "VolumeReplication",
                "metadata": _meta(PVC, NS),
                "spec": {
                    "autoResync": True,
                    "volumeReplicationClass": "rbd-volumereplicationclass",
                    "replicationState": "primary",
                    "dataSource": {"apiGroup": "", "kind": "PersistentVolumeClaim", "name": PVC},
                },
            }
        )
    return objs


def _image_of(cluster: FakeCluster, pvc_name: str, namespace: str = NS) -> str | None:
    pvc = cluster.objects.get(("v1", "PersistentVolumeClaim", namespace, pvc_name))
    if pvc is None or (pvc.get("status") or {}).get("phase") != "Bound":
        return None
    pv = cluster.objects.get(("v1", "PersistentVolume", "", str(pvc["spec"].get("volumeName"))))
    return None if pv is None else str(pv["spec"]["csi"]["volumeAttributes"]["imageName"])


def _cond(kind: str, ok: bool, reason: str) -> dict[str, str]:
    return {"type": kind, "status": "True" if ok else "False", "reason": reason}


@dataclass
class FakeDr:
    """The fake world and its parts, with their knobs."""

    world: World
    mirror: FakeMirrorPair
    clusters: dict[str, FakeCluster]
    store: FakeObjectStore
    """Site A's store (the only one, unless the world has a store per site)."""
    clock: FakeClock
    nexus: dict[str, FakeNexus] = field(default_factory=dict)
    """Running Nexus per site."""
    nexus_fail_writes: set[str] = field(default_factory=set)
    """Sites whose next Nexus starts with ``fail_writes`` (never writable)."""
    stores: dict[str, FakeObjectStore] = field(default_factory=dict)
    """Each site's store (the same object for both unless ``per_site_stores``)."""

    def nexus_factory(self, url: str, password: str, site: str) -> NexusApi:
        """The Nexus running at ``url`` (a stopped one answers as unreachable)."""
        for running in self.nexus.values():
            if running.url == url:
                running.given_password = password
                return running
        return FakeNexus(url=url, site=site, data={}, password="", running=False)

    def vr_controller(self, site: str) -> Any:
        """The VolumeReplication controller of ``site``."""

        def reconcile(cluster: FakeCluster) -> None:
            rbd = self.mirror.site(site)
            for key, vr in list(cluster.objects.items()):
                if key[1] != "VolumeReplication":
                    continue
                image = _image_of(cluster, vr["spec"]["dataSource"]["name"])
                if image is None:
                    vr["status"] = {
                        "state": "Unknown",
                        "conditions": [_cond("Completed", False, "PrerequisiteNotMet")],
                    }
                    continue
                want = vr["spec"]["replicationState"]
                status = vr.setdefault("status", {})
                try:
                    primary = rbd.image_info(POOL, image)["mirroring"]["primary"]
                    if want == "primary" and not primary:
                        rbd.promote(POOL, image)
                    elif want == "secondary" and primary:
                        rbd.demote(POOL, image)
                    elif (
                        want == "resync"
                        and not primary
                        and status.get("resynced") != vr["metadata"]["resourceVersion"]
                    ):
                        rbd.resync(POOL, image)
                        status["resynced"] = vr["metadata"]["resourceVersion"]
                    primary = rbd.image_info(POOL, image)["mirroring"]["primary"]
                except StandbyError:
                    pass
                ok = (want == "primary") == primary or want == "resync"
                status.update(
                    state="Primary" if primary else "Secondary",
                    conditions=[
                        _cond("Completed", ok, "Promoted" if primary else "Demoted"),
                        _cond("Degraded", not ok, "Healthy" if ok else "VolumeDegraded"),
                        _cond("Resyncing", False, "NotResyncing"),
                    ],
                )

        return reconcile

    def nexus_controller(self, site: str) -> Any:
        """The Nexus controller of ``site``."""

        def reconcile(cluster: FakeCluster) -> None:
            crs = [o for k, o in cluster.objects.items() if k[1] == "Nexus"]
            if not crs and site in self.nexus:
                self.nexus.pop(site).running = False
            for cr in crs:
                if site in self.nexus:
                    continue
                ns = cr["metadata"].get("namespace", NS)
                image = _image_of(cluster, f"nexus-data-{cr['metadata']['name']}-nxrm-ha-0", ns)
                scratch = self.mirror.scratch.get((site, image or ""))  # a plain image: writable
                if (
                    image is None
                    or site in self.mirror.down
                    or (
                        scratch is None
                        and (image not in self.mirror.images or not self.mirror.images[image].primary[site])
                    )
                ):
                    cr["status"] = {"phase": "Pending", "url": None}
                    continue
                data = scratch["data"] if scratch is not None else self.mirror.images[image].data[site]
                url = f"https://nexus.{site}.fake"  # the driver sends the password only over https
                self.nexus[site] = FakeNexus(
                    url=url,
                    site=site,
                    data=data,
                    password=PASSWORD,
                    fail_writes=site in self.nexus_fail_writes,
                )
                cr["status"] = {"phase": "Running", "url": url}

        return reconcile

    def lose(self, site: str) -> None:
        """The site stops answering: its apiserver, its Ceph and its Nexus."""
        self.clusters[site].unreachable = True
        self.mirror.down.add(site)
        if site in self.nexus:
            self.nexus[site].running = False

    def freeze(self, site: str) -> None:
        """The site stops answering without refusing (SIGSTOP, as ``lab site down`` does): calls to
        its apiserver and its Ceph block until :meth:`thaw` (each at most its ``Hang.limit``)."""
        self.clusters[site].hang.freeze()
        self.mirror.hangs[site].freeze()

    def thaw(self, site: str) -> None:
        """The frozen site answers again (the calls that blocked go on)."""
        self.clusters[site].hang.thaw()
        self.mirror.hangs[site].thaw()

    def regain(self, site: str) -> None:
        """The site answers again, with its data (and a Nexus that runs on, as after SIGCONT)."""
        self.clusters[site].unreachable = False
        self.mirror.down.discard(site)
        if site in self.nexus:
            self.nexus[site].running = True


def fake_dr(
    *, control: str = "volume-replication", routing: str = "ingress", per_site_stores: bool = False
) -> FakeDr:
    """A fresh fake world: the app runs on site A, mirrored to B, backups none yet; one shared
    store, or with ``per_site_stores`` one store per site (``FakeDr.stores``)."""
    clock = FakeClock()
    config = fake_config(control=control, routing=routing, per_site_stores=per_site_stores)
    mirror = FakeMirrorPair(POOL, [IMAGE], now=clock.now)
    shared = FakeObjectStore(site="site-a")
    stores = {
        s.name: FakeObjectStore(site=s.name, bucket=s.s3.bucket, endpoint=str(s.s3.endpoint))
        if per_site_stores
        else shared
        for s in config.sites
    }
    clusters = {s: FakeCluster(site=s) for s in SITES}
    for cluster in clusters.values():
        cluster.seed(*seed_common())
    clusters["site-a"].seed(*seed_app(with_vr=control != "rbd"))
    bundles = {
        s.name: SiteBundle(s, stores[s.name], clusters[s.name], mirror.site(s.name)) for s in config.sites
    }
    dr = FakeDr(
        world=World(config=config, sites=bundles, clock=clock),
        mirror=mirror,
        clusters=clusters,
        store=stores["site-a"],
        clock=clock,
        stores=stores,
    )
    dr.world.app_clients["nexus"] = dr.nexus_factory
    for site, cluster in clusters.items():
        cluster.controllers = [dr.vr_controller(site), dr.nexus_controller(site)]
        for reconcile in cluster.controllers:
            reconcile(cluster)
    clusters["site-a"].calls.clear()
    return dr
