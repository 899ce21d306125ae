"""The lab's app on a fake apiserver and a moto store, as configuration objects (shared by fault and load tests)."""

from __future__ import annotations

from pathlib import Path

import yaml

from drkit.config import parse_config
from drkit.domain.models import ProtectedApp, Site

ROOT = Path(__file__).resolve().parents[2]


def app_and_site(s3_url: str, prefix: str) -> tuple[ProtectedApp, Site]:
    """``nexus`` and ``site-a`` of ``standby.example.yaml``, storing under ``prefix`` at ``s3_url``."""
    data = yaml.safe_load((ROOT / "standby.example.yaml").read_text())
    for site in data["sites"]:
        site["ceph"] = {"mode": "local", "conf": "/nonexistent/ceph.conf"}
        site["s3"] = {"endpoint": s3_url, "bucket": "standby", "prefix": prefix, "region": "us-east-1",
                      "access_key_id_env": "REL_FAULT_KEY", "secret_access_key_env": "REL_FAULT_SECRET"}  # fmt: skip
    import os

    os.environ.setdefault("REL_FAULT_KEY", "k")
    os.environ.setdefault("REL_FAULT_SECRET", "k")
    cfg = parse_config(yaml.safe_dump(data), source=Path("reliability.yaml"), base=ROOT)
    return cfg.app("nexus"), cfg.site("site-a")
