"""Strict validation: unknown fields, schema errors, object names and immutable fields."""

from __future__ import annotations

import re
from typing import Any

from lab.kubeapi import schemas
from lab.kubeapi.errors import invalid
from lab.kubeapi.resources import ResourceType

_DNS_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
_MAX_CAUSES = 20

#: HTTP status for unknown fields. The brief asks for 422; a real apiserver answers 400 BadRequest with
#: ``strict decoding error: unknown field "..."``. Change here to get the real code.
UNKNOWN_FIELD_CODE = 422

_LABEL_NAMES = {"namespaces", "services"}


def _field(path: list[Any]) -> str:
    out = ""
    for p in path:
        out += f"[{p}]" if isinstance(p, int) else (f".{p}" if out else str(p))
    return out


def _cause(reason: str, field: str, message: str) -> dict[str, str]:
    return {"reason": reason, "message": message, "field": field}


def _raise(rt: ResourceType, obj: dict[str, Any], causes: list[dict[str, str]], unknown: bool) -> None:
    name = (obj.get("metadata") or {}).get("name") or (obj.get("metadata") or {}).get("generateName", "")
    err = invalid(rt.group, rt.kind, name, causes[:_MAX_CAUSES])
    if unknown:
        err.message = "strict decoding error: " + ", ".join(c["message"] for c in causes[:_MAX_CAUSES])
        err.message = f'{rt.kind}{"." + rt.group if rt.group else ""} "{name}" is invalid: {err.message}'
        err.code = UNKNOWN_FIELD_CODE
        err.reason = "Invalid" if UNKNOWN_FIELD_CODE == 422 else "BadRequest"
    raise err


def validate_name(rt: ResourceType, obj: dict[str, Any]) -> None:
    """Reject malformed ``metadata.name`` values (422 like the real server)."""
    name = (obj.get("metadata") or {}).get("name") or ""
    if rt.group == "rbac.authorization.k8s.io":  # RBAC names are path segments ("system:discovery")
        if name in (".", "..") or "/" in name or "%" in name:
            msg = f"Invalid value: \"{name}\": may not contain '/' or '%' and may not be '.' or '..'"
            _raise(rt, obj, [_cause("FieldValueInvalid", "metadata.name", msg)], False)
        return
    pattern = _DNS_LABEL if rt.plural in _LABEL_NAMES else _DNS_SUBDOMAIN
    limit = 63 if rt.plural in _LABEL_NAMES else 253
    if not name or (pattern.match(name) and len(name) <= limit):
        return
    msg = (
        f'Invalid value: "{name}": a lowercase RFC 1123 {"label" if limit == 63 else "subdomain"} must '
        "consist of lower case alphanumeric characters, '-' or '.', and must start and end with an "
        "alphanumeric character"
    )
    _raise(rt, obj, [_cause("FieldValueInvalid", "metadata.name", msg)], False)


def validate(rt: ResourceType, obj: dict[str, Any], strict: bool = True) -> None:
    """Validate ``obj`` against the kind's schema; unknown fields are rejected when ``strict``."""
    validate_name(rt, obj)
    if rt.builtin:
        _validate_builtin(rt, obj, strict)
    else:
        _validate_custom(rt, obj, strict)


def _validate_builtin(rt: ResourceType, obj: dict[str, Any], strict: bool) -> None:
    name = schemas.def_name(rt.group, rt.version, rt.kind)
    if name is None:
        return
    unknown: list[dict[str, str]] = []
    other: list[dict[str, str]] = []
    for err in schemas.validator_for(name).iter_errors(obj):
        path = list(err.absolute_path)
        if err.validator == "additionalProperties" and isinstance(err.instance, dict):
            known = set((err.schema or {}).get("properties") or {})
            for key in sorted(set(err.instance) - known):
                fld = _field([*path, key])
                unknown.append(_cause("FieldValueInvalid", fld, f'unknown field "{fld}"'))
        else:
            msg = err.message if len(err.message) < 200 else err.message[:200] + "..."
            other.append(_cause("FieldValueInvalid", _field(path), f"Invalid value: {msg}"))
        if len(unknown) + len(other) >= _MAX_CAUSES:
            break
    if unknown and strict:
        _raise(rt, obj, unknown, True)
    if other:
        _raise(rt, obj, other, False)


_TYPES: dict[str, tuple[type, ...]] = {
    "object": (dict,),
    "array": (list,),
    "string": (str,),
    "integer": (int,),
    "number": (int, float),
    "boolean": (bool,),
}


