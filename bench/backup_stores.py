"""Benchmark: one backup into one store, into two stores (a bucket per site), and a catch-up.

Seeds an in-process fake kube-apiserver with ``OBJECTS`` objects across ``NAMESPACES`` namespaces
(as :mod:`bench.backup` does) and, against one moto server in the same process:

* backs every app up into one bucket (the single-bucket layout), then into two buckets (site A's
  and site B's: each blob sealed once, the same bytes written to both);
* backs up again with site B's bucket unreachable (the run completes in A's only), then catches B
  up (``catch_up``: the missed runs copied from A, checksums checked, index last).

It prints seconds, PUTs and bytes per case and the ratios (two stores against one; the catch-up
against a full run into one store).

    .venv/bin/python -m bench.backup_stores [OBJECTS] [NAMESPACES]
"""

from __future__ import annotations

import logging
import socket
import sys
import tempfile
import time
from pathlib import Path

import boto3
from kubernetes import client

from bench.backup import KEY, CountingStore, app_for, seed
from drkit.adapters.clock import SystemClock
from drkit.adapters.kube import KubeCluster
from drkit.adapters.objectstore import S3Credentials, S3ObjectStore
from drkit.domain.layout import StoreLayout
from drkit.domain.models import S3Location, Site
from drkit.jobs.backup import run_backup
from drkit.jobs.backup_sync import catch_up
from drkit.jobs.world import StoreRef
from lab.kubeapi import KubeApiServer
from lab.s3 import start_moto


def _ref(endpoint: str, site: str, bucket: str, *, create: bool = True) -> tuple[StoreRef, CountingStore]:
    if create:
        boto3.client(
            "s3",
            endpoint_url=endpoint,
            region_name="us-east-1",
            aws_access_key_id="bench",
            aws_secret_access_key="bench",
        ).create_bucket(Bucket=bucket)
    location = S3Location(endpoint=endpoint, bucket=bucket, prefix="bench")
    store = CountingStore(
        S3ObjectStore(
            location,
            site=site,
            credentials=S3Credentials("bench", "bench"),
            max_attempts=1,
            connect_timeout=1,
        )
    )
    return StoreRef(site, (site,), store, StoreLayout("bench")), store  # type: ignore[arg-type]


def _dead_endpoint() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{sock.getsockname()[1]}"


def main() -> None:
    objects = int(sys.argv[1]) if len(sys.argv) > 1 and sys.argv[1].isdigit() else 2_000
    namespaces = int(sys.argv[2]) if len(sys.argv) > 2 and sys.argv[2].isdigit() else 20
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    moto, endpoint = start_moto("unused", access_key="bench", secret_key="bench")
    srv = KubeApiServer(builtin_controllers=False)
    seed(srv, objects, namespaces)
    srv.start()
    try:
        cfg = client.Configuration()
        cfg.host = srv.url
        cluster = KubeCluster(client.ApiClient(cfg), site="site-a", cache_dir=Path(tempfile.mkdtemp()))
        site = Site.model_validate(
            {
                "name": "site-a",
                "ceph": {"mode": "rook-toolbox"},
                "pool": "p",
                "s3": {"endpoint": endpoint, "bucket": "one", "prefix": "bench"},
            }
        )
        apps = [app_for(f"app-{n:03d}") for n in range(namespaces)]
        one, one_store = _ref(endpoint, "site-a", "one")
        a, a_store = _ref(endpoint, "site-a", "site-a")
        b, b_store = _ref(endpoint, "site-b", "site-b")
        dead, _ = _ref(_dead_endpoint(), "site-b", "site-b", create=False)

        def timed(refs: list[StoreRef]) -> float:
            started = time.perf_counter()
            for app in apps:
                summary = run_backup(app, site, cluster, refs, key=KEY, clock=SystemClock(), workers=8)
                assert summary.status == "complete" and summary.complete_on, summary.stores
            return time.perf_counter() - started

        single = timed([one])
        double = timed([a, b])
        pair = (a_store.puts, a_store.bytes, b_store.puts, b_store.bytes)
        blobs_equal = a_store.bytes - a_store.index_bytes == b_store.bytes - b_store.index_bytes
        srv.store.create(
            "configmaps", {"metadata": {"name": "changed", "namespace": "app-000"}}, namespace="app-000"
        )
        degraded = timed([a, dead])
        started = time.perf_counter()
        copied = 0
        for app in apps:
            result = catch_up([a, b], "site-a", app.name, key=KEY)
            assert result.ok, result.problems
            copied += len(result.copied)
        caught = time.perf_counter() - started
    finally:
        srv.stop()
        moto.stop()
    print(f"backup of {objects} objects in {namespaces} apps (moto S3, in process)")
    print(f"  one store:             {single:6.2f} s  {one_store.puts:6d} PUTs  {one_store.bytes:10d} bytes")
    print(
        f"  two stores:            {double:6.2f} s  {pair[0]:6d} + {pair[2]:d} PUTs  {pair[1]} + {pair[3]} bytes"
        f" (blob bytes equal, sealed once: {blobs_equal})"
    )
    print(f"  site-b down, next run: {degraded:6.2f} s  (complete in site-a's store only)")
    print(
        f"  catch-up of site-b:    {caught:6.2f} s  {copied} run(s) copied, {b_store.puts - pair[2]} PUTs,"
        f" {b_store.bytes - pair[3]} bytes"
    )
    print(
        f"ratio two stores / one store: {double / single:.2f} (time), {(pair[0] + pair[2]) / one_store.puts:.2f} (PUTs)"
    )
    print(f"ratio catch-up / one full run: {caught / single:.2f} (time)")


if __name__ == "__main__":
    main()
