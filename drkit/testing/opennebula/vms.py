"""The in-memory front-end's VM calls: allocate, deploy, act on and read VMs as oned does."""

from __future__ import annotations

import ipaddress

from drkit.adapters.opennebula import (
    ACTION,
    ALLOCATE,
    LOCKED,
    NO_EXISTS,
    VM_ACTIONS,
    OneDisk,
    OneNic,
    OneVm,
    VmAction,
)
from drkit.testing.opennebula.state import DatastoreRecord, FakeState, VmRecord, state_str, vector_maps
from drkit.testing.opennebula.template import SYSTEM_ATTRS, Attrs, as_map, first_value


class FakeVmCalls(FakeState):
    """The VM calls of :class:`~drkit.testing.opennebula.frontend.FakeOneFrontend`."""

    def vm(self, vm_id: int) -> OneVm:
        what = f"VM {vm_id}"
        self._enter("vm", what)
        vm = self._vm(vm_id, what)
        self._reply("vm", what)
        return self._view(vm)

    def _view(self, vm: VmRecord) -> OneVm:
        template = as_map(vm.attrs)
        disks = tuple(
            OneDisk(
                disk_id=int(d["DISK_ID"]),
                image_id=int(d["IMAGE_ID"]),
                image=d["IMAGE"],
                source=d["SOURCE"],
                datastore_id=int(d["DATASTORE_ID"]),
                type=d["TYPE"],
                persistent=d.get("PERSISTENT") == "YES",
                attributes=dict(d),
            )
            for d in vector_maps(template, "DISK")
        )
        nics = tuple(
            OneNic(
                nic_id=int(n["NIC_ID"]),
                network=n["NETWORK"],
                network_id=int(n["NETWORK_ID"]),
                ip=n["IP"],
                mac=n["MAC"],
                attributes=dict(n),
            )
            for n in vector_maps(template, "NIC")
        )
        return OneVm(
            id=vm.id,
            name=vm.name,
            state=vm.state,
            lcm_state=vm.lcm_state,
            template=template,
            user_template=as_map(vm.user),
            disks=disks,
            nics=nics,
            locked=vm.locked,
        )

    def vms_labelled(self, key: str, value: str) -> list[OneVm]:
        what = f"the VMs labelled {key}={value}"
        self._enter("vms_labelled", what)
        self._reply("vms_labelled", what)
        return [
            self._view(vm)
            for vm in sorted(self.vms_.values(), key=lambda v: v.id)
            if vm.state != "DONE" and first_value(vm.user, key) == value
        ]

    def allocate_vm(self, template: str, *, hold: bool = False) -> int:
        what = "allocating a VM"
        self._enter("allocate_vm", what)
        attrs = self._parse(template, what)
        fail = "Error allocating a new virtual machine."
        for key in ("MEMORY", "CPU"):
            try:
                ok = float(first_value(attrs, key) or "0") > 0
            except ValueError:
                ok = False
            if not ok:
                raise self._fail(what, ALLOCATE, f"{fail} {key} attribute must be a positive number.")
        vm_id = self.next_vm
        disks = [v for k, v in attrs if k == "DISK" and isinstance(v, list)]
        nics = [v for k, v in attrs if k == "NIC" and isinstance(v, list)]
        expanded_disks: list[list[tuple[str, str]]] = []
        for disk_id, disk in enumerate(disks):
            given = dict(disk)
            image = self.images_.get(int(given.get("IMAGE_ID", "-1")))
            if image is None:
                raise self._fail(what, ALLOCATE, f"{fail} Error getting image [{given.get('IMAGE_ID')}].")
            if image.locked:
                raise self._fail(what, ALLOCATE, f"{fail} The image [{image.id}] is locked.")
            if image.persistent and image.vms:
                raise self._fail(
                    what,
                    ALLOCATE,
                    f"{fail} Cannot acquire image {image.id}, it is persistent and already in use.",
                )
            ds = self.datastores[image.datastore_id]
            kind = "CDROM" if image.type == "CDROM" else ("RBD" if ds.tm_mad == "ceph" else "FILE")
            expanded: list[tuple[str, str]] = [
                ("DATASTORE", ds.name),
                ("DATASTORE_ID", str(ds.id)),
                ("DISK_ID", str(disk_id)),
                ("IMAGE", image.name),
                ("IMAGE_ID", str(image.id)),
                ("SOURCE", image.source),
                ("TM_MAD", ds.tm_mad),
                ("TYPE", kind),
            ]
            if image.persistent:
                expanded.append(("PERSISTENT", "YES"))
            pool = first_value(ds.attrs, "POOL_NAME")
            if ds.tm_mad == "ceph" and pool:
                expanded.append(("POOL_NAME", pool))
            expanded_disks.append(expanded)
        expanded_nics: list[list[tuple[str, str]]] = []
        taken: set[tuple[int, str]] = set()
        for nic_id, nic in enumerate(nics):
            given = dict(nic)
            vnet = (
                self.vnets_.get(int(given["NETWORK_ID"]))
                if "NETWORK_ID" in given
                else next((v for v in self.vnets_.values() if v.name == given.get("NETWORK")), None)
            )
            if vnet is None:
                ref = given.get("NETWORK_ID") or given.get("NETWORK") or "(none)"
                raise self._fail(
                    what, ALLOCATE, f"{fail} NIC {nic_id}: virtual network {ref} does not exist."
                )
            pool_ips = [str(ipaddress.IPv4Address(vnet.first_ip) + n) for n in range(vnet.size)]
            free = [ip for ip in pool_ips if ip not in vnet.leases and (vnet.id, ip) not in taken]
            ip = given.get("IP") or (free[0] if free else "")
            if ip not in free:
                raise self._fail(
                    what, ALLOCATE, f"{fail} NIC {nic_id}: IP {ip or '(none free)'} is not available."
                )
            taken.add((vnet.id, ip))
            mac = "02:00:" + ":".join(f"{int(o):02x}" for o in ip.split("."))
            expanded_nics.append(
                [
                    ("BRIDGE", vnet.bridge),
                    ("IP", ip),
                    ("MAC", mac),
                    ("NETWORK", vnet.name),
                    ("NETWORK_ID", str(vnet.id)),
                    ("NIC_ID", str(nic_id)),
                ]
            )
        for disk in expanded_disks:
            image = self.images_[int(dict(disk)["IMAGE_ID"])]
            image.vms.append(vm_id)
        for nic in expanded_nics:
            self.vnets_[int(dict(nic)["NETWORK_ID"])].leases[dict(nic)["IP"]] = vm_id
        system: Attrs = [(k, v) for k, v in attrs if k in SYSTEM_ATTRS and k not in ("DISK", "NIC")]
        system += [("DISK", d) for d in expanded_disks] + [("NIC", n) for n in expanded_nics]
        system.append(("VMID", str(vm_id)))
        user: Attrs = [(k, v) for k, v in attrs if k not in SYSTEM_ATTRS and k != "NAME"]
        self.vms_[vm_id] = VmRecord(
            vm_id,
            first_value(attrs, "NAME") or f"one-{vm_id}",
            "HOLD" if hold else "PENDING",
            "LCM_INIT",
            system,
            user,
        )
        self.next_vm += 1
        return vm_id

    def deploy_vm(self, vm_id: int, host_id: int, *, datastore_id: int = -1) -> None:
        what = f"deploying VM {vm_id} on host {host_id}"
        self._enter("deploy_vm", what)
        vm = self._vm(vm_id, what)
        if host_id not in self.hosts:
            raise self._fail(what, NO_EXISTS, f"Error getting host [{host_id}].")
        if (
            datastore_id != -1
            and self.datastores.get(datastore_id, DatastoreRecord(0, "", "", "", "", [])).type != "SYSTEM"
        ):
            raise self._fail(what, NO_EXISTS, f"Error getting datastore [{datastore_id}].")
        if vm.locked:
            raise self._fail(what, LOCKED, f"The resource virtual machine is locked. [{vm_id}].")
        if vm.state not in ("PENDING", "HOLD", "STOPPED", "UNDEPLOYED"):
            raise self._fail(what, ACTION, f"Deploy action is not available for state {state_str(vm)}")
        vm.state, vm.lcm_state = "ACTIVE", "RUNNING"

    def vm_action(self, vm_id: int, action: VmAction) -> None:
        if action not in VM_ACTIONS:
            raise ValueError(f"unknown VM action {action!r}")
        what = f"{action} of VM {vm_id}"
        self._enter("vm_action", what)
        vm = self._vm(vm_id, what)
        if vm.locked:
            raise self._fail(what, LOCKED, f"The resource virtual machine is locked. [{vm_id}].")
        running = vm.state == "ACTIVE" and vm.lcm_state == "RUNNING"
        base = action.removesuffix("-hard")
        stopped_states = ("ACTIVE", "POWEROFF", "SUSPENDED", "STOPPED", "UNDEPLOYED", "PENDING", "HOLD")
        new: str | None = None
        if base == "terminate" and vm.state in stopped_states:
            new = "DONE"
        elif base == "poweroff" and running:
            new = "POWEROFF"
        elif base == "undeploy" and (running or vm.state == "POWEROFF"):
            new = "UNDEPLOYED"
        elif base in ("stop", "suspend") and running:
            new = "STOPPED" if base == "stop" else "SUSPENDED"
        elif base in ("reboot", "resched", "unresched") and running:
            return
        elif action == "hold" and vm.state == "PENDING":
            new = "HOLD"
        elif action == "release" and vm.state == "HOLD":
            new = "PENDING"
        elif action == "resume" and vm.state in ("POWEROFF", "SUSPENDED"):
            vm.state, vm.lcm_state = "ACTIVE", "RUNNING"
            return
        elif action == "resume" and vm.state in ("STOPPED", "UNDEPLOYED"):
            new = "PENDING"
        if new is None:
            raise self._fail(what, ACTION, f"This action is not available for state {state_str(vm)}")
        vm.state, vm.lcm_state = new, "LCM_INIT"
        if new == "DONE":
            for image in self.images_.values():
                if vm_id in image.vms:
                    image.vms.remove(vm_id)
            for vnet in self.vnets_.values():
                vnet.leases = {ip: owner for ip, owner in vnet.leases.items() if owner != vm_id}
