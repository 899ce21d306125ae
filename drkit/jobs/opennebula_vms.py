"""A VM app's VMs on one site's OpenNebula front-end: which they are, and what the backup saves of
them.

* :func:`app_vms` finds the app's VMs on a site: by ``vm_label`` (a VM started from a backup
  carries its user template, label included), or by ``vm_ids`` on the home site and by their
  ``STANDBY_ORIGIN`` marker elsewhere.
* :func:`list_vms` reads each protected VM of the backup's site, its disks' images and the site's
  networks, and returns them as the backup's records
  (:func:`~drkit.domain.opennebula_backup.vm_records`), in the shape of a Kubernetes listing so
  the backup plans, seals, writes and indexes them like any object. A VM that cannot be read (the
  front-end does not answer, the VM is missing or locked) fails the whole backup with one line
  naming the VM, the site and what to do: nothing is written.
"""

from __future__ import annotations

from typing import Any

from drkit.adapters.opennebula import OneConflict, OneFrontend, OneImage, OneNotFound, OneVm, TemplateMap
from drkit.domain.errors import Conflict, OpenNebulaError, StandbyError, TransientError
from drkit.domain.models import ProtectedApp
from drkit.domain.opennebula_backup import KINDS, ORIGIN, vm_records
from drkit.domain.opennebula_drill import DRILL
from drkit.domain.opennebula_records import SavedImage, SourceVm
from drkit.domain.selection import Selection

__all__ = ["app_vms", "list_vms", "origin_of", "plain_template", "saved_image", "source_vm"]


def origin_of(app: ProtectedApp, vm_id: int) -> str:
    """The ``STANDBY_ORIGIN`` value of the copy of VM ``vm_id`` (its id where it was saved)."""
    return f"{app.name}/{vm_id}"


def plain_template(template: TemplateMap) -> dict[str, Any]:
    """A front-end's template as the domain reads it: a vector alone is a mapping, several a list."""
    out: dict[str, Any] = {}
    for key, value in template.items():
        if isinstance(value, str):
            out[key] = value
        else:
            vectors = [dict(v) for v in value]
            out[key] = vectors[0] if len(vectors) == 1 else vectors
    return out


def app_vms(frontend: OneFrontend, app: ProtectedApp, site: str) -> list[OneVm]:
    """The app's VMs on ``site`` (none ``DONE``), by id: see the module docstring. A VM named by id
    that is not on the home site is left out here (the backup checks it)."""
    one = app.opennebula
    assert one is not None, "app_vms is for apps of checks.kind opennebula"
    found: dict[int, OneVm] = {}
    label = one.label()
    if label is not None:
        found.update((vm.id, vm) for vm in frontend.vms_labelled(*label))
    for vm_id in one.vm_ids or ():
        if site == app.home_site:
            try:
                vm = frontend.vm(vm_id)
            except OneNotFound:
                continue
            if vm.state != "DONE":
                found[vm.id] = vm
        found.update((vm.id, vm) for vm in frontend.vms_labelled(ORIGIN, origin_of(app, vm_id)))
    return [
        found[i] for i in sorted(found) if not found[i].user_template.get(DRILL)
    ]  # a drill's VM is not the app's


def saved_image(image: OneImage) -> SavedImage:
    """A disk image's definition as the backup saves it."""
    prefix = image.template.get("DEV_PREFIX", "")
    return SavedImage(
        id=image.id,
        name=image.name,
        source=image.source,
        size_mb=image.size_mb,
        format=image.format or "raw",
        datastore=image.datastore,
        datastore_id=image.datastore_id,
        persistent=image.persistent,
        owner=image.owner,
        type=image.type or "OS",
        dev_prefix=prefix if isinstance(prefix, str) else "",
    )


def source_vm(vm: OneVm, networks: dict[int, str]) -> SourceVm:
    """A VM as the backup saves it (whole: the records split its secret values out)."""
    return SourceVm(
        id=vm.id,
        name=vm.name,
        template=plain_template(vm.template),
        user_template=plain_template(vm.user_template),
        networks=networks,
    )


