"""The OneFrontend contract: PyoneFrontend (pyone 7.2 over XML-RPC) against the lab's fake oned, and
the in-memory fake (drkit.testing.opennebula). Both start from what the lab seeds on each site.

pyone's generated bindings parse every reply of the lab's front-end here: a body they reject fails
these tests, which is the fidelity check of the lab's XML.
"""

from __future__ import annotations

import socket
import xmlrpc.client
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pyone
import pytest

from drkit.adapters.opennebula import (
    ACTION,
    ALLOCATE,
    INTERNAL,
    LOCKED,
    OneAccessDenied,
    OneConflict,
    OneFrontend,
    OneNotFound,
    OneParseError,
    OneUnreachable,
    PyoneFrontend,
    redact_endpoint,
)
from drkit.domain.errors import (
    Conflict,
    NotFound,
    OpenNebulaError,
    ParseError,
    PreconditionFailed,
    StandbyError,
    TransientError,
    is_retryable,
)
from drkit.testing.opennebula import FakeOneFrontend, fake_site_a, fake_site_b
from lab.opennebula import control, schemas
from lab.opennebula.oned import Oned
from lab.opennebula.seeds import seed_for
from lab.opennebula.server import FrontendServer, make_server, serve_in_thread
from tests.labhelpers import free_port

USER = "oneadmin"
PASSWORD = "contract-one-pw"
SESSION = f"{USER}:{PASSWORD}"
WRONG = f"{USER}:not-the-password"

# The protocol's calls and the XML-RPC method behind each (for the lab's fault switch).
XMLRPC_OF = {
    "version": "one.system.version",
    "vm": "one.vm.info",
    "vms_labelled": "one.vmpool.infoextended",
    "image": "one.image.info",
    "images": "one.imagepool.info",
    "vnets": "one.vnpool.info",
    "datastore": "one.datastore.info",
    "vm_template": "one.template.info",
}

B_IMAGE = 'NAME = "web-0-disk"\nTYPE = "OS"\nPERSISTENT = "YES"\nSOURCE = "one/one-0"\nSIZE = "1024"\nFORMAT = "raw"\n'
B_VM = (
    'NAME = "web-0"\nCPU = "0.5"\nMEMORY = "512"\nDISK = [ IMAGE_ID = "{image}" ]\n'
    'NIC = [ NETWORK = "lan-b" ]\nCONTEXT = [ NETWORK = "YES" ]\nSTANDBY_APP = "vms"\n'
)


@dataclass
class Site:
    """One site's front-end under test and the knobs to misbehave it."""

    frontend: OneFrontend
    lock: Callable[[str, int], None]
    break_replies: Callable[[str], None]
    with_session: Callable[[str], OneFrontend]
    stop: Callable[[], None]


def _lab_site(root: Path, site: str) -> Iterator[Site]:
    oned = Oned(root / site, site=site, seed=seed_for(site))
    server = make_server(oned, user=USER, password=PASSWORD)
    stop = serve_in_thread(server)
    stopped = False

    def stop_once() -> None:
        nonlocal stopped
        if not stopped:
            stopped = True
            stop()

    try:
        yield Site(
            frontend=PyoneFrontend(site, server.endpoint, SESSION, timeout=5),
            lock=lambda kind, oid: oned.set_lock({"vm": "vms", "image": "images"}[kind], oid, 1),
            break_replies=lambda call: server.set_fault(XMLRPC_OF[call], "broken-body"),
            with_session=lambda session: PyoneFrontend(site, server.endpoint, session, timeout=5),
            stop=stop_once,
        )
    finally:
        stop_once()


def _fake_site(fe: FakeOneFrontend) -> Site:
    def with_session(session: str) -> OneFrontend:
        fe.given_session = session
        return fe

    def stop() -> None:
        fe.running = False

    return Site(
        frontend=fe,
        lock=lambda kind, oid: fe.lock(kind, oid),
        break_replies=fe.broken.add,
        with_session=with_session,
        stop=stop,
    )


