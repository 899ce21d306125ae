"""The protocol of one site's OpenNebula front-end, as Standby uses it."""

from __future__ import annotations

from typing import Protocol

from drkit.adapters.opennebula.records import OneDatastore, OneImage, OneVm, OneVmTemplate, OneVnet, VmAction

# ---------------------------------------------------------------------------------------- protocol


class OneFrontend(Protocol):
    """What Standby asks of one site's OpenNebula front-end."""

    site: str

    def version(self) -> str:
        """``one.system.version``."""
        ...

    def vm(self, vm_id: int) -> OneVm:
        """``one.vm.info``; :class:`OneNotFound` when absent."""
        ...

    def vms_labelled(self, key: str, value: str) -> list[OneVm]:
        """Every VM not ``DONE`` whose ``USER_TEMPLATE`` has ``key`` equal to ``value``, by ID.
        (Listed whole and filtered here: oned's JSON search needs a MySQL back-end.)"""
        ...

    def allocate_vm(self, template: str, *, hold: bool = False) -> int:
        """``one.vm.allocate`` of a template in OpenNebula syntax; the new VM's ID."""
        ...

    def deploy_vm(self, vm_id: int, host_id: int, *, datastore_id: int = -1) -> None:
        """``one.vm.deploy`` on ``host_id`` (and a system datastore, -1: oned's choice)."""
        ...

    def vm_action(self, vm_id: int, action: VmAction) -> None:
        """``one.vm.action``; :class:`OneConflict` when the VM's state does not allow it."""
        ...

    def allocate_image(self, template: str, datastore_id: int) -> int:
        """``one.image.allocate`` in ``datastore_id``; a taken name is :class:`OneConflict` (ALLOCATE)."""
        ...

    def image(self, image_id: int) -> OneImage:
        """``one.image.info``."""
        ...

    def images(self, *, name: str | None = None, source: str | None = None) -> list[OneImage]:
        """Every image (``one.imagepool.info``), only those with this ``name`` and/or ``SOURCE``."""
        ...

    def make_persistent(self, image_id: int, persistent: bool = True) -> None:
        """``one.image.persistent``."""
        ...

    def delete_image(self, image_id: int) -> None:
        """``one.image.delete`` (on a Ceph datastore oned also removes the RBD image!)."""
        ...

    def vm_template(self, template_id: int) -> OneVmTemplate:
        """``one.template.info``."""
        ...

    def vnets(self) -> list[OneVnet]:
        """Every virtual network (``one.vnpool.info``)."""
        ...

    def datastore(self, datastore_id: int) -> OneDatastore:
        """``one.datastore.info``."""
        ...
