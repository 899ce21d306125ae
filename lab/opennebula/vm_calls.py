"""The fake front-end's ``one.vm.*`` and ``one.vmpool.*`` calls (:class:`VmCalls`)."""

from __future__ import annotations

import copy
import ipaddress
import time
from collections.abc import Iterable
from typing import Any

from lab.opennebula import xmlbody
from lab.opennebula.codes import (
    ACTION,
    ACTIVE,
    ALLOCATE,
    DONE,
    DS_SYSTEM,
    HOLD,
    IMAGE_TYPES,
    IMG_READY,
    IMG_USED,
    IMG_USED_PERS,
    INTERNAL,
    LCM_INIT,
    LCM_RUNNING,
    LCM_UNKNOWN,
    PENDING,
    POWEROFF,
    STOPPED,
    SUSPENDED,
    SYSTEM_ATTRS,
    UNDEPLOYED,
    VM_ACTIONS,
    VM_STATE_NAMES,
    OneError,
    no_exists,
)
from lab.opennebula.runtime import ERROR, GONE, RuntimeFailure
from lab.opennebula.store import OnedStore, in_range
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


class VmCalls(OnedStore):
    """The VM calls of :class:`~lab.opennebula.oned.Oned`."""

    def vm_info(self, oid: int, decrypt: bool = False) -> str:
        with self._lock:
            return xmlbody.vm_xml(self._get("vms", oid, "one.vm.info", "virtual machine"))

    def vmpool_infoextended(self, flt: int, start: int, end: int, state: int, query: str = "") -> str:
        with self._lock:
            vms = in_range(self.data["vms"], flt, start, end)
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
                raise no_exists(method, "host", host_id)
            if ds_id == -1:
                ds_id = next(int(d["id"]) for d in self.data["datastores"].values() if d["type"] == DS_SYSTEM)
            ds = self.data["datastores"].get(str(ds_id))
            if ds is None or ds["type"] != DS_SYSTEM:
                raise no_exists(method, "datastore", ds_id)
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
            # A VM in UNKNOWN (its guest reported an error) still has its process: the actions that
            # take a running VM down take it down too, and resume boots it again.
            running = state == ACTIVE and lcm in (LCM_RUNNING, LCM_UNKNOWN)
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
            elif base == "reboot" and running and lcm == LCM_RUNNING:
                pass
            elif action in ("resched", "unresched") and running and lcm == LCM_RUNNING:
                vm["resched"] = 1 if action == "resched" else 0
            elif action == "hold" and state == PENDING:
                self._set(vm, HOLD, LCM_INIT)
            elif action == "release" and state == HOLD:
                self._set(vm, PENDING, LCM_INIT)
            elif action == "resume" and state in (POWEROFF, SUSPENDED):
                self._start(vm, method)
            elif action == "resume" and running and lcm == LCM_UNKNOWN:
                self._stop(vm, action, method)
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
        if vm["state"] == ACTIVE and vm["lcm_state"] == LCM_UNKNOWN:
            return "UNKNOWN"
        return VM_STATE_NAMES[vm["state"]]

    def _set(self, vm: dict[str, Any], state: int, lcm: int) -> None:
        vm["prev_state"], vm["prev_lcm_state"] = vm["state"], vm["lcm_state"]
        vm["state"], vm["lcm_state"] = state, lcm

    def _start(self, vm: dict[str, Any], method: str) -> None:
        try:
            attrs = self.runtime.start(_view(vm))
        except RuntimeFailure as exc:
            raise OneError(
                ACTION, f"[{method}] Error starting virtual machine {vm['id']}: {exc}", vm["id"]
            ) from None
        self._set_user_attrs(vm, {**(attrs or {}), "ERROR": None})
        self._set(vm, ACTIVE, LCM_RUNNING)

    def _set_user_attrs(self, vm: dict[str, Any], attrs: dict[str, str | None]) -> None:
        """Set (or, for None, remove) single attributes of the VM's ``USER_TEMPLATE``."""
        kept = [(k, v) for k, v in from_json(vm["user_template"]) if k not in attrs]
        vm["user_template"] = to_json([*kept, *((k, v) for k, v in attrs.items() if v is not None)])

    def monitor(self) -> list[int]:
        """One monitoring round, as oned polls its hosts: a running VM whose guest reports an error
        (I/O on a disk that is not primary) goes to ``UNKNOWN``, one whose process is gone to
        ``POWEROFF``, with the reason in ``USER_TEMPLATE/ERROR``. Returns the VMs that changed."""
        with self._lock:
            running = [
                v for v in self.data["vms"].values() if v["state"] == ACTIVE and v["lcm_state"] == LCM_RUNNING
            ]
        changed = []
        for vm in running:
            status, reason = self.runtime.check(_view(vm))  # outside the lock: it may wait on HTTP
            if status not in (ERROR, GONE):
                continue
            with self._lock:
                if not (vm["state"] == ACTIVE and vm["lcm_state"] == LCM_RUNNING):
                    continue  # an action moved it meanwhile
                if status == ERROR:
                    self._set(vm, ACTIVE, LCM_UNKNOWN)
                else:
                    self._set(vm, POWEROFF, LCM_INIT)
                self._set_user_attrs(vm, {"ERROR": f"{time.strftime('%a %b %d %H:%M:%S %Y')}: {reason}"})
                self.save()
                changed.append(int(vm["id"]))
        return changed

    def boot_running(self) -> list[int]:
        """At the front-end's start: start (or adopt) the process of every VM recorded as running;
        one that cannot start goes to ``POWEROFF`` with its ``ERROR``. Returns those that failed."""
        failed = []
        with self._lock:
            for vm in self.data["vms"].values():
                if vm["state"] != ACTIVE or vm["lcm_state"] not in (LCM_RUNNING, LCM_UNKNOWN):
                    continue
                try:
                    attrs = self.runtime.start(_view(vm))
                except RuntimeFailure as exc:
                    self._set(vm, POWEROFF, LCM_INIT)
                    self._set_user_attrs(vm, {"ERROR": f"{time.strftime('%a %b %d %H:%M:%S %Y')}: {exc}"})
                    failed.append(int(vm["id"]))
                    continue
                self._set_user_attrs(vm, dict(attrs or {}))
            self.save()
        return failed

    def _stop(self, vm: dict[str, Any], action: str, method: str) -> None:
        try:
            self.runtime.stop(_view(vm), action)
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


def _view(vm: dict[str, Any]) -> dict[str, Any]:
    """What a runtime sees of a VM: a copy, with its templates as lists of ``(key, value)``."""
    view = copy.deepcopy(vm)
    view["template"] = from_json(vm["template"])
    view["user_template"] = from_json(vm["user_template"])
    return view


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
