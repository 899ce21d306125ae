"""Patch formats: JSON patch, strategic merge patch (schema-driven) and apply merges.

JSON merge patch is :func:`drkit.domain.merge_patch.merge_patch`, shared with the in-memory cluster.
"""

from __future__ import annotations

import copy
from typing import Any

from lab.kubeapi import schemas
from lab.kubeapi.errors import ApiError

JSON_PATCH = "application/json-patch+json"
MERGE_PATCH = "application/merge-patch+json"
STRATEGIC_PATCH = "application/strategic-merge-patch+json"
APPLY_PATCH = "application/apply-patch+yaml"
PATCH_TYPES = (JSON_PATCH, MERGE_PATCH, STRATEGIC_PATCH, APPLY_PATCH, "application/apply-patch+cbor")


def _pointer(path: str) -> list[str]:
    if path == "":
        return []
    if not path.startswith("/"):
        raise ApiError(422, f"invalid JSON pointer {path!r}")
    return [p.replace("~1", "/").replace("~0", "~") for p in path[1:].split("/")]


def _walk(doc: Any, parts: list[str]) -> Any:
    for p in parts:
        if isinstance(doc, list):
            doc = doc[int(p)]
        elif isinstance(doc, dict):
            doc = doc[p]
        else:
            raise KeyError(p)
    return doc


def json_patch(target: Any, ops: Any) -> Any:
    """RFC 6902 JSON patch; failures are 422 like the real server."""
    if not isinstance(ops, list):
        raise ApiError(400, "json patch must be a list of operations")
    doc = copy.deepcopy(target)
    for op in ops:
        try:
            kind, parts = op["op"], _pointer(op["path"])
            if kind in ("move", "copy"):
                value = copy.deepcopy(_walk(doc, _pointer(op["from"])))
                if kind == "move":
                    doc = _remove(doc, _pointer(op["from"]))
                doc = _add(doc, parts, value)
            elif kind == "add":
                doc = _add(doc, parts, copy.deepcopy(op["value"]))
            elif kind == "remove":
                doc = _remove(doc, parts)
            elif kind == "replace":
                _walk(doc, parts)
                doc = _add(_remove(doc, parts), parts, copy.deepcopy(op["value"]))
            elif kind == "test":
                if _walk(doc, parts) != op["value"]:
                    raise ApiError(
                        422,
                        f"the server rejected our request due to an error in our request: "
                        f"testing value {op['path']} failed",
                    )
            else:
                raise ApiError(422, f"Unexpected kind: {kind}")
        except (KeyError, IndexError, ValueError, TypeError) as exc:
            raise ApiError(
                422,
                f"the server rejected our request due to an error in our request: "
                f"json patch {op.get('op')} operation does not apply: doc is missing path: "
                f'"{op.get("path")}": {exc}',
            ) from None
    return doc


def _add(doc: Any, parts: list[str], value: Any) -> Any:
    if not parts:
        return value
    parent = _walk(doc, parts[:-1])
    last = parts[-1]
    if isinstance(parent, list):
        idx = len(parent) if last == "-" else int(last)
        if idx > len(parent) or idx < 0:
            raise IndexError(last)
        parent.insert(idx, value)
    elif isinstance(parent, dict):
        parent[last] = value
    else:
        raise KeyError(last)
    return doc


def _remove(doc: Any, parts: list[str]) -> Any:
    parent = _walk(doc, parts[:-1])
    if isinstance(parent, list):
        del parent[int(parts[-1])]
    else:
        del parent[parts[-1]]
    return doc


def _list_meta(schema: dict[str, Any]) -> tuple[str, str | None]:
    """(strategy, merge key) of a list field schema."""
    strategy = str(schema.get("x-kubernetes-patch-strategy") or "")
    key = schema.get("x-kubernetes-patch-merge-key")
    if "merge" in strategy.split(","):
        return "merge", key
    keys = schema.get("x-kubernetes-list-map-keys")
    if schema.get("x-kubernetes-list-type") == "map" and keys:
        return "apply-map", keys[0]
    return "replace", None


def strategic_merge(original: Any, patch: Any, schema: dict[str, Any] | None) -> Any:
    """Strategic merge patch of ``original`` guided by the kind's OpenAPI schema (approximate)."""
    if not isinstance(patch, dict) or not isinstance(original, dict):
        return _strip_directives(copy.deepcopy(patch))
    node = schemas.resolve(schema)
    directive = patch.get("$patch")
    if directive == "replace":
        return _strip_directives({k: v for k, v in patch.items() if k != "$patch"})
    if directive == "delete":
        return None
    out = copy.deepcopy(original)
    retain = patch.get("$retainKeys")
    if isinstance(retain, list):
        out = {k: v for k, v in out.items() if k in retain}
    orders: dict[str, list[Any]] = {}
    for key, value in patch.items():
        if key in ("$patch", "$retainKeys"):
            continue
        if key.startswith("$setElementOrder/"):
            orders[key.split("/", 1)[1]] = value
            continue
        if key.startswith("$deleteFromPrimitiveList/"):
            field = key.split("/", 1)[1]
            if isinstance(out.get(field), list):
                out[field] = [v for v in out[field] if v not in value]
            continue
        sub_schema = schemas.child(node, key)
        if value is None:
            out.pop(key, None)
        elif isinstance(value, list):
            out[key] = _merge_list(out.get(key), value, sub_schema)
        elif isinstance(value, dict):
            merged = strategic_merge(
                out.get(key) if isinstance(out.get(key), dict) else {}, value, sub_schema
            )
            if merged is None:
                out.pop(key, None)
            else:
                out[key] = merged
        else:
            out[key] = value
    for field, order in orders.items():
        if isinstance(out.get(field), list):
            _, mkey = _list_meta(schemas.resolve(schemas.child(node, field)))
            out[field] = _reorder(out[field], order, mkey)
    return out


