"""An app's restore knowledge as data (``restore`` in its configuration): which objects a change
applies to (:class:`ObjectSelector`), the fields holding a storage class, further field changes, and
the restore order (:class:`RestoreSpec`). Pure models; the logic is in
:mod:`drkit.domain.transforms` and :mod:`drkit.domain.restore_order`.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import AfterValidator, Field, JsonValue, model_validator

from drkit.domain.fieldpath import parse_path
from drkit.domain.model_base import Model
from drkit.domain.restore_order import RESTORE_ORDER, check_order


def _path(value: str) -> str:
    parse_path(value)
    return value


FieldPath = Annotated[str, AfterValidator(_path)]
"""A field path like ``spec.storageClassName`` or ``spec.volumeClaimTemplates[*].spec.storageClassName``."""


class ObjectSelector(Model):
    """Which objects something applies to; every field given must match (none given: every object)."""

    kind: str | None = Field(None, min_length=1, description="kind, e.g. StatefulSet; any kind when empty")
    api_version: str | None = Field(
        None, min_length=1, description="apiVersion, exactly, e.g. apps/v1; any when empty"
    )
    group: str | None = Field(
        None, description="API group, e.g. apps; '' is the core group; any group when empty"
    )
    name: str | None = Field(None, min_length=1, description="object name; shell-style wildcards allowed")
    namespace: str | None = Field(
        None, min_length=1, description="namespace; shell-style wildcards allowed; any when empty"
    )
    labels: dict[str, str] = Field(
        default_factory=dict, description="labels the object must carry, all of them, with these values"
    )


class StorageClassField(Model):
    """A field holding a storage class name, renamed on restore when the sites' classes differ."""

    select: ObjectSelector = Field(..., description="objects holding the field")
    path: FieldPath = Field(
        ..., description="field path, e.g. spec.volumeClaimTemplates[*].spec.storageClassName"
    )


DEFAULT_STORAGE_CLASS_FIELDS: tuple[StorageClassField, ...] = (
    StorageClassField(select=ObjectSelector(kind="PersistentVolume"), path="spec.storageClassName"),
    StorageClassField(select=ObjectSelector(kind="PersistentVolumeClaim"), path="spec.storageClassName"),
    StorageClassField(
        select=ObjectSelector(kind="StatefulSet", group="apps"),
        path="spec.volumeClaimTemplates[*].spec.storageClassName",
    ),
)


class FieldTransform(Model):
    """A restore-time change of one field of the selected objects."""

    select: ObjectSelector = Field(..., description="objects to change")
    action: Literal["set", "remove"] = Field(
        ...,
        description="'set': write 'value' at 'path' (missing mappings created); 'remove': delete the field",
    )
    path: FieldPath = Field(..., description="field path, e.g. metadata.annotations or spec.replicas")
    value: JsonValue = Field(None, description="value written by 'set' (any YAML value)")

    @model_validator(mode="after")
    def _value_for_set(self) -> FieldTransform:
        if self.action == "remove" and self.value is not None:
            raise ValueError("action 'remove' takes no 'value'")
        return self


class RestoreSpec(Model):
    """How the app's objects are restored on another site (Velero style: order and changes as data)."""

    order: Annotated[tuple[tuple[str, ...], ...], AfterValidator(check_order)] = Field(
        RESTORE_ORDER,
        description="ranks of kind names applied in turn; '*' is every kind not named, '@workload' the"
        " app's workload kind",
    )
    storage_class_fields: tuple[StorageClassField, ...] = Field(
        DEFAULT_STORAGE_CLASS_FIELDS,
        description="fields holding a storage class name, renamed from the source site's class to the"
        " target's (PV and PVC spec.storageClassName and StatefulSet volumeClaimTemplates by default)",
    )
    transforms: tuple[FieldTransform, ...] = Field(
        (), description="further field changes, applied in turn after the built-in ones"
    )