@pytest.fixture(params=["pyone", "fake"])
def sites(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[Site, Site]]:
    """Site A and site B, as the lab seeds them: through pyone and the lab's oned, or in memory."""
    if request.param == "fake":
        yield _fake_site(fake_site_a(SESSION)), _fake_site(fake_site_b(SESSION))
        return
    a_gen, b_gen = _lab_site(tmp_path, "site-a"), _lab_site(tmp_path, "site-b")
    try:
        yield next(a_gen), next(b_gen)
    finally:
        a_gen.close()
        b_gen.close()


# --------------------------------------------------------------------------------------- reading


def test_version_is_the_guides_release(sites: tuple[Site, Site]) -> None:
    a, _ = sites
    assert a.frontend.version() == "6.10.3"


def test_site_a_runs_the_two_labelled_vms_with_their_disks_and_nics(sites: tuple[Site, Site]) -> None:
    a, _ = sites
    vms = a.frontend.vms_labelled("STANDBY_APP", "vms")
    assert [(v.id, v.name) for v in vms] == [(0, "web-0"), (1, "db-0")]
    assert all(v.running and v.state == "ACTIVE" and v.lcm_state == "RUNNING" for v in vms)
    web, db = vms
    assert [(d.image_id, d.source, d.datastore_id, d.type, d.persistent) for d in web.disks] == [
        (0, "one/one-0", 1, "RBD", True)
    ]
    first = db.disks[0]
    assert (first.image_id, first.source, first.type) == (1, "one/one-1", "RBD")
    cdrom = db.disks[1]
    assert (cdrom.image_id, cdrom.type, cdrom.datastore_id) == (2, "CDROM", 2)
    assert [(n.network, n.network_id) for n in db.nics] == [("lan-a", 0), ("backend-a", 1)]
    assert db.nics[1].ip == "192.168.50.10" and db.nics[1].mac == "02:00:c0:a8:32:0a"
    assert db.user_template["STANDBY_APP"] == "vms"
    context = db.template["CONTEXT"]
    assert isinstance(context, tuple) and context[0]["PASSWORD"] == "lab-db0-root-pw"
    assert a.frontend.vm(1) == db
    assert a.frontend.vms_labelled("STANDBY_APP", "other") == []


def test_site_a_images_and_lookup_by_name_and_source(sites: tuple[Site, Site]) -> None:
    a, _ = sites
    web_disk = a.frontend.image(0)
    assert (web_disk.name, web_disk.source, web_disk.state, web_disk.persistent) == (
        "web-0-disk",
        "one/one-0",
        "USED_PERS",
        True,
    )
    assert (web_disk.size_mb, web_disk.format, web_disk.datastore_id, web_disk.vms) == (1024, "raw", 1, (0,))
    assert [i.id for i in a.frontend.images(source="one/one-1")] == [1]
    assert [i.source for i in a.frontend.images(name="web-0-disk")] == ["one/one-0"]
    assert a.frontend.images(name="web-0-disk", source="one/one-1") == []
    assert a.frontend.image(2).type == "CDROM"


def test_site_b_has_its_own_networks_and_a_ceph_datastore_of_pool_one(sites: tuple[Site, Site]) -> None:
    a, b = sites
    assert [v.name for v in b.frontend.vnets()] == ["lan-b", "drill-b"]
    assert "backend-a" in {v.name for v in a.frontend.vnets()}
    assert "backend-a" not in {v.name for v in b.frontend.vnets()}
    ds = b.frontend.datastore(100)
    assert (ds.name, ds.tm_mad, ds.pool_name, ds.type, ds.image_ids) == (
        "ceph-one",
        "ceph",
        "one",
        "IMAGE",
        (),
    )
    assert b.frontend.datastore(0).type == "SYSTEM"
    assert b.frontend.images() == [] and b.frontend.vms_labelled("STANDBY_APP", "vms") == []


def test_template_info(sites: tuple[Site, Site]) -> None:
    a, _ = sites
    tpl = a.frontend.vm_template(1)
    assert tpl.name == "db" and tpl.template["STANDBY_APP"] == "vms"
    with pytest.raises(OneNotFound):
        a.frontend.vm_template(9)


# --------------------------------------------------------------------------------------- changes


