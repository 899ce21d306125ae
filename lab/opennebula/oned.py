"""The fake front-end's state and the behaviour of each XML-RPC call, without the transport.

:class:`Oned` holds one site's objects (VMs, images, virtual networks, datastores, VM templates,
hosts) in a JSON file that is rewritten after every change, so the front-end comes back as it was
left after a restart. Each public method is one ``one.*`` call (the session already checked by
the server) and returns its result or raises :class:`OneError` with oned's error code and
message. States are OpenNebula's numbers (``VM_STATE``, ``LCM_STATE``, ``IMAGE_STATES``).

Nothing here touches Ceph or starts a process: a VM is a record, and the :class:`VmRuntime`
(``lab.opennebula.runtime``) is told when one starts or stops running and asked how each running
one is (:meth:`VmCalls.monitor`).

The modules: :mod:`lab.opennebula.codes` (oned's numbers and :class:`OneError`),
:mod:`lab.opennebula.store` (the state file and shared lookups), :mod:`lab.opennebula.vm_calls`,
:mod:`lab.opennebula.image_calls`, and here the rest of the calls. Import from this module.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from lab.opennebula import xmlbody
from lab.opennebula.codes import (
    ACTION,
    ACTIVE,
    ALLOCATE,
    AUTHENTICATION,
    AUTHORIZATION,
    DISK_TYPE_FILE,
    DISK_TYPE_RBD,
    DONE,
    DS_FILE,
    DS_IMAGE,
    DS_SYSTEM,
    FAILED,
    HOLD,
    IMAGE_TYPES,
    IMG_READY,
    IMG_USED,
    IMG_USED_PERS,
    INIT,
    INTERNAL,
    LCM_INIT,
    LCM_RUNNING,
    LOCKED,
    NO_EXISTS,
    PENDING,
    POWEROFF,
    STOPPED,
    SUSPENDED,
    SYSTEM_ATTRS,
    UNDEPLOYED,
    VM_ACTIONS,
    VM_STATE_NAMES,
    XML_RPC_API,
    OneError,
)
from lab.opennebula.image_calls import ImageCalls
from lab.opennebula.runtime import NoRuntime, VmRuntime
from lab.opennebula.store import STATE_FILE, VERSION, empty_state, in_range
from lab.opennebula.vm_calls import VmCalls

__all__ = [
    "ACTION",
    "ACTIVE",
    "ALLOCATE",
    "AUTHENTICATION",
    "AUTHORIZATION",
    "DISK_TYPE_FILE",
    "DISK_TYPE_RBD",
    "DONE",
    "DS_FILE",
    "DS_IMAGE",
    "DS_SYSTEM",
    "FAILED",
    "HOLD",
    "IMAGE_TYPES",
    "IMG_READY",
    "IMG_USED",
    "IMG_USED_PERS",
    "INIT",
    "INTERNAL",
    "LCM_INIT",
    "LCM_RUNNING",
    "LOCKED",
    "NO_EXISTS",
    "PENDING",
    "POWEROFF",
    "STATE_FILE",
    "STOPPED",
    "SUSPENDED",
    "SYSTEM_ATTRS",
    "UNDEPLOYED",
    "VERSION",
    "VM_ACTIONS",
    "VM_STATE_NAMES",
    "XML_RPC_API",
    "OneError",
    "Oned",
    "empty_state",
]


class Oned(VmCalls, ImageCalls):
    """One site's front-end state; thread-safe; saved to ``state_dir/oned.json`` on each change."""

    def __init__(
        self,
        state_dir: Path,
        *,
        site: str = "site",
        seed: Callable[[Oned], None] | None = None,
        runtime: VmRuntime | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.path = Path(state_dir) / STATE_FILE
        self.runtime: VmRuntime = runtime or NoRuntime()
        self.clock = clock
        self._lock = threading.RLock()
        if self.path.exists():
            self.data: dict[str, Any] = json.loads(self.path.read_text())
        else:
            self.data = empty_state(site)
            if seed is not None:
                seed(self)
            self.save()

    # ------------------------------------------------------------------------------ system

    def system_version(self) -> str:
        return str(self.data.get("version", VERSION))

    # ------------------------------------------------------- templates, networks, datastores

    def template_info(self, oid: int, extended: bool = False, decrypt: bool = False) -> str:
        with self._lock:
            return xmlbody.vmtemplate_xml(
                self._get("templates", oid, "one.template.info", "virtual machine template")
            )

    def vn_info(self, oid: int, decrypt: bool = False) -> str:
        with self._lock:
            return xmlbody.vnet_xml(self._get("vnets", oid, "one.vn.info", "virtual network"))

    def vnpool_info(self, flt: int = -2, start: int = -1, end: int = -1) -> str:
        with self._lock:
            vnets = in_range(self.data["vnets"], flt, start, end)
            return xmlbody.pool("VNET_POOL", (xmlbody.vnet_xml(v, short=True) for v in vnets))

    def datastore_info(self, oid: int, decrypt: bool = False) -> str:
        with self._lock:
            ds = self._get("datastores", oid, "one.datastore.info", "datastore")
            image_ids = sorted(i["id"] for i in self.data["images"].values() if i["datastore_id"] == oid)
            return xmlbody.datastore_xml(ds, image_ids)
