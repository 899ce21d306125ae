"""What the other site's OpenNebula front-end must be given to run a protected VM there.

Pure: from a VM's saved template (a plain mapping, see :mod:`drkit.domain.opennebula_template`),
the saved definitions of its disks' images, what the target front-end has (networks, datastores,
images) and the app's rules (:class:`~drkit.domain.opennebula_models.OpenNebulaApp`),
:func:`translate_vm` computes a :class:`VmPlan`:

* per mirrored disk, the persistent image to register on the target (``NAME``, ``TYPE``,
  ``PERSISTENT=YES``, ``SOURCE=<pool>/<rbd image>``, ``FORMAT``, ``SIZE``, ``DEV_PREFIX``, the
  target datastore), or the image already registered there with that ``SOURCE`` to reuse; an image
  of that name with another ``SOURCE`` is a refusal (two images on one RBD image would let the
  deletion of one destroy the other's data);
* the VM template for ``one.vm.allocate``: disks pointing at the target's images, NICs on the
  target's networks (mapped, or by the ``unmapped_nic`` rule), attributes that exist only on the
  source handled by the ``source_only`` rule, per-VM ids and runtime-only keys removed;
* every decision as a :class:`Decision` (VM, what, rule, before -> after) for the plan, and every
  :class:`Refusal` for the plan's guard: a plan with one is refused before anything changes.

RBD names follow OpenNebula's Ceph datastore: a persistent image is ``one-<IMAGE_ID>``, the
non-persistent copy a VM boots from is ``one-<IMAGE_ID>-<VM_ID>-<DISK_ID>`` (the guide's
``one/one-0-0-0``): it is the disk's own data, registered on the target under the name
``<image name>-<VM_ID>-<DISK_ID>``.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Mapping, Sequence
from typing import Any

from drkit.domain.opennebula_models import OpenNebulaApp
from drkit.domain.opennebula_records import (
    Decision,
    ImagePlan,
    Refusal,
    SavedImage,
    SourceVm,
    TargetSite,
    VmPlan,
)
from drkit.domain.opennebula_template import Template, is_secret_key
from drkit.domain.operations import Check

__all__ = [
    "Decision",
    "ImagePlan",
    "Refusal",
    "SavedImage",
    "SourceVm",
    "TargetSite",
    "VmPlan",
    "bind_images",
    "is_protected",
    "plan_image",
    "rbd_image",
    "translate_vm",
    "unbound",
    "vm_guard",
]

RUNTIME_KEYS = frozenset(
    {
        "VMID",
        "TEMPLATE_ID",
        "CLONING_TEMPLATE_ID",
        "AUTOMATIC_REQUIREMENTS",
        "AUTOMATIC_DS_REQUIREMENTS",
        "AUTOMATIC_NIC_REQUIREMENTS",
        "SECURITY_GROUP_RULE",
        "SNAPSHOT",
        "NUMA_NODE",
        "ERROR",
        "IMPORTED",
    }
)
"""Top-level keys OpenNebula sets on a running VM (ids, computed requirements, placement): removed."""

DISK_KEYS = frozenset(
    {"TARGET", "DEV_PREFIX", "CACHE", "IO", "DISCARD", "IOTHREAD", "VIRTIO_BLK_QUEUES", "READONLY"}
)
"""Keys of an image disk the target keeps (tuning); the rest comes from the image there."""
_DISK_THROTTLE = re.compile(r"_(BYTES|IOPS)_SEC(_MAX(_LENGTH)?)?$|^SIZE_IOPS_SEC$")

VOLATILE_KEYS = frozenset({"TYPE", "SIZE", "FORMAT", "FS", "TARGET", "DEV_PREFIX", "CACHE", "IO", "DISCARD"})
"""Keys of a volatile disk (no image: swap, an empty fs) the target keeps; it is created empty there."""

NIC_KEYS = frozenset(
    {"MODEL", "FILTER", "VIRTIO_QUEUES", "RDP", "SSH", "METHOD", "IP6_METHOD", "GUEST_MTU", "EXTERNAL"}
)
"""Keys of a NIC the target keeps; the rest (bridge, VLAN, gateway, ids) comes from its network there."""

ADDRESS_KEYS = ("IP", "IP6", "IP6_GLOBAL", "IP6_ULA", "MAC")
"""A NIC's static addresses: kept or dropped by the rules."""