def test_register_the_mirrored_image_on_b_then_create_deploy_and_stop_the_vm(
    sites: tuple[Site, Site],
) -> None:
    _, b = sites
    fe = b.frontend
    image_id = fe.allocate_image(B_IMAGE, 100)
    assert image_id >= 100  # B's counters are its own
    image = fe.image(image_id)
    assert (image.name, image.source, image.state, image.persistent, image.datastore_id, image.size_mb) == (
        "web-0-disk",
        "one/one-0",
        "READY",
        True,
        100,
        1024,
    )
    assert [i.id for i in fe.images(source="one/one-0")] == [image_id]
    assert fe.datastore(100).image_ids == (image_id,)

    vm_id = fe.allocate_vm(B_VM.format(image=image_id))
    vm = fe.vm(vm_id)
    assert (vm.name, vm.state, vm.running) == ("web-0", "PENDING", False)
    assert [(d.image_id, d.source, d.datastore_id) for d in vm.disks] == [(image_id, "one/one-0", 100)]
    assert [(n.network, n.ip) for n in vm.nics] == [("lan-b", "10.20.0.10")]
    assert fe.image(image_id).state == "USED_PERS" and fe.image(image_id).vms == (vm_id,)

    fe.deploy_vm(vm_id, 0)
    assert fe.vm(vm_id).running
    assert [v.id for v in fe.vms_labelled("STANDBY_APP", "vms")] == [vm_id]
    fe.vm_action(vm_id, "poweroff")
    assert (fe.vm(vm_id).state, fe.vm(vm_id).lcm_state) == ("POWEROFF", "LCM_INIT")
    fe.vm_action(vm_id, "resume")
    assert fe.vm(vm_id).running
    fe.vm_action(vm_id, "terminate-hard")
    assert fe.vm(vm_id).state == "DONE"
    assert fe.vms_labelled("STANDBY_APP", "vms") == []
    assert fe.image(image_id).state == "READY" and fe.image(image_id).vms == ()

    fe.make_persistent(image_id, False)
    assert not fe.image(image_id).persistent
    fe.delete_image(image_id)
    with pytest.raises(OneNotFound):
        fe.image(image_id)
    assert fe.images(source="one/one-0") == []


def test_held_vm_is_released_then_deployed(sites: tuple[Site, Site]) -> None:
    _, b = sites
    image_id = b.frontend.allocate_image(B_IMAGE, 100)
    vm_id = b.frontend.allocate_vm(B_VM.format(image=image_id), hold=True)
    assert b.frontend.vm(vm_id).state == "HOLD"
    b.frontend.vm_action(vm_id, "release")
    assert b.frontend.vm(vm_id).state == "PENDING"
    b.frontend.deploy_vm(vm_id, 0, datastore_id=0)
    assert b.frontend.vm(vm_id).running


# ----------------------------------------------------------------------------------- refusals


def test_an_image_name_taken_on_b_is_an_allocate_conflict(sites: tuple[Site, Site]) -> None:
    _, b = sites
    first = b.frontend.allocate_image(B_IMAGE, 100)
    with pytest.raises(OneConflict) as err:
        b.frontend.allocate_image(B_IMAGE, 100)
    assert err.value.code == ALLOCATE and not err.value.locked
    assert isinstance(err.value, Conflict) and isinstance(err.value, OpenNebulaError)
    message = str(err.value)
    assert "site-b" in message and "datastore 100" in message and f"IMAGE {first}" in message
    assert err.value.hint and PASSWORD not in message
    assert [i.id for i in b.frontend.images(name="web-0-disk")] == [first]


def test_an_action_the_state_does_not_allow_is_an_action_conflict(sites: tuple[Site, Site]) -> None:
    a, _ = sites
    with pytest.raises(OneConflict) as err:
        a.frontend.vm_action(0, "release")
    assert err.value.code == ACTION and "VM 0" in str(err.value) and "site-a" in str(err.value)
    with pytest.raises(OneConflict):
        a.frontend.deploy_vm(0, 0)  # already running
    assert a.frontend.vm(0).running


def test_an_image_in_use_is_neither_deleted_nor_changed(sites: tuple[Site, Site]) -> None:
    a, _ = sites
    with pytest.raises(OneConflict) as err:
        a.frontend.delete_image(0)
    assert err.value.code == ACTION and "image 0" in str(err.value)
    with pytest.raises(OneConflict):
        a.frontend.make_persistent(0, False)
    assert a.frontend.image(0).persistent and a.frontend.image(0).state == "USED_PERS"


