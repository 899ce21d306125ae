"""`make demo`: bring the two-site lab up and show what is there.

Later jobs (backup, RPO, drill) are added to this runbook as they land.
"""

from __future__ import annotations

import json
import sys

from lab import ceph, seeds
from lab import lab as lab_mod


def main() -> int:
    """Bring the lab up, then print both sites' mirror status, Nexus, kubeconfig and S3."""
    root = lab_mod.lab_dir()
    try:
        st = lab_mod.up(root, log=lambda m: print(m, file=sys.stderr))
    except Exception as exc:
        print(f"demo: the lab did not come up: {exc}", file=sys.stderr)
        return 1
    print(lab_mod.describe(st))
    sites = ceph.sites(root, lab_mod.port_base())
    for name, site in sites.items():
        out = ceph.run_json(site.cli("mirror", "pool", "status", seeds.POOL, "--verbose", "--format", "json"))
        print(f"\n== rbd mirror pool status {seeds.POOL} --verbose ({name})")
        print(json.dumps({"summary": out.get("summary"), "images": out.get("images")}, indent=2))
    print("\nTry:")
    print(f"  kubectl --kubeconfig {st.kubeconfig} --context site-a get pv,pvc,volumereplication,nexus -A")
    print(
        f"  kubectl --kubeconfig {st.kubeconfig} --context site-b exec -n rook-ceph deploy/rook-ceph-tools"
        " -- rbd mirror pool status --format json"
    )
    print("  .venv/bin/standby lab status --json")
    print("  make lab-down")
    return 0


if __name__ == "__main__":
    sys.exit(main())
