"""YAML read with bounds: size, nodes, alias uses, nesting and the size once aliases are expanded.

``yaml.safe_load`` of a few hundred bytes of nested anchors and aliases ("billion laughs")
returns in an instant, because every alias is the same Python object; whatever walks the result
as a tree (resolving paths, pydantic validation) then visits it once per alias path, nine to the
ninth times for nine levels of nine aliases. :func:`load_bounded` composes the YAML node graph
with :class:`yaml.SafeLoader`, counting nodes, alias uses and depth as it goes, then counts the
nodes of the tree the graph stands for (each node once, shared ones by memo, so in time linear in
the text) and refuses, with a :class:`YamlTooLarge` saying which bound was passed, before any
Python object is built. A configuration is a few hundred nodes; the defaults leave a hundredfold
room.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import yaml


class YamlTooLarge(ValueError):
    """The YAML text passes one of the :class:`YamlLimits`; the message says which, in words."""


@dataclass(frozen=True)
class YamlLimits:
    """Bounds on one YAML document (the defaults fit a configuration or a kubeconfig)."""

    max_chars: int = 1024 * 1024
    """Characters of text."""
    max_nodes: int = 50_000
    """Scalars, lists and mappings as written (an alias is not a node)."""
    max_aliases: int = 1_000
    """Alias uses (``*name``)."""
    max_expanded: int = 100_000
    """Nodes of the tree once every alias is replaced by what it names."""
    max_depth: int = 100
    """Lists and mappings nested in one another, as written."""


class _CountingLoader(yaml.SafeLoader):
    """:class:`yaml.SafeLoader` whose composer counts nodes, aliases and depth against ``limits``."""

    def __init__(self, text: str, limits: YamlLimits) -> None:
        super().__init__(text)
        self.limits = limits
        self.nodes = self.aliases = self.depth = 0

    def compose_node(self, parent: yaml.Node | None, index: Any) -> yaml.Node | None:
        if self.check_event(yaml.AliasEvent):
            self.aliases += 1
            if self.aliases > self.limits.max_aliases:
                raise YamlTooLarge(f"more than {self.limits.max_aliases} alias uses (*name)")
            return super().compose_node(parent, index)
        self.nodes += 1
        if self.nodes > self.limits.max_nodes:
            raise YamlTooLarge(f"more than {self.limits.max_nodes} values")
        self.depth += 1
        if self.depth > self.limits.max_depth:
            raise YamlTooLarge(f"nested too deeply (more than {self.limits.max_depth} levels)")
        try:
            return super().compose_node(parent, index)
        finally:
            self.depth -= 1


def _children(node: yaml.Node) -> list[yaml.Node]:
    if isinstance(node, yaml.SequenceNode):
        return list(node.value)
    if isinstance(node, yaml.MappingNode):
        return [part for pair in node.value for part in pair]
    return []


def expanded_size(root: yaml.Node, limit: int) -> int:
    """Nodes of the tree ``root`` stands for, every alias expanded; :class:`YamlTooLarge` past ``limit``
    or when an alias names a node that contains it (an endless tree). Iterative: no recursion limit."""
    sizes: dict[int, int] = {}
    open_: set[int] = set()
    stack: list[tuple[yaml.Node, bool]] = [(root, False)]
    while stack:
        node, children_done = stack.pop()
        key = id(node)
        if children_done:
            open_.discard(key)
            sizes[key] = 1 + sum(sizes[id(c)] for c in _children(node))
            if sizes[key] > limit:
                raise YamlTooLarge(f"aliases expand it to more than {limit} values")
            continue
        if key in sizes:
            continue
        if key in open_:
            raise YamlTooLarge("an alias names a list or mapping that contains it (an endless tree)")
        open_.add(key)
        stack.append((node, True))
        stack.extend((c, False) for c in _children(node) if id(c) not in sizes)
    return sizes[id(root)]


def load_bounded(text: str, limits: YamlLimits | None = None) -> Any:
    """``yaml.safe_load(text)`` within ``limits``: :class:`YamlTooLarge` (before any object is built)
    when a bound is passed, :class:`yaml.YAMLError` for bad syntax, as ``safe_load``."""
    limits = limits or YamlLimits()
    if len(text) > limits.max_chars:
        raise YamlTooLarge(f"more than {limits.max_chars} characters")
    loader = _CountingLoader(text, limits)
    try:
        node = loader.get_single_node()
        if node is None:
            return None
        expanded_size(node, limits.max_expanded)
        return loader.construct_document(node)
    finally:
        loader.dispose()
