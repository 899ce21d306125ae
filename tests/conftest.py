"""Shared fixtures. ``prefect_harness``: one temporary Prefect server for the whole session.

Tests in ``tests/flows`` use it automatically; lab tests that run flows ask for it by name.

The flow-run heartbeat is turned off inside the harness (it costs about 1 s per run and cannot be
turned off from the environment), analytics are off, and ``PREFECT_HOME`` is a temporary folder.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator

import pytest

os.environ.setdefault("PREFECT_HOME", tempfile.mkdtemp(prefix="standby-prefect-home-"))
os.environ["PREFECT_SERVER_ANALYTICS_ENABLED"] = "false"
os.environ["DO_NOT_TRACK"] = "1"


@pytest.fixture(scope="session")
def prefect_harness() -> Iterator[None]:
    from prefect.settings import PREFECT_FLOWS_HEARTBEAT_FREQUENCY, temporary_settings
    from prefect.testing.utilities import prefect_test_harness

    with (
        prefect_test_harness(server_startup_timeout=90),
        temporary_settings({PREFECT_FLOWS_HEARTBEAT_FREQUENCY: None}),
    ):
        yield


# Every test in tests/lab shares one lab (and so one apiserver audit log, which the RBAC audit test
# reads last); the other tests that need a lab (contract, server, browser, reliability) share a
# second one. Under ``pytest -n N --dist loadgroup`` each group runs in order on one worker with a
# lab of its own, while the tests that need no lab spread over all workers.
LAB_DIR_GROUP = "lab-1"


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        uses_lab = "lab" in getattr(item, "fixturenames", ())
        if not uses_lab and item.get_closest_marker("lab") is None:
            continue  # (contract suites ask for the lab by request.getfixturevalue: marked "lab")
        in_lab_dir = item.path.parent.name == "lab" and item.path.parent.parent.name == "tests"
        item.add_marker(pytest.mark.xdist_group(LAB_DIR_GROUP if uses_lab and in_lab_dir else "lab-2"))


from tests.labfixture import lab  # noqa: E402  (the session lab, shared by tests/lab and tests/contract)

__all__ = ["lab", "prefect_harness"]
