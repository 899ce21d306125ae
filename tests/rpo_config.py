"""The two-site, one-app configuration the RPO tests share (rbd through the Rook toolbox)."""

from __future__ import annotations

from typing import Any


def rpo_config_doc(
    image: str, *, pool: str = "replicapool", app: str = "nexus", target: str = "5m", prefix: str = "standby"
) -> dict[str, Any]:
    """Sites ``site-a`` (primary) and ``site-b``, and one app with one volume on ``pool/image``."""
    site = {"ceph": {"mode": "rook-toolbox"}, "pool": pool, "s3": {"bucket": "standby", "prefix": prefix}}
    return {
        "sites": [{"name": "site-a", **site}, {"name": "site-b", **site}],
        "apps": [
            {
                "name": app,
                "namespace": "nexus-dr",
                "home_site": "site-a",
                "secondary_site": "site-b",
                "volumes": [{"pvc": "data", "image": image}],
                "workload": {"kind": "apps/v1/StatefulSet", "name": "nexus"},
                "mirroring": {"control": "rbd"},
                "snapshot_interval": "1m",
                "rpo_target": target,
            }
        ],
    }
