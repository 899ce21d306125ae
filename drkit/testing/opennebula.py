"""An OpenNebula front-end in memory that speaks :class:`drkit.adapters.opennebula.OneFrontend`.

It behaves as oned does for what Standby uses (the contract suite runs the same tests on it and on
:class:`~drkit.adapters.opennebula.PyoneFrontend` against the lab's fake front-end): a VM is
``PENDING`` (or ``HOLD``) when allocated, ``ACTIVE``/``RUNNING`` once deployed; ``poweroff``,
``terminate``, ``undeploy``, ``resume``... move it as in oned and refuse a state that does not allow
them; a persistent image is ``USED_PERS`` while a VM holds it, a name is unique, an image in use
cannot be deleted. Its errors come from the builders in :mod:`drkit.adapters.opennebula`.

Fault knobs (set them at any time):

* ``running``: False, and every call is :class:`~drkit.adapters.opennebula.OneUnreachable`;
* ``given_session``: a session other than ``session`` is refused (``OneAccessDenied``);
* :meth:`lock` a VM or an image: changing it is ``OneConflict`` with ``locked``;
* ``broken``: names of calls (``"vm"``, ``"image"``, ``"vms_labelled"``...) whose reply "cannot be
  parsed" (``OneParseError``).

:func:`fake_site_a` and :func:`fake_site_b` hold what the lab seeds on each site. Templates are
read in OpenNebula's text syntax only (what the protocol takes); the lab's front-end also reads XML.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass, field

from drkit.adapters.opennebula import (
    ACTION,
    ALLOCATE,
    AUTHENTICATION,
    INTERNAL,
    LOCKED,
    NO_EXISTS,
    VM_ACTIONS,
    OneDatastore,
    OneDisk,
    OneFrontend,
    OneImage,
    OneNic,
    OneVm,
    OneVmTemplate,
    OneVnet,
    TemplateValue,
    VmAction,
    one_error,
    one_unparsable,
    one_unreachable,
)

Attrs = list[tuple[str, str | list[tuple[str, str]]]]
_TOKEN = re.compile(
    r'(?P<ws>[ \t\r]+)|(?P<comment>#[^\n]*)|(?P<nl>\n)|(?P<str>"(?:\\.|[^"\\])*")|(?P<word>[^\s,\[\]"=#]+)'
    r"|(?P<punct>[=,\[\]])|(?P<bad>.)",
    re.S,
)
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_.\-]*")
SYSTEM_ATTRS = frozenset(
    {"CPU", "VCPU", "VCPU_MAX", "MEMORY", "MEMORY_MAX", "DISK", "NIC", "NIC_ALIAS", "CONTEXT", "OS"}
    | {"GRAPHICS", "INPUT", "FEATURES", "RAW", "PCI", "TOPOLOGY", "EMULATOR", "CPU_MODEL", "VIDEO"}
)


class TemplateSyntaxError(ValueError):
    """The text is not OpenNebula template syntax."""


def parse_template(text: str) -> Attrs:
    """OpenNebula's ``KEY = value`` / ``KEY = [ K = v, ... ]`` syntax, strictly (as the lab parses it)."""
    tokens: list[tuple[str, str]] = []
    for match in _TOKEN.finditer(text):
        kind = match.lastgroup or "bad"
        if kind in ("ws", "comment"):
            continue
        if kind == "bad" or (kind == "str" and len(match.group()) < 2):
            raise TemplateSyntaxError(f"unexpected {match.group()!r}")
        value = match.group()
        if kind == "str":
            value = re.sub(r"\\(.)", r"\1", value[1:-1])
        tokens.append((kind, value))
    attrs: Attrs = []
    i = 0

    def take(kind: str, value: str | None = None) -> str:
        nonlocal i
        if i >= len(tokens) or tokens[i][0] != kind or (value is not None and tokens[i][1] != value):
            found = tokens[i][1] if i < len(tokens) else "the end"
            raise TemplateSyntaxError(f"expected {value or kind}, found {found!r}")
        i += 1
        return tokens[i - 1][1]

    def name() -> str:
        word = take("word")
        if not _NAME.fullmatch(word):
            raise TemplateSyntaxError(f"invalid attribute name {word!r}")
        return word.upper()

    def single() -> str:
        if i < len(tokens) and tokens[i][0] == "str":
            return take("str")
        return take("word")

    def skip_newlines() -> None:
        nonlocal i
        while i < len(tokens) and tokens[i][0] == "nl":
            i += 1

    while True:
        skip_newlines()
        if i >= len(tokens):
            break
        key = name()
        take("punct", "=")
        if i < len(tokens) and tokens[i] == ("punct", "["):
            i += 1
            items: list[tuple[str, str]] = []
            while True:
                skip_newlines()
                item = name()
                skip_newlines()
                take("punct", "=")
                skip_newlines()
                items.append((item, single()))
                skip_newlines()
                if i < len(tokens) and tokens[i] == ("punct", ","):
                    i += 1
                    continue
                take("punct", "]")
                break
            attrs.append((key, items))
        else:
            attrs.append((key, single()))
        if i < len(tokens) and tokens[i][0] != "nl":
            raise TemplateSyntaxError(f"expected the end of the line, found {tokens[i][1]!r}")
    if not attrs:
        raise TemplateSyntaxError("the template is empty")
    return attrs


