"""The lab's OpenNebula front-ends in its life cycle, without Ceph: started per site on the lab's
ports and seeded on their first start, stopped by ``lab down`` with their state kept, frozen and
continued with their site, listed by ``lab status``, and back to their seeds after a reset.

Real front-end processes run here (``python -m lab.opennebula``); no Ceph daemon does, so what
``lab up`` and ``lab reset`` do around them (Ceph, apiservers, S3) is the lab tests' business.
"""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from drkit.adapters.opennebula import PyoneFrontend
from lab import lab as lab_mod
from lab.opennebula import control
from lab.procs import read_pid, stopped

SITES = lab_mod.SITES
B_IMAGE = 'NAME="made-on-b"\nPERSISTENT="YES"\nSIZE="16"\nFORMAT="raw"\nSOURCE="one/made-on-b"'


def _free(port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def _free_base() -> int:
    """A port base whose two front-end ports are free now."""
    for _ in range(50):
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = sock.getsockname()[1]
        base = port - 114
        if base > 1024 and _free(port + 1):
            return base
    raise RuntimeError("no two consecutive free ports found")


@pytest.fixture
def lab_root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A lab folder without Ceph, on ports of its own; whatever the test started is stopped after."""
    monkeypatch.setenv("STANDBY_LAB_PORT_BASE", str(_free_base()))
    monkeypatch.delenv("STANDBY_LAB_S3", raising=False)
    root = tmp_path / "lab"
    root.mkdir()
    try:
        yield root
    finally:
        lab_mod.down(root, log=lambda _: None)


def _ports() -> lab_mod.Ports:
    return lab_mod.Ports(lab_mod.port_base())


def _frontend(info: control.FrontendInfo) -> PyoneFrontend:
    session = f"{info.user}:{info.password_file.read_text().strip()}"
    return PyoneFrontend(info.site, info.endpoint, session, timeout=5)


def _session(info: control.FrontendInfo) -> str:
    return f"{info.user}:{info.password_file.read_text().strip()}"


def test_front_ends_have_ports_of_their_own_after_the_apps() -> None:
    ports = lab_mod.Ports(16800)
    assert [ports.opennebula(s) for s in SITES] == [16914, 16915]
    taken = [16800, 16801, 16810, 16811]  # Ceph mons
    for site in SITES:
        taken += [ports.kube(site), ports.s3_of(site), ports.nexus(site), ports.web(site)]
        taken.append(ports.opennebula(site))
    assert len(taken) == len(set(taken)), sorted(taken)
    assert max(taken) < ports.base + 116  # tests/labfixture.py: a lab uses its first 116 ports


def test_up_starts_a_seeded_front_end_per_site_and_down_stops_them_keeping_their_state(
    lab_root: Path,
) -> None:
    infos = lab_mod._start_frontends(lab_root, _ports())
    assert {s: i.endpoint for s, i in infos.items()} == {
        s: f"http://127.0.0.1:{_ports().opennebula(s)}/RPC2" for s in SITES
    }
    for info in infos.values():
        assert info.password_file.stat().st_mode & 0o777 == 0o600
        assert info.state_dir == lab_root / "opennebula" / info.site
    a, b = _frontend(infos["site-a"]), _frontend(infos["site-b"])
    assert [vm.name for vm in a.vms_labelled("STANDBY_APP", "vms")] == ["web-0", "db-0"]
    assert b.images() == [] and [v.name for v in b.vnets()] == ["lan-b", "drill-b"]
    assert _session(infos["site-a"]) != _session(infos["site-b"])  # a password per site
    image_id = b.allocate_image(B_IMAGE, 100)

    pids = {s: read_pid(control.pid_file(lab_root, s)) for s in SITES}
    assert lab_mod._start_frontends(lab_root, _ports()) == infos  # `lab up` again: the same daemons
    assert {s: read_pid(control.pid_file(lab_root, s)) for s in SITES} == pids

    lines: list[str] = []
    lab_mod.down(lab_root, log=lines.append)
    assert not any(control.running(lab_root, s) for s in SITES)
    assert [ln for ln in lines if "OpenNebula" in ln] == [
        f"lab: stopped the OpenNebula front-end of {s} (its state kept)" for s in SITES
    ]

    again = lab_mod._start_frontends(lab_root, _ports())
    assert [i.name for i in _frontend(again["site-b"]).images()] == ["made-on-b"]  # not seeded again
    assert _frontend(again["site-b"]).image(image_id).persistent
    assert [vm.id for vm in _frontend(again["site-a"]).vms_labelled("STANDBY_APP", "vms")] == [0, 1]


def test_reset_puts_the_front_ends_back_to_their_seeds_with_the_same_passwords(lab_root: Path) -> None:
    infos = lab_mod._start_frontends(lab_root, _ports())
    sessions = {s: _session(i) for s, i in infos.items()}
    b = _frontend(infos["site-b"])
    b.allocate_image(B_IMAGE, 100)
    a = _frontend(infos["site-a"])
    a.vm_action(0, "poweroff")

    lab_mod._stop_workloads(lab_root, log=lambda _: None)  # what reset does before Ceph's part
    lab_mod._forget_objects(lab_root)
    assert not any((control.state_dir(lab_root, s) / "oned.json").exists() for s in SITES)
    infos = lab_mod._start_frontends(lab_root, _ports())

    assert {s: _session(i) for s, i in infos.items()} == sessions
    b = _frontend(infos["site-b"])
    assert b.images() == []
    assert b.allocate_image(B_IMAGE, 100) == 100  # site-b's seed numbers new objects from 100
    assert _frontend(infos["site-a"]).vm(0).running


def test_status_lists_each_running_front_end(lab_root: Path) -> None:
    before = lab_mod.status(lab_root)
    assert before.opennebula == {}
    assert before.daemons["opennebula-site-a"] is False and before.daemons["opennebula-site-b"] is False
    assert before.to_json()["sites"]["site-a"]["opennebula"] is None
    assert "    opennebula: -" in lab_mod.describe(before)

    infos = lab_mod._start_frontends(lab_root, _ports())
    st = lab_mod.status(lab_root)
    assert st.daemons["opennebula-site-a"] and st.daemons["opennebula-site-b"]
    assert st.opennebula == infos
    data = st.to_json()
    for site in SITES:
        assert data["sites"][site]["opennebula"] == {
            "endpoint": infos[site].endpoint,
            "user": "oneadmin",
            "password_file": str(lab_root / "opennebula" / f"{site}.password"),
        }
    text = lab_mod.describe(st)
    for site in SITES:
        assert f"opennebula: {infos[site].endpoint} (user oneadmin, password in " in text
    assert "opennebula-site" not in text.splitlines()[1]  # "not running:" names Ceph and the rest only
    password = infos["site-a"].password_file.read_text().strip()
    assert password not in text and password not in str(data)


def test_site_down_freezes_the_sites_front_end_and_site_up_continues_it(lab_root: Path) -> None:
    infos = lab_mod._start_frontends(lab_root, _ports())
    pid_a = read_pid(control.pid_file(lab_root, "site-a"))
    pid_b = read_pid(control.pid_file(lab_root, "site-b"))
    assert pid_a is not None and pid_b is not None

    frozen = lab_mod.site_down(lab_root, "site-a", log=lambda _: None)
    assert [(p.what, p.pid) for p in frozen] == [("opennebula", pid_a)]  # no Ceph here: only it
    assert stopped(pid_a) and not stopped(pid_b)
    assert not control.answers(infos["site-a"].endpoint, _session(infos["site-a"]), timeout=1.0)
    assert control.answers(infos["site-b"].endpoint, _session(infos["site-b"]))
    st = lab_mod.status(lab_root)
    assert st.down == {"site-a": True, "site-b": False}
    assert st.opennebula["site-a"] == infos["site-a"]  # frozen, still the site's front-end

    continued = lab_mod.site_up(lab_root, "site-a", log=lambda _: None)
    assert [p.pid for p in continued] == [pid_a] and not stopped(pid_a)
    assert [vm.name for vm in _frontend(infos["site-a"]).vms_labelled("STANDBY_APP", "vms")] == [
        "web-0",
        "db-0",
    ]


def test_down_continues_a_frozen_front_end_before_stopping_it(lab_root: Path) -> None:
    lab_mod._start_frontends(lab_root, _ports())
    pid_b = read_pid(control.pid_file(lab_root, "site-b"))
    assert pid_b is not None
    lab_mod.site_down(lab_root, "site-b", log=lambda _: None)
    assert stopped(pid_b)

    lines: list[str] = []
    lab_mod.down(lab_root, log=lines.append)
    assert not any(control.running(lab_root, s) for s in SITES)
    assert not lab_mod.site_is_down(lab_root, "site-b")
    assert "lab: stopped the OpenNebula front-end of site-b (its state kept)" in lines
