"""Benchmark: back up 10,000 objects (100 namespaces) from a fake apiserver into moto S3.

Seeds an in-process fake kube-apiserver with ``OBJECTS`` objects across ``NAMESPACES`` namespaces
(ConfigMaps and Secrets, plus one bound PVC and its PV per namespace), one protected app per
namespace, and runs in the same process:

* Standby's backup (LIST per kind and namespace, content-addressed blobs, parallel conditional
  PUTs, a compact gzip index), then an unchanged re-run (no blob, a pointer index per app);
* a naive baseline: the same LISTs for names, then a GET per object and a PUT per object (Secrets
  encrypted the same way), no dedup; run twice as well.

It prints API requests (from the apiserver's own counters), seconds and bytes uploaded, then the
ratios against the targets.

    .venv/bin/python -m bench.backup [OBJECTS] [NAMESPACES]
"""

from __future__ import annotations

import base64
import logging
import os
import sys
import tempfile
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from kubernetes import client

from drkit.adapters.clock import SystemClock
from drkit.adapters.kube import KubeCluster
from drkit.adapters.objectstore import ObjectInfo, S3Credentials, S3ObjectStore
from drkit.domain import crypto
from drkit.domain.backup import canonical_yaml
from drkit.domain.layout import INDEX_NAME, logical_path
from drkit.domain.models import ProtectedApp, S3Location, Site
from drkit.domain.selection import plan_lists
from drkit.domain.transforms import normalize
from drkit.jobs.backup import run_backup
from lab.kubeapi import KubeApiServer
from lab.s3 import start_moto

KEY = crypto.MasterKey(bytes(range(32)))
NAIVE_SCALE = 20
"""The naive baseline runs on 1/NAIVE_SCALE of the namespaces (it is linear in objects)."""


class CountingStore:
    """An ObjectStore wrapper counting PUTs and bytes put."""

    def __init__(self, inner: S3ObjectStore) -> None:
        self.inner = inner
        self.puts = 0
        self.bytes = 0
        self.index_bytes = 0

    def put(
        self,
        key: str,
        data: bytes,
        *,
        if_none_match: bool = False,
        content_type: str = "application/octet-stream",
    ) -> str:
        self.puts += 1
        self.bytes += len(data)
        if key.endswith((f"/{INDEX_NAME}", "/latest")):
            self.index_bytes += len(data)
        return self.inner.put(key, data, if_none_match=if_none_match, content_type=content_type)

    def get(self, key: str) -> bytes:
        return self.inner.get(key)

    def head(self, key: str) -> ObjectInfo | None:
        return self.inner.head(key)

    def exists(self, key: str) -> bool:
        return self.inner.exists(key)

    def list(self, prefix: str) -> Iterator[ObjectInfo]:
        return self.inner.list(prefix)

    def delete(self, keys: Iterable[str]) -> None:
        self.inner.delete(keys)


@dataclass
class Figures:
    objects: int
    requests: int
    seconds: float
    bytes_first: int
    index_bytes_first: int
    seconds_rerun: float
    bytes_rerun: int
    index_bytes_rerun: int


