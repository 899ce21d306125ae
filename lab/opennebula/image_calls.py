"""The fake front-end's ``one.image.*`` and ``one.imagepool.*`` calls (:class:`ImageCalls`)."""

from __future__ import annotations

import hashlib

from lab.opennebula import xmlbody
from lab.opennebula.codes import (
    ACTION,
    ALLOCATE,
    DISK_TYPE_FILE,
    DISK_TYPE_RBD,
    DS_SYSTEM,
    IMAGE_TYPES,
    IMG_READY,
    INTERNAL,
    OneError,
)
from lab.opennebula.store import OnedStore, in_range
from lab.opennebula.template import TemplateError, from_json, get_str, parse, to_json


class ImageCalls(OnedStore):
    """The image calls of :class:`~lab.opennebula.oned.Oned`."""

    def image_info(self, oid: int, decrypt: bool = False) -> str:
        with self._lock:
            image = self._get("images", oid, "one.image.info", "image")
            return xmlbody.image_xml(image, self._ds_name(image["datastore_id"]))

    def imagepool_info(self, flt: int = -2, start: int = -1, end: int = -1) -> str:
        with self._lock:
            images = in_range(self.data["images"], flt, start, end)
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
