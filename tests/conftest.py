"""Shared fixtures. ``prefect_harness``: one temporary Prefect server for the whole session.

Tests in ``tests/flows`` use it automatically; lab tests that run flows ask for it by name.

Its server starts from a copy of a migrated database (:mod:`tests.prefect_db`). The flow-run
heartbeat is turned off inside the harness (it costs about 1 s per run and cannot be
turned off from the environment), analytics are off, and ``PREFECT_HOME`` is a temporary folder.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from typing import Any

import pytest

os.environ.setdefault("PREFECT_HOME", tempfile.mkdtemp(prefix="standby-prefect-home-"))
os.environ["PREFECT_SERVER_ANALYTICS_ENABLED"] = "false"
os.environ["DO_NOT_TRACK"] = "1"


@pytest.fixture(scope="session")
def prefect_harness() -> Iterator[None]:
    from unittest import mock

    import prefect.testing.utilities as harness
    from prefect.settings import PREFECT_FLOWS_HEARTBEAT_FREQUENCY, temporary_settings

    from tests.prefect_db import mkdtemp_with_database

    # the harness makes its database folder with mkdtemp: it gets a copy of the migrated template
    # (tests/prefect_db.py), so its server does not run every migration again
    with (
        mock.patch.object(harness, "mkdtemp", mkdtemp_with_database),
        harness.prefect_test_harness(server_startup_timeout=240),
        temporary_settings({PREFECT_FLOWS_HEARTBEAT_FREQUENCY: None}),
    ):
        yield


# Under ``pytest -n N`` (make test) the tests that use a two-site lab run in three groups, each in
# order on one worker with a lab of its own (tests/labfixture.py gives every worker its own folder
# and ports): tests/lab is split in two groups (lab-1, lab-3), the lab tests elsewhere make the
# third (lab-2). The RBAC audit (tests/lab/test_zz_rbac_audit.py) is a unit of its own, handed out
# last: it waits until every tests/lab group has finished and reads the apiserver audit logs of all
# their labs. Other tests go by module to any worker, the longest first.
# (pytest-xdist's own ``--dist loadgroup`` cannot tag node ids under pytest 9, so this conftest hands
# xdist a scheduler that groups by path.)
# A fourth lab (tests/lab in three groups, six workers) was tried once on this 2-core machine, with
# another lab and other tests running beside the suite: lab-2's failover plans called a healthy
# site-b unreachable (its rbd answered after the lab's 10 s probe_timeout) and the run took longer,
# not shorter; three labs leave the headroom those plans need.
LAB_DIR_GROUPS = ("lab-1", "lab-3")
"""The groups of tests/lab, each with its own lab; the RBAC audit reads the audit logs of all."""
AUDIT_GROUP = "rbac-audit"
AUDIT_MODULE = "tests/lab/test_zz_rbac_audit.py"
# The lab tests are mostly waits (on Ceph, rbd-mirror and the apps), not CPU. Measured under make
# test with test_site_outage in lab-3: lab-3 (operations 313 s, RPO 244 s, doctor 144 s with its
# lab's start, site outage 130 s, probe 31 s) ended at 862 s and lab-1 at 580 s, while the workers
# of the other tests were done by 660 s; the site outage tests now run in lab-1.
THIRD_LAB_MODULES = (
    # tests/lab modules of group lab-3 (the others are lab-1); none of them needs the Prefect
    # harness (lab-1's backup, drill, config-blocks and second-app do)
    "tests/lab/test_operations_lab.py",
    "tests/lab/test_rpo_lab.py",
    "tests/lab/test_probe_lab.py",
    "tests/lab/test_doctor_lab.py",
)
SECOND_LAB_MODULES = (
    "tests/contract/test_rbd_mirror.py",
    "tests/contract/test_volume_control.py",
    "tests/server/test_approval_server.py",
    "tests/browser/test_operator_path.py",
    "tests/reliability/test_leak_scan.py",
)
SLOW_MODULES = (
    # The modules measured longest (tens of seconds or more under make test), handed out first
    # after the lab groups, longest first, so that none of them starts last.
    "tests/reliability/test_load.py",
    "tests/flows/test_config_blocks.py",
    "tests/server/test_automation_server.py",
    "tests/unit/test_backup_cli.py",
    "tests/flows/test_backup_flows.py",
    "tests/server/test_server_auth.py",
    "tests/lab/test_ceph_lab.py",
)


def lab_group(nodeid: str) -> str | None:
    """The lab group a test's node id belongs to, or None when it needs no shared lab."""
    module = nodeid.split("::", 1)[0]
    if module == AUDIT_MODULE:
        return AUDIT_GROUP
    if module.startswith("tests/lab/") and module != "tests/lab/test_ceph_lab.py":
        return LAB_DIR_GROUPS[1] if module in THIRD_LAB_MODULES else LAB_DIR_GROUPS[0]
    if module in SECOND_LAB_MODULES:
        return "lab-2"
    return None


def _unit_rank(scope: str) -> tuple[int, int]:
    """Order of the work units: the lab groups, the slow modules, the rest, the RBAC audit last."""
    if scope in LAB_DIR_GROUPS or scope == "lab-2":
        return (0, 0)
    if scope == AUDIT_GROUP:
        return (3, 0)
    module = scope.split("::", 1)[0]
    if module in SLOW_MODULES:
        return (1, SLOW_MODULES.index(module))
    return (2, 0)


def pytest_xdist_make_scheduler(config: pytest.Config, log: Any) -> Any:
    from collections import OrderedDict

    from xdist.scheduler import LoadScopeScheduling

    class LabGroups(LoadScopeScheduling):
        """Whole modules to any worker; each lab group, in order, to one worker; longest first."""

        _ranked = False

        def _split_scope(self, nodeid: str) -> str:
            return lab_group(nodeid) or super()._split_scope(nodeid)

        def _assign_work_unit(self, node: Any) -> None:
            if not self._ranked:  # once: the queue is complete by the first assignment
                ranked = sorted(self.workqueue.items(), key=lambda kv: _unit_rank(kv[0]))  # stable
                self.workqueue = OrderedDict(ranked)
                self._ranked = True
            super()._assign_work_unit(node)

    return LabGroups(config, log)


from tests.labfixture import lab, note_group_done  # noqa: E402  (the session lab, shared by tests/lab and tests/contract)

_LAST_OF_GROUP = pytest.StashKey[dict[str, str]]()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_protocol(item: pytest.Item, nextitem: pytest.Item | None) -> Any:
    """After the last test of a tests/lab group, note it (for the RBAC audit, which reads every lab's log)."""
    result = yield
    group = lab_group(item.nodeid)
    if group in LAB_DIR_GROUPS:
        last = item.config.stash.get(_LAST_OF_GROUP, None)
        if last is None:
            last = {lab_group(i.nodeid) or "": i.nodeid for i in item.session.items}
            item.config.stash[_LAST_OF_GROUP] = last
        if last.get(group) == item.nodeid:
            note_group_done(item.config, group)
    return result


__all__ = ["lab", "prefect_harness"]