def seed(srv: KubeApiServer, objects: int, namespaces: int) -> None:
    per_ns = objects // namespaces - 3  # namespace, PVC and PV are objects too
    for n in range(namespaces):
        ns = f"app-{n:03d}"
        srv.store.create("namespaces", {"metadata": {"name": ns}})
        for i in range(per_ns):
            name = f"obj-{i:03d}"
            if i % 2:
                body = {
                    "metadata": {"name": name, "namespace": ns, "labels": {"app": ns}},
                    "type": "Opaque",
                    "data": {"token": base64.b64encode(os.urandom(24)).decode()},
                }
                srv.store.create("secrets", body, namespace=ns)
            else:
                text = "".join(f"key.{j}={ns}-{i}-{j}\n" for j in range(20))
                body = {
                    "metadata": {"name": name, "namespace": ns, "labels": {"app": ns}},
                    "data": {"app.properties": text},
                }
                srv.store.create("configmaps", body, namespace=ns)
        srv.store.create(
            "persistentvolumes",
            {
                "metadata": {"name": f"pv-{ns}"},
                "spec": {
                    "capacity": {"storage": "1Gi"},
                    "accessModes": ["ReadWriteOnce"],
                    "storageClassName": "ceph-rbd",
                    "persistentVolumeReclaimPolicy": "Delete",
                    "csi": {
                        "driver": "rbd.csi.ceph.com",
                        "volumeHandle": f"h-{ns}",
                        "volumeAttributes": {"imageName": f"img-{ns}"},
                    },
                },
            },
        )
        srv.store.create(
            "persistentvolumeclaims",
            {
                "metadata": {"name": "data", "namespace": ns},
                "spec": {
                    "accessModes": ["ReadWriteOnce"],
                    "resources": {"requests": {"storage": "1Gi"}},
                    "storageClassName": "ceph-rbd",
                    "volumeName": f"pv-{ns}",
                },
            },
            namespace=ns,
        )


def app_for(ns: str) -> ProtectedApp:
    return ProtectedApp.model_validate(
        {
            "name": ns,
            "namespace": ns,
            "home_site": "site-a",
            "secondary_site": "site-b",
            "backup": {"kinds": ["v1/Secret", "v1/ConfigMap", "v1/PersistentVolumeClaim"]},
            "volumes": [{"pvc": "data", "image": f"img-{ns}"}],
            "workload": {"kind": "v1/ConfigMap", "name": "obj-000"},
            "mirroring": {"control": "rbd"},
            "snapshot_interval": "1m",
            "rpo_target": "5m",
        }
    )


def standby_run(
    cluster: KubeCluster, store: CountingStore, site: Site, apps: list[ProtectedApp]
) -> tuple[int, float, int]:
    start = time.perf_counter()
    before = store.bytes
    count = 0
    for app in apps:
        summary = run_backup(app, site, cluster, store, key=KEY, clock=SystemClock(), workers=8)
        assert summary.status == "complete", summary.warnings
        count += summary.objects
    return count, time.perf_counter() - start, store.bytes - before


def naive_run(
    cluster: KubeCluster, store: CountingStore, site: Site, apps: list[ProtectedApp], tag: str
) -> tuple[int, float, int]:
    """LIST for names, then GET each object and PUT each object (no dedup)."""
    start = time.perf_counter()
    before = store.bytes
    count = 0
    for app in apps:
        for call in plan_lists(app):
            for listed in cluster.list(call.kind, call.namespace):
                meta = listed["metadata"]
                if call.kind.kind == "Namespace" and meta["name"] != app.namespace:
                    continue
                if call.purpose == "claimed-pvs" and meta["name"] != f"pv-{app.namespace}":
                    continue
                obj = normalize(cluster.get(call.kind, meta["name"], meta.get("namespace")))
                path = logical_path(obj["apiVersion"], obj["kind"], meta.get("namespace"), meta["name"])
                data = canonical_yaml(obj)
                if obj["kind"] == "Secret":
                    data = crypto.encrypt(data, key=KEY, path=path)
                store.put(f"naive/{tag}/{path}", data)
                count += 1
    return count, time.perf_counter() - start, store.bytes - before