PATH_ATTRIBUTES: frozenset[tuple[str, str]] = frozenset(
    {("OS", "KERNEL"), ("OS", "INITRD"), ("OS", "KERNEL_DS"), ("OS", "INITRD_DS")}
    | {("CONTEXT", "FILES"), ("CONTEXT", "FILES_DS")}
)
"""Attributes naming a file of the source front-end or one of its datastores' files."""

SCHEDULING_ATTRIBUTES = ("SCHED_REQUIREMENTS", "SCHED_DS_REQUIREMENTS", "VMGROUP", "PCI")
"""Top-level attributes naming the source's hosts, clusters, datastores, VM groups or devices."""


# ------------------------------------------------------------------------------------------ rules


def rbd_image(image: SavedImage, vm_id: int, disk_id: int) -> tuple[str, str]:
    """``(pool, rbd image)`` a VM's disk lives in: the image's own for a persistent one, the VM's
    copy ``<image>-<vm>-<disk>`` otherwise."""
    pool, _, name = image.source.rpartition("/")
    return pool, name if image.persistent else f"{name}-{vm_id}-{disk_id}"


def _vectors(value: Any) -> list[dict[str, Any]]:
    if value is None:
        return []
    if isinstance(value, Mapping):
        return [dict(value)]
    return [dict(v) for v in value]


def _shown(key: str, value: object) -> str:
    return "(secret)" if is_secret_key(key) else str(value)


class _Work:
    """The decisions and refusals of one VM's translation, as they are made."""

    def __init__(self, vm: SourceVm) -> None:
        self.vm = f"{vm.id} {vm.name}"
        self.decisions: list[Decision] = []
        self.refusals: list[Refusal] = []

    def decide(self, what: str, rule: str, before: str, after: str) -> None:
        self.decisions.append(Decision(vm=self.vm, what=what, rule=rule, before=before, after=after))

    def refuse(self, what: str, reason: str) -> None:
        self.refusals.append(Refusal(vm=self.vm, what=what, reason=reason))

    def source_only(
        self, what: str, value: str, app: OpenNebulaApp, target: str, *, vector: bool = False
    ) -> str | None:
        """The value ``what`` gets on ``target`` by the ``source_only`` rule: None to drop it (a
        refusal is recorded when the rule refuses, or has no rewrite for ``value``; a ``vector``
        has no value to rewrite)."""
        rule = f"source_only {app.source_only}"
        if app.source_only == "drop":
            self.decide(what, rule, value, "dropped")
            return None
        if app.source_only == "rewrite" and not vector and value in app.rewrites:
            self.decide(what, rule, value, app.rewrites[value])
            return app.rewrites[value]
        if app.source_only == "refuse":
            why = "source_only is refuse"
        elif vector:
            why = "a vector cannot be rewritten: drop it (source_only drop) or remove it from the VM"
        else:
            why = f"opennebula.rewrites has no rewrite for {value!r}"
        self.refuse(what, f"{value} exists only on the source, not on {target} ({why})")
        return None


def target_datastore(app: OpenNebulaApp, target: TargetSite, work: _Work) -> int | None:
    """The id of the datastore the app registers images in on ``target`` (configured by id or name)."""
    ref = app.datastores.get(target.name)
    if ref is None:
        work.refuse("datastore", f"opennebula.datastores names none for {target.name}")
        return None
    for ds in target.datastores:
        if ds.id == ref or ds.name == ref:
            return ds.id
    known = ", ".join(f"{d.id} {d.name}" for d in target.datastores) or "none"
    work.refuse("datastore", f"datastore {ref!r} does not exist on {target.name} (it has: {known})")
    return None


def plan_image(
    image: SavedImage, vm_id: int, disk_id: int, datastore_id: int, target: TargetSite, work: _Work
) -> ImagePlan | None:
    """The image a mirrored disk gets on ``target``: reused when one there has its SOURCE, else
    registered; None (and a refusal) when its name is taken there by an image of another SOURCE."""
    pool, rbd = rbd_image(image, vm_id, disk_id)
    source = f"{pool}/{rbd}"
    name = image.name if image.persistent else f"{image.name}-{vm_id}-{disk_id}"
    what = f"DISK {disk_id} image {name}"
    template = {
        "NAME": name,
        "TYPE": image.type,
        "PERSISTENT": "YES",
        "SOURCE": source,
        "FORMAT": image.format or "raw",
        "SIZE": str(image.size_mb),
    }
    if image.dev_prefix:
        template["DEV_PREFIX"] = image.dev_prefix
    plan = ImagePlan(disk_id=disk_id, name=name, source=source, datastore_id=datastore_id, template=template)
    same_source = [i for i in target.images if i.source == source]
    if same_source:
        found = same_source[0]
        work.decide(what, "same SOURCE on the target", source, f"reuse image {found.id} {found.name}")
        return plan.model_copy(update={"name": found.name, "reuse": found.id})
    taken = [i for i in target.images if i.name == name]
    if taken:
        work.refuse(
            what,
            f"the name {name} is taken on {target.name} by image {taken[0].id} whose SOURCE is"
            f" {taken[0].source or '(none)'}, not {source}; rename or delete that image",
        )
        return None
    work.decide(what, "register", source, f"persistent image {name} in datastore {datastore_id}")
    return plan