def _reorder(items: list[Any], order: list[Any], key: str | None) -> list[Any]:
    def ident(item: Any) -> Any:
        return item.get(key) if key and isinstance(item, dict) else item

    wanted = [ident(o) if isinstance(o, dict) else o for o in order]
    pos = {repr(w): i for i, w in enumerate(wanted)}
    indexed = list(enumerate(items))
    indexed.sort(key=lambda iv: (pos.get(repr(ident(iv[1])), len(wanted)), iv[0]))
    return [v for _, v in indexed]


def _merge_list(original: Any, patch: list[Any], schema: dict[str, Any]) -> list[Any]:
    strategy, key = _list_meta(schema)
    item_schema = schemas.items(schema)
    if strategy == "replace" or not isinstance(original, list):
        if any(isinstance(p, dict) and p.get("$patch") == "replace" for p in patch):
            return [_strip_directives(p) for p in patch if not (isinstance(p, dict) and "$patch" in p)]
        return [
            _strip_directives(copy.deepcopy(p))
            for p in patch
            if not (isinstance(p, dict) and p.get("$patch") == "delete")
        ]
    if any(isinstance(p, dict) and p.get("$patch") == "replace" for p in patch):
        return [_strip_directives(p) for p in patch if not (isinstance(p, dict) and "$patch" in p)]
    out = copy.deepcopy(original)
    if key is None:
        for item in patch:
            if item not in out:
                out.append(copy.deepcopy(item))
        return out
    for item in patch:
        if not isinstance(item, dict):
            continue
        idx = next(
            (i for i, o in enumerate(out) if isinstance(o, dict) and o.get(key) == item.get(key)), None
        )
        if item.get("$patch") == "delete":
            if idx is not None:
                del out[idx]
        elif idx is None:
            out.append(_strip_directives(copy.deepcopy(item)))
        else:
            out[idx] = strategic_merge(out[idx], item, item_schema)
    return out


def _strip_directives(value: Any) -> Any:
    if isinstance(value, dict):
        return {
            k: _strip_directives(v)
            for k, v in value.items()
            if not k.startswith("$patch")
            and not k.startswith("$setElementOrder/")
            and not k.startswith("$retainKeys")
            and not k.startswith("$deleteFromPrimitiveList/")
        }
    if isinstance(value, list):
        return [_strip_directives(v) for v in value]
    return value


def apply_merge(live: Any, applied: Any, schema: dict[str, Any] | None, builtin: bool) -> Any:
    """Server-side apply approximation: set every field of ``applied``; keyed lists merge by key.

    Fields removed from the applied configuration are not removed from the live object (no field ownership).
    """
    if not isinstance(applied, dict) or not isinstance(live, dict):
        return copy.deepcopy(applied)
    node = schemas.resolve(schema) if builtin else (schema or {})
    out = copy.deepcopy(live)
    for key, value in applied.items():
        sub: dict[str, Any]
        if builtin:
            sub = schemas.child(node, key)
        else:
            extra = node.get("additionalProperties")
            sub = (node.get("properties") or {}).get(key) or (extra if isinstance(extra, dict) else {})
        if isinstance(value, dict):
            out[key] = apply_merge(out.get(key), value, sub, builtin)
        elif isinstance(value, list) and isinstance(out.get(key), list):
            strategy, mkey = _list_meta(schemas.resolve(sub) if builtin else sub)
            if mkey and strategy != "replace":
                merged = copy.deepcopy(out[key])
                item_schema = schemas.items(sub) if builtin else (sub.get("items") or {})
                for item in value:
                    idx = next(
                        (
                            i
                            for i, o in enumerate(merged)
                            if isinstance(o, dict)
                            and isinstance(item, dict)
                            and o.get(mkey) == item.get(mkey)
                        ),
                        None,
                    )
                    if idx is None:
                        merged.append(copy.deepcopy(item))
                    else:
                        merged[idx] = apply_merge(merged[idx], item, item_schema, builtin)
                out[key] = merged
            else:
                out[key] = copy.deepcopy(value)
        else:
            out[key] = copy.deepcopy(value)
    return out
