"""What each site's front-end holds when the lab is first brought up.

Site A (the primary) runs two protected VMs, both labelled ``STANDBY_APP = "vms"`` in their user
template, with their disks as persistent images in the Ceph datastore of pool ``one``
(``SOURCE = one/one-<image id>``, the RBD images that are mirrored to B):

* ``web-0`` (VM 0): disk image 0 (``one/one-0``, journal-mode mirroring), one NIC on ``lan-a``;
* ``db-0`` (VM 1): disk image 1 (``one/one-1``, snapshot-mode mirroring), an ISO (image 2, ``tools.iso``, a CD-ROM in
  A's file datastore, which B does not have), a NIC on ``lan-a`` and a NIC with a static IP on
  ``backend-a`` (a network with no counterpart on B), and a context holding a password.

Site B (the secondary) has its own hosts, networks (``lan-b``, ``drill-b``) and a Ceph datastore
of pool ``one`` (ID 100), and no image or VM; its IDs start at 100, as a separate front-end's
counters would not match A's.

The seeds go through the front-end's own calls (``image_allocate``, ``vm_allocate``, ``vm_deploy``),
so seeded objects look exactly like ones a client creates.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from lab.opennebula.oned import DS_IMAGE, DS_SYSTEM, Oned
from lab.opennebula.template import Template, parse, to_json

POOL = "one"
LABEL_KEY = "STANDBY_APP"
LABEL_VALUE = "vms"
CEPH_DS_A = 1
CEPH_DS_B = 100
FILES_DS = 2
NET_ONLY_ON_A = "backend-a"
SEEDED_VMS = ("web-0", "db-0")
#: The RBD images behind site A's seeded disks (image IDs 0 and 1, so ``one-<ID>`` as a Ceph
#: datastore names them) and how the lab mirrors each to B: ``web-0``'s in journal mode, as in the
#: guide, ``db-0``'s in snapshot mode. :mod:`lab.lab` creates them in pool :data:`POOL` of both
#: clusters, :data:`DISK_MB` each: small, for the lab's start time (the front-end's ``SIZE`` of
#: 1024 and 2048 MB is nominal; nothing here compares it with the RBD image's size).
RBD_IMAGES: dict[str, str] = {"one-0": "journal", "one-1": "snapshot"}
DISK_MB = 16


def _host(oned: Oned, oid: int, name: str) -> None:
    oned.data["hosts"][str(oid)] = {"id": oid, "name": name}


def _datastore(oned: Oned, oid: int, name: str, kind: int, ds_mad: str, tm_mad: str, extra: Template) -> None:
    template: Template = [("DS_MAD", ds_mad), ("TM_MAD", tm_mad), *extra]
    oned.data["datastores"][str(oid)] = {
        "id": oid,
        "name": name,
        "type": kind,
        "disk_type": 3 if tm_mad == "ceph" else 0,
        "ds_mad": ds_mad,
        "tm_mad": tm_mad,
        "base_path": f"/var/lib/one//datastores/{oid}",
        "total_mb": 1024 * 1024,
        "free_mb": 1000 * 1024,
        "template": to_json(template),
    }


def _ceph(site: str) -> Template:
    return [
        ("POOL_NAME", POOL),
        ("CEPH_HOST", f"ceph-{site}-mon"),
        ("CEPH_USER", "libvirt"),
        ("CEPH_SECRET", "8b5c3f0a-1f0e-4a53-9b8b-0d9c7e6f4a21"),
        ("BRIDGE_LIST", f"kvm-{site}1"),
        ("DISK_TYPE", "RBD"),
    ]


def _vnet(oned: Oned, oid: int, name: str, bridge: str, first_ip: str, size: int, extra: Template) -> None:
    oned.data["vnets"][str(oid)] = {
        "id": oid,
        "name": name,
        "bridge": bridge,
        "vn_mad": "bridge",
        "ar": {"ip": first_ip, "size": size},
        "leases": {},
        "lock": None,
        "template": to_json([("BRIDGE", bridge), ("VN_MAD", "bridge"), *extra]),
    }


def _base(oned: Oned, site: str) -> None:
    short = site.removeprefix("site-")
    _host(oned, 0, f"kvm-{short}1")
    _datastore(oned, 0, "system", DS_SYSTEM, "-", "ceph", [("POOL_NAME", POOL), ("TYPE", "SYSTEM_DS")])
    _datastore(oned, FILES_DS, "files", DS_IMAGE, "fs", "shared", [("TYPE", "FILE_DS")])


def seed_site_a(oned: Oned) -> None:
    _base(oned, "site-a")
    _datastore(oned, CEPH_DS_A, "ceph-one", DS_IMAGE, "ceph", "ceph", _ceph("a"))
    _vnet(oned, 0, "lan-a", "br0", "10.10.0.10", 50, [("GATEWAY", "10.10.0.1"), ("DNS", "10.10.0.2")])
    _vnet(oned, 1, NET_ONLY_ON_A, "br1", "192.168.50.10", 20, [("NETWORK_MASK", "255.255.255.0")])
    web = oned.image_allocate(
        f'NAME = "web-0-disk"\nTYPE = "OS"\nPERSISTENT = "YES"\nSOURCE = "{POOL}/one-0"\nSIZE = "1024"\n'
        'FORMAT = "raw"\nDEV_PREFIX = "vd"\n',
        CEPH_DS_A,
    )
    db = oned.image_allocate(
        f'NAME = "db-0-disk"\nTYPE = "OS"\nPERSISTENT = "YES"\nSOURCE = "{POOL}/one-1"\nSIZE = "2048"\n'
        'FORMAT = "raw"\nDEV_PREFIX = "vd"\n',
        CEPH_DS_A,
    )
    iso = oned.image_allocate(
        'NAME = "tools.iso"\nTYPE = "CDROM"\nPATH = "/var/tmp/tools.iso"\nSIZE = "350"\nFORMAT = "raw"\n',
        FILES_DS,
    )
    web_tmpl = (
        'NAME = "web-0"\nCPU = "0.5"\nVCPU = "1"\nMEMORY = "512"\n'
        f'DISK = [ IMAGE_ID = "{web}" ]\n'
        'NIC = [ NETWORK_ID = "0" ]\n'
        'CONTEXT = [ NETWORK = "YES", SSH_PUBLIC_KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIlab web-0" ]\n'
        'GRAPHICS = [ TYPE = "VNC", LISTEN = "0.0.0.0" ]\n'
        'OS = [ ARCH = "x86_64" ]\n'
        f'{LABEL_KEY} = "{LABEL_VALUE}"\nDESCRIPTION = "nginx front"\n'
    )
    db_tmpl = (
        'NAME = "db-0"\nCPU = "1"\nVCPU = "2"\nMEMORY = "1024"\n'
        f'DISK = [ IMAGE_ID = "{db}" ]\n'
        f'DISK = [ IMAGE_ID = "{iso}" ]\n'
        'NIC = [ NETWORK_ID = "0" ]\n'
        'NIC = [ NETWORK_ID = "1", IP = "192.168.50.10" ]\n'
        'CONTEXT = [ NETWORK = "YES", PASSWORD = "lab-db0-root-pw", '
        'ETH1_IP = "192.168.50.10", ETH1_MASK = "255.255.255.0" ]\n'
        'OS = [ ARCH = "x86_64", BOOT = "disk0" ]\n'
        f'{LABEL_KEY} = "{LABEL_VALUE}"\nDESCRIPTION = "postgres"\n'
    )
    templates: list[tuple[str, str]] = [("web", web_tmpl), ("db", db_tmpl)]
    for tid, (name, text) in enumerate(templates):
        oned.data["templates"][str(tid)] = {
            "id": tid,
            "name": name,
            "regtime": oned.now(),
            "lock": None,
            "template": to_json([(k, v) for k, v in parse(text) if k != "NAME"] + [("NAME", name)]),
        }
    for text in (web_tmpl, db_tmpl):
        vm_id = oned.vm_allocate(text)
        oned.vm_deploy(vm_id, 0)


def seed_site_b(oned: Oned) -> None:
    _base(oned, "site-b")
    _datastore(oned, 1, "default", DS_IMAGE, "fs", "shared", [("TYPE", "IMAGE_DS")])
    _datastore(oned, CEPH_DS_B, "ceph-one", DS_IMAGE, "ceph", "ceph", _ceph("b"))
    _vnet(oned, 0, "lan-b", "br0", "10.20.0.10", 50, [("GATEWAY", "10.20.0.1"), ("DNS", "10.20.0.2")])
    _vnet(oned, 1, "drill-b", "br9", "172.16.99.10", 20, [("DESCRIPTION", "isolated network for drills")])
    oned.data["next_id"] = {"vms": 100, "images": 100}


SEEDS: dict[str, Callable[[Oned], None]] = {"site-a": seed_site_a, "site-b": seed_site_b}


def seed_for(site: str) -> Callable[[Oned], None] | None:
    """The seed of ``site`` (``site-a``, ``site-b``), or None for an empty front-end."""
    return SEEDS.get(site)


def describe(oned: Oned) -> dict[str, Any]:
    """A short summary (object counts) for logs."""
    data = oned.snapshot()
    return {kind: len(data[kind]) for kind in ("vms", "images", "vnets", "datastores", "templates")}