def _disk(
    disk: dict[str, Any],
    n: int,
    images: Mapping[int, SavedImage],
    mirrored: Collection[str] | None,
    vm: SourceVm,
    app: OpenNebulaApp,
    target: TargetSite,
    datastore_id: int | None,
    work: _Work,
) -> tuple[dict[str, Any] | None, ImagePlan | None]:
    """The target's DISK for the source's ``disk`` and the image it needs (None, None: dropped)."""
    disk_id = int(disk.get("DISK_ID", n))
    image_id = disk.get("IMAGE_ID")
    if image_id in (None, ""):
        kept = {k: v for k, v in disk.items() if k in VOLATILE_KEYS}
        work.decide(f"DISK {disk_id}", "volatile", f"{disk.get('TYPE', 'volatile')} disk", "created empty")
        return kept, None
    image = images.get(int(image_id))
    label = str(disk.get("IMAGE") or (image.name if image else f"image {image_id}"))
    why = ""
    if image is None:
        why = "no saved definition of its image"
    elif image.type == "CDROM":
        why = "a CDROM image"
    elif image.source.rpartition("/")[0] != app.image_pool:
        why = f"not in the mirrored pool {app.image_pool}"
    elif mirrored is not None and rbd_image(image, vm.id, disk_id)[1] not in mirrored:
        why = "its RBD image is not one of the app's volumes"
    if why:
        value = work.source_only(f"DISK {disk_id} ({why})", label, app, target.name)
        if value is None:
            return None, None
        tuned = {k: v for k, v in disk.items() if k in DISK_KEYS or _DISK_THROTTLE.search(k)}
        return {"IMAGE": value, **tuned}, None
    assert image is not None
    if datastore_id is None:
        return None, None
    plan = plan_image(image, vm.id, disk_id, datastore_id, target, work)
    if plan is None:
        return None, None
    tuned = {k: v for k, v in disk.items() if k in DISK_KEYS or _DISK_THROTTLE.search(k)}
    ref = {"IMAGE_ID": str(plan.reuse)} if plan.reuse is not None else {"IMAGE": plan.name}
    return {**ref, **tuned}, plan


def _nic_network(nic: Mapping[str, Any], vm: SourceVm) -> str | None:
    name = nic.get("NETWORK")
    if name:
        return str(name)
    net_id = nic.get("NETWORK_ID")
    return vm.networks.get(int(net_id)) if net_id not in (None, "") else None


def _nic(
    nic: dict[str, Any],
    n: int,
    vm: SourceVm,
    networks: Mapping[str, str],
    app: OpenNebulaApp,
    target: TargetSite,
    work: _Work,
    kind: str = "NIC",
) -> tuple[dict[str, Any] | None, bool]:
    """The target's NIC for the source's ``nic`` (None: dropped) and whether its addresses and
    ETH<n>_ context go."""
    nic_id = nic.get("NIC_ID", n)
    what = f"{kind} {nic_id}"
    source_net = _nic_network(nic, vm)
    on_target = {net.name: net for net in target.networks}
    addresses = ", ".join(f"{k}={nic[k]}" for k in ADDRESS_KEYS if nic.get(k)) or "no static address"
    if source_net is None:
        work.refuse(what, f"names network id {nic.get('NETWORK_ID')!r}, whose name was not saved")
        return None, False
    if source_net in networks:
        target_name = networks[source_net]
        net = on_target.get(target_name)
        if net is None:
            work.refuse(
                what, f"network {source_net} maps to {target_name}, which {target.name} does not have"
            )
            return None, False
        work.decide(what, "opennebula.networks", f"network {source_net}", f"network {target_name} ({net.id})")
        drop = app.mapped_nic_addresses == "drop"
        rule = f"mapped_nic_addresses {app.mapped_nic_addresses}"
    elif app.unmapped_nic == "refuse":
        work.refuse(what, f"network {source_net} has no mapping to {target.name} in opennebula.networks")
        return None, False
    else:
        net = on_target.get(source_net)
        rule = "unmapped_nic drop-context"
        if net is None:
            work.decide(
                what,
                rule,
                f"network {source_net}, {addresses}",
                f"NIC dropped: {target.name} has no such network",
            )
            return None, True
        drop = True
    kept = {k: v for k, v in nic.items() if k in NIC_KEYS}
    if not drop:
        kept.update({k: nic[k] for k in ADDRESS_KEYS if nic.get(k)})
    elif addresses != "no static address":
        work.decide(what, rule, addresses, f"dropped: leased by network {net.name} on {target.name}")
    if kind == "NIC_ALIAS" and nic.get("PARENT"):
        kept["PARENT"] = nic["PARENT"]
    return {"NETWORK_ID": str(net.id), "NETWORK": net.name, **kept}, drop


