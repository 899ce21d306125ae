"""`make demo`: the two-site lab, a real Prefect server, and the main jobs run against them.

1. Bring the lab up (real Ceph on both sites, fake apiservers, Nexus on site A, S3).
2. Start a local Prefect server (UI at http://127.0.0.1:4200; its API needs the auth string kept
   in ``.prefect/run/api-auth``, also to sign in to the UI) and register Standby's blocks.
3. Make sure a backup encryption key exists, as the Prefect Secret block ``standby-backup-key``.
4. Run the nightly ``backup`` of Nexus from site A, then ``verify-backup`` on it, then the
   monthly ``drill`` (Nexus proven on site B with a canary, then cleaned up) and print its report.
5. Run ``rpo-sample`` on both sites, ``rpo-watch`` for 40 s (a mirror snapshot is taken on site A
   10 s in, so the watcher times its completion on site B), then ``rpo-report`` over the last hour.
6. Print where to look: the UI's flow runs and artifacts, the lab, and how to stop it all.

Everything started stays up for exploring; ``make down`` stops it.
"""

from __future__ import annotations

import base64
import json
import os
import secrets
import sys
import threading
from pathlib import Path
from typing import Any

from deployments import server
from lab import lab as lab_mod

KEY_BLOCK = "standby-backup-key"
_START_OVER = (
    "the lab keeps its state in {root} between runs (make up, an operation, a test); "
    "to start again from the seeded lab: make clean && make demo"
)


def say(text: str) -> None:
    """A step header on stdout."""
    print(f"\n== {text}", flush=True)


def ensure_key_block() -> None:
    """Create the backup key Secret block once; never print it."""
    from prefect.blocks.system import Secret

    try:
        Secret.load(KEY_BLOCK)
        print(f"backup key: Secret block {KEY_BLOCK!r} exists")
    except ValueError:
        Secret(value=base64.b64encode(secrets.token_bytes(32)).decode()).save(KEY_BLOCK)
        print(
            f"backup key: created Secret block {KEY_BLOCK!r} (keep a copy outside Prefect: without it, "
            "encrypted Secrets cannot be restored)"
        )


def snapshot_later(config: Path, seconds: float) -> threading.Timer:
    """Take a mirror snapshot of Nexus's image on site A in ``seconds`` (what the schedule does)."""
    from drkit.config import load_config
    from lab import ceph

    cfg = load_config(config)
    app = cfg.apps[0]
    pool, image = cfg.site(app.home_site).pool, app.volumes[0].image
    site_a = ceph.sites(lab_mod.lab_dir(), lab_mod.port_base())[app.home_site]
    timer = threading.Timer(
        seconds, ceph.run, args=(site_a.cli("mirror", "image", "snapshot", f"{pool}/{image}"),)
    )
    timer.start()
    return timer


def run_jobs(config: Path) -> dict[str, Any]:
    """Run the main jobs as flows against the server; return their results."""
    from flows.backup import backup
    from flows.drill import drill
    from flows.rpo_report import rpo_report
    from flows.rpo_sample import rpo_sample
    from flows.rpo_watch import rpo_watch
    from flows.verify_backup import verify_backup

    results: dict[str, Any] = {}
    say("backup: Nexus manifests of site-a to S3")
    results["backup"] = backup(app="nexus", config=str(config), key_source=f"secret:{KEY_BLOCK}")
    print(json.dumps(results["backup"], indent=2, default=str))
    say("verify-backup: checksums, decryption, offline validation")
    results["verify"] = verify_backup(app="nexus", config=str(config), key_source=f"secret:{KEY_BLOCK}")
    print(json.dumps(results["verify"], indent=2, default=str))
    say("drill: prove Nexus and its data on site-b (isolated: a scratch copy), then clean up")
    results["drill"] = drill(app="nexus", config=str(config), key_source=f"secret:{KEY_BLOCK}")
    print(json.dumps(results["drill"], indent=2, default=str))
    report = results["drill"]["report"]
    print(
        f"drill report: s3://standby/{report.get('html')} (also report.md and report.json);"
        " in the UI: Artifacts, drill-report-nexus and drill-timeline-nexus"
    )
    say("rpo-sample: rbd mirror pool status on both sites")
    results["rpo_sample"] = rpo_sample(config=str(config))
    print(json.dumps(results["rpo_sample"], indent=2, default=str))
    say("rpo-watch: 40 s of 1 s listings on site-b; a mirror snapshot on site-a 10 s in")
    timer = snapshot_later(config, 10)
    results["rpo_watch"] = rpo_watch(config=str(config), minutes=40 / 60)
    timer.join()
    print(json.dumps(results["rpo_watch"], indent=2, default=str))
    say("rpo-report: the last hour")
    results["rpo_report"] = rpo_report(config=str(config), since="1h")
    print(results["rpo_report"])  # the markdown report
    return results


def main() -> int:
    """Run the demo runbook."""
    root = lab_mod.lab_dir()
    say("1. the two-site lab")
    try:
        st = lab_mod.up(root, log=lambda m: print(m, flush=True))
    except Exception as exc:
        print(f"demo: the lab did not come up: {exc}", file=sys.stderr)
        print(_START_OVER.format(root=root), file=sys.stderr)
        return 1
    print(lab_mod.describe(st))

    say("2. Prefect server")
    try:
        api = server.start()
    except Exception as exc:
        print(f"demo: the Prefect server did not start: {exc}", file=sys.stderr)
        return 1
    os.environ.update(server.client_env())  # before Prefect is imported: its settings read them once
    print(
        f"Prefect API {api}; UI {api.removesuffix('/api')} (sign in with the auth string in {server.auth_file()})"
    )
    from blocks.registry import register_all

    print("registered blocks:", ", ".join(register_all()))
    ensure_key_block()

    try:
        run_jobs(st.config)
    except Exception as exc:
        print(f"demo: a job failed: {exc}", file=sys.stderr)
        print(f"see the flow run in {api.removesuffix('/api')}/runs", file=sys.stderr)
        print(_START_OVER.format(root=root), file=sys.stderr)
        return 1

    say("6. where to look")
    ui = api.removesuffix("/api")
    print(
        f"  sign in:    the auth string in {server.auth_file()} (the UI's login form; PREFECT_API_AUTH_STRING for clients)"
    )
    print(f"  flow runs:  {ui}/runs")
    print(
        f"  artifacts:  {ui}/artifacts   (backup summary, index link, drill report and timeline, RPO table and chart)"
    )
    print(f"  lab:        .venv/bin/standby lab status   (kubeconfig {st.kubeconfig})")
    print(
        "  schedules:  make up   (serves every deployment: backups, RPO, the monthly drill, relocate/failover/failback)"
    )
    print("  stop:       make down")
    return 0


if __name__ == "__main__":
    sys.exit(main())
