"""OpenNebula's template syntax, and the attributes of a VM template that may hold secrets.

A template is the plain mapping pyone's ``TEMPLATE`` gives once converted: a top-level key maps to a
string (``MEMORY``), to a vector (a mapping of strings: ``CONTEXT``, ``OS``) or to a list of vectors
(``DISK`` and ``NIC`` when there are several). :func:`render_template` writes it in the syntax
``onevm create`` and ``one.vm.allocate`` read::

    MEMORY="512"
    CONTEXT=[
      NETWORK="YES",
      START_SCRIPT="echo \\"hi\\"" ]

Inside double quotes a backslash and a double quote are written ``\\\\`` and ``\\"``; any other
character, a newline included, is written as it is. :func:`parse_template` reads that syntax back
(the round trip is exact for any value).

:func:`split_secrets` takes out the values whose key names a secret (passwords, keys, tokens, start
scripts: :func:`is_secret_key`), so a backup can encrypt them as it encrypts Kubernetes Secrets;
:func:`join_secrets` puts them back. Pure: no I/O.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from typing import Any

Template = dict[str, Any]
"""A VM or image template: str values, vectors (``dict[str, str]``) and lists of vectors."""

_KEY = re.compile(r"^[A-Za-z0-9_]+$")
_SECRET = re.compile(
    r"PASSWORD|PASSWD|PASSPHRASE|SECRET|TOKEN|KEY|PRIVATE|CREDENTIAL|START_SCRIPT|(^|_)PASS($|_)"
)
_NOT_SECRET = frozenset({"SSH_PUBLIC_KEY", "KEYMAP"})


class TemplateSyntaxError(ValueError):
    """Text that is not OpenNebula template syntax (the message names the position)."""


# ----------------------------------------------------------------------------------------- render


def quote(value: str) -> str:
    """``value`` in double quotes, with backslashes and double quotes escaped."""
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _key(key: object) -> str:
    if not isinstance(key, str) or not _KEY.match(key):
        raise ValueError(f"template key {key!r} is not a name of letters, digits and underscores")
    return key.upper()


def _text(value: object, where: str) -> str:
    if isinstance(value, bool):
        return "YES" if value else "NO"
    if isinstance(value, str | int | float):
        return str(value)
    raise ValueError(f"{where}: expected a string or a number, got {type(value).__name__}")


def _vector(key: str, vector: Mapping[str, Any]) -> str:
    items = [f"  {_key(k)}={quote(_text(v, f'{key}/{k}'))}" for k, v in vector.items()]
    if not items:
        return f"{key}=[ ]"
    return f"{key}=[\n" + ",\n".join(items) + " ]"


def render_template(template: Mapping[str, Any]) -> str:
    """``template`` in OpenNebula's template syntax, one attribute or vector per line; a list of
    vectors is written as that vector repeated."""
    lines: list[str] = []
    for raw, value in template.items():
        key = _key(raw)
        if isinstance(value, Mapping):
            lines.append(_vector(key, value))
        elif isinstance(value, list | tuple):
            for item in value:
                if not isinstance(item, Mapping):
                    raise ValueError(f"{key}: a list holds vectors only, got {type(item).__name__}")
                lines.append(_vector(key, item))
        else:
            lines.append(f"{key}={quote(_text(value, key))}")
    return "\n".join(lines) + "\n"


# ------------------------------------------------------------------------------------------ parse

_TOKEN = re.compile(
    r'\s+|#[^\n]*|(?P<str>"(?:\\.|[^"\\])*")|(?P<punct>[=\[\],])|(?P<word>[^\s=\[\],"#]+)', re.DOTALL
)


def _tokens(text: str) -> Iterator[tuple[str, str, int]]:
    pos = 0
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if m is None:
            raise TemplateSyntaxError(f"unexpected {text[pos]!r} at offset {pos}")
        if m.group("str") is not None:
            yield "str", re.sub(r"\\(.)", r"\1", m.group("str")[1:-1], flags=re.DOTALL), pos
        elif m.group("punct") is not None:
            yield m.group("punct"), m.group("punct"), pos
        elif m.group("word") is not None:
            yield "word", m.group("word"), pos
        pos = m.end()


def _add(out: dict[str, Any], key: str, value: Any) -> None:
    if key not in out:
        out[key] = value
    elif isinstance(out[key], list):
        out[key].append(value)
    else:
        out[key] = [out[key], value]


def parse_template(text: str) -> Template:
    """The mapping ``text`` (OpenNebula template syntax) describes; a key seen twice becomes a list.
    :class:`TemplateSyntaxError` names the offset of what it cannot read."""
    tokens = list(_tokens(text))
    out: Template = {}
    i = 0

    def take(*kinds: str) -> tuple[str, str, int]:
        nonlocal i
        if i >= len(tokens):
            raise TemplateSyntaxError(f"unexpected end of template, expected {' or '.join(kinds)}")
        token = tokens[i]
        if token[0] not in kinds:
            raise TemplateSyntaxError(f"expected {' or '.join(kinds)} at offset {token[2]}, got {token[1]!r}")
        i += 1
        return token

    while i < len(tokens):
        key = _key(take("word")[1])
        take("=")
        kind, value, _ = take("str", "word", "[")
        if kind != "[":
            _add(out, key, value)
            continue
        vector: dict[str, str] = {}
        while tokens[i:] and tokens[i][0] != "]":
            sub = _key(take("word")[1])
            take("=")
            vector[sub] = take("str", "word")[1]
            if tokens[i:] and tokens[i][0] == ",":
                i += 1
        take("]")
        _add(out, key, vector)
    return out


# ---------------------------------------------------------------------------------------- secrets


def is_secret_key(name: str) -> bool:
    """Whether an attribute called ``name`` may hold a secret: its name says password, passwd,
    passphrase, secret, token, key, private, credential or pass, or it is a start script (which
    often sets one); ``SSH_PUBLIC_KEY`` and ``KEYMAP`` (a keyboard layout) are public."""
    upper = name.upper()
    return upper not in _NOT_SECRET and bool(_SECRET.search(upper))


def _paths(template: Mapping[str, Any]) -> Iterator[tuple[str, str, str | None, int | None]]:
    """``(path, key, vector key, index)`` of each string attribute: ``KEY``, ``VEC/KEY``, ``VEC[i]/KEY``."""
    for top, value in template.items():
        if isinstance(value, Mapping):
            for key in value:
                yield f"{top}/{key}", key, top, None
        elif isinstance(value, list | tuple):
            for n, item in enumerate(value):
                for key in item:
                    yield f"{top}[{n}]/{key}", key, top, n
        else:
            yield top, top, None, None


def split_secrets(template: Mapping[str, Any]) -> tuple[Template, dict[str, str]]:
    """``(public, secret)``: ``template`` without the values :func:`is_secret_key` flags, and those
    values by path (``CONTEXT/PASSWORD``, ``GRAPHICS/PASSWD``, ``DISK[1]/CEPH_SECRET``, a top-level
    ``KEY``). Vectors keep their place (empty when all their keys were secret)."""
    public: Template = {
        k: dict(v) if isinstance(v, Mapping) else [dict(i) for i in v] if isinstance(v, list | tuple) else v
        for k, v in template.items()
    }
    secret: dict[str, str] = {}
    for path, key, top, index in list(_paths(template)):
        if not is_secret_key(key):
            continue
        if top is None:
            secret[path] = str(public.pop(key))
        elif index is None:
            secret[path] = str(public[top].pop(key))
        else:
            secret[path] = str(public[top][index].pop(key))
    return public, secret


_PATH = re.compile(r"^(?P<top>[A-Za-z0-9_]+)(?:\[(?P<index>\d+)\])?(?:/(?P<key>[A-Za-z0-9_]+))?$")


def join_secrets(public: Mapping[str, Any], secret: Mapping[str, str]) -> Template:
    """The template :func:`split_secrets` split into ``public`` and ``secret``; a path that does
    not fit ``public``'s shape is a :class:`ValueError` naming it (never a value)."""
    out: Template = {
        k: dict(v) if isinstance(v, Mapping) else [dict(i) for i in v] if isinstance(v, list | tuple) else v
        for k, v in public.items()
    }
    for path, value in secret.items():
        m = _PATH.match(path)
        if m is None:
            raise ValueError(f"secret path {path!r} is not KEY, VEC/KEY or VEC[i]/KEY")
        top, index, key = m["top"], m["index"], m["key"]
        if key is None:
            if top in out and not isinstance(out[top], str):
                raise ValueError(f"secret path {path!r}: {top} is a vector in the public part")
            out[top] = value
            continue
        holder = out.get(top)
        if index is not None:
            if not isinstance(holder, list) or int(index) >= len(holder):
                raise ValueError(f"secret path {path!r}: no {top}[{index}] in the public part")
            holder[int(index)][key] = value
        elif isinstance(holder, dict):
            holder[key] = value
        elif holder is None:
            out[top] = {key: value}
        else:
            raise ValueError(f"secret path {path!r}: {top} is not a single vector in the public part")
    return out