def _context(context: dict[str, Any], dropped_eth: Sequence[str], work: _Work) -> dict[str, Any]:
    """``context`` without its per-VM ``DISK_ID`` and the ``ETH<n>_`` entries of the NICs whose
    addresses were dropped (the target's network fills them in again)."""
    out = {}
    gone: list[str] = []
    for key, value in context.items():
        if key == "DISK_ID":
            work.decide(
                "CONTEXT/DISK_ID", "runtime", str(value), "removed (the context disk's id on the source)"
            )
        elif any(key.startswith(f"ETH{n}_") for n in dropped_eth):
            gone.append(key)
        else:
            out[key] = value
    if gone:
        work.decide(
            "CONTEXT", "NIC addresses dropped", ", ".join(gone), "removed (filled in by the target's network)"
        )
    return out


def translate_vm(
    vm: SourceVm,
    images: Sequence[SavedImage],
    target: TargetSite,
    app: OpenNebulaApp,
    *,
    source_is_home: bool,
    mirrored: Collection[str] | None = None,
) -> VmPlan:
    """``vm``'s way to ``target`` by ``app``'s rules (``source_is_home``: it moves away from its home
    site; ``mirrored``: the app's RBD images, whose disks are carried; others are source-only).

    ``vm``'s templates are whole (a backup's secret values joined back with
    :func:`~drkit.domain.opennebula_template.join_secrets`): the target needs them; no decision
    shows a value whose name may hold a secret."""
    work = _Work(vm)
    saved = {i.id: i for i in images}
    datastore_id = target_datastore(app, target, work)
    merged: Template = {**vm.user_template, **vm.template}
    out: Template = {"NAME": vm.name}
    removed = sorted(k for k in merged if k in RUNTIME_KEYS)
    if removed:
        work.decide("template", "runtime", ", ".join(removed), "removed (per-VM ids, computed by OpenNebula)")
    plans: list[ImagePlan] = []
    disks: list[dict[str, Any]] = []
    for n, disk in enumerate(_vectors(merged.get("DISK"))):
        new, plan = _disk(disk, n, saved, mirrored, vm, app, target, datastore_id, work)
        disks += [new] if new is not None else []
        plans += [plan] if plan is not None else []
    networks = app.network_map(source_is_home)
    nics: list[dict[str, Any]] = []
    dropped_eth: list[str] = []
    gone_nics: set[str] = set()
    for n, nic in enumerate(_vectors(merged.get("NIC"))):
        new, drop = _nic(nic, n, vm, networks, app, target, work)
        nics += [new] if new is not None else []
        nic_id = str(nic.get("NIC_ID", n))
        dropped_eth += [nic_id] if drop else []
        gone_nics |= {str(nic.get("NAME") or f"NIC{nic_id}")} if new is None else set()
    aliases: list[dict[str, Any]] = []
    for n, alias in enumerate(_vectors(merged.get("NIC_ALIAS"))):
        if str(alias.get("PARENT")) in gone_nics:
            work.decide(
                f"NIC_ALIAS {alias.get('NIC_ID', n)}",
                "parent NIC dropped",
                str(alias.get("PARENT")),
                "dropped",
            )
            continue
        new, _ = _nic(alias, n, vm, networks, app, target, work, kind="NIC_ALIAS")
        aliases += [new] if new is not None else []
    for key, value in merged.items():
        if key in RUNTIME_KEYS or key in ("DISK", "NIC", "NIC_ALIAS", "NAME"):
            continue
        if key in SCHEDULING_ATTRIBUTES:
            vector = not isinstance(value, str)
            shown = f"{key} vector" if vector else _shown(key, value)
            new_value = work.source_only(key, shown, app, target.name, vector=vector)
            if new_value is not None:
                out[key] = new_value
            continue
        if key == "CONTEXT" and isinstance(value, Mapping):
            value = _context(dict(value), dropped_eth, work)
        if key == "GRAPHICS" and isinstance(value, Mapping) and "PORT" in value:
            value = {k: v for k, v in value.items() if k != "PORT"}
            work.decide(
                "GRAPHICS/PORT", "runtime", str(merged["GRAPHICS"]["PORT"]), "removed (assigned per VM)"
            )
        if isinstance(value, Mapping):
            value = _paths(key, dict(value), app, target, work)
        out[key] = value
    for name, group in (("DISK", disks), ("NIC", nics), ("NIC_ALIAS", aliases)):
        if group:
            out[name] = group if len(group) > 1 else group[0]
    return VmPlan(
        vm=work.vm,
        images=tuple(plans),
        template=out,
        decisions=tuple(work.decisions),
        refusals=tuple(work.refusals),
    )


