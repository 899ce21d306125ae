"""A VM app's backup records: what the nightly backup saves of each protected VM, as manifests the
backup's blob and index machinery stores like any Kubernetes object. Pure.

Per VM, under the API group :data:`GROUP`:

* ``VirtualMachine/vm-<id>``: its id, name, ``TEMPLATE`` and ``USER_TEMPLATE`` without the values
  that may hold secrets (:func:`~drkit.domain.opennebula_template.split_secrets`), the source's
  networks (id -> name) and the ids of its disks' images;
* ``Image/image-<id>``: each disk image's definition
  (:class:`~drkit.domain.opennebula_records.SavedImage`: name, ``SOURCE``, size, format, datastore,
  persistence, owner, type, ``DEV_PREFIX``);
* ``Secret/vm-<id>-secrets``, only when the VM has such values: those values by path. It is a
  ``Secret`` like Kubernetes' own: a backup without a key refuses it, and with a key every blob is
  sealed.

:func:`saved_vms` joins the records back (each VM whole, with its images) for a start on the other
site; :func:`record_problem` is what ``verify-backup`` checks of each record.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

from drkit.domain.models import KindRef
from drkit.domain.opennebula_records import SavedImage, SourceVm
from drkit.domain.opennebula_template import join_secrets, split_secrets

GROUP = "opennebula.standby.io"
API_VERSION = f"{GROUP}/v1"
VM_KIND, IMAGE_KIND, SECRET_KIND = "VirtualMachine", "Image", "Secret"
KINDS = tuple(KindRef(group=GROUP, version="v1", kind=k) for k in (VM_KIND, IMAGE_KIND, SECRET_KIND))
"""The kinds of a VM app's backup (what its driver's ``backup_kinds`` names)."""
ORIGIN = "STANDBY_ORIGIN"
"""The user-template attribute a VM started from a backup carries: ``<app>/<id of the VM saved>``."""


@dataclass(frozen=True)
class SavedVm:
    """A VM read back from a backup: whole (its secret values joined back) and its disks' images."""

    vm: SourceVm
    images: tuple[SavedImage, ...]

    @property
    def origin_id(self) -> int:
        """The id of the VM it started as: its own, or the one its ``STANDBY_ORIGIN`` names."""
        origin = str(self.vm.user_template.get(ORIGIN) or self.vm.template.get(ORIGIN) or "")
        tail = origin.rpartition("/")[2]
        return int(tail) if tail.isdigit() else self.vm.id


def _manifest(kind: str, name: str, body: Mapping[str, Any]) -> dict[str, Any]:
    return {"apiVersion": API_VERSION, "kind": kind, "metadata": {"name": name}, **body}


def vm_records(vm: SourceVm, images: Sequence[SavedImage]) -> list[dict[str, Any]]:
    """The manifests that save ``vm`` and its disks' ``images`` (see the module docstring)."""
    template, secret_t = split_secrets(vm.template)
    user, secret_u = split_secrets(vm.user_template)
    name = f"vm-{vm.id}"
    spec: dict[str, Any] = {
        "id": vm.id,
        "name": vm.name,
        "template": template,
        "user_template": user,
        "networks": {int(k): v for k, v in vm.networks.items()},
        "images": sorted({i.id for i in images}),
    }
    out = [_manifest(VM_KIND, name, {"spec": spec})]
    if secret_t or secret_u:
        values = {"template": secret_t, "user_template": secret_u}
        out.append(_manifest(SECRET_KIND, f"{name}-secrets", {"values": values}))
    out += [_manifest(IMAGE_KIND, f"image-{i.id}", {"spec": i.model_dump()}) for i in images]
    return out


def _mine(manifest: Mapping[str, Any], kind: str) -> bool:
    return manifest.get("apiVersion") == API_VERSION and manifest.get("kind") == kind


def saved_vms(manifests: Sequence[Mapping[str, Any]]) -> list[SavedVm]:
    """Each VM of a backup's records, whole, by id; a record that does not parse is a ``ValueError``
    naming it (never a value)."""
    images = {
        int(m["spec"]["id"]): SavedImage.model_validate(m["spec"]) for m in manifests if _mine(m, IMAGE_KIND)
    }
    secrets = {str(m["metadata"]["name"]): m.get("values") or {} for m in manifests if _mine(m, SECRET_KIND)}
    out: list[SavedVm] = []
    for m in manifests:
        if not _mine(m, VM_KIND):
            continue
        name = str(m["metadata"]["name"])
        spec = dict(m["spec"])
        wanted = [int(i) for i in spec.pop("images", [])]
        missing = [i for i in wanted if i not in images]
        if missing:
            raise ValueError(f"{VM_KIND} {name}: no Image record for image(s) {', '.join(map(str, missing))}")
        values = secrets.get(f"{name}-secrets", {})
        spec["template"] = join_secrets(spec.get("template") or {}, values.get("template") or {})
        spec["user_template"] = join_secrets(
            spec.get("user_template") or {}, values.get("user_template") or {}
        )
        out.append(SavedVm(SourceVm.model_validate(spec), tuple(images[i] for i in wanted)))
    return sorted(out, key=lambda s: s.vm.id)


def is_vm_record(manifest: Mapping[str, Any]) -> bool:
    """Whether ``manifest`` is one of a VM app's records (not a Kubernetes object)."""
    return manifest.get("apiVersion") == API_VERSION


def record_problem(manifest: Mapping[str, Any]) -> str | None:
    """Why a VM app's record is not one (its fields do not parse), or None."""
    kind = manifest.get("kind")
    try:
        if kind == VM_KIND:
            spec = dict(manifest.get("spec") or {})
            ids = spec.pop("images", [])
            if not isinstance(ids, list) or not all(isinstance(i, int) for i in ids):
                return "spec.images is not a list of image ids"
            SourceVm.model_validate(spec)
        elif kind == IMAGE_KIND:
            SavedImage.model_validate(manifest.get("spec") or {})
        elif kind == SECRET_KIND:
            values = manifest.get("values")
            if not isinstance(values, Mapping) or not all(
                isinstance(part, Mapping) and all(isinstance(v, str) for v in part.values())
                for part in values.values()
            ):
                return "values is not template and user_template paths -> text"
        else:
            return f"unknown kind {kind!r} in {API_VERSION}"
    except ValidationError as error:
        first = error.errors()[0]
        where = ".".join(str(p) for p in first.get("loc", ())) or "(top)"
        return f"spec.{where}: {first.get('msg')}"
    return None
