"""The OpenNebula app driver on the fake two-site world: it starts the app's VMs on site B from the
backup's saved records (images registered persistent from their mirrored SOURCE, VMs created with
their marker and deployed), converges when run again after a kill (one image per disk, one VM per
VM), refuses an image name taken with another SOURCE, stops and smoke-tests."""

from __future__ import annotations

from typing import Any

import pytest

from drkit.domain.errors import PreconditionFailed
from drkit.jobs.backup import back_up
from drkit.jobs.drivers import FromBackup, driver_for
from drkit.jobs.drivers.opennebula import OpenNebulaDriver
from drkit.jobs.requests import BackupRequest
from drkit.jobs.restore import saved_objects
from drkit.testing.vm_dr import FakeVmDr, fake_vm_dr
from tests.unit.test_opennebula_backup import KEY, SECRET


class Killed(BaseException):
    """The process dies."""


def _driver(dr: FakeVmDr, site: str) -> OpenNebulaDriver:
    b = dr.world.bundle(site)
    driver = driver_for(dr.world.config.app("vms"), b.site, b.cluster, dr.world)
    assert isinstance(driver, OpenNebulaDriver)
    return driver


def _from_backup(dr: FakeVmDr, run_id: str) -> FromBackup:
    """What the start step hands the driver: the backup's records, read and checked from the store."""
    app, site_a = dr.world.config.app("vms"), dr.world.config.site("site-a")

    def saved(kinds: tuple[str, ...]) -> list[dict[str, Any]]:
        return saved_objects(dr.store, site_a, app, key=KEY, run_id=run_id, kinds=kinds)

    def restore(kinds: tuple[str, ...]) -> None:
        raise AssertionError("a VM app restores nothing into Kubernetes")

    return FromBackup(restore, saved)


def _backed_up() -> tuple[FakeVmDr, FromBackup]:
    dr = fake_vm_dr()
    run_id = back_up(dr.world, BackupRequest(app="vms"), key=KEY, clock=dr.clock).run_id
    return dr, _from_backup(dr, run_id)


def _b(dr: FakeVmDr) -> tuple[list[Any], list[Any]]:
    fe = dr.fronts["site-b"]
    vms = [fe.vm(i) for i in sorted(fe.vms_)]
    return vms, fe.images()


def test_start_registers_each_mirrored_disk_and_creates_each_vm_on_b() -> None:
    dr, saved = _backed_up()
    driver = _driver(dr, "site-b")
    assert driver.workload_object() is None and not driver.writable()
    driver.start(saved)
    vms, images = _b(dr)
    assert sorted((i.name, i.source, i.persistent, i.datastore_id) for i in images) == [
        ("db-0-disk", "one/one-1", True, 100),
        ("web-0-disk", "one/one-0", True, 100),
    ]
    assert [(vm.name, vm.running, vm.user_template.get("STANDBY_ORIGIN")) for vm in vms] == [
        ("web-0", True, "vms/0"),
        ("db-0", True, "vms/1"),
    ]
    db = vms[1]
    assert db.template["CONTEXT"][0]["PASSWORD"] == SECRET  # joined back from the sealed record
    assert [d.image for d in db.disks] == ["db-0-disk"]  # the ISO only site A has is dropped
    assert driver.writable() and driver.smoke("t").ok
    assert driver.workload_object() == {
        "vms": [
            {"id": 100, "name": "web-0", "state": "RUNNING"},
            {"id": 101, "name": "db-0", "state": "RUNNING"},
        ]
    }


def test_start_run_again_after_a_kill_converges_with_one_image_per_disk_and_one_vm_each() -> None:
    dr, saved = _backed_up()
    fe = dr.fronts["site-b"]
    allocate_vm = fe.allocate_vm
    calls = {"n": 0}

    def dies_on_the_second_vm(template: str, *, hold: bool = False) -> int:
        calls["n"] += 1
        if calls["n"] == 2:
            raise Killed
        return allocate_vm(template, hold=hold)

    fe.allocate_vm = dies_on_the_second_vm  # type: ignore[method-assign]
    with pytest.raises(Killed):
        _driver(dr, "site-b").start(saved)
    assert len(fe.images()) == 2 and len(fe.vms_) == 1  # web-0 created, db-0's image registered
    driver = _driver(dr, "site-b")
    assert driver.missing() == ["vms/1"] and not driver.writable()  # the start step starts it again
    fe.allocate_vm = allocate_vm  # type: ignore[method-assign]
    _driver(dr, "site-b").start(saved)
    _driver(dr, "site-b").start(saved)  # and once more: nothing left to do
    vms, images = _b(dr)
    assert sorted(i.source for i in images) == ["one/one-0", "one/one-1"]
    assert sorted(vm.name for vm in vms) == ["db-0", "web-0"] and all(vm.running for vm in vms)


def test_a_vm_left_pending_by_a_kill_is_deployed_on_the_re_run() -> None:
    dr, saved = _backed_up()
    fe = dr.fronts["site-b"]
    deploy = fe.deploy_vm

    def dies(vm_id: int, host_id: int, *, datastore_id: int = -1) -> None:
        raise Killed

    fe.deploy_vm = dies  # type: ignore[method-assign]
    with pytest.raises(Killed):
        _driver(dr, "site-b").start(saved)
    fe.deploy_vm = deploy  # type: ignore[method-assign]
    _driver(dr, "site-b").start(saved)
    vms, _ = _b(dr)
    assert [(vm.name, vm.running) for vm in vms] == [("web-0", True), ("db-0", True)]


def test_an_image_of_that_name_with_another_source_refuses_and_creates_nothing() -> None:
    dr, saved = _backed_up()
    fe = dr.fronts["site-b"]
    fe.allocate_image('NAME="web-0-disk"\nPERSISTENT="YES"\nSOURCE="one/other"\nSIZE="1"\nFORMAT="raw"', 100)
    with pytest.raises(
        PreconditionFailed, match=r"web-0-disk is taken on site-b by image 100 whose SOURCE is one/other"
    ):
        _driver(dr, "site-b").start(saved)
    assert fe.vms_ == {} and len(fe.images()) == 1


def test_an_image_already_registered_with_the_same_source_is_reused() -> None:
    dr, saved = _backed_up()
    fe = dr.fronts["site-b"]
    kept = fe.allocate_image(
        'NAME="kept"\nPERSISTENT="YES"\nSOURCE="one/one-0"\nSIZE="1024"\nFORMAT="raw"', 100
    )
    _driver(dr, "site-b").start(saved)
    vms, images = _b(dr)
    assert len(images) == 2 and vms[0].disks[0].image_id == kept


def test_stop_powers_the_vms_off_on_the_old_primary_and_terminate_removes_them() -> None:
    dr, _ = _backed_up()
    driver = _driver(dr, "site-a")
    assert driver.stop() is True
    assert [vm.state for vm in driver.vms()] == ["POWEROFF", "POWEROFF"]
    assert driver.workload_object() is None and not driver.smoke("t").ok
    assert driver.terminate() is True and driver.vms() == []
    assert len(dr.fronts["site-a"].images()) == 3  # their images stay


def test_the_home_site_resumes_its_own_vms_from_the_backup_instead_of_creating_copies() -> None:
    dr, saved = _backed_up()
    driver = _driver(dr, "site-a")
    driver.stop()
    driver.start(saved)
    assert sorted(dr.fronts["site-a"].vms_) == [0, 1] and driver.writable()
