"""A plan with site A frozen (``lab site down``: SIGSTOP of its apiserver, Ceph and Nexus) on the
lab's real Ceph: site A is shown unreachable with "no answer within Ns" (its ``probe_timeout``), the
failover plan is made from site B, and ``standby status`` says the same. Nothing is executed, so
the lab is left as found (site A back, Nexus on A)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from drkit.config import load_config
from drkit.jobs.operations import prepare
from drkit.jobs.world import build_world
from lab import lab as lab_mod
from tests.lab.conftest import Lab

pytestmark = pytest.mark.lab


@pytest.mark.timeout(600)
def test_a_plan_and_the_status_with_site_a_frozen_show_it_unreachable_with_the_reason(lab: Lab) -> None:
    config = load_config(lab.root / "standby.yaml")
    world = build_world(config, timeout=20.0)
    seconds = config.site("site-a").probe_timeout.total_seconds()
    reason = f"of site-a: no answer within {seconds:g}s"
    assert prepare(world, "nexus", "failover", "site-b").facts.view.sites["site-a"].reachable
    lab_mod.site_down(lab.root, "site-a", log=lambda m: None)
    try:
        prepared = prepare(world, "nexus", "failover", "site-b")
        site_a = prepared.facts.view.sites["site-a"]
        assert not site_a.reachable and reason in site_a.error, site_a.error
        assert prepared.facts.view.sites["site-b"].reachable
        plan = prepared.plan
        # no key is given here: the key guard may refuse too (the test is about reachability)
        assert {c.name for c in plan.refusals} <= {
            "backup readable from the target",
            "backup key opens the backup",
        }, plan.refusals
        assert plan.needs_unfenced_ack and any(reason in line for line in plan.unfenced), plan.unfenced
        env = {**os.environ, "STANDBY_CONFIG": str(lab.root / "standby.yaml")}
        out = subprocess.run(
            [sys.executable, "-m", "standby.cli", "status", "--json"],
            capture_output=True,
            text=True,
            env=env,
            timeout=120,
            check=False,
        )
        assert out.returncode == 0, out.stderr
        warnings = json.loads(out.stdout)["apps"]["nexus"]["warnings"]
        assert any(w.startswith("site-a unreachable:") and reason in w for w in warnings), warnings
    finally:
        lab_mod.site_up(lab.root, "site-a", log=lambda m: None)
    assert prepare(world, "nexus", "failover", "site-b").facts.view.sites["site-a"].reachable
