"""The records of a VM's way between OpenNebula front-ends: what was saved on the source (a VM, its
images), what the target has, and what :func:`drkit.domain.opennebula.translate_vm` decides (the
images to register, the VM template, every decision and refusal). Pure data.
"""

from __future__ import annotations

from typing import Any

from pydantic import Field, field_validator

from drkit.domain.model_base import Model

IMAGE_TYPES = ("OS", "CDROM", "DATABLOCK", "KERNEL", "RAMDISK", "CONTEXT", "BACKUP")
"""OpenNebula's image types, by their number in ``one.image.info`` (``IMAGE/TYPE``)."""

# ------------------------------------------------------------------------------------------ input


class SavedImage(Model):
    """A disk image's definition as saved from the source front-end (``one.image.info``)."""

    id: int = Field(..., ge=0, description="image id on the source")
    name: str = Field(..., min_length=1, description="image name")
    source: str = Field(..., description="SOURCE: the RBD image, <pool>/one-<id>")
    size_mb: int = Field(..., ge=0, description="SIZE in MiB")
    format: str = Field("raw", description="FORMAT (raw for a Ceph image)")
    datastore: str = Field("", description="datastore name on the source")
    datastore_id: int | None = Field(None, description="datastore id on the source")
    persistent: bool = Field(..., description="whether the image is persistent")
    owner: str = Field("", description="owner's user name (UNAME)")
    type: str = Field("OS", description="OS, CDROM, DATABLOCK... (a number is read as OpenNebula's)")
    dev_prefix: str = Field("", description="DEV_PREFIX of the image's template (vd, sd, hd)")

    @field_validator("type", mode="before")
    @classmethod
    def _type_name(cls, value: object) -> object:
        if isinstance(value, int) or (isinstance(value, str) and value.isdigit()):
            number = int(value)
            if not 0 <= number < len(IMAGE_TYPES):
                raise ValueError(f"unknown image type {number}")
            return IMAGE_TYPES[number]
        return value.upper() if isinstance(value, str) else value


class SourceVm(Model):
    """A VM as saved from the source front-end: its id, name and templates."""

    id: int = Field(..., ge=0, description="VM id on the source")
    name: str = Field(..., min_length=1, description="VM name")
    template: dict[str, Any] = Field(..., description="the VM's TEMPLATE (DISK, NIC, CONTEXT, OS...)")
    user_template: dict[str, Any] = Field(default_factory=dict, description="the VM's USER_TEMPLATE")
    networks: dict[int, str] = Field(
        default_factory=dict,
        description="the source's virtual networks, id -> name (for a NIC with no NETWORK)",
    )


class Named(Model):
    """An object of the target front-end: its id and name."""

    id: int = Field(..., ge=0, description="id on the target")
    name: str = Field(..., description="name on the target")


class TargetImage(Named):
    """An image already registered on the target."""

    source: str = Field("", description="its SOURCE")


class TargetSite(Model):
    """What the target front-end has: networks, image datastores and images."""

    name: str = Field(..., description="the target site's name")
    networks: tuple[Named, ...] = Field((), description="its virtual networks")
    datastores: tuple[Named, ...] = Field((), description="its datastores")
    images: tuple[TargetImage, ...] = Field((), description="its images")


# ----------------------------------------------------------------------------------------- output


class Decision(Model):
    """One change made to a VM's definition on its way to the target, as a plan shows it."""

    vm: str = Field(..., description="the VM, '<id> <name>' on the source")
    what: str = Field(..., description="the attribute, disk, NIC or image concerned")
    rule: str = Field(..., description="the rule applied (a config field and its value, or 'runtime')")
    before: str = Field(..., description="what the source has")
    after: str = Field(..., description="what the target gets")

    def __str__(self) -> str:
        return f"VM {self.vm}: {self.what}: {self.before} -> {self.after} ({self.rule})"


class Refusal(Model):
    """Why a VM cannot be carried to the target as configured: a failed guard of the plan."""

    vm: str = Field(..., description="the VM, '<id> <name>' on the source")
    what: str = Field(..., description="the attribute, disk, NIC or image concerned")
    reason: str = Field(..., description="why, and what to change")

    def __str__(self) -> str:
        return f"VM {self.vm}: {self.what}: {self.reason}"


class ImagePlan(Model):
    """A disk's image on the target: registered from its mirrored RBD image, or reused."""

    disk_id: int = Field(..., description="DISK_ID on the source")
    name: str = Field(..., description="image name on the target")
    source: str = Field(..., description="SOURCE: <pool>/<rbd image>, the mirrored image")
    datastore_id: int = Field(..., description="target datastore to register it in")
    template: dict[str, str] = Field(..., description="one.image.allocate template")
    reuse: int | None = Field(None, description="id of the target's image with this SOURCE, when registered")


class VmPlan(Model):
    """A VM's way to the target: images, VM template, decisions and refusals."""

    vm: str = Field(..., description="the VM, '<id> <name>' on the source")
    images: tuple[ImagePlan, ...] = Field(..., description="its mirrored disks' images")
    template: dict[str, Any] = Field(..., description="one.vm.allocate template (disks by IMAGE until bound)")
    decisions: tuple[Decision, ...] = Field(..., description="every change made, for the plan")
    refusals: tuple[Refusal, ...] = Field(..., description="why it cannot go as configured (empty: it can)")
