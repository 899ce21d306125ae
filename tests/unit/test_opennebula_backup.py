"""The nightly backup of a VM app (checks.kind opennebula) on the fake two-site world: per VM its
template and its disks' image definitions in the store's layout, the index last, the context's
secret values sealed (never in plaintext in the store), verify, and one line for a VM that cannot
be read, with no index written."""

from __future__ import annotations

import base64

import pytest

from drkit.domain import crypto
from drkit.domain.blobs import open_blob
from drkit.domain.errors import ConfigError, Conflict, NotFound, TransientError
from drkit.domain.opennebula_backup import API_VERSION, saved_vms
from drkit.domain.retention import RetentionPolicy
from drkit.jobs.backup import back_up
from drkit.jobs.backup_retention import apply_retention
from drkit.jobs.backup_runs import read_index
from drkit.jobs.requests import BackupRequest, VerifyRequest
from drkit.jobs.verify import run_verify
from drkit.testing.vm_dr import FakeVmDr, fake_vm_dr

KEY = crypto.MasterKey(bytes(range(32)))
SECRET = "lab-db0-root-pw"  # db-0's CONTEXT/PASSWORD as site A is seeded


def _backup(dr: FakeVmDr, key: crypto.MasterKey | None = KEY) -> str:
    return back_up(dr.world, BackupRequest(app="vms"), key=key, clock=dr.clock).run_id


def _manifests(dr: FakeVmDr, run_id: str) -> list[dict[str, object]]:
    layout = dr.world.bundle("site-a").layout
    index = read_index(dr.store, layout, "site-a", "vms", run_id, key=KEY)
    return [open_blob(e, dr.store.get(e.key), KEY) for e in index.objects]


def test_the_backup_saves_each_vm_and_its_images_and_seals_the_context_secrets() -> None:
    dr = fake_vm_dr()
    run_id = _backup(dr)
    manifests = _manifests(dr, run_id)
    names = sorted(f"{m['kind']}/{m['metadata']['name']}" for m in manifests)  # type: ignore[index]
    assert names == [
        "Image/image-0",
        "Image/image-1",
        "Image/image-2",
        "Secret/vm-1-secrets",
        "VirtualMachine/vm-0",
        "VirtualMachine/vm-1",
    ]
    assert all(m["apiVersion"] == API_VERSION for m in manifests)
    public = next(m for m in manifests if m["metadata"] == {"name": "vm-1"})  # type: ignore[comparison-overlap]
    assert "PASSWORD" not in public["spec"]["template"]["CONTEXT"]  # type: ignore[index]
    saved = {s.vm.id: s for s in saved_vms(manifests)}  # type: ignore[arg-type]
    assert saved[1].vm.template["CONTEXT"]["PASSWORD"] == SECRET
    images = {i.name: i for s in saved.values() for i in s.images}
    disk = images["db-0-disk"]
    assert (disk.source, disk.size_mb, disk.format, disk.datastore, disk.persistent) == (
        "one/one-1",
        2048,
        "raw",
        "ceph-one",
        True,
    )
    assert images["tools.iso"].type == "CDROM"
    # the store holds no plaintext (nor base64) of the secret, anywhere
    for data in dr.store.objects.values():
        blob = data if isinstance(data, bytes) else bytes(data)
        assert SECRET.encode() not in blob and base64.b64encode(SECRET.encode()) not in blob


def test_without_a_key_the_context_secrets_are_refused_and_nothing_is_written() -> None:
    dr = fake_vm_dr()
    with pytest.raises(ConfigError, match=r"app vms on site site-a has 1 Secret\(s\) .*vm-1-secrets"):
        _backup(dr, key=None)
    assert dr.store.objects == {}


def test_verify_checks_the_vm_records() -> None:
    dr = fake_vm_dr()
    _backup(dr)
    result = run_verify(dr.world, VerifyRequest(app="vms", dry_run_site="site-b"), key=KEY)
    assert result.ok and result.reports[0].checked == 6, result.problems()


def test_verify_names_a_vm_record_that_does_not_parse() -> None:
    from drkit.domain.backup_index import IndexEntry
    from drkit.jobs.verify import validate_manifest

    bad = {"apiVersion": API_VERSION, "kind": "Image", "metadata": {"name": "image-0"}, "spec": {"id": 0}}
    entry = IndexEntry(
        api_version=API_VERSION,
        kind="Image",
        namespace=None,
        name="image-0",
        path="p",
        key="k",
        address="a",
        sha256="0" * 64,
        size=1,
        encrypted=False,
        stored_by="r",
    )
    reason = validate_manifest(bad, entry)
    assert reason is not None and reason.startswith("spec.name: ")


@pytest.mark.parametrize(
    ("fault", "error", "words"),
    [
        ("down", TransientError, "run `standby backup run --app vms` again once the front-end answers"),
        ("locked", Conflict, "VM 1 db-0 on site site-a cannot be read for the backup"),
    ],
)
def test_a_vm_that_cannot_be_read_fails_the_backup_in_one_line_with_no_index(
    fault: str, error: type[Exception], words: str
) -> None:
    dr = fake_vm_dr()
    if fault == "down":
        dr.fronts["site-a"].running = False
    else:
        dr.fronts["site-a"].lock("vm", 1)
    with pytest.raises(error) as info:
        _backup(dr)
    message = str(info.value)
    assert words in message and "site-a" in message and "\n" not in message.split(" (next: ")[0]
    assert dr.store.objects == {}


def test_a_vm_named_by_id_that_is_missing_fails_the_backup() -> None:
    dr = fake_vm_dr(vm_label=None, vm_ids=[0, 7])
    with pytest.raises(NotFound, match=r"app vms: VM 7 on site site-a cannot be read for the backup"):
        _backup(dr)
    assert dr.store.objects == {}


def test_retention_prunes_a_vm_apps_runs_and_their_unreferenced_blobs() -> None:
    dr = fake_vm_dr()
    first = _backup(dr)
    dr.clock.advance(86400)
    dr.fronts["site-a"].vms_[0].user.append(("NOTE", "changed"))  # web-0's template changes
    second = _backup(dr)
    app, site = dr.world.config.app("vms"), dr.world.config.site("site-a")
    result = apply_retention(dr.store, site, app, RetentionPolicy(daily=1, weekly=0, monthly=0), key=KEY)
    assert result.runs_deleted == (first,) and result.blobs_deleted == 1  # web-0's old record
    kept = run_verify(dr.world, VerifyRequest(app="vms", run_id=second), key=KEY)
    assert kept.ok, kept.problems()
