"""The shipped RBAC is enough and least privilege: read after every other lab test of the session.

Each site's apiserver audits every request. Standby ran all the lab tests with the ServiceAccount
token the lab minted from ``deployments/kubernetes/<site>/``; here the audit logs must show that no
request of Standby's was denied (the manifests are enough), that every verb x resource of every
shipped rule was used at least once (nothing shipped is unused), and that no ClusterRole grants
anything namespaced (Secrets, claims, the workload CR) across namespaces. The module's name sorts last in
``tests/lab``, so pytest runs it after the others; it skips, saying why, when only part of the lab
tests ran (a subset); under pytest-xdist the whole of tests/lab is one group on one worker and lab.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from lab import lab as lab_mod
from lab import rbac
from tests.lab.conftest import Lab, deselected
from tests.lab.rbac_audit import coverage, cross_namespace, read_audit

pytestmark = pytest.mark.lab
HERE = Path(__file__).resolve().parent


def _why_not_whole(request: pytest.FixtureRequest) -> str | None:
    # Under pytest-xdist, tests/conftest.py puts every tests/lab test that uses the lab into one group:
    # they run in collection order on this worker, against this lab, before this module.
    ran = {Path(str(item.path)).name for item in request.session.items}
    modules = {p.name for p in HERE.glob("test_*.py")}
    missing = sorted(modules - ran)
    if missing:
        return f"only part of tests/lab ran (not {', '.join(missing)}); coverage needs the whole directory"
    gone = [n for n in deselected(request.config) if n.startswith("tests/lab/")]
    if gone:
        return f"{len(gone)} lab test(s) were deselected (e.g. {gone[0]}); coverage needs the whole directory"
    return None


def test_every_shipped_rule_was_used_and_nothing_was_denied(lab: Lab, request: pytest.FixtureRequest) -> None:
    why = _why_not_whole(request)
    if why:
        pytest.skip(why)
    failed = request.session.testsfailed
    lines: list[str] = []
    denied: list[str] = []
    uncovered: list[str] = []
    unused: list[str] = []
    wide: list[str] = []
    for site in lab_mod.SITES:
        wide += [f"{site}: {g}" for g in cross_namespace(rbac.site_manifests(site))]
        cov = coverage(site, rbac.site_manifests(site), read_audit(rbac.audit_log(lab.root, site)))
        assert cov.requests > 0, f"no request of Standby's in {site}'s audit log: is the lab using its token?"
        denied += cov.denied
        uncovered += cov.uncovered
        unused += [f"{site}: {g}" for g in cov.unused]
        lines += [f"{site}: {n:5d} x {g}" for g, n in sorted(cov.used.items(), key=lambda kv: str(kv[0]))]
        print(
            f"{site}: {cov.requests} requests by Standby, {len(cov.used) - len(cov.unused)}/{len(cov.used)} grants used"
        )
    print("\n".join(lines))
    note = f" ({failed} earlier test(s) failed, which may explain it)" if failed else ""
    assert not wide, "ClusterRoles grant namespaced resources in every namespace: " + "; ".join(wide)
    assert not denied, f"Standby was denied{note}: " + "; ".join(denied[:20])
    assert not uncovered, "requests no shipped rule allows (edited since?): " + "; ".join(uncovered[:20])
    assert not unused, (
        f"shipped grants never used by the lab tests{note}: drop them or exercise them: " + "; ".join(unused)
    )
