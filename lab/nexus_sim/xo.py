"""JSON shapes of the Nexus REST API (the ``*XO`` transfer objects) and continuation tokens."""

from __future__ import annotations

import binascii
from collections.abc import Callable, Sequence
from typing import Any, TypeVar
from urllib.parse import quote

from lab.nexus_sim.store import Asset, BadRequest, Component, Repository

PAGE_SIZE = 50
T = TypeVar("T")


def repo_url(base: str, repo: Repository) -> str:
    """``<base>/repository/<name>``."""
    return f"{base}/repository/{repo.name}"


def repository_xo(base: str, repo: Repository) -> dict[str, Any]:
    """Entry of ``GET /v1/repositories``."""
    return {
        "name": repo.name,
        "format": "raw",
        "type": "hosted",
        "url": repo_url(base, repo),
        "attributes": {},
    }


def raw_hosted_xo(base: str, repo: Repository) -> dict[str, Any]:
    """``GET /v1/repositories/raw/hosted/{name}`` (``SimpleApiHostedRepository``)."""
    return {
        "name": repo.name,
        "format": "raw",
        "type": "hosted",
        "url": repo_url(base, repo),
        "online": repo.online,
        "storage": {
            "blobStoreName": repo.blob_store,
            "strictContentTypeValidation": repo.strict_content_type,
            "writePolicy": repo.write_policy,
        },
        "cleanup": None,
        "component": {"proprietaryComponents": False},
        "raw": {"contentDisposition": repo.content_disposition},
    }


def asset_xo(base: str, asset: Asset) -> dict[str, Any]:
    """``AssetXO`` as returned by search and components listings."""
    return {
        "downloadUrl": f"{base}/repository/{asset.repository}{quote(asset.path)}",
        "path": asset.path,
        "id": asset.id,
        "repository": asset.repository,
        "format": "raw",
        "checksum": {"sha1": asset.sha1, "sha256": asset.sha256, "md5": asset.md5, "sha512": asset.sha512},
        "contentType": asset.content_type,
        "lastModified": asset.created,
        "lastDownloaded": None,
        "uploader": asset.uploader,
        "uploaderIp": asset.uploader_ip,
        "fileSize": asset.size,
        "blobCreated": asset.created,
        "blobStoreName": "default",
    }


def component_xo(base: str, comp: Component, asset: Asset) -> dict[str, Any]:
    """``ComponentXO`` of a raw component."""
    return {
        "id": comp.id,
        "repository": comp.repository,
        "format": "raw",
        "group": comp.group,
        "name": comp.name,
        "version": None,
        "assets": [asset_xo(base, asset)],
    }


def encode_token(offset: int) -> str:
    """Opaque continuation token for the next page."""
    return binascii.hexlify(f"nxsim:{offset}".encode()).decode()


def decode_token(token: str | None) -> int:
    """Offset encoded in a token (0 when absent); 400 on garbage."""
    if not token:
        return 0
    try:
        text = binascii.unhexlify(token).decode()
        prefix, _, number = text.partition(":")
        if prefix != "nxsim" or not number.isdigit():
            raise ValueError(text)
        return int(number)
    except (binascii.Error, UnicodeDecodeError, ValueError) as exc:
        raise BadRequest(
            "Invalid continuation token", [{"id": "*", "message": "Invalid continuation token"}]
        ) from exc


def page(items: Sequence[T], token: str | None, to_xo: Callable[[T], dict[str, Any]]) -> dict[str, Any]:
    """Slice one page of ``PAGE_SIZE``, map only that page with ``to_xo`` and attach the next token."""
    start = decode_token(token)
    chunk = [to_xo(item) for item in items[start : start + PAGE_SIZE]]
    more = start + PAGE_SIZE < len(items)
    return {"items": chunk, "continuationToken": encode_token(start + PAGE_SIZE) if more else None}
