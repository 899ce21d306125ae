"""The Nexus Repository REST API, as a DR smoke test uses it.

``NexusApi`` is the protocol; ``HttpNexus`` speaks it with httpx (transport injectable, as httpx
allows, so tests can point it at anything that speaks HTTP). Failures become Standby errors that
name the Nexus URL, the site and the next action; the password never appears in them.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Protocol

import httpx

from drkit.domain.errors import Conflict, NotFound, PreconditionFailed, StandbyError, TransientError


@dataclass(frozen=True)
class Asset:
    """One stored asset as the search API reports it."""

    id: str
    repository: str
    path: str
    download_url: str
    sha1: str
    sha256: str


class NexusApi(Protocol):
    """What Standby asks of a Nexus instance."""

    def readable(self) -> bool:
        """``GET /service/rest/v1/status`` answers 200."""
        ...

    def writable(self) -> bool:
        """``GET /service/rest/v1/status/writable`` answers 200."""
        ...

    def frozen(self) -> bool:
        """``GET /service/rest/v1/read-only``: whether Nexus is frozen (read-only)."""
        ...

    def freeze(self) -> None:
        """``POST /service/rest/v1/read-only/freeze`` (already frozen is fine)."""
        ...

    def release(self) -> None:
        """``POST /service/rest/v1/read-only/release`` (not frozen is fine)."""
        ...

    def ensure_raw_repository(self, name: str) -> bool:
        """Create a raw hosted repository unless it exists; True when it was created."""
        ...

    def upload(self, repository: str, path: str, data: bytes) -> None:
        """Upload ``data`` as ``path`` in a raw repository (multipart components API)."""
        ...

    def download(self, repository: str, path: str) -> bytes:
        """The bytes of ``path``; ``NotFound`` when absent."""
        ...

    def search(self, repository: str, name: str | None = None) -> list[Asset]:
        """Every asset of ``repository`` (optionally named ``name``), following continuation tokens."""
        ...

    def delete(self, repository: str, path: str) -> None:
        """Delete the component holding ``path``; ``NotFound`` when absent."""
        ...

    def delete_component(self, component_id: str) -> None:
        """Delete a component by id (search/components ids, not asset ids); ``NotFound`` when absent."""
        ...


# -------------------------------------------------------------------------------- error messages
# Shared with the fake (drkit.testing.nexus) so both raise the same errors with the same words.


def nexus_at(url: str, site: str) -> str:
    """How errors name a Nexus: ``Nexus at URL on SITE``."""
    return f"Nexus at {url}" + (f" on {site}" if site else "")


def nexus_answered(url: str, site: str, what: str, status: int, body: str = "") -> StandbyError:
    """Nexus answered ``status`` to ``what`` (e.g. ``uploading raw/a.txt``), with ``body`` (shortened).

    401/403 -> :class:`PreconditionFailed`; 404 -> :class:`NotFound`; 400/409/422 -> :class:`Conflict`;
    any other -> :class:`TransientError` (retried).
    """
    ctx = {"url": url, "site": site, "status": status}
    body = body.strip().replace("\n", " ")[:200]
    message = f"{nexus_at(url, site)}: {what} answered {status}" + (f": {body}" if body else "")
    if status in (401, 403):
        return PreconditionFailed(message, hint="check the admin password in the app's Secret", context=ctx)
    if status == 404:
        return NotFound(message, context=ctx)
    if status in (400, 409, 422):
        return Conflict(message, context=ctx)
    return TransientError(message, hint="Nexus may still be starting; the call is retried", context=ctx)


def nexus_unreachable(url: str, site: str, what: str, cause: str) -> TransientError:
    """Nexus did not answer ``what`` (``cause``: the client's exception name)."""
    return TransientError(
        f"{nexus_at(url, site)} is unreachable ({cause}) for {what}",
        hint="check that Nexus runs and its URL is right; the call is retried",
        context={"url": url, "site": site},
    )


def no_component(url: str, site: str, repository: str, path: str) -> NotFound:
    """There is no component at ``repository``/``path`` to delete."""
    return NotFound(
        f"{nexus_at(url, site)}: no component {repository}/{path.strip('/')} to delete",
        context={"url": url, "site": site},
    )


class HttpNexus:
    """``NexusApi`` over HTTP with basic auth."""

    def __init__(
        self,
        base_url: str,
        *,
        username: str,
        password: str,
        site: str = "",
        timeout: float = 15.0,
        verify: bool = True,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.site = site
        self._client = httpx.Client(
            base_url=self.base_url,
            auth=(username, password),
            timeout=timeout,
            verify=verify,
            transport=transport,
            follow_redirects=False,
        )

    def close(self) -> None:
        """Close the connection pool."""
        self._client.close()

    def __enter__(self) -> HttpNexus:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    # ----------------------------------------------------------------------------------- plumbing
    def _where(self) -> str:
        return nexus_at(self.base_url, self.site)

    def _request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        try:
            return self._client.request(method, path, **kwargs)
        except httpx.TimeoutException:
            raise TransientError(
                f"{self._where()} did not answer {method} {path} in time",
                hint="check the Nexus pod; the call is retried",
                context={"url": self.base_url, "site": self.site},
            ) from None
        except httpx.HTTPError as exc:
            raise nexus_unreachable(
                self.base_url, self.site, f"{method} {path}", type(exc).__name__
            ) from None

    def _fail(self, resp: httpx.Response, what: str) -> StandbyError:
        return nexus_answered(self.base_url, self.site, what, resp.status_code, resp.text)

    def _json(self, resp: httpx.Response, what: str) -> Any:
        """The body as JSON; anything else (a proxy's or a login page) is one line naming the URL."""
        try:
            return resp.json()
        except ValueError:
            body = resp.text.strip().replace("\n", " ")[:120]
            raise StandbyError(
                f"{self._where()}: {what} answered {resp.status_code} with a body that is not JSON: {body!r}",
                hint="check that the URL reaches Nexus itself, not a proxy or a login page",
                context={"url": self.base_url, "site": self.site, "status": resp.status_code},
            ) from None

    # ----------------------------------------------------------------------------------- protocol
    def readable(self) -> bool:
        """See :class:`NexusApi`."""
        return self._request("GET", "/service/rest/v1/status").status_code == 200

    def writable(self) -> bool:
        """See :class:`NexusApi`."""
        return self._request("GET", "/service/rest/v1/status/writable").status_code == 200

    def frozen(self) -> bool:
        """See :class:`NexusApi`."""
        resp = self._request("GET", "/service/rest/v1/read-only")
        if resp.status_code != 200:
            raise self._fail(resp, "reading the read-only state")
        return bool(self._json(resp, "reading the read-only state").get("frozen"))

    def freeze(self) -> None:
        """See :class:`NexusApi`. 404 means nothing changed: it was frozen already."""
        resp = self._request("POST", "/service/rest/v1/read-only/freeze")
        if resp.status_code not in (204, 404):
            raise self._fail(resp, "freezing (read-only)")

    def release(self) -> None:
        """See :class:`NexusApi`. 404 means nothing changed: it was not frozen."""
        resp = self._request("POST", "/service/rest/v1/read-only/release")
        if resp.status_code not in (204, 404):
            raise self._fail(resp, "releasing the read-only freeze")

    def ensure_raw_repository(self, name: str) -> bool:
        """See :class:`NexusApi`."""
        resp = self._request("GET", "/service/rest/v1/repositories")
        if resp.status_code != 200:
            raise self._fail(resp, "listing repositories")
        if any(repo.get("name") == name for repo in self._json(resp, "listing repositories")):
            return False
        body = {
            "name": name,
            "online": True,
            "storage": {
                "blobStoreName": "default",
                "strictContentTypeValidation": False,
                "writePolicy": "ALLOW",
            },
            "raw": {"contentDisposition": "ATTACHMENT"},
        }
        resp = self._request("POST", "/service/rest/v1/repositories/raw/hosted", json=body)
        if resp.status_code != 201:
            raise self._fail(resp, f"creating raw repository {name!r}")
        return True

    def upload(self, repository: str, path: str, data: bytes) -> None:
        """See :class:`NexusApi`."""
        directory, _, filename = ("/" + path.strip("/")).rpartition("/")
        resp = self._request(
            "POST",
            "/service/rest/v1/components",
            params={"repository": repository},
            data={"raw.directory": directory or "/", "raw.asset1.filename": filename},
            files={"raw.asset1": (filename, data, "application/octet-stream")},
        )
        if resp.status_code != 204:
            raise self._fail(resp, f"uploading {repository}/{path}")

    def download(self, repository: str, path: str) -> bytes:
        """See :class:`NexusApi`."""
        resp = self._request("GET", f"/repository/{repository}/{path.lstrip('/')}")
        if resp.status_code != 200:
            raise self._fail(resp, f"downloading {repository}/{path}")
        return resp.content

    def _pages(self, path: str, params: dict[str, str]) -> Iterator[dict[str, Any]]:
        token: str | None = None
        while True:
            query = dict(params, **({"continuationToken": token} if token else {}))
            resp = self._request("GET", path, params=query)
            if resp.status_code != 200:
                raise self._fail(resp, f"searching ({path})")
            page = self._json(resp, f"searching ({path})")
            yield from page.get("items", [])
            token = page.get("continuationToken")
            if not token:
                return

    def search(self, repository: str, name: str | None = None) -> list[Asset]:
        """See :class:`NexusApi`."""
        params = {"repository": repository, **({"name": name} if name else {})}
        return [
            Asset(
                id=item["id"],
                repository=item["repository"],
                path=item["path"],
                download_url=item["downloadUrl"],
                sha1=item.get("checksum", {}).get("sha1", ""),
                sha256=item.get("checksum", {}).get("sha256", ""),
            )
            for item in self._pages("/service/rest/v1/search/assets", params)
        ]

    def delete(self, repository: str, path: str) -> None:
        """See :class:`NexusApi`. Search answers asset ids; deleting takes the component's id."""
        name = "/" + path.strip("/")
        params = {"repository": repository, "name": name}
        ids = [c["id"] for c in self._pages("/service/rest/v1/search", params)]
        if not ids:
            raise no_component(self.base_url, self.site, repository, path)
        for component_id in ids:
            self.delete_component(component_id)

    def delete_component(self, component_id: str) -> None:
        """See :class:`NexusApi`."""
        resp = self._request("DELETE", f"/service/rest/v1/components/{component_id}")
        if resp.status_code != 204:
            raise self._fail(resp, f"deleting component {component_id}")
