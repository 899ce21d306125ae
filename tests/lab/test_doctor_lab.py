"""``standby doctor`` on the lab: every check passes on the lab as seeded (after a backup of each app),
fails on the one right line when site-b loses the Nexus image's mirror-snapshot schedule, and fails
the key lines when the key given is not the one the backups were sealed with.

Everything runs as an operator would: the CLI in a subprocess with the lab's configuration (so the
apiservers see Standby's own ServiceAccount, and site-b's ``rbd`` goes through its toolbox pod).
The schedule is put back however the test ends.
"""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
from typing import Any

import pytest

from drkit.adapters.clock import SystemClock
from drkit.jobs import backup as backups
from drkit.jobs.world import World
from lab import ceph, seeds
from tests.lab.conftest import Lab
from tests.labhelpers import LAB_KEY_TEXT, home_world, key_of

pytestmark = pytest.mark.lab
KEY_TEXT = LAB_KEY_TEXT  # the lab's one key (tests/labhelpers.py)
WRONG_KEY_TEXT = base64.b64encode(bytes(range(180, 212))).decode()


def _doctor(lab: Lab, key_text: str, *args: str) -> tuple[int, dict[str, Any]]:
    env = {**os.environ, "STANDBY_CONFIG": str(lab.root / "standby.yaml"), "STANDBY_BACKUP_KEY": key_text}
    done = subprocess.run(
        [sys.executable, "-m", "standby.cli", "doctor", "--json", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
        check=False,
    )
    assert done.stdout.strip(), done.stderr[-2000:]
    return done.returncode, json.loads(done.stdout)


def _failed(doc: dict[str, Any]) -> list[tuple[str, str]]:
    return [(c["site"], c["check"]) for c in doc["checks"] if not c["ok"]]


def _back_up_every_app(world: World) -> None:
    key = key_of(KEY_TEXT)
    for app in world.config.apps:
        primary = world.placement(app.name).primary
        b = world.bundle(primary)
        stores = backups.app_stores(world, app, primary, spare=False)  # every store required
        summary = backups.run_backup(app, b.site, b.cluster, stores, key=key, clock=SystemClock())
        assert summary.status == "complete" and all(s.complete for s in summary.stores), summary


def _schedule(site: ceph.CephSite, verb: str) -> None:
    ceph.run(
        site.cli(
            "mirror", "snapshot", "schedule", verb, "--pool", seeds.POOL, "--image", seeds.IMAGE_NAME, "1m"
        ),
        30,
        site=site.name,
    )


@pytest.mark.timeout(600)
def test_doctor_passes_on_the_lab_and_names_a_lost_schedule_and_a_wrong_key(lab: Lab) -> None:
    world = home_world(lab.root)
    _back_up_every_app(world)

    code, doc = _doctor(lab, KEY_TEXT)
    assert code == 0 and doc["ok"] and _failed(doc) == [], [c for c in doc["checks"] if not c["ok"]]
    seen = {(c["site"], c["check"]) for c in doc["checks"]}
    for site in ("site-a", "site-b"):
        for check in ("kube-token", "rbac", "mirror-peers", "mirror-daemon", "snapshot-schedule nexus"):
            assert (site, check) in seen

    site_b = lab.sites["site-b"]
    _schedule(site_b, "remove")
    try:
        code, doc = _doctor(lab, KEY_TEXT, "--app", "nexus")
    finally:
        _schedule(site_b, "add")
    assert code == 1 and not doc["ok"]
    assert _failed(doc) == [("site-b", "snapshot-schedule nexus")], doc
    line = next(c for c in doc["checks"] if not c["ok"])
    assert line["seen"] == f"{seeds.POOL}/{seeds.IMAGE_NAME} has no mirror-snapshot schedule"
    assert line["fix"] == (
        f"on site-b in the toolbox pod: rbd mirror snapshot schedule add --pool {seeds.POOL}"
        f" --image {seeds.IMAGE_NAME} 1m"
    )

    code, doc = _doctor(lab, WRONG_KEY_TEXT)
    assert code == 1
    stores = sorted(
        {c["site"] for c in doc["checks"] if c["check"].startswith("backup-key")}
    )  # one per store
    assert stores and _failed(doc) == [(s, f"backup-key {a}") for s in stores for a in ("nexus", "web")], doc
    wrong, right = key_of(WRONG_KEY_TEXT).key_id, key_of(KEY_TEXT).key_id
    line = next(c for c in doc["checks"] if c["check"] == "backup-key nexus")
    assert f"sealed with key id {right}, but the key in $STANDBY_BACKUP_KEY has id {wrong}" in line["seen"]

    code, doc = _doctor(lab, KEY_TEXT)  # the lab as the test found it
    assert code == 0, _failed(doc)
