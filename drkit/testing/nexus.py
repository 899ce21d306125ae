"""A Nexus in memory that speaks :class:`drkit.adapters.nexus.NexusApi`, its data on a fake volume.

Its repositories, assets and read-only state live in the ``data`` dict it is given: the fake
image's content on one site (:class:`drkit.testing.mirror.FakeMirrorPair`), so what a drill or an
operation finds after a move is what was synced, as with the lab's simulator on RBD.

Knobs: ``running`` (False: unreachable, as a stopped pod), ``password`` (a wrong one gets
:class:`PreconditionFailed`), ``fail_writes`` (writable answers False, uploads get 503).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any

from drkit.adapters.nexus import Asset, nexus_answered, nexus_unreachable, no_component


@dataclass
class FakeNexus:
    """:class:`~drkit.adapters.nexus.NexusApi` over a dict."""

    url: str
    site: str
    data: dict[str, Any]
    password: str
    given_password: str = ""
    running: bool = True
    fail_writes: bool = False
    calls: list[str] = field(default_factory=list)

    def _enter(self, what: str, *, auth: bool = False) -> None:
        self.calls.append(what)
        if not self.running:
            raise nexus_unreachable(self.url, self.site, what, "ConnectError")
        if auth and self.given_password != self.password:
            raise nexus_answered(self.url, self.site, what, 401)

    def _repos(self) -> dict[str, dict[str, bytes]]:
        repos: dict[str, dict[str, bytes]] = self.data.setdefault("repositories", {})
        return repos

    def readable(self) -> bool:
        """See :class:`~drkit.adapters.nexus.NexusApi`."""
        self._enter("GET status")
        return True

    def writable(self) -> bool:
        """See :class:`~drkit.adapters.nexus.NexusApi`."""
        self._enter("GET status/writable")
        return not self.data.get("frozen") and not self.fail_writes

    def frozen(self) -> bool:
        """See :class:`~drkit.adapters.nexus.NexusApi`."""
        self._enter("GET read-only", auth=True)
        return bool(self.data.get("frozen"))

    def freeze(self) -> None:
        """See :class:`~drkit.adapters.nexus.NexusApi`."""
        self._enter("POST read-only/freeze", auth=True)
        self.data["frozen"] = True

    def release(self) -> None:
        """See :class:`~drkit.adapters.nexus.NexusApi`."""
        self._enter("POST read-only/release", auth=True)
        self.data["frozen"] = False

    def ensure_raw_repository(self, name: str) -> bool:
        """See :class:`~drkit.adapters.nexus.NexusApi`."""
        self._enter("POST repositories/raw/hosted", auth=True)
        if name in self._repos():
            return False
        self._repos()[name] = {}
        return True

    def upload(self, repository: str, path: str, data: bytes) -> None:
        """See :class:`~drkit.adapters.nexus.NexusApi`."""
        self._enter("POST components", auth=True)
        if self.fail_writes or self.data.get("frozen"):
            raise nexus_answered(self.url, self.site, f"uploading {repository}/{path}", 503)
        if repository not in self._repos():
            raise nexus_answered(
                self.url, self.site, f"uploading {repository}/{path}", 400, "no such repository"
            )
        self._repos()[repository]["/" + path.strip("/")] = bytes(data)

    def download(self, repository: str, path: str) -> bytes:
        """See :class:`~drkit.adapters.nexus.NexusApi`."""
        self._enter("GET repository")
        found = self._repos().get(repository, {}).get("/" + path.strip("/"))
        if found is None:
            raise nexus_answered(self.url, self.site, f"downloading {repository}/{path}", 404)
        return found

    def search(self, repository: str, name: str | None = None) -> list[Asset]:
        """See :class:`~drkit.adapters.nexus.NexusApi`."""
        self._enter("GET search/assets", auth=True)
        return [
            Asset(
                id=f"a-{hashlib.sha1(p.encode(), usedforsecurity=False).hexdigest()[:12]}",
                repository=repository,
                path=p,
                download_url=f"{self.url}/repository/{repository}{p}",
                sha1=hashlib.sha1(d, usedforsecurity=False).hexdigest(),
                sha256=hashlib.sha256(d).hexdigest(),
            )
            for p, d in sorted(self._repos().get(repository, {}).items())
            if name is None or p == name
        ]

    def delete(self, repository: str, path: str) -> None:
        """See :class:`~drkit.adapters.nexus.NexusApi`."""
        self._enter("DELETE component", auth=True)
        if self._repos().get(repository, {}).pop("/" + path.strip("/"), None) is None:
            raise no_component(self.url, self.site, repository, path)

    def delete_component(self, component_id: str) -> None:
        """See :class:`~drkit.adapters.nexus.NexusApi`."""
        self._enter("DELETE component", auth=True)
        raise nexus_answered(
            self.url, self.site, f"deleting component {component_id}", 404, "Component not found"
        )
