"""The seam between the fake front-end's state and whatever runs a VM.

In this lab a VM is state only: :class:`NoRuntime` does nothing. A later runtime makes a VM a
process that opens its disks through librbd; the front-end calls it when a VM starts running
(``deploy``, ``resume`` from ``POWEROFF``/``SUSPENDED``) and when it stops (``poweroff``,
``terminate``, ``undeploy``, ``stop``, ``suspend``). A runtime that cannot start a VM raises
:class:`RuntimeFailure`; the front-end then answers the call with an ACTION error and leaves the VM
where it was.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol


class RuntimeFailure(Exception):
    """The runtime could not start or stop a VM; the message is returned to the caller."""


class VmRuntime(Protocol):
    """What the front-end calls when a VM enters or leaves ``RUNNING``.

    ``vm`` is a read-only view of the VM's record: ``id``, ``name``, ``template`` (the expanded
    ``TEMPLATE`` in :mod:`lab.opennebula.template`'s JSON form, whose ``DISK`` vectors carry
    ``SOURCE``, ``POOL_NAME`` and ``IMAGE_ID``).
    """

    def start(self, vm: Mapping[str, Any]) -> None: ...

    def stop(self, vm: Mapping[str, Any], action: str) -> None: ...


class NoRuntime:
    """The default: a VM is only a record in the front-end's state."""

    def start(self, vm: Mapping[str, Any]) -> None:
        return None

    def stop(self, vm: Mapping[str, Any], action: str) -> None:
        return None