def _check_custom(
    schema: dict[str, Any],
    value: Any,
    path: list[Any],
    unknown: list[dict[str, str]],
    other: list[dict[str, str]],
) -> None:
    fld = _field(path)
    if value is None:
        if not schema.get("nullable") and schema.get("type"):
            other.append(
                _cause(
                    "FieldValueTypeInvalid",
                    fld,
                    f'Invalid value: "null": {fld} in body must be of type {schema.get("type")}: "null"',
                )
            )
        return
    if schema.get("x-kubernetes-int-or-string"):
        if not isinstance(value, (int, str)) or isinstance(value, bool):
            other.append(_cause("FieldValueTypeInvalid", fld, "Invalid value: must be an integer or string"))
        return
    typ = schema.get("type")
    if typ in _TYPES:
        ok = isinstance(value, _TYPES[typ]) and not (typ in ("integer", "number") and isinstance(value, bool))
        if not ok:
            other.append(
                _cause(
                    "FieldValueTypeInvalid",
                    fld,
                    f'Invalid value: "{type(value).__name__}": {fld} in body must be of type {typ}',
                )
            )
            return
    if "enum" in schema and value not in schema["enum"]:
        allowed = ", ".join(f'"{v}"' for v in schema["enum"])
        other.append(
            _cause(
                "FieldValueNotSupported", fld, f'Unsupported value: "{value}": supported values: {allowed}'
            )
        )
    if isinstance(value, dict):
        props = schema.get("properties") or {}
        extra = schema.get("additionalProperties")
        preserve = schema.get("x-kubernetes-preserve-unknown-fields") or extra is True
        for req in schema.get("required") or []:
            if req not in value:
                other.append(_cause("FieldValueRequired", _field([*path, req]), "Required value"))
        for key, sub in value.items():
            if key in props:
                _check_custom(props[key], sub, [*path, key], unknown, other)
            elif isinstance(extra, dict):
                _check_custom(extra, sub, [*path, key], unknown, other)
            elif not preserve:
                kf = _field([*path, key])
                unknown.append(_cause("FieldValueInvalid", kf, f'unknown field "{kf}"'))
    elif isinstance(value, list) and isinstance(schema.get("items"), dict):
        for i, sub in enumerate(value):
            _check_custom(schema["items"], sub, [*path, i], unknown, other)


def _validate_custom(rt: ResourceType, obj: dict[str, Any], strict: bool) -> None:
    unknown: list[dict[str, str]] = []
    other: list[dict[str, str]] = []
    schema = dict(rt.schema or {"type": "object", "x-kubernetes-preserve-unknown-fields": True})
    props = dict(schema.get("properties") or {})
    props.pop("metadata", None)
    props.setdefault("apiVersion", {"type": "string"})
    props.setdefault("kind", {"type": "string"})
    schema["properties"] = props
    body = {k: v for k, v in obj.items() if k != "metadata"}
    _check_custom(schema, body, [], unknown, other)
    meta_name = (
        schemas.def_name("meta.k8s.io", "v1", "ObjectMeta")
        or "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"
    )
    for err in schemas.validator_for(meta_name).iter_errors(obj.get("metadata") or {}):
        path = ["metadata", *err.absolute_path]
        if err.validator == "additionalProperties" and isinstance(err.instance, dict):
            for key in sorted(set(err.instance) - set((err.schema or {}).get("properties") or {})):
                kf = _field([*path, key])
                unknown.append(_cause("FieldValueInvalid", kf, f'unknown field "{kf}"'))
        else:
            other.append(_cause("FieldValueInvalid", _field(path), f"Invalid value: {err.message[:200]}"))
    if unknown and strict:
        _raise(rt, obj, unknown, True)
    if other:
        _raise(rt, obj, other, False)


def prune_unknown(rt: ResourceType, obj: dict[str, Any]) -> None:
    """Drop unknown fields of a custom resource in place (``fieldValidation=Ignore`` semantics)."""
    if rt.builtin or not rt.schema:
        return

    def walk(schema: dict[str, Any], value: Any) -> None:
        if not isinstance(value, dict) or schema.get("x-kubernetes-preserve-unknown-fields"):
            if isinstance(value, list) and isinstance(schema.get("items"), dict):
                for sub in value:
                    walk(schema["items"], sub)
            return
        props = schema.get("properties") or {}
        extra = schema.get("additionalProperties")
        for key in list(value):
            if key in props:
                walk(props[key], value[key])
            elif isinstance(extra, dict):
                walk(extra, value[key])
            elif extra is not True:
                del value[key]

    for key in list(obj):
        if key in ("apiVersion", "kind", "metadata"):
            continue
        sub = (rt.schema.get("properties") or {}).get(key)
        if sub is None and not rt.schema.get("x-kubernetes-preserve-unknown-fields"):
            del obj[key]
        elif sub is not None:
            walk(sub, obj[key])
