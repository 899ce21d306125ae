"""Lab test fixtures. The session fixture ``lab`` itself lives in ``tests/labfixture.py``.

It is registered by the root ``tests/conftest.py`` so ``tests/contract`` shares the same lab.
One two-site lab per test session, for every test marked ``lab``.

The lab lives in its own folder (``$STANDBY_TEST_LAB_DIR``, default ``/tmp/standby-test-lab``) with
its own ports (``$STANDBY_TEST_LAB_PORT_BASE``, default 17800), so it never touches a lab started
with ``make lab-up``. A session first stops whatever a killed earlier session left in that folder,
then starts afresh. Set ``STANDBY_KEEP_LAB=1`` to leave it running after the session.
"""

from __future__ import annotations

import pytest

from lab import ceph, seeds
from tests.labfixture import Lab

__all__ = ["Lab"]  # the session fixture ``lab`` itself is defined in tests/labfixture.py (root conftest)


# Fixtures of tests/lab/test_nexus_sim_rbd.py: images on site A's Ceph.
@pytest.fixture(scope="session")
def ceph_conf(lab: Lab) -> str:
    return str(lab.sites["site-a"].conf)


@pytest.fixture(scope="session")
def cluster(lab: Lab) -> str:
    return lab.sites["site-a"].cluster


@pytest.fixture(scope="session")
def pool() -> str:
    return seeds.POOL


def _image(lab: Lab, name: str) -> str:
    site = lab.sites["site-a"]
    ceph.run(
        site.cli(
            "create", "--size", "32M", "--image-feature", "layering,exclusive-lock", f"{seeds.POOL}/{name}"
        )
    )
    ceph.run(site.cli("mirror", "image", "enable", f"{seeds.POOL}/{name}", "snapshot"))
    return name


@pytest.fixture(scope="session")
def image_primary(lab: Lab) -> str:
    return _image(lab, "sim-primary")


@pytest.fixture(scope="session")
def image_secondary(lab: Lab) -> str:
    name = _image(lab, "sim-secondary")
    ceph.run(lab.sites["site-a"].cli("mirror", "image", "demote", f"{seeds.POOL}/{name}"))
    return name


# The audit-coverage check (test_zz_rbac_audit.py) is meaningful only after every lab test ran in
# this process: deselected tests are remembered here so that it can tell.
_DESELECTED = pytest.StashKey[list[str]]()


def pytest_deselected(items: list[pytest.Item]) -> None:
    if items:
        config = items[0].config
        config.stash.setdefault(_DESELECTED, []).extend(i.nodeid for i in items)


def deselected(config: pytest.Config) -> list[str]:
    """Node ids of the tests deselected in this session (``-k``, ``-m``, ``--deselect``...)."""
    return config.stash.get(_DESELECTED, [])
