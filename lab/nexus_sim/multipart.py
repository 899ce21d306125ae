"""multipart/form-data parsing with the stdlib ``email`` parser (``cgi`` is deprecated)."""

from __future__ import annotations

import email.parser
import email.policy
from dataclasses import dataclass
from email.message import EmailMessage


class MultipartError(ValueError):
    """The body is not a usable multipart/form-data document."""


@dataclass(frozen=True)
class FormPart:
    """One form field: its value bytes and, for file fields, the client-side filename."""

    name: str
    data: bytes
    filename: str | None = None

    def text(self) -> str:
        """Decode the value as UTF-8."""
        return self.data.decode("utf-8", errors="replace")


def parse_form(content_type: str, body: bytes) -> dict[str, FormPart]:
    """Parse a multipart/form-data body; later duplicates of a field name win."""
    if not content_type.lower().startswith("multipart/form-data") or "boundary=" not in content_type:
        raise MultipartError("Content-Type must be multipart/form-data with a boundary")
    preamble = f"Content-Type: {content_type}\r\nMIME-Version: 1.0\r\n\r\n".encode("latin-1")
    message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(preamble + body)
    if not isinstance(message, EmailMessage) or not message.is_multipart():
        raise MultipartError("body is not multipart")
    fields: dict[str, FormPart] = {}
    for part in message.iter_parts():
        name = part.get_param("name", header="content-disposition")
        if not isinstance(name, str) or not name:
            continue
        payload = part.get_payload(decode=True)
        data = payload if isinstance(payload, bytes) else b""
        fields[name] = FormPart(name=name, data=data, filename=part.get_filename())
    if message.defects and not fields:
        raise MultipartError(f"malformed multipart body: {message.defects[0]!r}")
    return fields
