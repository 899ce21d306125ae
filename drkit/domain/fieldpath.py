"""Field paths into a manifest, as written in the configuration. Pure.

A path is dotted keys, each optionally followed by ``[*]`` (every item of a list) or ``[N]`` (one
item), e.g. ``spec.storageClassName`` or ``spec.volumeClaimTemplates[*].spec.storageClassName``.
:func:`parse_path` checks the syntax (a :class:`ValueError` says what is wrong); :func:`values`
reads every value a path reaches and :func:`update` rewrites them in place.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any, Final

WILDCARD: Final = "*"
REMOVE: Final = object()
"""Returned by an :func:`update` callback to delete the field."""
_STEP = re.compile(r"^([A-Za-z0-9_\-/]+)((?:\[(?:\*|\d+)\])*)$")
_INDEX = re.compile(r"\[(\*|\d+)\]")
Segment = str | int
"""A key, :data:`WILDCARD`, or a list index."""


def parse_path(path: str) -> tuple[Segment, ...]:
    """The segments of ``path``; :class:`ValueError` names the part that is not ``key``, ``key[*]`` or ``key[N]``."""
    if not path or path.strip() != path:
        raise ValueError(f"field path {path!r} is empty or has spaces; write it like spec.storageClassName")
    out: list[Segment] = []
    for part in path.split("."):
        match = _STEP.match(part)
        if match is None:
            raise ValueError(
                f"field path {path!r}: {part!r} is not a key, key[*] or key[N]"
                " (e.g. spec.volumeClaimTemplates[*].spec.storageClassName)"
            )
        out.append(match.group(1))
        for index in _INDEX.findall(match.group(2)):
            out.append(WILDCARD if index == WILDCARD else int(index))
    return tuple(out)


def _walk(node: Any, segments: tuple[Segment, ...]) -> list[tuple[Any, Segment]]:
    """Every (container, last segment) pair the path reaches where the container exists."""
    if not segments:
        return []
    head, rest = segments[0], segments[1:]
    children: list[Segment]
    if head == WILDCARD:
        children = list(range(len(node))) if isinstance(node, list) else []
    elif isinstance(head, int):
        children = [head] if isinstance(node, list) and 0 <= head < len(node) else []
    else:
        children = [head] if isinstance(node, dict) and head in node else []
    if not rest:
        return [(node, child) for child in children]
    found: list[tuple[Any, Segment]] = []
    for child in children:
        found += _walk(node[child], rest)
    return found


def values(obj: Any, path: str) -> list[Any]:
    """Every value ``path`` reaches in ``obj`` (none when a part is missing)."""
    return [node[key] for node, key in _walk(obj, parse_path(path))]


def update(obj: Any, path: str, change: Callable[[Any], Any]) -> int:
    """Replace each value ``path`` reaches by ``change(value)`` (deleted when it returns :data:`REMOVE`).

    Changes ``obj`` in place; returns how many values were changed or removed.
    """
    changed = 0
    for node, key in reversed(_walk(obj, parse_path(path))):  # reversed: list deletes keep indexes valid
        new = change(node[key])
        if new is REMOVE:
            del node[key]
        elif new == node[key]:
            continue
        else:
            node[key] = new
        changed += 1
    return changed


def assign(obj: dict[str, Any], path: str, value: Any) -> None:
    """Set ``path`` to ``value``, creating missing mappings; a path with list steps must exist."""
    segments = parse_path(path)
    if any(not isinstance(s, str) or s == WILDCARD for s in segments):
        update(obj, path, lambda _old: value)
        return
    node: dict[str, Any] = obj
    for key in segments[:-1]:
        child = node.get(str(key))
        if not isinstance(child, dict):
            child = node[str(key)] = {}
        node = child
    node[str(segments[-1])] = value
