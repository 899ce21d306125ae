"""Run by ``test_automation_server.py`` in a fresh process pointed at a real Prefect server.

It runs the real ``rpo-sample`` flow twice on fake rbd and S3 (the only seam: ``tasks.rpo``'s
builders): first under the target, then over it, so the flow emits ``standby.rpo.breach``
through Prefect's events client like in production. Prints the flow results as JSON.
"""

from __future__ import annotations

import json
import sys
import tempfile
from datetime import UTC, datetime, timedelta
from pathlib import Path

import yaml

from drkit.jobs import sites
from drkit.testing.kube import FakeCluster
from drkit.testing.objectstore import FakeObjectStore
from drkit.testing.rbd import FakeRbdMirror
from flows.rpo_sample import rpo_sample
from tests.rpo_config import rpo_config_doc

POOL, IMAGE = "replicapool", "csi-vol-e2e"


def main() -> int:
    """Sample at a 30 s lag, then at a 600 s lag (target 5 min): one breach event."""
    doc = rpo_config_doc(IMAGE, pool=POOL, app="nexus-e2e", prefix="e2e")
    config = Path(tempfile.mkdtemp()) / "standby.yaml"
    config.write_text(yaml.safe_dump(doc))
    store, a, b = FakeObjectStore(), FakeRbdMirror(site="site-a"), FakeRbdMirror(site="site-b")
    sites.rbd_for = lambda s, *_: {"site-a": a, "site-b": b}[s.name]  # type: ignore[assignment]
    sites.store_for = lambda s, **_: store  # type: ignore[assignment]
    sites.cluster_for = lambda s: FakeCluster(site=s.name)  # type: ignore[assignment]
    results = []
    for lag in (30, 600):
        point = datetime.now(UTC) - timedelta(seconds=lag)
        a.add_image(POOL, IMAGE, primary=True, peer_site="site-b", local_snapshot_time=point)
        b.add_image(POOL, IMAGE, peer_site="site-a", local_snapshot_time=point)
        a.snaps[(POOL, IMAGE)], b.snaps[(POOL, IMAGE)] = [], []
        snap = a.add_snapshot(POOL, IMAGE, created_at=point)
        b.add_snapshot(POOL, IMAGE, created_at=point + timedelta(seconds=1), primary_snap_id=snap)
        results.append(rpo_sample(config=str(config)))
    print(json.dumps(results, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