def _paths(
    top: str, vector: dict[str, Any], app: OpenNebulaApp, target: TargetSite, work: _Work
) -> dict[str, Any]:
    """``vector`` with its attributes that name a file of the source (``PATH_ATTRIBUTES``) handled by
    the ``source_only`` rule; a value that is neither an absolute path nor a ``$FILE[...]`` stays."""
    out = {}
    for key, value in vector.items():
        path_like = isinstance(value, str) and (value.startswith("/") or "$FILE[" in value)
        if (top, key) in PATH_ATTRIBUTES and path_like:
            new = work.source_only(f"{top}/{key}", str(value), app, target.name)
            if new is not None:
                out[key] = new
            continue
        out[key] = value
    return out


def bind_images(plan: VmPlan, ids: Mapping[str, int]) -> Template:
    """``plan``'s VM template with each disk registered since (by name in ``ids``: name -> id on the
    target) pointing at its image id; the input of ``one.vm.allocate``."""
    names = {p.name for p in plan.images}
    template = dict(plan.template)
    disks = [
        {"IMAGE_ID": str(ids[d["IMAGE"]]), **{k: v for k, v in d.items() if k != "IMAGE"}}
        if d.get("IMAGE") in names and d.get("IMAGE") in ids
        else d
        for d in _vectors(template.get("DISK"))
    ]
    if disks:
        template["DISK"] = disks if len(disks) > 1 else disks[0]
    return template


def unbound(plan: VmPlan, ids: Mapping[str, int]) -> list[str]:
    """The images of ``plan`` neither reused nor in ``ids``: those still to register."""
    return [p.name for p in plan.images if p.reuse is None and p.name not in ids]


def is_protected(app: OpenNebulaApp, vm_id: int, user_template: Mapping[str, Any]) -> bool:
    """Whether the VM ``vm_id`` (with ``user_template``) is one of ``app``'s: named in ``vm_ids``, or
    carrying ``vm_label``'s KEY with its VALUE (compared as text, the key in any case)."""
    if app.vm_ids is not None:
        return vm_id in app.vm_ids
    label = app.label()
    if label is None:
        return False
    key, value = label
    found = {str(k).upper(): v for k, v in user_template.items()}.get(key.upper())
    return isinstance(found, str | int | float) and str(found) == value


def vm_guard(plans: Sequence[VmPlan], target: str) -> Check:
    """The plan's guard over its VMs' translations: failed with every refusal, one per clause, or
    passed with what will be done on ``target``."""
    refusals = [str(r) for p in plans for r in p.refusals]
    if refusals:
        return Check(name="VM definitions fit the target", ok=False, detail="; ".join(refusals))
    images = [i for p in plans for i in p.images]
    reused = sum(1 for i in images if i.reuse is not None)
    return Check(
        name="VM definitions fit the target",
        ok=True,
        detail=f"{len(plans)} VM(s) on {target}: {len(images) - reused} image(s) to register, {reused}"
        f" reused, {sum(len(p.decisions) for p in plans)} decision(s) recorded",
    )