def test_a_persistent_image_in_use_cannot_be_taken_by_a_second_vm(sites: tuple[Site, Site]) -> None:
    _, b = sites
    image_id = b.frontend.allocate_image(B_IMAGE, 100)
    b.frontend.allocate_vm(B_VM.format(image=image_id))
    with pytest.raises(OneConflict) as err:
        b.frontend.allocate_vm(B_VM.format(image=image_id))
    assert err.value.code == ALLOCATE


def test_a_nic_on_a_network_b_does_not_have_is_refused(sites: tuple[Site, Site]) -> None:
    _, b = sites
    image_id = b.frontend.allocate_image(B_IMAGE, 100)
    text = B_VM.format(image=image_id).replace('NETWORK = "lan-b"', 'NETWORK = "backend-a"')
    with pytest.raises(OneConflict) as err:
        b.frontend.allocate_vm(text)
    assert err.value.code == ALLOCATE and "backend-a" in str(err.value)
    assert b.frontend.image(image_id).state == "READY"  # nothing taken by the refused VM


@pytest.mark.parametrize("call", ["vm", "image", "datastore"])
def test_a_missing_object_is_not_found_naming_it_and_the_site(sites: tuple[Site, Site], call: str) -> None:
    a, _ = sites
    with pytest.raises(OneNotFound) as err:
        getattr(a.frontend, call)(99)
    assert isinstance(err.value, NotFound)
    assert "99" in str(err.value) and "site-a" in str(err.value) and err.value.hint
    with pytest.raises(OneNotFound):
        a.frontend.vm_action(99, "poweroff")
    with pytest.raises(OneNotFound):
        a.frontend.deploy_vm(0, 42)  # no such host


def test_a_locked_vm_or_image_refuses_changes_but_reads(sites: tuple[Site, Site]) -> None:
    a, _ = sites
    a.lock("image", 2)
    a.lock("vm", 0)
    with pytest.raises(OneConflict) as err:
        a.frontend.delete_image(2)
    assert err.value.locked and err.value.code == LOCKED and "image 2" in str(err.value)
    with pytest.raises(OneConflict) as err:
        a.frontend.vm_action(0, "poweroff")
    assert err.value.locked and "VM 0" in str(err.value) and "unlock" in err.value.hint
    assert a.frontend.vm(0).locked and a.frontend.vm(0).running
    assert a.frontend.image(2).locked and not a.frontend.image(1).locked


@pytest.mark.parametrize(
    "template",
    [
        'NAME = "x',  # unterminated quote
        'NAME = "x"\nDISK = [ IMAGE_ID = "0"',  # unterminated vector
        "NAME",  # no '='
        'DISK = [ IMAGE = [ ID = "0" ] ]',  # a vector in a vector
        'NAME = "a" "b"',  # two values
        "",  # empty
    ],
)
def test_a_malformed_template_is_an_internal_error_not_a_conflict(
    sites: tuple[Site, Site], template: str
) -> None:
    _, b = sites
    with pytest.raises(OpenNebulaError) as err:
        b.frontend.allocate_vm(template)
    assert type(err.value) is OpenNebulaError and err.value.code == INTERNAL
    assert "site-b" in str(err.value) and "allocating a VM" in str(err.value)
    with pytest.raises(OpenNebulaError) as err:
        b.frontend.allocate_image(template, 100)
    assert err.value.code == INTERNAL
    assert b.frontend.images() == []


def test_missing_cpu_or_memory_is_refused(sites: tuple[Site, Site]) -> None:
    _, b = sites
    with pytest.raises(OneConflict) as err:
        b.frontend.allocate_vm('NAME = "x"\nCPU = "1"\n')
    assert "MEMORY" in str(err.value)


# ------------------------------------------------------------------------------------- faults


def test_wrong_credentials_are_access_denied_and_never_shown(sites: tuple[Site, Site]) -> None:
    a, _ = sites
    frontend = a.with_session(WRONG)
    with pytest.raises(OneAccessDenied) as err:
        frontend.vm(0)
    assert isinstance(err.value, PreconditionFailed) and not is_retryable(err.value)
    shown = f"{err.value} {err.value.hint} {err.value.context} {frontend!r}"
    assert "site-a" in shown and "credentials" in shown
    assert "not-the-password" not in shown and PASSWORD not in shown


