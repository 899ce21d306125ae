"""Run by ``test_operator_path.py``: serve the DR operation deployments exactly as ``make up`` does.

Only ``relocate``, ``failover`` and ``failback`` (no schedules, so nothing else runs on the lab);
``$STANDBY_CONFIG`` names the lab's configuration and the backup key is the ``standby-backup-key``
Secret block, as in ``make up``. Serves until killed.
"""

from __future__ import annotations

from prefect import serve

from deployments.serve import deployments

OPERATIONS = ("relocate", "failover", "failback")

if __name__ == "__main__":
    chosen = [d for d in deployments() if d.name in OPERATIONS]
    print("serving " + ", ".join(f"{d.flow_name}/{d.name}" for d in chosen), flush=True)
    serve(*chosen, pause_on_shutdown=False)