def _next_action(error: StandbyError, app: str, vm: str) -> str:
    again = f"`standby backup run --app {app}`"
    if isinstance(error, TransientError):
        return f"run {again} again once the front-end answers"
    if isinstance(error, OneNotFound):
        return f"fix apps[{app}].opennebula (VM {vm} is not there), then run {again}"
    if isinstance(error, Conflict):
        return f"wait until VM {vm} is unlocked (or `onevm unlock {vm}`), then run {again}"
    return f"fix what the front-end says, then run {again}"


def _unreadable(error: StandbyError, app: str, vm: str, site: str) -> StandbyError:
    """``error`` as one line naming the VM, the site and the next action (same kind, so a
    transient failure is still retried)."""
    step = _next_action(error, app, vm)
    message = f"app {app}: VM {vm} on site {site} cannot be read for the backup: {error.message}; {step}"
    context = {**error.context, "app": app, "vm": vm, "site": site}
    if isinstance(error, OpenNebulaError):
        return type(error)(message, code=error.code, hint=step, context=context)
    return StandbyError(message, hint=step, context=context)


def _read(
    frontend: OneFrontend, app: ProtectedApp, site: str
) -> tuple[list[SourceVm], list[SavedImage], int]:
    one = app.opennebula
    assert one is not None
    calls = 0
    what = "list" if one.vm_ids is None else ", ".join(map(str, one.vm_ids))
    try:
        vms = app_vms(frontend, app, site)
        calls += 1 + len(one.vm_ids or ())
        if one.vm_ids is not None and site == app.home_site:
            missing = sorted(set(one.vm_ids) - {vm.id for vm in vms})
            if missing:
                what = ", ".join(map(str, missing))
                raise OneNotFound(
                    f"VM(s) {what} not found on {site}'s front-end", context={"vms": missing, "site": site}
                )
        networks = {n.id: n.name for n in frontend.vnets()}
        calls += 1
    except StandbyError as error:
        raise _unreadable(error, app.name, what, site) from None
    saved: list[SourceVm] = []
    images: dict[int, SavedImage] = {}
    for vm in vms:
        what = f"{vm.id} {vm.name}"
        try:
            if vm.locked:
                raise OneConflict(f"VM {vm.id} is locked", context={"vm": vm.id, "site": site})
            for disk in vm.disks:
                if disk.image_id is not None and disk.image_id not in images:
                    images[disk.image_id] = saved_image(frontend.image(disk.image_id))
                    calls += 1
        except StandbyError as error:
            raise _unreadable(error, app.name, what, site) from None
        saved.append(source_vm(vm, networks))
    return saved, list(images.values()), calls


def list_vms(frontend: OneFrontend, app: ProtectedApp, site: str) -> tuple[Selection, tuple[str, ...], int]:
    """The backup's records of ``app``'s VMs on ``site``: ``(selection, kinds, calls)`` as
    :func:`~drkit.jobs.backup_listing.list_objects` returns a Kubernetes app's (see the module
    docstring)."""
    vms, images, calls = _read(frontend, app, site)
    if not vms:
        raise OneNotFound(
            f"app {app.name}: no VM of {app.opennebula.describe() if app.opennebula else 'the app'} on"
            f" site {site}; nothing was written; check apps[{app.name}].opennebula, then run"
            f" `standby backup run --app {app.name}` again",
            hint=f"check apps[{app.name}].opennebula and the VMs on {site}",
            context={"app": app.name, "site": site},
        )
    by_id = {i.id: i for i in images}
    objects: list[dict[str, Any]] = []
    for vm in vms:
        ids = {int(d["IMAGE_ID"]) for d in _disks(vm.template) if str(d.get("IMAGE_ID", "")).isdigit()}
        objects += vm_records(vm, [by_id[i] for i in sorted(ids) if i in by_id])
    unique = {(o["kind"], o["metadata"]["name"]): o for o in objects}
    return Selection(tuple(unique.values())), tuple(str(k) for k in KINDS), calls


def _disks(template: dict[str, Any]) -> list[dict[str, Any]]:
    value = template.get("DISK")
    if isinstance(value, dict):
        return [value]
    return [d for d in value if isinstance(d, dict)] if isinstance(value, list) else []
