"""Shared fixtures. ``prefect_harness``: one temporary Prefect server for the whole session.

Tests in ``tests/flows`` use it automatically; lab tests that run flows ask for it by name.

The flow-run heartbeat is turned off inside the harness (it costs about 1 s per run and cannot be
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
    from prefect.settings import PREFECT_FLOWS_HEARTBEAT_FREQUENCY, temporary_settings
    from prefect.testing.utilities import prefect_test_harness

    with (
        prefect_test_harness(server_startup_timeout=240),
        temporary_settings({PREFECT_FLOWS_HEARTBEAT_FREQUENCY: None}),
    ):
        yield


# Under ``pytest -n N`` (make test) the tests that use the two-site lab run in two groups, each in
# order on one worker with a lab of its own (tests/labfixture.py gives every worker its own folder
# and ports): every test in tests/lab shares one lab, and so one apiserver audit log, which the RBAC
# audit test reads last; the lab tests elsewhere share the second. Other tests go by module to any
# worker. (pytest-xdist's own ``--dist loadgroup`` cannot tag node ids under pytest 9, so this
# conftest hands xdist a scheduler that groups by path.)
LAB_DIR_GROUP = "lab-1"
SECOND_LAB_MODULES = (
    "tests/contract/test_rbd_mirror.py",
    "tests/contract/test_volume_control.py",
    "tests/server/test_approval_server.py",
    "tests/browser/test_operator_path.py",
    "tests/reliability/test_leak_scan.py",
)


def lab_group(nodeid: str) -> str | None:
    """The lab group a test's node id belongs to, or None when it needs no shared lab."""
    module = nodeid.split("::", 1)[0]
    if module.startswith("tests/lab/") and module != "tests/lab/test_ceph_lab.py":
        return LAB_DIR_GROUP
    if module in SECOND_LAB_MODULES:
        return "lab-2"
    return None


def pytest_xdist_make_scheduler(config: pytest.Config, log: Any) -> Any:
    from xdist.scheduler import LoadScopeScheduling

    class LabGroups(LoadScopeScheduling):
        """Whole modules to any worker; each lab group, in order, to one worker (largest first)."""

        def _split_scope(self, nodeid: str) -> str:
            return lab_group(nodeid) or super()._split_scope(nodeid)

    return LabGroups(config, log)


from tests.labfixture import lab  # noqa: E402  (the session lab, shared by tests/lab and tests/contract)

__all__ = ["lab", "prefect_harness"]
