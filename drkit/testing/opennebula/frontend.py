"""The in-memory front-end: its image, template, network and datastore calls on top of the VM calls."""

from __future__ import annotations

from drkit.adapters.opennebula import (
    ACTION,
    ALLOCATE,
    LOCKED,
    NO_EXISTS,
    OneDatastore,
    OneImage,
    OneVmTemplate,
    OneVnet,
)
from drkit.testing.opennebula.state import ImageRecord
from drkit.testing.opennebula.template import as_map, first_value
from drkit.testing.opennebula.vms import FakeVmCalls


class FakeOneFrontend(FakeVmCalls):
    """:class:`~drkit.adapters.opennebula.OneFrontend` of one site, in memory."""

    def version(self) -> str:
        self._enter("version", "the version")
        self._reply("version", "the version")
        return "6.10.3"

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
        name = first_value(attrs, "NAME")
        if not name:
            raise self._fail(what, ALLOCATE, f"{fail} No NAME in template.")
        taken = next((i for i in self.images_.values() if i.name == name), None)
        if taken is not None:
            raise self._fail(what, ALLOCATE, f"{fail} NAME is already taken by IMAGE {taken.id}.")
        kind = (first_value(attrs, "TYPE") or "OS").upper()
        source, path = first_value(attrs, "SOURCE") or "", first_value(attrs, "PATH") or ""
        size = first_value(attrs, "SIZE") or "0"
        if kind not in ("OS", "CDROM", "DATABLOCK") or bool(source) == bool(path) or not size.isdigit():
            raise self._fail(what, ALLOCATE, f"{fail} Template malformed (TYPE, SOURCE or PATH, SIZE).")
        if source and int(size) == 0:
            raise self._fail(what, ALLOCATE, f"{fail} SIZE is mandatory when SOURCE is given.")
        image_id = self.next_image
        if not source:
            pool = first_value(ds.attrs, "POOL_NAME") or "one"
            source = (
                f"{pool}/one-{image_id}"
                if ds.tm_mad == "ceph"
                else f"/var/lib/one//datastores/{ds.id}/{image_id}"
            )
        kept = [(k, v) for k, v in attrs if k not in ("NAME", "TYPE", "PERSISTENT", "SOURCE", "PATH", "SIZE")]
        persistent = (first_value(attrs, "PERSISTENT") or "NO").upper() in ("YES", "1", "TRUE")
        self.images_[image_id] = ImageRecord(
            image_id,
            name,
            kind,
            persistent,
            source,
            int(size),
            first_value(attrs, "FORMAT") or "raw",
            ds.id,
            kept,
        )
        self.next_image += 1
        return image_id

    def image(self, image_id: int) -> OneImage:
        what = f"image {image_id}"
        self._enter("image", what)
        image = self._image(image_id, what)
        self._reply("image", what)
        return self._image_view(image)

    def _image_view(self, image: ImageRecord) -> OneImage:
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
            template=as_map(image.attrs),
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
            OneVnet(v.id, v.name, v.bridge, as_map(v.attrs))
            for v in sorted(self.vnets_.values(), key=lambda v: v.id)
        ]

    def datastore(self, datastore_id: int) -> OneDatastore:
        what = f"datastore {datastore_id}"
        self._enter("datastore", what)
        ds = self.datastores.get(datastore_id)
        if ds is None:
            raise self._fail(what, NO_EXISTS, f"Error getting datastore [{datastore_id}].")
        self._reply("datastore", what)
        pool = first_value(ds.attrs, "POOL_NAME") or ""
        return OneDatastore(
            id=ds.id,
            name=ds.name,
            type=ds.type,
            ds_mad=ds.ds_mad,
            tm_mad=ds.tm_mad,
            pool_name=pool if ds.tm_mad == "ceph" else "",
            image_ids=tuple(sorted(i.id for i in self.images_.values() if i.datastore_id == ds.id)),
            template=as_map(ds.attrs),
        )