def test_a_front_end_that_is_down_is_transient(sites: tuple[Site, Site]) -> None:
    a, _ = sites
    a.stop()
    with pytest.raises(OneUnreachable) as err:
        a.frontend.version()
    assert isinstance(err.value, TransientError) and is_retryable(err.value)
    assert "site-a" in str(err.value) and "did not answer" in str(err.value)


@pytest.mark.parametrize("call", ["vm", "image", "vms_labelled", "datastore", "vnets"])
def test_a_body_that_cannot_be_parsed_is_a_parse_error(sites: tuple[Site, Site], call: str) -> None:
    a, _ = sites
    a.break_replies(call)
    args = {"vm": (0,), "image": (0,), "vms_labelled": ("STANDBY_APP", "vms"), "datastore": (1,), "vnets": ()}
    with pytest.raises(OneParseError) as err:
        getattr(a.frontend, call)(*args[call])
    assert isinstance(err.value, ParseError) and isinstance(err.value, StandbyError)
    assert "cannot be parsed" in str(err.value) and "site-a" in str(err.value)


# --------------------------------------------------------------------------- the lab's oned only


@pytest.fixture
def lab_a(tmp_path: Path) -> Iterator[tuple[Oned, FrontendServer]]:
    oned = Oned(tmp_path / "a", site="site-a", seed=seed_for("site-a"))
    server = make_server(oned, user=USER, password=PASSWORD)
    stop = serve_in_thread(server)
    try:
        yield oned, server
    finally:
        stop()


def test_lab_http_500_is_transient(lab_a: tuple[Oned, FrontendServer]) -> None:
    _, server = lab_a
    server.set_fault("one.vm.info", "http-500")
    with pytest.raises(OneUnreachable) as err:
        PyoneFrontend("site-a", server.endpoint, SESSION, timeout=5).vm(0)
    assert "HTTP 500" in str(err.value)


def test_lab_internal_error_for_one_call(lab_a: tuple[Oned, FrontendServer]) -> None:
    _, server = lab_a
    server.set_fault("one.imagepool.info", "internal-error")
    frontend = PyoneFrontend("site-a", server.endpoint, SESSION, timeout=5)
    with pytest.raises(OpenNebulaError) as err:
        frontend.images()
    assert err.value.code == INTERNAL
    assert frontend.image(0).name == "web-0-disk"  # the other calls still answer


def test_lab_switches_over_xmlrpc_need_the_credentials(lab_a: tuple[Oned, FrontendServer]) -> None:
    oned, server = lab_a
    proxy = xmlrpc.client.ServerProxy(server.endpoint)
    assert proxy.lab.lock(WRONG, "image", 1, 1)[0] is False
    assert proxy.lab.lock(SESSION, "image", 1, 1) == [True, True, 0]
    assert oned.snapshot()["images"]["1"]["lock"]["level"] == 1
    assert proxy.lab.fault(SESSION, "one.vm.info", "broken-body")[0] is True
    with pytest.raises(OneParseError):
        PyoneFrontend("site-a", server.endpoint, SESSION, timeout=5).vm(0)
    proxy.lab.fault(SESSION, "one.vm.info", "")
    assert PyoneFrontend("site-a", server.endpoint, SESSION, timeout=5).vm(0).name == "web-0"


def test_lab_accepts_pyones_xml_templates_and_rejects_bad_parameters(
    lab_a: tuple[Oned, FrontendServer],
) -> None:
    _, server = lab_a
    one = pyone.OneServer(server.endpoint, session=SESSION)
    # A nested dict is sent by pyone as XML (values in CDATA), a flat one as KEY="value" lines.
    vm_id = one.vm.allocate(
        {"TEMPLATE": {"NAME": "xml-vm", "CPU": "1", "MEMORY": "64", "NIC": {"NETWORK_ID": "0"}, "LABEL": "x"}}
    )
    vm = one.vm.info(vm_id)
    assert (vm.NAME, vm.STATE, vm.USER_TEMPLATE["LABEL"], vm.TEMPLATE["NIC"]["NETWORK"]) == (
        "xml-vm",
        1,
        "x",
        "lan-a",
    )
    flat = one.image.allocate({"NAME": "flat", "PATH": "/tmp/x.img", "SIZE": "1"}, 2)
    assert one.image.info(flat).NAME == "flat"
    with pytest.raises(pyone.OneException):
        one.vm.info("zero")  # a string where oned wants an int: an XML-RPC fault
    with pytest.raises(pyone.OneException):
        one.vm.allocate("<TEMPLATE><NAME>x</TEMPLATE>")


