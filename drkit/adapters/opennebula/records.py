"""What an OpenNebula front-end answers, as small frozen dataclasses of our own (never pyone objects)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal, get_args

VmAction = Literal[
    "terminate",
    "terminate-hard",
    "undeploy",
    "undeploy-hard",
    "poweroff",
    "poweroff-hard",
    "reboot",
    "reboot-hard",
    "hold",
    "release",
    "stop",
    "suspend",
    "resume",
    "resched",
    "unresched",
]
VM_ACTIONS: tuple[str, ...] = get_args(VmAction)

#: A template as a mapping: a single attribute is a string; a vector attribute (``DISK``, ``NIC``,
#: ``CONTEXT``...) is always a tuple of mappings, even when there is only one.
TemplateValue = str | tuple[Mapping[str, str], ...]
TemplateMap = Mapping[str, TemplateValue]


# ------------------------------------------------------------------------------------------ models


@dataclass(frozen=True)
class OneDisk:
    """One ``DISK`` of a VM's template."""

    disk_id: int
    image_id: int | None
    image: str
    source: str
    datastore_id: int | None
    type: str
    persistent: bool
    attributes: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class OneNic:
    """One ``NIC`` of a VM's template."""

    nic_id: int
    network: str
    network_id: int | None
    ip: str
    mac: str
    attributes: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class OneVm:
    """A VM as ``one.vm.info`` describes it."""

    id: int
    name: str
    state: str
    lcm_state: str
    template: TemplateMap
    user_template: TemplateMap
    disks: tuple[OneDisk, ...]
    nics: tuple[OneNic, ...]
    locked: bool

    @property
    def running(self) -> bool:
        return self.state == "ACTIVE" and self.lcm_state == "RUNNING"


@dataclass(frozen=True)
class OneImage:
    """An image as ``one.image.info`` describes it (``size_mb`` in MiB, as oned counts)."""

    id: int
    name: str
    state: str
    type: str
    persistent: bool
    source: str
    size_mb: int
    format: str
    datastore_id: int
    datastore: str
    vms: tuple[int, ...]
    template: TemplateMap
    locked: bool
    owner: str = ""
    """The owner's user name (``UNAME``)."""


@dataclass(frozen=True)
class OneVnet:
    """A virtual network."""

    id: int
    name: str
    bridge: str
    template: TemplateMap


@dataclass(frozen=True)
class OneDatastore:
    """A datastore; ``pool_name`` is its Ceph pool (empty when not a Ceph datastore)."""

    id: int
    name: str
    type: str
    ds_mad: str
    tm_mad: str
    pool_name: str
    image_ids: tuple[int, ...]
    template: TemplateMap


@dataclass(frozen=True)
class OneVmTemplate:
    """A registered VM template (``one.template.info``)."""

    id: int
    name: str
    template: TemplateMap
