"""Label selectors (``=``, ``==``, ``!=``, ``in``, ``notin``, ``key``, ``!key``) and field selectors."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from lab.kubeapi.errors import bad_request

Matcher = Callable[[dict[str, Any]], bool]

_SET = re.compile(r"^\s*([^\s!=(),]+)\s+(in|notin)\s*\(([^)]*)\)\s*$")
_EQ = re.compile(r"^\s*([^\s!=(),]+)\s*(==|=|!=)\s*([^\s!=(),]*)\s*$")
_EXISTS = re.compile(r"^\s*(!?)\s*([^\s!=(),]+)\s*$")

#: field selector keys supported for every kind, plus per-plural extras.
FIELD_KEYS: dict[str, set[str]] = {
    "pods": {
        "status.phase",
        "spec.nodeName",
        "spec.restartPolicy",
        "spec.schedulerName",
        "spec.serviceAccountName",
        "status.podIP",
    },
    "events": {
        "involvedObject.kind",
        "involvedObject.name",
        "involvedObject.namespace",
        "involvedObject.uid",
        "reason",
        "type",
        "source",
    },
    "secrets": {"type"},
    "namespaces": {"status.phase"},
    "persistentvolumes": {"status.phase"},
    "persistentvolumeclaims": set(),
}


def _split(expr: str) -> list[str]:
    parts, depth, cur = [], 0, ""
    for ch in expr:
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
        if ch == "," and depth == 0:
            parts.append(cur)
            cur = ""
        else:
            cur += ch
    if cur.strip():
        parts.append(cur)
    return [p for p in parts if p.strip()]


def label_matcher(expr: str | None) -> Matcher:
    """Compile a label selector string; 400 BadRequest when malformed."""
    if not expr:
        return lambda obj: True
    reqs: list[Matcher] = []
    for part in _split(expr):
        reqs.append(_requirement(part))

    def match(obj: dict[str, Any]) -> bool:
        return all(r(obj) for r in reqs)

    return match


def _labels(obj: dict[str, Any]) -> dict[str, str]:
    return (obj.get("metadata") or {}).get("labels") or {}


def _requirement(part: str) -> Matcher:
    m = _SET.match(part)
    if m:
        key, op, values = m.group(1), m.group(2), {v.strip() for v in m.group(3).split(",") if v.strip()}
        if op == "in":
            return lambda o: _labels(o).get(key) in values
        return lambda o: key not in _labels(o) or _labels(o)[key] not in values
    m = _EQ.match(part)
    if m:
        key, op, value = m.group(1), m.group(2), m.group(3)
        if op == "!=":
            return lambda o: _labels(o).get(key) != value
        return lambda o: key in _labels(o) and _labels(o)[key] == value
    m = _EXISTS.match(part)
    if m:
        neg, key = m.group(1) == "!", m.group(2)
        return (lambda o: key not in _labels(o)) if neg else (lambda o: key in _labels(o))
    raise bad_request(f"unable to parse requirement: found '{part}', expected: valid label selector")


def _field_value(obj: dict[str, Any], path: str) -> str:
    cur: Any = obj
    for p in path.split("."):
        cur = cur.get(p) if isinstance(cur, dict) else None
    return "" if cur is None else str(cur)


def field_matcher(expr: str | None, plural: str, kind: str, api_version: str) -> Matcher:
    """Compile a field selector; unsupported fields give 400 like the real server."""
    if not expr:
        return lambda obj: True
    allowed = {"metadata.name", "metadata.namespace"} | FIELD_KEYS.get(plural, set())
    reqs: list[Matcher] = []
    for part in _split(expr):
        m = _EQ.match(part)
        if not m:
            raise bad_request(f"invalid selector: '{expr}'; can't understand '{part}'")
        key, op, value = m.group(1), m.group(2), m.group(3)
        if key not in allowed:
            raise bad_request(f"field label not supported: {key}")
        reqs.append(_field_requirement(key, value, op == "!="))
    return lambda obj: all(r(obj) for r in reqs)


def _field_requirement(key: str, value: str, negate: bool) -> Matcher:
    def match(obj: dict[str, Any]) -> bool:
        return (_field_value(obj, key) == value) != negate

    return match
