"""Offline OpenAPI schemas of built-in kinds (from ``kubernetes_validate``, strict variant, v1.31)."""

from __future__ import annotations

import json
import threading
from importlib import resources
from typing import Any

import jsonschema

SCHEMA_VERSION = "v1.31.0-local-strict"

_lock = threading.Lock()
_defs: dict[str, Any] | None = None
_gvk: dict[tuple[str, str, str], str] = {}
_validators: dict[str, Any] = {}


def definitions() -> dict[str, Any]:
    """All ``$defs`` of the strict schema set, loaded once."""
    global _defs
    with _lock:
        if _defs is None:
            ref = resources.files("kubernetes_validate") / "kubernetes-json-schema" / SCHEMA_VERSION
            doc = json.loads((ref / "_definitions.json").read_text())
            _defs = doc["$defs"]
            for name, node in _defs.items():
                for gvk in node.get("x-kubernetes-group-version-kind") or []:
                    _gvk.setdefault((gvk["group"], gvk["version"], gvk["kind"]), name)
        return _defs


def def_name(group: str, version: str, kind: str) -> str | None:
    """Definition name (``io.k8s.api.apps.v1.Deployment``) of a kind, if known."""
    definitions()
    return _gvk.get((group, version, kind))


def validator_for(name: str) -> Any:
    """A cached Draft 2020-12 validator for the definition ``name``."""
    defs = definitions()
    with _lock:
        val = _validators.get(name)
        if val is None:
            val = jsonschema.Draft202012Validator({"$ref": f"#/$defs/{name}", "$defs": defs})
            _validators[name] = val
        return val


def resolve(node: dict[str, Any] | None) -> dict[str, Any]:
    """Follow ``$ref`` chains (``#/$defs/...``) in the strict schema set."""
    defs = definitions()
    while node and "$ref" in node:
        node = defs.get(node["$ref"].rsplit("/", 1)[-1], {})
    return node or {}


def child(node: dict[str, Any] | None, key: str) -> dict[str, Any]:
    """Schema of property ``key`` of an object node (resolved)."""
    node = resolve(node)
    props = node.get("properties") or {}
    if key in props:
        return props[key]
    extra = node.get("additionalProperties")
    return extra if isinstance(extra, dict) else {}


def items(node: dict[str, Any] | None) -> dict[str, Any]:
    """Schema of the items of an array node (resolved)."""
    return resolve(resolve(node).get("items") or {})