def test_lab_state_survives_a_restart(tmp_path: Path) -> None:
    oned = Oned(tmp_path / "b", site="site-b", seed=seed_for("site-b"))
    server = make_server(oned, user=USER, password=PASSWORD)
    stop = serve_in_thread(server)
    frontend = PyoneFrontend("site-b", server.endpoint, SESSION, timeout=5)
    image_id = frontend.allocate_image(B_IMAGE, 100)
    vm_id = frontend.allocate_vm(B_VM.format(image=image_id))
    frontend.deploy_vm(vm_id, 0)
    frontend.vm_action(vm_id, "poweroff")
    stop()
    again = Oned(tmp_path / "b", site="site-b", seed=seed_for("site-b"))
    server = make_server(again, user=USER, password=PASSWORD)
    stop = serve_in_thread(server)
    try:
        frontend = PyoneFrontend("site-b", server.endpoint, SESSION, timeout=5)
        assert frontend.vm(vm_id).state == "POWEROFF"
        assert frontend.image(image_id).state == "USED_PERS"
        assert frontend.allocate_image(B_IMAGE.replace("web-0-disk", "other"), 100) == image_id + 1
    finally:
        stop()


def test_lab_runtime_is_told_when_a_vm_starts_and_stops(tmp_path: Path) -> None:
    seen: list[tuple[str, int, str]] = []

    class Recorder:
        def start(self, vm: object) -> None:
            seen.append(("start", vm["id"], ""))  # type: ignore[index]

        def stop(self, vm: object, action: str) -> None:
            seen.append(("stop", vm["id"], action))  # type: ignore[index]

    oned = Oned(tmp_path / "b", site="site-b", seed=seed_for("site-b"), runtime=Recorder())
    image_id = oned.image_allocate(B_IMAGE, 100)
    vm_id = oned.vm_allocate(B_VM.format(image=image_id))
    oned.vm_deploy(vm_id, 0)
    oned.vm_action("poweroff", vm_id)
    oned.vm_action("resume", vm_id)
    oned.vm_action("terminate", vm_id)
    assert seen == [
        ("start", vm_id, ""),
        ("stop", vm_id, "poweroff"),
        ("start", vm_id, ""),
        ("stop", vm_id, "terminate"),
    ]


def test_lab_control_starts_and_stops_a_site_front_end(tmp_path: Path) -> None:
    port = free_port()
    info = control.start_frontend(tmp_path, "site-b", port)
    try:
        assert control.start_frontend(tmp_path, "site-b", port) == info  # idempotent
        assert info.password_file.stat().st_mode & 0o077 == 0
        session = f"{info.user}:{info.password_file.read_text().strip()}"
        frontend = PyoneFrontend("site-b", info.endpoint, session, timeout=5)
        assert [v.name for v in frontend.vnets()] == ["lan-b", "drill-b"]
    finally:
        assert control.stop_frontend(tmp_path, "site-b")
    assert not control.running(tmp_path, "site-b")
    assert (info.state_dir / "oned.json").exists()


