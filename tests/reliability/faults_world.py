"""What the fault and load tests share: the lab's app as configuration objects, served over HTTP by a
fake apiserver and a moto store, and the steps of a relocate that call a given dependency."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Iterator
from pathlib import Path

import yaml

from drkit.config import parse_config
from drkit.domain.models import ProtectedApp, Site
from drkit.domain.operations import Journal, StepRecord
from drkit.jobs.operations import execute
from drkit.testing.dr import FakeDr
from lab.kubeapi import KubeApiServer
from lab.s3 import start_moto
from tests.apiservers import primary_site
from tests.unit import test_operations as ops

ROOT = Path(__file__).resolve().parents[2]
S3_KEY = "k"
"""The access key id and secret of :func:`app_and_site`'s S3 (moto takes any)."""


def app_and_site(s3_url: str, prefix: str) -> tuple[ProtectedApp, Site]:
    """``nexus`` and ``site-a`` of ``standby.example.yaml``, storing under ``prefix`` at ``s3_url``."""
    data = yaml.safe_load((ROOT / "standby.example.yaml").read_text())
    for site in data["sites"]:
        site["ceph"] = {"mode": "local", "conf": "/nonexistent/ceph.conf"}
        site["s3"] = {
            "endpoint": s3_url,
            "bucket": "standby",
            "prefix": prefix,
            "region": "us-east-1",
            "access_key_id_env": "REL_FAULT_KEY",
            "secret_access_key_env": "REL_FAULT_SECRET",
        }
    os.environ.setdefault("REL_FAULT_KEY", S3_KEY)
    os.environ.setdefault("REL_FAULT_SECRET", S3_KEY)
    cfg = parse_config(yaml.safe_dump(data), source=Path("reliability.yaml"), base=ROOT)
    return cfg.app("nexus"), cfg.site("site-a")


@contextlib.contextmanager
def app_over_http(
    tmp: Path, password: str, *, tick_interval: float = 0.2
) -> Iterator[tuple[KubeApiServer, str]]:
    """Site A's fake apiserver seeded with the app, and a moto S3 with the bucket ``standby``.

    Yields the apiserver and the S3 URL (for :func:`app_and_site`); both stopped on exit.
    """
    moto, s3_url = start_moto("standby", access_key=S3_KEY, secret_key=S3_KEY)
    try:
        with primary_site(tmp, password, tick_interval=tick_interval) as api:
            yield api, s3_url
    finally:
        moto.stop()


def relocate_steps(dr: FakeDr, calls: Callable[[], int]) -> tuple[list[str], list[str]]:
    """Every step of a relocate to site-b on ``dr`` in order, and those during which ``calls()`` grew.

    Observed on a clean run: ``calls`` counts the calls to the dependency the test will break.
    """
    order: list[str] = []
    calling: list[str] = []
    mark = [0]
    running = [""]  # only steps that ran (a step satisfied at once has no "running" record)

    def watch(_j: Journal, record: StepRecord) -> None:
        if record.outcome == "running":
            running[0] = record.name
            mark[0] = calls()
        elif record.name == running[0] and calls() > mark[0]:
            calling.append(record.name)

    journal = ops._start(dr, "relocate", "site-b")
    order += [s.name for s in journal.steps]
    execute(dr.world, journal, key=ops.KEY, timeouts=ops.FAST, on_step=watch)
    return order, list(dict.fromkeys(calling))
