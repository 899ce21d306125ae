"""OpenNebula's template text syntax, read strictly (as the lab's front-end reads it), and the
attribute lists the in-memory fake keeps."""

from __future__ import annotations

import re

from drkit.adapters.opennebula import TemplateValue

Attrs = list[tuple[str, str | list[tuple[str, str]]]]
_TOKEN = re.compile(
    r'(?P<ws>[ \t\r]+)|(?P<comment>#[^\n]*)|(?P<nl>\n)|(?P<str>"(?:\\.|[^"\\])*")|(?P<word>[^\s,\[\]"=#]+)'
    r"|(?P<punct>[=,\[\]])|(?P<bad>.)",
    re.S,
)
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_.\-]*")
SYSTEM_ATTRS = frozenset(
    {"CPU", "VCPU", "VCPU_MAX", "MEMORY", "MEMORY_MAX", "DISK", "NIC", "NIC_ALIAS", "CONTEXT", "OS"}
    | {"GRAPHICS", "INPUT", "FEATURES", "RAW", "PCI", "TOPOLOGY", "EMULATOR", "CPU_MODEL", "VIDEO"}
)


class TemplateSyntaxError(ValueError):
    """The text is not OpenNebula template syntax."""


def parse_template(text: str) -> Attrs:
    """OpenNebula's ``KEY = value`` / ``KEY = [ K = v, ... ]`` syntax, strictly (as the lab parses it)."""
    tokens: list[tuple[str, str]] = []
    for match in _TOKEN.finditer(text):
        kind = match.lastgroup or "bad"
        if kind in ("ws", "comment"):
            continue
        if kind == "bad" or (kind == "str" and len(match.group()) < 2):
            raise TemplateSyntaxError(f"unexpected {match.group()!r}")
        value = match.group()
        if kind == "str":
            value = re.sub(r"\\(.)", r"\1", value[1:-1])
        tokens.append((kind, value))
    attrs: Attrs = []
    i = 0

    def take(kind: str, value: str | None = None) -> str:
        nonlocal i
        if i >= len(tokens) or tokens[i][0] != kind or (value is not None and tokens[i][1] != value):
            found = tokens[i][1] if i < len(tokens) else "the end"
            raise TemplateSyntaxError(f"expected {value or kind}, found {found!r}")
        i += 1
        return tokens[i - 1][1]

    def name() -> str:
        word = take("word")
        if not _NAME.fullmatch(word):
            raise TemplateSyntaxError(f"invalid attribute name {word!r}")
        return word.upper()

    def single() -> str:
        if i < len(tokens) and tokens[i][0] == "str":
            return take("str")
        return take("word")

    def skip_newlines() -> None:
        nonlocal i
        while i < len(tokens) and tokens[i][0] == "nl":
            i += 1

    while True:
        skip_newlines()
        if i >= len(tokens):
            break
        key = name()
        take("punct", "=")
        if i < len(tokens) and tokens[i] == ("punct", "["):
            i += 1
            items: list[tuple[str, str]] = []
            while True:
                skip_newlines()
                item = name()
                skip_newlines()
                take("punct", "=")
                skip_newlines()
                items.append((item, single()))
                skip_newlines()
                if i < len(tokens) and tokens[i] == ("punct", ","):
                    i += 1
                    continue
                take("punct", "]")
                break
            attrs.append((key, items))
        else:
            attrs.append((key, single()))
        if i < len(tokens) and tokens[i][0] != "nl":
            raise TemplateSyntaxError(f"expected the end of the line, found {tokens[i][1]!r}")
    if not attrs:
        raise TemplateSyntaxError("the template is empty")
    return attrs


def first_value(attrs: Attrs, key: str) -> str | None:
    return next((v for k, v in attrs if k == key and isinstance(v, str)), None)


def as_map(attrs: Attrs) -> dict[str, TemplateValue]:
    """Attributes as :data:`~drkit.adapters.opennebula.TemplateMap` (vectors always tuples)."""
    out: dict[str, TemplateValue] = {}
    for key, value in attrs:
        if isinstance(value, str):
            out[key] = value
        else:
            previous = out.get(key)
            vectors = previous if isinstance(previous, tuple) else ()
            out[key] = (*vectors, dict(value))
    return out