def _first(attrs: Attrs, key: str) -> str | None:
    return next((v for k, v in attrs if k == key and isinstance(v, str)), None)


def _as_map(attrs: Attrs) -> dict[str, TemplateValue]:
    """Attributes as :data:`~drkit.adapters.opennebula.TemplateMap` (vectors always tuples)."""
    out: dict[str, TemplateValue] = {}
    for key, value in attrs:
        if isinstance(value, str):
            out[key] = value
        else:
            previous = out.get(key)
            vectors = previous if isinstance(previous, tuple) else ()
            out[key] = (*vectors, dict(value))
    return out


@dataclass
class _Image:
    id: int
    name: str
    type: str
    persistent: bool
    source: str
    size_mb: int
    format: str
    datastore_id: int
    attrs: Attrs
    vms: list[int] = field(default_factory=list)
    locked: bool = False


@dataclass
class _Vm:
    id: int
    name: str
    state: str
    lcm_state: str
    attrs: Attrs
    user: Attrs
    locked: bool = False


@dataclass
class _Vnet:
    id: int
    name: str
    bridge: str
    first_ip: str
    size: int
    attrs: Attrs
    leases: dict[str, int] = field(default_factory=dict)


@dataclass
class _Datastore:
    id: int
    name: str
    type: str
    ds_mad: str
    tm_mad: str
    attrs: Attrs


