"""OpenNebula's template language, strictly: parse ``KEY = "value"`` text or ``<TEMPLATE>`` XML.

A template is an ordered list of attributes; an attribute is a name (upper case, as oned stores it)
and either a single value or a vector (``DISK = [ IMAGE_ID = "1", DEV_PREFIX = "vd" ]``), itself an
ordered list of single values. A name may repeat (two ``DISK`` vectors). The text syntax::

    # a comment, to the end of the line
    NAME   = "web-0"                     # a quoted value; \\" and \\\\ are escapes
    MEMORY = 512                         # a bare word (no blanks, quotes, commas, brackets or =)
    DISK   = [ IMAGE_ID = "0",
               DEV_PREFIX = "vd" ]       # a vector may span lines; its items are separated by commas

Anything else (a missing ``=``, an unterminated quote or vector, a vector inside a vector, an empty
template) is a :class:`TemplateError`, which the front-end answers as oned does: an error reply.
The XML form is what pyone sends for a nested dict (``{"TEMPLATE": {...}}``, values in CDATA).
Standard library only.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET

Vector = list[tuple[str, str]]
Value = str | Vector
Template = list[tuple[str, Value]]

_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_.\-]*")
_BARE = re.compile(r"[^\s,\[\]\"=#]+")


class TemplateError(ValueError):
    """The template is not valid OpenNebula template syntax; the message says where."""


class _Reader:
    """A cursor over the text with the position in lines for error messages."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.pos = 0

    def where(self) -> str:
        line = self.text.count("\n", 0, self.pos) + 1
        return f"line {line}"

    def skip(self, *, newlines: bool) -> None:
        """Skip blanks and comments (and newlines when ``newlines``)."""
        while self.pos < len(self.text):
            char = self.text[self.pos]
            if char == "#":
                end = self.text.find("\n", self.pos)
                self.pos = len(self.text) if end < 0 else end
            elif char in " \t\r" or (newlines and char == "\n"):
                self.pos += 1
            else:
                return

    def peek(self) -> str:
        return self.text[self.pos] if self.pos < len(self.text) else ""

    def expect(self, char: str) -> None:
        if self.peek() != char:
            found = repr(self.peek()) if self.peek() else "the end"
            raise TemplateError(f"expected {char!r} at {self.where()}, found {found}")
        self.pos += 1

    def name(self) -> str:
        match = _NAME.match(self.text, self.pos)
        if not match:
            found = repr(self.peek()) if self.peek() else "the end"
            raise TemplateError(f"expected an attribute name at {self.where()}, found {found}")
        self.pos = match.end()
        return match.group(0).upper()

    def single(self) -> str:
        if self.peek() == '"':
            return self.quoted()
        match = _BARE.match(self.text, self.pos)
        if not match:
            found = repr(self.peek()) if self.peek() else "the end"
            raise TemplateError(f"expected a value at {self.where()}, found {found}")
        self.pos = match.end()
        return match.group(0)

    def quoted(self) -> str:
        start = self.where()
        self.pos += 1
        out: list[str] = []
        while self.pos < len(self.text):
            char = self.text[self.pos]
            if char == "\\" and self.pos + 1 < len(self.text) and self.text[self.pos + 1] in '"\\':
                out.append(self.text[self.pos + 1])
                self.pos += 2
            elif char == '"':
                self.pos += 1
                return "".join(out)
            else:
                out.append(char)
                self.pos += 1
        raise TemplateError(f"unterminated quoted value starting at {start}")

    def vector(self) -> Vector:
        start = self.where()
        self.expect("[")
        items: Vector = []
        while True:
            self.skip(newlines=True)
            if not self.peek():
                raise TemplateError(f"unterminated vector starting at {start}")
            if self.peek() == "]" and not items:
                raise TemplateError(f"empty vector at {start}")
            key = self.name()
            self.skip(newlines=True)
            self.expect("=")
            self.skip(newlines=True)
            if self.peek() == "[":
                raise TemplateError(f"a vector cannot hold a vector ({key} at {self.where()})")
            items.append((key, self.single()))
            self.skip(newlines=True)
            if self.peek() == ",":
                self.pos += 1
                continue
            if self.peek() == "]":
                self.pos += 1
                return items
            if not self.peek():
                raise TemplateError(f"unterminated vector starting at {start}")
            raise TemplateError(f"expected ',' or ']' at {self.where()}, found {self.peek()!r}")


