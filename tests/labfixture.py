"""The session fixture ``lab``: one two-site lab per test session, for every test marked ``lab``.

It is registered by the root ``tests/conftest.py`` so that lab tests in any folder (``tests/lab``,
``tests/contract``) share ONE lab; ``tests/lab/conftest.py`` re-exports :class:`Lab`. The lab lives
in ``$STANDBY_TEST_LAB_DIR`` (default ``/tmp/standby-test-lab``) with its own ports
(``$STANDBY_TEST_LAB_PORT_BASE``, default 17800), so it never touches a lab started with
``make lab-up``. Under pytest-xdist each worker gets ``<dir>-gwN`` and ports ``base + stride * N``
(``$STANDBY_TEST_LAB_PORT_STRIDE``, default 1000);
``tests/conftest.py`` groups the lab tests so that each group runs on one worker. Set ``STANDBY_KEEP_LAB=1`` to leave it running after the session.
``STANDBY_LAB_S3=per-site`` gives the session's lab one S3 store per site (default: see
:data:`lab.lab.DEFAULT_S3_LAYOUT`). A test that moves the app must leave the lab at home (a
failback, or :func:`lab.lab.reset`), as the next test expects it there.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

# Under pytest-xdist each worker that runs lab tests gets its own lab: its own folder and ports
# (``STANDBY_TEST_LAB_PORT_STRIDE`` apart, 1000 by default, 200 at least: a lab uses its first 116
# ports, and tests/lab/test_ceph_lab.py's own Ceph 12 ports from CEPH_LAB_OFFSET on).
_WORKER = os.environ.get("PYTEST_XDIST_WORKER", "")
_WORKER_INDEX = int(_WORKER[2:]) if _WORKER.startswith("gw") and _WORKER[2:].isdigit() else 0
PORT_STRIDE = int(os.environ.get("STANDBY_TEST_LAB_PORT_STRIDE", "1000"))
CEPH_LAB_OFFSET = 3 * PORT_STRIDE // 4
"""Where tests/lab/test_ceph_lab.py's own Ceph starts, above the worker's port base."""
os.environ["STANDBY_LAB_PORT_BASE"] = str(
    int(os.environ.get("STANDBY_TEST_LAB_PORT_BASE", "17800")) + PORT_STRIDE * _WORKER_INDEX
)

from lab import ceph  # noqa: E402  (after the port base is set)
from lab import lab as lab_mod  # noqa: E402


@dataclass(frozen=True)
class Lab:
    """A running lab: its folder, status and the Ceph sites."""

    root: Path
    status: lab_mod.LabStatus
    sites: dict[str, ceph.CephSite]

    @property
    def kubeconfig(self) -> Path:
        return self.root / "kubeconfig"

    def admin_cluster(self, site: str) -> Any:
        """Standby's ``KubeCluster`` for ``site`` as the lab's admin: for a test's own checks and
        clean-up, so that only what Standby itself does runs under (and is audited as) its ServiceAccount."""
        from drkit.adapters.kube import KubeCluster
        from drkit.domain.models import KubeAccess

        return KubeCluster.from_access(KubeAccess(kubeconfig=self.kubeconfig, context=site), site=site)

    def admin_config(self) -> Any:
        """The lab's Standby configuration with every site reached as the lab's admin.

        For the adapter contract suites: they drive scratch namespaces and the toolbox on both sites,
        which the shipped least-privilege RBAC rightly does not grant to Standby's ServiceAccount.
        """
        from drkit.config import load_config
        from drkit.domain.models import KubeAccess

        config = load_config(self.root / "standby.yaml")
        sites = tuple(
            s.model_copy(update={"kube": KubeAccess(kubeconfig=self.kubeconfig, context=s.name)})
            for s in config.sites
        )
        return config.model_copy(update={"sites": sites})

    def kubectl(self, site: str, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
        argv = ["kubectl", "--kubeconfig", str(self.kubeconfig), "--context", site, *args]
        return subprocess.run(argv, capture_output=True, text=True, timeout=timeout, check=False)


def _base_dir() -> Path:
    return Path(os.environ.get("STANDBY_TEST_LAB_DIR", "/tmp/standby-test-lab"))


SESSION_LAB: list[Path] = []
"""The folder of this process's session lab, once the fixture started it."""


@pytest.fixture(scope="session")
def lab() -> Iterator[Lab]:
    root = _base_dir()
    if _WORKER:
        root = root.with_name(f"{root.name}-{_WORKER}")
    SESSION_LAB[:] = [root]
    lab_mod.down(root, log=lambda m: None)  # what a killed session may have left running
    shutil.rmtree(root, ignore_errors=True)
    try:
        status = lab_mod.up(root, log=lambda m: print(m))
    except Exception:
        lab_mod.down(root, log=lambda m: None)
        raise
    yield Lab(root=root, status=status, sites=ceph.sites(root, lab_mod.port_base()))
    if os.environ.get("STANDBY_KEEP_LAB") == "1":
        print(f"lab kept running in {root}")
        return
    lab_mod.down(root, log=lambda m: None)


def group_notes(config: pytest.Config) -> Path | None:
    """Under pytest-xdist, the folder where the workers of this run note each lab group they finished
    (``<group>.json``: the folder of the lab it ran on); None in a single process."""
    uid = getattr(config, "workerinput", {}).get("testrunuid")
    if not uid:
        return None
    base = _base_dir()
    return base.with_name(f"{base.name}-groups") / str(uid)


def note_group_done(config: pytest.Config, group: str) -> None:
    """Note that this worker ran the last test of ``group`` (on this process's lab, if it started one)."""
    notes = group_notes(config)
    if notes is None:
        return
    notes.mkdir(parents=True, exist_ok=True)
    root = str(SESSION_LAB[0]) if SESSION_LAB else None
    tmp = notes / f".{group}.json"
    tmp.write_text(json.dumps({"group": group, "root": root, "worker": _WORKER}))
    tmp.replace(notes / f"{group}.json")


def delete_mirrored_image(lab: Lab, image: str, pool: str = "replicapool", timeout: float = 20.0) -> None:
    """Delete a scratch mirrored image on both sites (never use it on the Nexus image).

    ``rbd rm`` on the primary propagates to the peer within seconds. When that does not happen
    (split-brain leftovers, a peer still syncing), each site's copy is force-disabled and removed.
    """
    a, b = lab.sites["site-a"], lab.sites["site-b"]
    ceph.run(a.cli("rm", f"{pool}/{image}"), 120, check=False)
    try:
        ceph.wait_for(
            lambda: ceph.run(b.cli("info", f"{pool}/{image}"), check=False).returncode != 0,
            timeout,
            0.5,
            f"{image} removed from site-b",
        )
    except ceph.CephLabError:
        pass
    for site in (a, b):
        if ceph.run(site.cli("info", f"{pool}/{image}"), check=False).returncode == 0:
            ceph.run(site.cli("mirror", "image", "disable", "--force", f"{pool}/{image}"), check=False)
            ceph.run(site.cli("rm", f"{pool}/{image}"), 120, check=False)
