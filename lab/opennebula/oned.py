"""The fake front-end's state and the behaviour of each XML-RPC call, without the transport.

:class:`Oned` holds one site's objects (VMs, images, virtual networks, datastores, VM templates,
hosts) in a JSON file that is rewritten after every change, so the front-end comes back as it was
left after a restart. Each public method is one ``one.*`` call (the session already checked by
the server) and returns its result or raises :class:`OneError` with oned's error code and
message. States are OpenNebula's numbers (``VM_STATE``, ``LCM_STATE``, ``IMAGE_STATES``).

Nothing here touches Ceph or starts a process: a VM is a record, and the :class:`VmRuntime`
(``lab.opennebula.runtime``) is told when one starts or stops running.
"""

from __future__ import annotations

import copy
import hashlib
import ipaddress
import json
import os
import threading
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from lab.opennebula import xmlbody
from lab.opennebula.runtime import NoRuntime, RuntimeFailure, VmRuntime
from lab.opennebula.template import (
    Template,
    TemplateError,
    Vector,
    from_json,
    get_str,
    parse,
    to_json,
    vget,
)

STATE_FILE = "oned.json"
VERSION = "6.10.3"

# Error codes of OpenNebula's XML-RPC API.
AUTHENTICATION = 0x0100
AUTHORIZATION = 0x0200
NO_EXISTS = 0x0400
ACTION = 0x0800
XML_RPC_API = 0x1000
INTERNAL = 0x2000
ALLOCATE = 0x4000
LOCKED = 0x8000

# VM_STATE and LCM_STATE numbers (pyone.VM_STATE / pyone.LCM_STATE).
INIT, PENDING, HOLD, ACTIVE, STOPPED, SUSPENDED, DONE, FAILED, POWEROFF, UNDEPLOYED = range(10)
VM_STATE_NAMES = (
    "INIT",
    "PENDING",
    "HOLD",
    "ACTIVE",
    "STOPPED",
    "SUSPENDED",
    "DONE",
    "FAILED",
    "POWEROFF",
    "UNDEPLOYED",
)
LCM_INIT, LCM_RUNNING = 0, 3
# IMAGE_STATES numbers.
IMG_READY, IMG_USED, IMG_USED_PERS = 1, 2, 8
# Image TYPE and DISK_TYPE numbers.
IMAGE_TYPES = {"OS": 0, "CDROM": 1, "DATABLOCK": 2}
DISK_TYPE_FILE, DISK_TYPE_RBD = 0, 3
# Datastore TYPE numbers.
DS_IMAGE, DS_SYSTEM, DS_FILE = 0, 1, 2

# Attributes oned keeps in a VM's TEMPLATE; the others stay in its USER_TEMPLATE.
SYSTEM_ATTRS = frozenset(
    [
        "CPU",
        "VCPU",
        "VCPU_MAX",
        "MEMORY",
        "MEMORY_MAX",
        "DISK",
        "NIC",
        "NIC_ALIAS",
        "NIC_DEFAULT",
        "CONTEXT",
        "OS",
        "GRAPHICS",
        "INPUT",
        "FEATURES",
        "RAW",
        "PCI",
        "NUMA_NODE",
        "TOPOLOGY",
        "EMULATOR",
        "CPU_MODEL",
        "VIDEO",
        "SECURITY_GROUP_RULE",
        "TEMPLATE_ID",
        "VMID",
        "AUTOMATIC_REQUIREMENTS",
        "AUTOMATIC_DS_REQUIREMENTS",
        "AUTOMATIC_NIC_REQUIREMENTS",
    ]
)
VM_ACTIONS = (
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
)


class OneError(Exception):
    """An error reply: ``[False, message, code, resp_id]``."""

    def __init__(self, code: int, message: str, resp_id: int = -1) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.resp_id = resp_id


def _no_exists(method: str, what: str, oid: int) -> OneError:
    return OneError(NO_EXISTS, f"[{method}] Error getting {what} [{oid}].", oid)


