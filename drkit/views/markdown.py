"""Text from outside made inert in Markdown.

Plans and drill reports are Markdown shown in the Prefect UI (the approval form among them) and in
the terminal. Much of what they quote came from outside Standby: a check's detail and an error read
from the cluster, names from the bucket, a placement record's ``operation_kind``. A forged value must
not be able to add a link or an image, raw HTML, emphasis, or a new table row or column.

:func:`md_inline` makes one value inert, for a table cell or a sentence: whitespace (newlines
included) becomes one space, so it stays on its line; the characters that open links, images,
code and ``*`` emphasis, and ``|`` (a table column), are backslash-escaped; a ``<`` that could open a
tag or an autolink becomes ``&lt;``. What it shows reads the same (``<= 60s`` stays as written).
A bare ``http://...`` stays text, which some renderers still underline as a link (it is shown as
written, never hidden behind other words).
"""

from __future__ import annotations

import re

_ESCAPED = re.compile(r"([\\`*\[\]|])")
"""Characters that would change what is shown: the escape itself, code, emphasis, link and image brackets,
a table column. (``_`` only emphasises at word edges and is common in names: left as written.)"""
_TAG_START = re.compile(r"<(?=[A-Za-z/!?])")
"""A ``<`` that could start raw HTML or an autolink."""


def md_inline(value: object) -> str:
    """``value`` as inert one-line Markdown text (see the module's notes)."""
    text = " ".join(str(value).split())
    return _TAG_START.sub("&lt;", _ESCAPED.sub(r"\\\1", text))