class FakeOneFrontend:
    """:class:`~drkit.adapters.opennebula.OneFrontend` of one site, in memory."""

    def __init__(self, site: str, *, session: str = "oneadmin:fake", endpoint: str = "") -> None:
        self.site = site
        self.endpoint = endpoint or f"fake://{site}/RPC2"
        self.session = session
        self.given_session = session
        self.running = True
        self.broken: set[str] = set()
        self.calls: list[str] = []
        self.hosts: dict[int, str] = {}
        self.datastores: dict[int, _Datastore] = {}
        self.vnets_: dict[int, _Vnet] = {}
        self.images_: dict[int, _Image] = {}
        self.vms_: dict[int, _Vm] = {}
        self.templates: dict[int, OneVmTemplate] = {}
        self.next_vm = 0
        self.next_image = 0

    def __repr__(self) -> str:
        return f"FakeOneFrontend(site={self.site!r})"

    # ------------------------------------------------------------------------------ set-up knobs
    def add_host(self, host_id: int, name: str) -> None:
        self.hosts[host_id] = name

    def add_datastore(
        self, ds_id: int, name: str, *, kind: str, ds_mad: str, tm_mad: str, attrs: Attrs
    ) -> None:
        self.datastores[ds_id] = _Datastore(
            ds_id, name, kind, ds_mad, tm_mad, [("DS_MAD", ds_mad), ("TM_MAD", tm_mad), *attrs]
        )

    def add_vnet(self, vnet_id: int, name: str, bridge: str, first_ip: str, size: int, attrs: Attrs) -> None:
        self.vnets_[vnet_id] = _Vnet(
            vnet_id, name, bridge, first_ip, size, [("BRIDGE", bridge), ("VN_MAD", "bridge"), *attrs]
        )

    def lock(self, kind: str, oid: int, locked: bool = True) -> None:
        """Lock (or unlock) a ``"vm"`` or an ``"image"``, as ``onevm lock`` does."""
        if kind == "vm":
            self.vms_[oid].locked = locked
        else:
            self.images_[oid].locked = locked

    # -------------------------------------------------------------------------------- plumbing
    def _enter(self, call: str, what: str) -> None:
        self.calls.append(call)
        if not self.running:
            raise one_unreachable(self.site, self.endpoint, what, "ConnectionError")
        if self.given_session != self.session:
            raise one_error(
                self.site,
                self.endpoint,
                what,
                AUTHENTICATION,
                "User couldn't be authenticated, aborting call.",
            )

    def _reply(self, call: str, what: str) -> None:
        if call in self.broken:
            raise one_unparsable(self.site, self.endpoint, what, "XMLSyntaxError: Premature end of data")

    def _fail(self, what: str, code: int, detail: str) -> Exception:
        return one_error(self.site, self.endpoint, what, code, detail)

    def _vm(self, vm_id: int, what: str) -> _Vm:
        vm = self.vms_.get(vm_id)
        if vm is None:
            raise self._fail(what, NO_EXISTS, f"Error getting virtual machine [{vm_id}].")
        return vm

    def _image(self, image_id: int, what: str) -> _Image:
        image = self.images_.get(image_id)
        if image is None:
            raise self._fail(what, NO_EXISTS, f"Error getting image [{image_id}].")
        return image

    def _parse(self, text: str, what: str) -> Attrs:
        try:
            return parse_template(text)
        except TemplateSyntaxError as exc:
            raise self._fail(what, INTERNAL, f"Parse error: {exc}") from None

    # ------------------------------------------------------------------------------ protocol
    def version(self) -> str:
        self._enter("version", "the version")
        self._reply("version", "the version")
        return "6.10.3"

    def vm(self, vm_id: int) -> OneVm:
        what = f"VM {vm_id}"
        self._enter("vm", what)
        vm = self._vm(vm_id, what)
        self._reply("vm", what)
        return self._view(vm)

    def _view(self, vm: _Vm) -> OneVm:
        template = _as_map(vm.attrs)
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
            for d in _vectors(template, "DISK")
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
            for n in _vectors(template, "NIC")
        )
        return OneVm(
            id=vm.id,
            name=vm.name,
            state=vm.state,
            lcm_state=vm.lcm_state,
            template=template,
            user_template=_as_map(vm.user),
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
            if vm.state != "DONE" and _first(vm.user, key) == value
        ]

    def allocate_vm(self, template: str, *, hold: bool = False) -> int:
        what = "allocating a VM"
        self._enter("allocate_vm", what)
        attrs = self._parse(template, what)
        fail = "Error allocating a new virtual machine."
        for key in ("MEMORY", "CPU"):
            try:
                ok = float(_first(attrs, key) or "0") > 0
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
            pool = _first(ds.attrs, "POOL_NAME")
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
        self.vms_[vm_id] = _Vm(
            vm_id,
            _first(attrs, "NAME") or f"one-{vm_id}",
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
            and self.datastores.get(datastore_id, _Datastore(0, "", "", "", "", [])).type != "SYSTEM"
        ):
            raise self._fail(what, NO_EXISTS, f"Error getting datastore [{datastore_id}].")
        if vm.locked:
            raise self._fail(what, LOCKED, f"The resource virtual machine is locked. [{vm_id}].")
        if vm.state not in ("PENDING", "HOLD", "STOPPED", "UNDEPLOYED"):
            raise self._fail(what, ACTION, f"Deploy action is not available for state {_state_str(vm)}")
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
            raise self._fail(what, ACTION, f"This action is not available for state {_state_str(vm)}")
        vm.state, vm.lcm_state = new, "LCM_INIT"
        if new == "DONE":
            for image in self.images_.values():
                if vm_id in image.vms:
                    image.vms.remove(vm_id)
            for vnet in self.vnets_.values():
                vnet.leases = {ip: owner for ip, owner in vnet.leases.items() if owner != vm_id}

    def allocate_image(self, template: str, datastore_id: int) -> int:
        what = f"allocating an image in datastore {datastore_id}"
        self._enter("allocate_image", what)
        attrs = self._parse(template, what)
        ds = self.datastores.get(datastore_id)
        if ds is None:
            raise self._fail(what, NO_EXISTS, f"Error getting datastore [{datastore_id}].")
        if ds.type == "SYSTEM":
            raise self._fail(what, ACTION, "New images cannot be allocated in a system datastore.")
        fail = "Error allocating a new image."
        name = _first(attrs, "NAME")
        if not name:
            raise self._fail(what, ALLOCATE, f"{fail} No NAME in template.")
        taken = next((i for i in self.images_.values() if i.name == name), None)
        if taken is not None:
            raise self._fail(what, ALLOCATE, f"{fail} NAME is already taken by IMAGE {taken.id}.")
        kind = (_first(attrs, "TYPE") or "OS").upper()
        source, path = _first(attrs, "SOURCE") or "", _first(attrs, "PATH") or ""
        size = _first(attrs, "SIZE") or "0"
        if kind not in ("OS", "CDROM", "DATABLOCK") or bool(source) == bool(path) or not size.isdigit():
            raise self._fail(what, ALLOCATE, f"{fail} Template malformed (TYPE, SOURCE or PATH, SIZE).")
        if source and int(size) == 0:
            raise self._fail(what, ALLOCATE, f"{fail} SIZE is mandatory when SOURCE is given.")
        image_id = self.next_image
        if not source:
            pool = _first(ds.attrs, "POOL_NAME") or "one"
            source = (
                f"{pool}/one-{image_id}"
                if ds.tm_mad == "ceph"
                else f"/var/lib/one//datastores/{ds.id}/{image_id}"
            )
        kept = [(k, v) for k, v in attrs if k not in ("NAME", "TYPE", "PERSISTENT", "SOURCE", "PATH", "SIZE")]
        persistent = (_first(attrs, "PERSISTENT") or "NO").upper() in ("YES", "1", "TRUE")
        self.images_[image_id] = _Image(
            image_id, name, kind, persistent, source, int(size), _first(attrs, "FORMAT") or "raw", ds.id, kept
        )
        self.next_image += 1
        return image_id

    def image(self, image_id: int) -> OneImage:
        what = f"image {image_id}"
        self._enter("image", what)
        image = self._image(image_id, what)
        self._reply("image", what)
        return self._image_view(image)

    def _image_view(self, image: _Image) -> OneImage:
        state = ("USED_PERS" if image.persistent else "USED") if image.vms else "READY"
        return OneImage(
            id=image.id,
            name=image.name,
            state=state,
            type=image.type,
            persistent=image.persistent,
            source=image.source,
            size_mb=image.size_mb,
            format=image.format,
            datastore_id=image.datastore_id,
            datastore=self.datastores[image.datastore_id].name,
            vms=tuple(image.vms),
            template=_as_map(image.attrs),
            locked=image.locked,
        )

    def images(self, *, name: str | None = None, source: str | None = None) -> list[OneImage]:
        self._enter("images", "the images")
        self._reply("images", "the images")
        return [
            self._image_view(i)
            for i in sorted(self.images_.values(), key=lambda i: i.id)
            if (name is None or i.name == name) and (source is None or i.source == source)
        ]

    def make_persistent(self, image_id: int, persistent: bool = True) -> None:
        what = f"making image {image_id} {'persistent' if persistent else 'non-persistent'}"
        self._enter("make_persistent", what)
        image = self._image(image_id, what)
        if image.locked:
            raise self._fail(what, LOCKED, f"The resource image is locked. [{image_id}].")
        if image.vms:
            raise self._fail(
                what, ACTION, f"Cannot change persistent state of an image in use by VMs {image.vms}."
            )
        image.persistent = persistent

    def delete_image(self, image_id: int) -> None:
        what = f"deleting image {image_id}"
        self._enter("delete_image", what)
        image = self._image(image_id, what)
        if image.locked:
            raise self._fail(what, LOCKED, f"The resource image is locked. [{image_id}].")
        if image.vms:
            raise self._fail(
                what, ACTION, f"Cannot delete image in {'USED_PERS' if image.persistent else 'USED'} state."
            )
        del self.images_[image_id]

    def vm_template(self, template_id: int) -> OneVmTemplate:
        what = f"VM template {template_id}"
        self._enter("vm_template", what)
        if template_id not in self.templates:
            raise self._fail(what, NO_EXISTS, f"Error getting virtual machine template [{template_id}].")
        self._reply("vm_template", what)
        return self.templates[template_id]

    def vnets(self) -> list[OneVnet]:
        self._enter("vnets", "the virtual networks")
        self._reply("vnets", "the virtual networks")
        return [
            OneVnet(v.id, v.name, v.bridge, _as_map(v.attrs))
            for v in sorted(self.vnets_.values(), key=lambda v: v.id)
        ]

    def datastore(self, datastore_id: int) -> OneDatastore:
        what = f"datastore {datastore_id}"
        self._enter("datastore", what)
        ds = self.datastores.get(datastore_id)
        if ds is None:
            raise self._fail(what, NO_EXISTS, f"Error getting datastore [{datastore_id}].")
        self._reply("datastore", what)
        pool = _first(ds.attrs, "POOL_NAME") or ""
        return OneDatastore(
            id=ds.id,
            name=ds.name,
            type=ds.type,
            ds_mad=ds.ds_mad,
            tm_mad=ds.tm_mad,
            pool_name=pool if ds.tm_mad == "ceph" else "",
            image_ids=tuple(sorted(i.id for i in self.images_.values() if i.datastore_id == ds.id)),
            template=_as_map(ds.attrs),
        )


def _vectors(template: dict[str, TemplateValue], key: str) -> tuple[dict[str, str], ...]:
    value = template.get(key)
    return tuple(dict(v) for v in value) if isinstance(value, tuple) else ()


def _state_str(vm: _Vm) -> str:
    return "RUNNING" if vm.state == "ACTIVE" and vm.lcm_state == "RUNNING" else vm.state


# ------------------------------------------------------------------------------------------ seeds
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
        fe.templates[tid] = OneVmTemplate(tid, name, _as_map(parse_template(text)))
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
