"""The real two-site Ceph lab (lab/ceph.py): bring-up, idempotence, mirroring, restart and tear-down.

These tests start real Ceph daemons (Debian's 16.2 packages) on mon ports 750 above the session lab's (tests/labfixture.py's CEPH_LAB_OFFSET), so they are
marked ``lab`` and skipped when the packages are missing. They run in order on one module-scoped lab
and take about 1.5 minutes on 2 cores.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from lab.ceph import (
    DEFAULT_POOL,
    CephLabError,
    CephSite,
    ceph_down,
    ceph_status,
    ceph_up,
    create_mirrored_image,
    lab_processes,
    missing_packages,
    run,
    wait_for,
)
from tests.labfixture import CEPH_LAB_OFFSET

pytestmark = [
    pytest.mark.lab,
    pytest.mark.skipif(bool(missing_packages()), reason=f"Ceph packages missing: {missing_packages()}"),
]

# Clear of the session lab (+0..+111) and of a `make lab-up` lab (16800..16911).
PORT_BASE = (
    int(os.environ["STANDBY_LAB_PORT_BASE"]) + CEPH_LAB_OFFSET
)  # set by tests/labfixture.py, per worker
DAEMONS = ("mon", "osd", "mgr", "rbd-mirror")


@pytest.fixture(scope="module")
def ceph_lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, dict[str, CephSite]]]:
    """A running two-site lab in a temporary folder; always stopped at the end."""
    lab_dir = tmp_path_factory.mktemp("ceph-lab")
    try:
        started = time.monotonic()
        lab_sites = ceph_up(lab_dir, port_base=PORT_BASE)
        print(f"fresh ceph_up: {time.monotonic() - started:.1f}s")
        yield lab_dir, lab_sites
    finally:
        ceph_down(lab_dir)


def _daemons(lab_dir: Path) -> list[tuple[int, list[str]]]:
    """Live lab daemons (not CLI calls), found by scanning /proc."""
    binaries = {"ceph-mon", "ceph-osd", "ceph-mgr", "rbd-mirror"}
    return [(pid, argv) for pid, argv in lab_processes(lab_dir) if Path(argv[0]).name in binaries]


def _status(site: CephSite, image: str) -> dict[str, Any]:
    argv = site.cli("mirror", "image", "status", f"{DEFAULT_POOL}/{image}", "--format", "json")
    result: dict[str, Any] = json.loads(run(argv, 30).stdout)
    return result


def test_fresh_lab_runs_every_daemon_on_both_sites(ceph_lab: tuple[Path, dict[str, CephSite]]) -> None:
    lab_dir, lab_sites = ceph_lab
    status = ceph_status(lab_dir)
    assert set(status) == {"site-a", "site-b"}
    for pids in status.values():
        assert all(pids[d] for d in DAEMONS), status
    assert len(_daemons(lab_dir)) == 8
    for site in lab_sites.values():
        pool = json.loads(
            run(site.cli("mirror", "pool", "info", DEFAULT_POOL, "--format", "json"), 30).stdout
        )
        assert pool["mode"] == "image"
        assert pool["site_name"] == site.name
        assert [(p["site_name"], p["direction"]) for p in pool["peers"]] == [
            ("site-b" if site.name == "site-a" else "site-a", "rx-tx")
        ]


def test_second_ceph_up_is_idempotent(ceph_lab: tuple[Path, dict[str, CephSite]]) -> None:
    lab_dir, _ = ceph_lab
    before_status, before_procs = ceph_status(lab_dir), _daemons(lab_dir)
    ceph_up(lab_dir, port_base=PORT_BASE)
    assert ceph_status(lab_dir) == before_status
    assert _daemons(lab_dir) == before_procs
    assert len(before_procs) == 8


def test_ceph_up_refuses_another_port_base(ceph_lab: tuple[Path, dict[str, CephSite]]) -> None:
    lab_dir, _ = ceph_lab
    with pytest.raises(CephLabError, match="port_base"):
        ceph_up(lab_dir, port_base=PORT_BASE + 50)


def test_site_env_addresses_the_site(ceph_lab: tuple[Path, dict[str, CephSite]]) -> None:
    _, lab_sites = ceph_lab
    for site in lab_sites.values():
        proc = run(["rbd", "mirror", "pool", "info", DEFAULT_POOL, "--format", "json"], 30, env=site.env())
        assert json.loads(proc.stdout)["site_name"] == site.name


def test_mirrored_image_replays_on_site_b(ceph_lab: tuple[Path, dict[str, CephSite]]) -> None:
    _, lab_sites = ceph_lab
    a, b = lab_sites["site-a"], lab_sites["site-b"]
    create_mirrored_image(a, b, DEFAULT_POOL, "t1", size_mb=16, mode="snapshot", schedule="1m")
    create_mirrored_image(a, b, DEFAULT_POOL, "t1", size_mb=16, mode="snapshot", schedule="1m")  # idempotent
    status = wait_for(
        lambda: (s := _status(b, "t1")).get("state") == "up+replaying" and s,
        timeout=120,
        interval=2,
        what="t1 to be up+replaying on site-b",
    )
    assert '"local_snapshot_timestamp"' in status["description"]
    for site in (a, b):
        schedules = json.loads(
            run(
                site.cli(
                    "mirror",
                    "snapshot",
                    "schedule",
                    "ls",
                    "--pool",
                    DEFAULT_POOL,
                    "--image",
                    "t1",
                    "--format",
                    "json",
                ),
                30,
            ).stdout
        )
        assert [s["interval"] for s in schedules] == ["1m"]
    primary = _status(a, "t1")
    assert primary["description"] == "local image is primary"


def test_restart_on_existing_data(ceph_lab: tuple[Path, dict[str, CephSite]]) -> None:
    lab_dir, lab_sites = ceph_lab
    fsids = {name: (site.dir / "site.json").read_text() for name, site in lab_sites.items()}
    ceph_down(lab_dir)
    started = time.monotonic()
    ceph_up(lab_dir, port_base=PORT_BASE)
    print(f"restart on existing data: {time.monotonic() - started:.1f}s")
    assert {name: (site.dir / "site.json").read_text() for name, site in lab_sites.items()} == fsids
    images = json.loads(run(lab_sites["site-a"].cli("ls", DEFAULT_POOL, "--format", "json"), 30).stdout)
    assert "t1" in images
    assert len(_daemons(lab_dir)) == 8


def test_ceph_down_twice_then_nothing_alive(ceph_lab: tuple[Path, dict[str, CephSite]]) -> None:
    lab_dir, _ = ceph_lab
    started = time.monotonic()
    ceph_down(lab_dir)
    print(f"ceph_down: {time.monotonic() - started:.1f}s")
    ceph_down(lab_dir)
    assert all(pid is None for site in ceph_status(lab_dir).values() for pid in site.values())
    assert _daemons(lab_dir) == []


def test_ceph_down_on_missing_folder_is_harmless(tmp_path: Path) -> None:
    ceph_down(tmp_path / "nothing-here")
    assert all(
        pid is None for site in ceph_status(tmp_path / "nothing-here").values() for pid in site.values()
    )