def test_lab_bodies_follow_opennebula_610_schemas(tmp_path: Path) -> None:
    a = Oned(tmp_path / "a", site="site-a", seed=seed_for("site-a"))
    b = Oned(tmp_path / "b", site="site-b", seed=seed_for("site-b"))
    bodies = [
        a.vm_info(0),
        a.vm_info(1),
        a.vmpool_infoextended(-2, -1, -1, -1),
        a.imagepool_info(),
        a.vnpool_info(),
    ]
    bodies += [a.image_info(i) for i in (0, 1, 2)] + [a.vn_info(i) for i in (0, 1)]
    bodies += [a.datastore_info(i) for i in (0, 1, 2)] + [a.template_info(i) for i in (0, 1)]
    a.set_lock("vms", 0, 1)
    a.set_lock("images", 0, 4)
    bodies += [a.vm_info(0), a.image_info(0)]
    image_id = b.image_allocate(B_IMAGE, 100)
    vm_id = b.vm_allocate(B_VM.format(image=image_id))
    bodies += [b.vm_info(vm_id), b.image_info(image_id), b.vnpool_info(), b.datastore_info(100)]
    b.vm_deploy(vm_id, 0)
    bodies.append(b.vm_info(vm_id))
    b.vm_action("terminate", vm_id)
    bodies += [b.vm_info(vm_id), b.vmpool_infoextended(-2, -1, -1, -2), b.image_info(image_id)]
    assert [problem for body in bodies for problem in schemas.problems(body)] == []


def test_the_schema_check_finds_a_body_oned_would_not_send() -> None:
    assert schemas.problems("<IMAGE><ID>0</ID><NAME>x</NAME></IMAGE>") == [
        "IMAGE: Element 'NAME': This element is not expected. Expected is ( UID )."
    ]
    assert schemas.problems("<VM_POOL><VM><ID>zero</ID></VM></VM_POOL>")


def test_a_front_end_that_accepts_but_never_answers_times_out() -> None:
    with socket.socket() as listener:  # connections queue in the backlog; nothing ever reads them
        listener.bind(("127.0.0.1", 0))
        listener.listen(4)
        endpoint = f"http://127.0.0.1:{listener.getsockname()[1]}/RPC2"
        with pytest.raises(OneUnreachable) as err:
            PyoneFrontend("site-a", endpoint, SESSION, timeout=0.2).vm(0)
    assert "no answer within 0.2s" in str(err.value) and is_retryable(err.value)


@pytest.mark.parametrize("endpoint", ["oned.example:2634", "", "ftp://oned/RPC2"])
def test_an_endpoint_that_is_not_an_xmlrpc_url_is_refused_at_once(endpoint: str) -> None:
    with pytest.raises(OpenNebulaError) as err:
        PyoneFrontend("site-b", endpoint, SESSION)
    assert "site-b" in str(err.value) and "XML-RPC" in str(err.value) and PASSWORD not in str(err.value)


def test_credentials_in_an_endpoint_never_reach_a_message() -> None:
    assert redact_endpoint("http://oneadmin:s3cret@oned:2633/RPC2") == "http://oned:2633/RPC2"
    assert redact_endpoint("oneadmin:s3cret@oned:2633") == "oned:2633"
    with pytest.raises(OneUnreachable) as err:
        PyoneFrontend("site-a", f"http://oneadmin:s3cret@127.0.0.1:{free_port()}/RPC2", SESSION).version()
    assert "s3cret" not in f"{err.value} {err.value.context}"


def test_lab_vm_pool_filters_as_oned(lab_a: tuple[Oned, FrontendServer]) -> None:
    _, server = lab_a
    one = pyone.OneServer(server.endpoint, session=SESSION)

    def names(*args: object) -> list[str]:
        return [vm.NAME for vm in one.vmpool.infoextended(*args).VM]

    assert names(-2, -1, -1, -1) == ["web-0", "db-0"]
    assert names(-2, 1, 1, -1) == ["db-0"]  # an ID range
    assert names(-2, 1, -2, -1) == ["db-0"]  # an end below -1 is a page size: offset 1, page of 2
    assert names(-2, 0, -2, -1) == ["web-0", "db-0"]
    assert names(-2, -1, -1, -1, "VM.USER_TEMPLATE.STANDBY_APP=vms&VM.NAME=db") == ["db-0"]
    assert names(-2, -1, -1, -1, "VM.TEMPLATE.NIC.NETWORK=backend-a") == ["db-0"]
    one.vm.action("terminate-hard", 0)
    assert names(-2, -1, -1, -1) == ["db-0"]  # DONE left out
    assert names(-2, -1, -1, -2) == ["web-0", "db-0"]  # any state, DONE included
    assert names(-2, -1, -1, 6) == ["web-0"]  # DONE only
