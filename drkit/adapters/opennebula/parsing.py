"""Our records from pyone's generated bindings: the only place (with the adapter) that handles ``Any``."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from drkit.adapters.opennebula.records import (
    OneDatastore,
    OneDisk,
    OneImage,
    OneNic,
    OneVm,
    OneVnet,
    TemplateMap,
    TemplateValue,
)

# ------------------------------------------------------------------------------ pyone's edge (Any)


def template_map(raw: Any) -> dict[str, TemplateValue]:
    """A pyone ``TEMPLATE``/``USER_TEMPLATE`` (nested dicts from xmltodict) as a :data:`TemplateMap`."""
    if raw is None or raw == "":
        return {}
    if not isinstance(raw, Mapping):
        raise TypeError(f"a template is a mapping, not {type(raw).__name__}")
    out: dict[str, TemplateValue] = {}
    for key, value in raw.items():
        if isinstance(value, Mapping):
            out[str(key)] = (_vector(value),)
        elif isinstance(value, list):
            if all(isinstance(v, Mapping) for v in value):
                out[str(key)] = tuple(_vector(v) for v in value)
            else:  # a repeated single attribute: oned keeps the last one
                out[str(key)] = str(value[-1])
        else:
            out[str(key)] = "" if value is None else str(value)
    return out


def _vector(raw: Mapping[Any, Any]) -> dict[str, str]:
    return {str(k): "" if v is None else str(v) for k, v in raw.items()}


def vectors(template: TemplateMap, key: str) -> tuple[Mapping[str, str], ...]:
    """The vectors named ``key`` (none: an empty tuple; a single value counts as none)."""
    value = template.get(key)
    return value if isinstance(value, tuple) else ()


def _opt_int(value: str | None) -> int | None:
    return int(value) if value not in (None, "") else None


def _enum_name(enum: Any, value: Any) -> str:
    return str(enum(int(value)).name)


def vm_from_pyone(raw: Any) -> OneVm:
    """Our :class:`OneVm` from pyone's ``VM`` binding."""
    import pyone

    template = template_map(raw.TEMPLATE)
    disks = tuple(
        OneDisk(
            disk_id=int(d.get("DISK_ID", i)),
            image_id=_opt_int(d.get("IMAGE_ID")),
            image=d.get("IMAGE", ""),
            source=d.get("SOURCE", ""),
            datastore_id=_opt_int(d.get("DATASTORE_ID")),
            type=d.get("TYPE", ""),
            persistent=d.get("PERSISTENT", "").upper() == "YES",
            attributes=dict(d),
        )
        for i, d in enumerate(vectors(template, "DISK"))
    )
    nics = tuple(
        OneNic(
            nic_id=int(n.get("NIC_ID", i)),
            network=n.get("NETWORK", ""),
            network_id=_opt_int(n.get("NETWORK_ID")),
            ip=n.get("IP", ""),
            mac=n.get("MAC", ""),
            attributes=dict(n),
        )
        for i, n in enumerate(vectors(template, "NIC"))
    )
    return OneVm(
        id=int(raw.ID),
        name=str(raw.NAME),
        state=_enum_name(pyone.VM_STATE, raw.STATE),
        lcm_state=_enum_name(pyone.LCM_STATE, raw.LCM_STATE),
        template=template,
        user_template=template_map(raw.USER_TEMPLATE),
        disks=disks,
        nics=nics,
        locked=_locked(raw),
    )


def _locked(raw: Any) -> bool:
    lock = getattr(raw, "LOCK", None)
    return lock is not None and int(lock.LOCKED or 0) > 0


def _ids(raw: Any) -> tuple[int, ...]:
    return tuple(int(i) for i in (raw.ID if raw is not None else []))


def image_from_pyone(raw: Any) -> OneImage:
    """Our :class:`OneImage` from pyone's ``IMAGE`` binding."""
    import pyone

    return OneImage(
        id=int(raw.ID),
        name=str(raw.NAME),
        state=_enum_name(pyone.IMAGE_STATES, raw.STATE),
        type=_enum_name(pyone.IMAGE_TYPES, raw.TYPE),
        persistent=bool(int(raw.PERSISTENT or 0)),
        source=str(raw.SOURCE or ""),
        size_mb=int(raw.SIZE or 0),
        format=str(raw.FORMAT or ""),
        datastore_id=int(raw.DATASTORE_ID),
        datastore=str(raw.DATASTORE or ""),
        vms=_ids(raw.VMS),
        template=template_map(raw.TEMPLATE),
        locked=_locked(raw),
        owner=str(getattr(raw, "UNAME", "") or ""),
    )


def vnet_from_pyone(raw: Any) -> OneVnet:
    """Our :class:`OneVnet` from pyone's ``VNET`` binding."""
    return OneVnet(
        id=int(raw.ID), name=str(raw.NAME), bridge=str(raw.BRIDGE or ""), template=template_map(raw.TEMPLATE)
    )


def datastore_from_pyone(raw: Any) -> OneDatastore:
    """Our :class:`OneDatastore` from pyone's ``DATASTORE`` binding."""
    import pyone

    template = template_map(raw.TEMPLATE)
    pool = template.get("POOL_NAME", "")
    return OneDatastore(
        id=int(raw.ID),
        name=str(raw.NAME),
        type=_enum_name(pyone.DATASTORE_TYPES, raw.TYPE),
        ds_mad=str(raw.DS_MAD or ""),
        tm_mad=str(raw.TM_MAD or ""),
        pool_name=pool if isinstance(pool, str) and raw.TM_MAD == "ceph" else "",
        image_ids=_ids(raw.IMAGES),
        template=template,
    )
