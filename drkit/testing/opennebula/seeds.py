"""What the lab seeds on each site, in memory."""

from __future__ import annotations

from drkit.adapters.opennebula import OneFrontend, OneVmTemplate
from drkit.testing.opennebula.frontend import FakeOneFrontend
from drkit.testing.opennebula.template import Attrs, as_map, parse_template

POOL = "one"
LABEL_KEY = "STANDBY_APP"
LABEL_VALUE = "vms"


def _base(fe: FakeOneFrontend, short: str) -> None:
    fe.add_host(0, f"kvm-{short}1")
    fe.add_datastore(0, "system", kind="SYSTEM", ds_mad="-", tm_mad="ceph", attrs=[("POOL_NAME", POOL)])
    fe.add_datastore(2, "files", kind="IMAGE", ds_mad="fs", tm_mad="shared", attrs=[("TYPE", "FILE_DS")])


def _ceph(short: str) -> Attrs:
    return [("POOL_NAME", POOL), ("CEPH_HOST", f"ceph-{short}-mon"), ("CEPH_USER", "libvirt")]


def fake_site_a(session: str = "oneadmin:fake") -> FakeOneFrontend:
    """Site A as the lab seeds it: VMs ``web-0`` (0) and ``db-0`` (1), labelled ``STANDBY_APP=vms``,
    disks ``one/one-0`` and ``one/one-1`` in Ceph datastore 1, ``db-0`` with an ISO (image 2, file
    datastore 2) and a NIC with a static IP on ``backend-a`` (no counterpart on B)."""
    fe = FakeOneFrontend("site-a", session=session)
    _base(fe, "a")
    fe.add_datastore(1, "ceph-one", kind="IMAGE", ds_mad="ceph", tm_mad="ceph", attrs=_ceph("a"))
    fe.add_vnet(0, "lan-a", "br0", "10.10.0.10", 50, [("GATEWAY", "10.10.0.1")])
    fe.add_vnet(1, "backend-a", "br1", "192.168.50.10", 20, [("NETWORK_MASK", "255.255.255.0")])
    fe.allocate_image('NAME="web-0-disk"\nPERSISTENT="YES"\nSOURCE="one/one-0"\nSIZE="1024"\nFORMAT="raw"', 1)
    fe.allocate_image('NAME="db-0-disk"\nPERSISTENT="YES"\nSOURCE="one/one-1"\nSIZE="2048"\nFORMAT="raw"', 1)
    fe.allocate_image('NAME="tools.iso"\nTYPE="CDROM"\nPATH="/var/tmp/tools.iso"\nSIZE="350"', 2)
    web = (
        'NAME="web-0"\nCPU="0.5"\nMEMORY="512"\nDISK=[IMAGE_ID="0"]\nNIC=[NETWORK_ID="0"]\n'
        f'CONTEXT=[NETWORK="YES"]\n{LABEL_KEY}="{LABEL_VALUE}"\n'
    )
    db = (
        'NAME="db-0"\nCPU="1"\nMEMORY="1024"\nDISK=[IMAGE_ID="1"]\nDISK=[IMAGE_ID="2"]\nNIC=[NETWORK_ID="0"]\n'
        'NIC=[NETWORK_ID="1",IP="192.168.50.10"]\nCONTEXT=[NETWORK="YES",PASSWORD="lab-db0-root-pw"]\n'
        f'{LABEL_KEY}="{LABEL_VALUE}"\n'
    )
    for tid, (name, text) in enumerate((("web", web), ("db", db))):
        fe.templates[tid] = OneVmTemplate(tid, name, as_map(parse_template(text)))
        fe.deploy_vm(fe.allocate_vm(text), 0)
    fe.calls.clear()
    return fe


def fake_site_b(session: str = "oneadmin:fake") -> FakeOneFrontend:
    """Site B as the lab seeds it: networks ``lan-b`` (0) and ``drill-b`` (1), Ceph datastore 100 of
    pool ``one``, no image or VM; new IDs start at 100."""
    fe = FakeOneFrontend("site-b", session=session)
    _base(fe, "b")
    fe.add_datastore(1, "default", kind="IMAGE", ds_mad="fs", tm_mad="shared", attrs=[])
    fe.add_datastore(100, "ceph-one", kind="IMAGE", ds_mad="ceph", tm_mad="ceph", attrs=_ceph("b"))
    fe.add_vnet(0, "lan-b", "br0", "10.20.0.10", 50, [("GATEWAY", "10.20.0.1")])
    fe.add_vnet(1, "drill-b", "br9", "172.16.99.10", 20, [])
    fe.next_vm = fe.next_image = 100
    return fe


def _conforms(fake: FakeOneFrontend) -> OneFrontend:
    """mypy checks here that the fake implements the whole protocol."""
    return fake