def _locked(method: str, what: str, oid: int) -> OneError:
    return OneError(LOCKED, f"[{method}] The resource {what} is locked. [{oid}].", oid)


class Oned:
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

    # ------------------------------------------------------------------ persistence and helpers

    def save(self) -> None:
        """Write the state atomically (a crash leaves the old file or the new one)."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps(self.data, indent=1, sort_keys=True))
        os.replace(tmp, self.path)

    def now(self) -> int:
        return int(self.clock())

    def _next_id(self, kind: str) -> int:
        value = int(self.data["next_id"][kind])
        self.data["next_id"][kind] = value + 1
        return value

    def _get(self, kind: str, oid: int, method: str, what: str) -> dict[str, Any]:
        if isinstance(oid, bool) or not isinstance(oid, int):
            raise OneError(XML_RPC_API, f"[{method}] the object ID must be an integer", -1)
        record = self.data[kind].get(str(oid))
        if record is None:
            raise _no_exists(method, what, oid)
        return record  # type: ignore[no-any-return]

    def _check_unlocked(self, record: dict[str, Any], method: str, what: str) -> None:
        if record.get("lock"):
            raise _locked(method, what, int(record["id"]))

    def snapshot(self) -> dict[str, Any]:
        """A deep copy of the whole state (for tests and the lab's status)."""
        with self._lock:
            return copy.deepcopy(self.data)

    def set_lock(self, kind: str, oid: int, level: int) -> None:
        """Lock (``level`` 1-4, as ``onevm lock --use/--manage/--admin/--all``) or unlock (0) an object."""
        with self._lock:
            record = self._get(kind, oid, "lab.lock", kind)
            record["lock"] = {"level": level, "time": self.now()} if level else None
            self.save()

    # ------------------------------------------------------------------------------ system

    def system_version(self) -> str:
        return str(self.data.get("version", VERSION))

    # ----------------------------------------------------------------------------------- VMs

    def vm_info(self, oid: int, decrypt: bool = False) -> str:
        with self._lock:
            return xmlbody.vm_xml(self._get("vms", oid, "one.vm.info", "virtual machine"))

    def vmpool_infoextended(self, flt: int, start: int, end: int, state: int, query: str = "") -> str:
        with self._lock:
            vms = _in_range(self.data["vms"], flt, start, end)
            if state == -1:
                vms = [vm for vm in vms if vm["state"] != DONE]
            elif state != -2:
                vms = [vm for vm in vms if vm["state"] == state]
            bodies = [xmlbody.vm_xml(vm) for vm in vms]
            if query:
                bodies = [b for vm, b in zip(vms, bodies, strict=True) if _matches(vm, b, query)]
            return xmlbody.pool("VM_POOL", bodies)

    def vm_allocate(self, text: str, hold: bool = False) -> int:
        method = "one.vm.allocate"
        try:
            tmpl = parse(text)
        except TemplateError as exc:
            raise OneError(INTERNAL, f"[{method}] Parse error: {exc}", -1) from None
        with self._lock:
            vm_id = int(self.data["next_id"]["vms"])
            fail = f"[{method}] Error allocating a new virtual machine."
            for key in ("MEMORY", "CPU"):
                value = get_str(tmpl, key)
                try:
                    ok = value is not None and float(value) > 0
                except ValueError:
                    ok = False
                if not ok:
                    raise OneError(ALLOCATE, f"{fail} {key} attribute must be a positive number.", -1)
            name = get_str(tmpl, "NAME") or f"one-{vm_id}"
            system: Template = []
            user: Template = []
            disks: list[Vector] = []
            nics: list[Vector] = []
            for key, value in tmpl:
                if key == "NAME":
                    continue
                if key == "DISK" and isinstance(value, list):
                    disks.append(value)
                elif key == "NIC" and isinstance(value, list):
                    nics.append(value)
                elif key in SYSTEM_ATTRS:
                    system.append((key, value))
                else:
                    user.append((key, value))
            expanded_disks = [self._expand_disk(d, i, vm_id, fail) for i, d in enumerate(disks)]
            expanded_nics = self._expand_nics(nics, vm_id, fail)
            # Only now that every check passed, take the images and leases.
            for disk in expanded_disks:
                image = self.data["images"][vget(disk, "IMAGE_ID") or ""]
                image["vms"].append(vm_id)
                image["state"] = IMG_USED_PERS if image["persistent"] else IMG_USED
            for nic in expanded_nics:
                vnet = self.data["vnets"][vget(nic, "NETWORK_ID") or ""]
                vnet.setdefault("leases", {})[vget(nic, "IP") or ""] = vm_id
            template: Template = [
                *system,
                *(("DISK", d) for d in expanded_disks),
                *(("NIC", n) for n in expanded_nics),
                ("TM_MAD_SYSTEM", ""),
                ("VMID", str(vm_id)),
            ]
            self._next_id("vms")
            state = HOLD if hold else PENDING
            self.data["vms"][str(vm_id)] = {
                "id": vm_id,
                "name": name,
                "state": state,
                "lcm_state": LCM_INIT,
                "prev_state": state,
                "prev_lcm_state": LCM_INIT,
                "resched": 0,
                "stime": self.now(),
                "etime": 0,
                "deploy_id": "",
                "lock": None,
                "template": to_json(template),
                "user_template": to_json(user),
                "history": None,
            }
            self.save()
            return vm_id

    def _expand_disk(self, disk: Vector, disk_id: int, vm_id: int, fail: str) -> Vector:
        image_id = vget(disk, "IMAGE_ID")
        if image_id is None:
            name = vget(disk, "IMAGE")
            found = [i for i in self.data["images"].values() if name is not None and i["name"] == name]
            if not found:
                raise OneError(ALLOCATE, f"{fail} DISK {disk_id}: no IMAGE_ID or IMAGE naming an image.", -1)
            image = found[0]
        else:
            image = self.data["images"].get(image_id)
            if image is None:
                raise OneError(ALLOCATE, f"{fail} Error getting image [{image_id}].", -1)
        if image.get("lock"):
            raise OneError(ALLOCATE, f"{fail} The image [{image['id']}] is locked.", -1)
        if image["persistent"] and image["vms"]:
            raise OneError(
                ALLOCATE,
                f"{fail} Cannot acquire image {image['id']}, it is persistent and already in use.",
                -1,
            )
        if image["state"] not in (IMG_READY, IMG_USED):
            raise OneError(ALLOCATE, f"{fail} Image {image['id']} is not READY.", -1)
        ds = self.data["datastores"][str(image["datastore_id"])]
        cdrom = image["type"] == IMAGE_TYPES["CDROM"]
        rbd = ds["tm_mad"] == "ceph"
        given = dict(disk)
        out: Vector = [
            ("CLONE", "NO" if image["persistent"] else "YES"),
            ("DATASTORE", ds["name"]),
            ("DATASTORE_ID", str(ds["id"])),
            ("DEV_PREFIX", given.get("DEV_PREFIX", "hd" if cdrom else "vd")),
            ("DISK_ID", str(disk_id)),
            ("DISK_TYPE", "RBD" if rbd else "FILE"),
            ("DRIVER", given.get("DRIVER", "raw")),
            ("FORMAT", image["format"]),
            ("IMAGE", image["name"]),
            ("IMAGE_ID", str(image["id"])),
            ("IMAGE_STATE", str(image["state"])),
            ("ORIGINAL_SIZE", str(image["size"])),
        ]
        if image["persistent"]:
            out.append(("PERSISTENT", "YES"))
        if rbd:
            out.append(("POOL_NAME", get_str(from_json(ds["template"]), "POOL_NAME") or "one"))
        out += [
            ("READONLY", "YES" if cdrom else "NO"),
            ("SAVE", "YES" if image["persistent"] else "NO"),
            ("SIZE", str(image["size"])),
            ("SOURCE", image["source"]),
            ("TARGET", given.get("TARGET", ("hd" if cdrom else "vd") + "abcdefgh"[disk_id % 8])),
            ("TM_MAD", ds["tm_mad"]),
            ("TYPE", "CDROM" if cdrom else ("RBD" if rbd else "FILE")),
        ]
        return out

    def _expand_nics(self, nics: list[Vector], vm_id: int, fail: str) -> list[Vector]:
        out: list[Vector] = []
        taken: set[tuple[str, str]] = set()
        for nic_id, nic in enumerate(nics):
            given = dict(nic)
            vnet = None
            if "NETWORK_ID" in given:
                vnet = self.data["vnets"].get(given["NETWORK_ID"])
            elif "NETWORK" in given:
                vnet = next((v for v in self.data["vnets"].values() if v["name"] == given["NETWORK"]), None)
            if vnet is None:
                ref = given.get("NETWORK_ID") or given.get("NETWORK") or "(none)"
                raise OneError(ALLOCATE, f"{fail} NIC {nic_id}: virtual network {ref} does not exist.", -1)
            leases = vnet.get("leases", {})
            first = ipaddress.IPv4Address(vnet["ar"]["ip"])
            pool = [str(first + n) for n in range(int(vnet["ar"]["size"]))]
            if "IP" in given:
                ip = given["IP"]
                if ip not in pool:
                    raise OneError(
                        ALLOCATE, f"{fail} NIC {nic_id}: IP {ip} is not in network {vnet['id']}.", -1
                    )
                if ip in leases or (str(vnet["id"]), ip) in taken:
                    raise OneError(ALLOCATE, f"{fail} NIC {nic_id}: IP {ip} is already in use.", -1)
            else:
                free = [p for p in pool if p not in leases and (str(vnet["id"]), p) not in taken]
                if not free:
                    raise OneError(
                        ALLOCATE, f"{fail} NIC {nic_id}: no free lease in network {vnet['id']}.", -1
                    )
                ip = free[0]
            taken.add((str(vnet["id"]), ip))
            out.append(
                [
                    ("AR_ID", "0"),
                    ("BRIDGE", vnet["bridge"]),
                    ("BRIDGE_TYPE", "linux"),
                    ("IP", ip),
                    ("MAC", xmlbody.mac_of(ip)),
                    ("MODEL", given.get("MODEL", "virtio")),
                    ("NAME", f"NIC{nic_id}"),
                    ("NETWORK", vnet["name"]),
                    ("NETWORK_ID", str(vnet["id"])),
                    ("NIC_ID", str(nic_id)),
                    ("SECURITY_GROUPS", "0"),
                    ("TARGET", f"one-{vm_id}-{nic_id}"),
                    ("VN_MAD", vnet["vn_mad"]),
                ]
            )
        return out

    def vm_deploy(
        self, oid: int, host_id: int, enforce: bool = False, ds_id: int = -1, nic_template: str = ""
    ) -> int:
        method = "one.vm.deploy"
        with self._lock:
            vm = self._get("vms", oid, method, "virtual machine")
            host = self.data["hosts"].get(str(host_id))
            if host is None:
                raise _no_exists(method, "host", host_id)
            if ds_id == -1:
                ds_id = next(int(d["id"]) for d in self.data["datastores"].values() if d["type"] == DS_SYSTEM)
            ds = self.data["datastores"].get(str(ds_id))
            if ds is None or ds["type"] != DS_SYSTEM:
                raise _no_exists(method, "datastore", ds_id)
            self._check_unlocked(vm, method, "virtual machine")
            if vm["state"] not in (PENDING, HOLD, STOPPED, UNDEPLOYED):
                raise OneError(
                    ACTION,
                    f"[{method}] Deploy action is not available for state {self._state_str(vm)}",
                    oid,
                )
            self._start(vm, method)
            template = [(k, v) for k, v in from_json(vm["template"]) if k != "TM_MAD_SYSTEM"]
            vm["template"] = to_json([*template, ("TM_MAD_SYSTEM", ds["tm_mad"])])
            vm["deploy_id"] = f"one-{oid}"
            vm["history"] = {"hostname": host["name"], "hid": host_id, "ds_id": ds_id, "stime": self.now()}
            self.save()
            return oid

    def vm_action(self, action: str, oid: int) -> int:
        method = "one.vm.action"
        with self._lock:
            vm = self._get("vms", oid, method, "virtual machine")
            if action not in VM_ACTIONS:
                raise OneError(ACTION, f"[{method}] Invalid action: {action}", oid)
            self._check_unlocked(vm, method, "virtual machine")
            state, lcm = vm["state"], vm["lcm_state"]
            running = state == ACTIVE and lcm == LCM_RUNNING
            base = action.removesuffix("-hard")
            if base == "terminate" and state in (
                ACTIVE,
                POWEROFF,
                SUSPENDED,
                STOPPED,
                UNDEPLOYED,
                PENDING,
                HOLD,
            ):
                if running:
                    self._stop(vm, action, method)
                self._set(vm, DONE, LCM_INIT)
                vm["etime"] = self.now()
                self._release(vm)
            elif base == "poweroff" and running:
                self._stop(vm, action, method)
                self._set(vm, POWEROFF, LCM_INIT)
            elif base == "undeploy" and (running or state == POWEROFF):
                if running:
                    self._stop(vm, action, method)
                self._set(vm, UNDEPLOYED, LCM_INIT)
            elif base in ("stop", "suspend") and running:
                self._stop(vm, action, method)
                self._set(vm, STOPPED if base == "stop" else SUSPENDED, LCM_INIT)
            elif base == "reboot" and running:
                pass
            elif action in ("resched", "unresched") and running:
                vm["resched"] = 1 if action == "resched" else 0
            elif action == "hold" and state == PENDING:
                self._set(vm, HOLD, LCM_INIT)
            elif action == "release" and state == HOLD:
                self._set(vm, PENDING, LCM_INIT)
            elif action == "resume" and state in (POWEROFF, SUSPENDED):
                self._start(vm, method)
            elif action == "resume" and state in (STOPPED, UNDEPLOYED):
                self._set(vm, PENDING, LCM_INIT)
            else:
                raise OneError(
                    ACTION, f"[{method}] This action is not available for state {self._state_str(vm)}", oid
                )
            self.save()
            return oid

    def _state_str(self, vm: dict[str, Any]) -> str:
        if vm["state"] == ACTIVE and vm["lcm_state"] == LCM_RUNNING:
            return "RUNNING"
        return VM_STATE_NAMES[vm["state"]]

    def _set(self, vm: dict[str, Any], state: int, lcm: int) -> None:
        vm["prev_state"], vm["prev_lcm_state"] = vm["state"], vm["lcm_state"]
        vm["state"], vm["lcm_state"] = state, lcm

    def _start(self, vm: dict[str, Any], method: str) -> None:
        try:
            self.runtime.start(copy.deepcopy(vm))
        except RuntimeFailure as exc:
            raise OneError(
                ACTION, f"[{method}] Error starting virtual machine {vm['id']}: {exc}", vm["id"]
            ) from None
        self._set(vm, ACTIVE, LCM_RUNNING)

    def _stop(self, vm: dict[str, Any], action: str, method: str) -> None:
        try:
            self.runtime.stop(copy.deepcopy(vm), action)
        except RuntimeFailure as exc:
            raise OneError(
                ACTION, f"[{method}] Error stopping virtual machine {vm['id']}: {exc}", vm["id"]
            ) from None

    def _release(self, vm: dict[str, Any]) -> None:
        """A VM reached DONE: its images and leases are free again."""
        vm_id = vm["id"]
        for image in self.data["images"].values():
            if vm_id in image["vms"]:
                image["vms"].remove(vm_id)
                if not image["vms"]:
                    image["state"] = IMG_READY
        for vnet in self.data["vnets"].values():
            leases = vnet.get("leases", {})
            for ip in [ip for ip, owner in leases.items() if owner == vm_id]:
                del leases[ip]

    # -------------------------------------------------------------------------------- images

    def image_info(self, oid: int, decrypt: bool = False) -> str:
        with self._lock:
            image = self._get("images", oid, "one.image.info", "image")
            return xmlbody.image_xml(image, self._ds_name(image["datastore_id"]))

    def imagepool_info(self, flt: int = -2, start: int = -1, end: int = -1) -> str:
        with self._lock:
            images = _in_range(self.data["images"], flt, start, end)
            return xmlbody.pool(
                "IMAGE_POOL", (xmlbody.image_xml(i, self._ds_name(i["datastore_id"])) for i in images)
            )

    def _ds_name(self, ds_id: int) -> str:
        ds = self.data["datastores"].get(str(ds_id))
        return str(ds["name"]) if ds else ""

    def image_allocate(self, text: str, ds_id: int, skip_capacity_check: bool = False) -> int:
        method = "one.image.allocate"
        try:
            tmpl = parse(text)
        except TemplateError as exc:
            raise OneError(INTERNAL, f"[{method}] Parse error: {exc}", -1) from None
        with self._lock:
            ds = self._get("datastores", ds_id, method, "datastore")
            fail = f"[{method}] Error allocating a new image."
            if ds["type"] == DS_SYSTEM:
                raise OneError(
                    ACTION, f"[{method}] New images cannot be allocated in a system datastore.", ds_id
                )
            name = get_str(tmpl, "NAME")
            if not name:
                raise OneError(ALLOCATE, f"{fail} No NAME in template.", ds_id)
            for image in self.data["images"].values():
                if image["name"] == name:
                    raise OneError(ALLOCATE, f"{fail} NAME is already taken by IMAGE {image['id']}.", ds_id)
            kind = (get_str(tmpl, "TYPE") or "OS").upper()
            if kind not in IMAGE_TYPES:
                raise OneError(ALLOCATE, f"{fail} Wrong Image type {kind}.", ds_id)
            source = get_str(tmpl, "SOURCE") or ""
            path = get_str(tmpl, "PATH") or ""
            if not source and not path:
                raise OneError(ALLOCATE, f"{fail} No PATH nor SOURCE in template.", ds_id)
            if source and path:
                raise OneError(
                    ALLOCATE, f"{fail} Template malformed, PATH and SOURCE are mutually exclusive.", ds_id
                )
            size = get_str(tmpl, "SIZE") or "0"
            if not size.isdigit():
                raise OneError(ALLOCATE, f"{fail} SIZE must be a whole number of MiB.", ds_id)
            if source and int(size) == 0:
                raise OneError(ALLOCATE, f"{fail} SIZE is mandatory when SOURCE is given.", ds_id)
            persistent = (get_str(tmpl, "PERSISTENT") or "NO").upper() in ("YES", "1", "TRUE")
            image_id = self._next_id("images")
            if not source and ds["tm_mad"] == "ceph":
                source = f"{get_str(from_json(ds['template']), 'POOL_NAME') or 'one'}/one-{image_id}"
            elif not source:
                source = f"{ds['base_path']}/{hashlib.md5(f'{image_id}:{path}'.encode()).hexdigest()}"
            kept = [
                (k, v) for k, v in tmpl if k not in ("NAME", "TYPE", "PERSISTENT", "SOURCE", "PATH", "SIZE")
            ]
            if not any(k == "DEV_PREFIX" for k, _ in kept):
                kept.append(("DEV_PREFIX", "hd" if kind == "CDROM" else "vd"))
            self.data["images"][str(image_id)] = {
                "id": image_id,
                "name": name,
                "type": IMAGE_TYPES[kind],
                "disk_type": DISK_TYPE_RBD if ds["tm_mad"] == "ceph" else DISK_TYPE_FILE,
                "persistent": persistent,
                "regtime": self.now(),
                "source": source,
                "path": path,
                "format": get_str(tmpl, "FORMAT") or "raw",
                "size": int(size),
                "state": IMG_READY,
                "vms": [],
                "datastore_id": ds_id,
                "lock": None,
                "template": to_json(kept),
            }
            self.save()
            return image_id

    def image_persistent(self, oid: int, persistent: bool) -> int:
        method = "one.image.persistent"
        with self._lock:
            image = self._get("images", oid, method, "image")
            self._check_unlocked(image, method, "image")
            if image["vms"]:
                raise OneError(
                    ACTION,
                    f"[{method}] Cannot change persistent state of an image in use by VMs {image['vms']}.",
                    oid,
                )
            image["persistent"] = bool(persistent)
            self.save()
            return oid

    def image_delete(self, oid: int, force: bool = False) -> int:
        method = "one.image.delete"
        with self._lock:
            image = self._get("images", oid, method, "image")
            self._check_unlocked(image, method, "image")
            if image["vms"]:
                state = "USED_PERS" if image["persistent"] else "USED"
                raise OneError(ACTION, f"[{method}] Cannot delete image in {state} state.", oid)
            del self.data["images"][str(oid)]
            self.save()
            return oid

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
            vnets = _in_range(self.data["vnets"], flt, start, end)
            return xmlbody.pool("VNET_POOL", (xmlbody.vnet_xml(v, short=True) for v in vnets))

    def datastore_info(self, oid: int, decrypt: bool = False) -> str:
        with self._lock:
            ds = self._get("datastores", oid, "one.datastore.info", "datastore")
            image_ids = sorted(i["id"] for i in self.data["images"].values() if i["datastore_id"] == oid)
            return xmlbody.datastore_xml(ds, image_ids)


def _in_range(records: dict[str, dict[str, Any]], flt: int, start: int, end: int) -> list[dict[str, Any]]:
    """The records a pool call's filter flag and range select, by ID (everything belongs to oneadmin)."""
    ordered = sorted(records.values(), key=lambda r: int(r["id"]))
    if flt >= 1:  # another user's resources: none here
        return []
    if end >= -1:
        return [r for r in ordered if (start < 0 or r["id"] >= start) and (end < 0 or r["id"] <= end)]
    offset = max(start, 0)
    return ordered[offset : offset - end]


def _matches(vm: dict[str, Any], body: str, query: str) -> bool:
    """The ``KEY=VALUE&...`` search of ``one.vmpool.infoextended``: each key a dotted path in the VM's
    document (``VM.NAME``, ``VM.USER_TEMPLATE.LABEL``), each value matched as a substring (SQL LIKE
    ``%value%``); a term without ``=`` searches the whole document."""
    for term in query.split("&"):
        if "=" not in term:
            if term not in body:
                return False
            continue
        key, value = term.split("=", 1)
        if not any(value in found for found in _lookup(vm, key.split("."))):
            return False
    return True


def _lookup(vm: dict[str, Any], path: list[str]) -> Iterable[str]:
    if path[:1] != ["VM"] or len(path) < 2:
        return []
    field = path[1]
    if len(path) == 2:
        simple = {"NAME": vm["name"], "ID": vm["id"], "STATE": vm["state"], "LCM_STATE": vm["lcm_state"]}
        return [str(simple[field])] if field in simple else []
    if field not in ("TEMPLATE", "USER_TEMPLATE"):
        return []
    tmpl = from_json(vm["template" if field == "TEMPLATE" else "user_template"])
    out: list[str] = []
    for key, value in tmpl:
        if key != path[2]:
            continue
        if isinstance(value, str) and len(path) == 3:
            out.append(value)
        elif isinstance(value, list) and len(path) == 4:
            out.extend(v for k, v in value if k == path[3])
    return out


def empty_state(site: str) -> dict[str, Any]:
    """A front-end with nothing in it."""
    return {
        "site": site,
        "version": VERSION,
        "next_id": {"vms": 0, "images": 0},
        "hosts": {},
        "datastores": {},
        "vnets": {},
        "images": {},
        "templates": {},
        "vms": {},
    }