def parse_text(text: str) -> Template:
    """Parse the ``KEY = value`` syntax; raise :class:`TemplateError` on anything else."""
    reader = _Reader(text)
    attrs: Template = []
    while True:
        reader.skip(newlines=True)
        if not reader.peek():
            break
        key = reader.name()
        reader.skip(newlines=False)
        reader.expect("=")
        reader.skip(newlines=False)
        value: Value = reader.vector() if reader.peek() == "[" else reader.single()
        attrs.append((key, value))
        reader.skip(newlines=False)
        if reader.peek() not in ("\n", ""):
            raise TemplateError(f"expected the end of the line at {reader.where()}, found {reader.peek()!r}")
    if not attrs:
        raise TemplateError("the template is empty")
    return attrs


def parse_xml(text: str) -> Template:
    """Parse ``<TEMPLATE><KEY>v</KEY><VEC><K>v</K></VEC></TEMPLATE>`` (any root name)."""
    try:
        root = ET.fromstring(text)
    except ET.ParseError as exc:
        raise TemplateError(f"malformed XML template: {exc}") from None
    attrs: Template = []
    for child in root:
        key = child.tag.upper()
        if not _NAME.fullmatch(key):
            raise TemplateError(f"invalid attribute name {child.tag!r}")
        if len(child):
            items: Vector = []
            for item in child:
                if len(item):
                    raise TemplateError(f"a vector cannot hold a vector ({key}/{item.tag})")
                items.append((item.tag.upper(), item.text or ""))
            attrs.append((key, items))
        else:
            attrs.append((key, child.text or ""))
    if not attrs:
        raise TemplateError("the template is empty")
    return attrs


def parse(text: str) -> Template:
    """Parse either syntax, as oned does: XML when the text starts with ``<``."""
    if not isinstance(text, str):
        raise TemplateError("the template must be a string")
    return parse_xml(text) if text.lstrip().startswith("<") else parse_text(text)


def get(template: Template, key: str) -> Value | None:
    """The first value of ``key`` (case-insensitive), or None."""
    for name, value in template:
        if name == key.upper():
            return value
    return None


def get_str(template: Template, key: str) -> str | None:
    """The first single value of ``key``, or None (a vector counts as absent)."""
    value = get(template, key)
    return value if isinstance(value, str) else None


def vectors(template: Template, key: str) -> list[Vector]:
    """Every vector named ``key``, in order."""
    return [value for name, value in template if name == key.upper() and isinstance(value, list)]


def vget(vector: Vector, key: str) -> str | None:
    """The value of ``key`` in one vector, or None."""
    for name, value in vector:
        if name == key.upper():
            return value
    return None


def render_text(template: Template) -> str:
    """The ``KEY = "value"`` form of ``template`` (what ``parse_text`` reads back)."""

    def quote(value: str) -> str:
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'

    lines = []
    for key, value in template:
        if isinstance(value, str):
            lines.append(f"{key} = {quote(value)}")
        else:
            inner = ",\n  ".join(f"{k} = {quote(v)}" for k, v in value)
            lines.append(f"{key} = [\n  {inner} ]")
    return "\n".join(lines) + "\n"


def to_json(template: Template) -> list[list[object]]:
    """A JSON-friendly form: ``[[key, "value"], [key, [[k, "v"], ...]], ...]``."""
    return [[key, value if isinstance(value, str) else [[k, v] for k, v in value]] for key, value in template]


def from_json(data: list[list[object]]) -> Template:
    """The inverse of :func:`to_json`."""
    out: Template = []
    for key, value in data:
        if isinstance(value, str):
            out.append((str(key), value))
        else:
            out.append((str(key), [(str(k), str(v)) for k, v in value]))  # type: ignore[attr-defined]
    return out
