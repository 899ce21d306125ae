"""A protected VM as an isolated drill starts it on the secondary: from the scratch copies of its
disks, on the drill network, marked as the drill's. Pure.

:func:`drill_vm` translates the VM's saved template with the app's rules
(:func:`~drkit.domain.opennebula.translate_vm`), then:

* each mirrored disk's image becomes a **non-persistent** image named ``<name>-drill`` whose
  ``SOURCE`` is the scratch copy of its RBD image (``<pool>/<image>-drill``): a VM started on it
  writes into a copy of the copy, never into the scratch image, and never into the replica;
* every NIC moves to ``opennebula.drill_network`` (its static addresses dropped: the drill network
  leases its own), or, with none configured, is dropped (each one recorded);
* the app's label and the ``STANDBY_ORIGIN`` marker are removed (the drill's VM is not one of the
  app's VMs), and the VM and its images carry :data:`DRILL` (the app) and :data:`DRILL_ID` (the
  drill), by which the drill's cleanup finds them, and only them.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping
from typing import Any

from drkit.domain.opennebula import translate_vm
from drkit.domain.opennebula_backup import ORIGIN
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
from drkit.domain.opennebula_template import Template

DRILL = "STANDBY_DRILL"
"""The user-template attribute of a drill's VM or image: the app's name."""
DRILL_ID = "STANDBY_DRILL_ID"
"""The user-template attribute of a drill's VM or image: the drill's id."""
SUFFIX = "-drill"
"""Added to the name of a drill's VM and images."""


def _vectors(value: Any) -> list[dict[str, Any]]:
    if value is None:
        return []
    if isinstance(value, Mapping):
        return [dict(value)]
    return [dict(v) for v in value]


def _networks(vm: SourceVm) -> set[str]:
    """The names of the networks ``vm``'s NICs are on."""
    merged = {**vm.user_template, **vm.template}
    names: set[str] = set()
    for nic in _vectors(merged.get("NIC")) + _vectors(merged.get("NIC_ALIAS")):
        name = nic.get("NETWORK")
        net_id = nic.get("NETWORK_ID")
        if not name and net_id not in (None, ""):
            name = vm.networks.get(int(net_id))
        if name:
            names.add(str(name))
    return names


def drill_vm(
    vm: SourceVm,
    images: Collection[SavedImage],
    target: TargetSite,
    one: OpenNebulaApp,
    *,
    app: str,
    drill: str,
    scratch: Callable[[str], str],
    mirrored: Collection[str] | None = None,
) -> VmPlan:
    """``vm`` as the drill ``drill`` of app ``app`` starts it on ``target`` (see the module
    docstring); ``scratch`` names the scratch copy of an RBD image. An image ``<name>-drill`` already
    on ``target`` with the scratch ``SOURCE`` (a re-run) is reused; one with another ``SOURCE`` refuses."""
    drill_net = one.drill_network
    rules = one.model_copy(
        update={
            "networks": {n: drill_net for n in _networks(vm)} if drill_net else {},
            "mapped_nic_addresses": "drop",
            "unmapped_nic": "drop-context",
        }
    )
    seen = target.model_copy(update={"images": (), "networks": target.networks if drill_net else ()})
    plan = translate_vm(vm, list(images), seen, rules, source_is_home=True, mirrored=mirrored)
    decisions = list(plan.decisions)
    refusals = list(plan.refusals)
    renamed: dict[str, ImagePlan] = {}
    for image in plan.images:
        pool, _, rbd = image.source.rpartition("/")
        source, name = f"{pool}/{scratch(rbd)}", f"{image.name}{SUFFIX}"
        fields = {
            **image.template,
            "NAME": name,
            "SOURCE": source,
            "PERSISTENT": "NO",
            DRILL: app,
            DRILL_ID: drill,
        }
        new = image.model_copy(update={"name": name, "source": source, "template": fields})
        taken = [i for i in target.images if i.name == name]
        if taken and taken[0].source != source:
            refusals.append(
                Refusal(
                    vm=plan.vm,
                    what=f"DISK {image.disk_id} image {name}",
                    reason=f"the name {name} is taken on {target.name} by image {taken[0].id} whose SOURCE is"
                    f" {taken[0].source or '(none)'}, not the scratch copy {source}; rename or delete that image",
                )
            )
        elif taken:
            new = new.model_copy(update={"reuse": taken[0].id})
        decisions.append(
            Decision(
                vm=plan.vm,
                what=f"DISK {image.disk_id}",
                rule="isolated drill",
                before=image.source,
                after=f"non-persistent image {name} on the scratch copy {source}",
            )
        )
        renamed[image.name] = new
    template: Template = {}
    label = one.label()
    for key, value in plan.template.items():
        if key == ORIGIN or (label is not None and key.upper() == label[0].upper()):
            continue
        template[key] = value
    disks = []
    for disk in _vectors(template.get("DISK")):
        new_image = renamed.get(str(disk.get("IMAGE")))
        if new_image is not None:
            ref = (
                {"IMAGE_ID": str(new_image.reuse)}
                if new_image.reuse is not None
                else {"IMAGE": new_image.name}
            )
            disk = {**ref, **{k: v for k, v in disk.items() if k != "IMAGE"}}
        disks.append(disk)
    if disks:
        template["DISK"] = disks if len(disks) > 1 else disks[0]
    template.update({"NAME": f"{vm.name}{SUFFIX}", DRILL: app, DRILL_ID: drill})
    if not drill_net and _networks(vm):
        decisions.append(
            Decision(
                vm=plan.vm,
                what="NIC",
                rule="opennebula.drill_network unset",
                before=", ".join(sorted(_networks(vm))),
                after="every NIC dropped: the drill's VM has no network",
            )
        )
    return plan.model_copy(
        update={
            "images": tuple(renamed.values()),
            "template": template,
            "decisions": tuple(decisions),
            "refusals": tuple(refusals),
        }
    )
