"""The shipped RBAC is enough and least privilege: read after every other lab test of the session.

Each site's apiserver audits every request. Standby ran all the lab tests with the ServiceAccount
token the lab minted from ``deployments/kubernetes/<site>/``; here the audit logs must show that no
request of Standby's was denied (the manifests are enough), that every verb x resource of every
shipped rule was used at least once (nothing shipped is unused), and that no ClusterRole grants
anything namespaced (Secrets, claims, the workload CR) across namespaces. The module's name sorts last in
``tests/lab``, so pytest runs it after the others; it skips, saying why, when only part of the lab
tests ran (a subset). Under pytest-xdist tests/lab runs in two groups, each on one worker with a lab
of its own (tests/conftest.py); this test is handed out last, waits until each group's worker noted
that it finished (tests/labfixture.py), and reads the audit logs of all those labs together.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from lab import lab as lab_mod
from lab import rbac
from tests.conftest import LAB_DIR_GROUPS, lab_group
from tests.lab.conftest import Lab, deselected
from tests.lab.rbac_audit import coverage, cross_namespace, read_audit
from tests.labfixture import group_notes

pytestmark = pytest.mark.lab
HERE = Path(__file__).resolve().parent
GROUPS_WAIT = 3000.0  # seconds: how long to wait for the other tests/lab groups to finish


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


def _audited_labs(request: pytest.FixtureRequest) -> list[Path]:
    """The folders of the labs every tests/lab test ran on: this session's one lab in a single process;
    under pytest-xdist, the lab of each group, once its worker noted that the group finished."""
    notes = group_notes(request.config)
    if notes is None:
        lab: Lab = request.getfixturevalue("lab")
        return [lab.root]
    groups = sorted({lab_group(item.nodeid) for item in request.session.items} & set(LAB_DIR_GROUPS))
    deadline = time.monotonic() + GROUPS_WAIT
    roots: list[Path] = []
    for group in groups:
        note = notes / f"{group}.json"
        while not note.exists():
            if time.monotonic() > deadline:
                pytest.fail(
                    f"lab group {group} did not finish within {GROUPS_WAIT:.0f} s (its worker crashed?)"
                )
            time.sleep(1.0)
        root = json.loads(note.read_text())["root"]
        if root:
            roots.append(Path(root))
    return roots


@pytest.mark.timeout(GROUPS_WAIT + 300)
def test_every_shipped_rule_was_used_and_nothing_was_denied(request: pytest.FixtureRequest) -> None:
    why = _why_not_whole(request)
    if why:
        pytest.skip(why)
    roots = _audited_labs(request)
    failed = request.session.testsfailed
    lines: list[str] = []
    denied: list[str] = []
    uncovered: list[str] = []
    unused: list[str] = []
    wide: list[str] = []
    for site in lab_mod.SITES:
        wide += [f"{site}: {g}" for g in cross_namespace(rbac.site_manifests(site))]
        entries = [e for root in roots for e in read_audit(rbac.audit_log(root, site))]
        cov = coverage(site, rbac.site_manifests(site), entries)
        assert cov.requests > 0, f"no request of Standby's in {site}'s audit log: is the lab using its token?"
        denied += cov.denied
        uncovered += cov.uncovered
        unused += [f"{site}: {g}" for g in cov.unused]
        lines += [f"{site}: {n:5d} x {g}" for g, n in sorted(cov.used.items(), key=lambda kv: str(kv[0]))]
        print(
            f"{site}: {cov.requests} requests by Standby in {len(roots)} lab(s),"
            f" {len(cov.used) - len(cov.unused)}/{len(cov.used)} grants used"
        )
    print("\n".join(lines))
    note = f" ({failed} earlier test(s) failed, which may explain it)" if failed else ""
    assert not wide, "ClusterRoles grant namespaced resources in every namespace: " + "; ".join(wide)
    assert not denied, f"Standby was denied{note}: " + "; ".join(denied[:20])
    assert not uncovered, "requests no shipped rule allows (edited since?): " + "; ".join(uncovered[:20])
    assert not unused, (
        f"shipped grants never used by the lab tests{note}: drop them or exercise them: " + "; ".join(unused)
    )