def main() -> None:
    objects = int(sys.argv[1]) if len(sys.argv) > 1 and sys.argv[1].isdigit() else 10_000
    namespaces = int(sys.argv[2]) if len(sys.argv) > 2 and sys.argv[2].isdigit() else 100
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    moto, endpoint = start_moto("standby", access_key="bench", secret_key="bench")
    srv = KubeApiServer(builtin_controllers=False)
    seed(srv, objects, namespaces)
    srv.start()
    try:
        cfg = client.Configuration()
        cfg.host = srv.url
        cluster = KubeCluster(client.ApiClient(cfg), site="site-a", cache_dir=Path(tempfile.mkdtemp()))
        location = S3Location(endpoint=endpoint, bucket="standby", prefix="bench", verify_tls=False)
        site = Site.model_validate(
            {"name": "site-a", "ceph": {"mode": "rook-toolbox"}, "pool": "p", "s3": location.model_dump()}
        )
        store = CountingStore(
            S3ObjectStore(
                location, site="site-a", credentials=S3Credentials("bench", "bench"), max_attempts=2
            )
        )
        apps = [app_for(f"app-{n:03d}") for n in range(namespaces)]
        cluster.list(apps[0].backup.kinds[0], apps[0].namespace)  # discovery, for both
        results: dict[str, Figures] = {}
        srv.stats.reset()
        count, seconds, first_bytes = standby_run(cluster, store, site, apps)
        requests = srv.stats.snapshot()["total"]
        index_first = store.index_bytes
        _, seconds_rerun, rerun_bytes = standby_run(cluster, store, site, apps)
        index_rerun = store.index_bytes - index_first
        results["standby"] = Figures(
            count, requests, seconds, first_bytes, index_first, seconds_rerun, rerun_bytes, index_rerun
        )
        # The naive baseline is linear in objects by construction (a GET and a PUT each, no dedup):
        # it is measured on a sample of the namespaces and scaled, to keep the benchmark short.
        sample = apps[: max(1, namespaces // NAIVE_SCALE)]
        scale = namespaces / len(sample)
        srv.stats.reset()
        count, seconds, first_bytes = naive_run(cluster, store, site, sample, "first")
        requests = srv.stats.snapshot()["total"]
        _, seconds_rerun, rerun_bytes = naive_run(cluster, store, site, sample, "rerun")  # measured too
        results["naive"] = Figures(
            round(count * scale),
            round(requests * scale),
            seconds * scale,
            round(first_bytes * scale),
            0,
            seconds_rerun * scale,
            round(rerun_bytes * scale),
            0,
        )
        print_table(results, objects, namespaces)
        print(f"(naive measured on {len(sample)} of {namespaces} namespaces, both runs, scaled x{scale:g})")
    finally:
        srv.stop()
        moto.stop()


def print_table(r: dict[str, Figures], objects: int, namespaces: int) -> None:
    s, n = r["standby"], r["naive"]
    print(
        f"backup benchmark: {objects} objects in {namespaces} namespaces (1 app each), fake apiserver + moto S3"
    )
    print(f"{'':22}{'standby':>14}{'naive':>14}")
    rows = [
        ("objects", s.objects, n.objects),
        ("API requests (1st)", s.requests, n.requests),
        ("seconds (1st run)", f"{s.seconds:.2f}", f"{n.seconds:.2f}"),
        ("seconds (re-run)", f"{s.seconds_rerun:.2f}", f"{n.seconds_rerun:.2f}"),
        ("bytes up (1st run)", s.bytes_first, n.bytes_first),
        ("  of which indexes", s.index_bytes_first, 0),
        ("bytes up (re-run)", s.bytes_rerun, n.bytes_rerun),
        ("  of which indexes", s.index_bytes_rerun, 0),
    ]
    for name, a, b in rows:
        print(f"{name:22}{a!s:>14}{b!s:>14}")
    kinds = 5  # Namespace, Secret, ConfigMap, PVC, PV lists per app
    blob_rerun = s.bytes_rerun - s.index_bytes_rerun
    print("ratios")
    print(
        f"  requests per object: standby {s.requests / s.objects:.3f}, naive {n.requests / n.objects:.3f};"
        f" standby requests / (kinds x namespaces) = {s.requests / (kinds * namespaces):.2f}"
    )
    print(
        f"  re-run bytes / first bytes: blobs {blob_rerun / s.bytes_first:.2%},"
        f" with indexes {s.bytes_rerun / s.bytes_first:.2%} (target <= 2%)"
    )
    print(
        f"  speed-up vs naive: first run {n.seconds / s.seconds:.1f}x, unchanged re-run"
        f" {n.seconds_rerun / s.seconds_rerun:.1f}x (target >= 5x)"
    )


if __name__ == "__main__":
    main()
