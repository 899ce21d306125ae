"""RBD mirroring through the ``rbd`` CLI, locally or inside Rook's toolbox pod.

Every call uses ``--format json`` and goes through a :class:`~drkit.adapters.runner.Runner`, so
it has a timeout, accepted exit codes and redaction. The adapter returns the decoded JSON; turning
it into typed samples is the pure domain's job (``drkit.domain.rbd_status``).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Protocol

from drkit.adapters.runner import LocalRunner, Runner
from drkit.domain.errors import CommandFailed, StandbyError, TransientError
from drkit.domain.models import CephAccess

# rbd's exit codes that a retry can cure: EBUSY (demotion not propagated yet), EROFS (promote snapshot).
RETRYABLE_EXIT_CODES = frozenset({16, 30, 110})


class RbdMirror(Protocol):
    """RBD mirroring operations on one site."""

    site: str

    def pool_status(self, pool: str) -> dict[str, Any]:
        """``rbd mirror pool status POOL --verbose``: every image of the pool in one call."""
        ...

    def image_status(self, pool: str, image: str) -> dict[str, Any]:
        """``rbd mirror image status POOL/IMAGE``."""
        ...

    def image_info(self, pool: str, image: str) -> dict[str, Any]:
        """``rbd info POOL/IMAGE`` (its ``mirroring.primary`` says which side is primary)."""
        ...

    def snapshots(self, pool: str, image: str) -> list[dict[str, Any]]:
        """``rbd snap ls --all POOL/IMAGE``, mirror snapshots included."""
        ...

    def promote(self, pool: str, image: str, *, force: bool = False) -> None:
        """``rbd mirror image promote [--force]``."""
        ...

    def demote(self, pool: str, image: str) -> None:
        """``rbd mirror image demote``."""
        ...

    def resync(self, pool: str, image: str) -> None:
        """``rbd mirror image resync`` (on the non-primary side)."""
        ...

    def mirror_snapshot(self, pool: str, image: str) -> None:
        """``rbd mirror image snapshot``: take a mirror snapshot now."""
        ...


@dataclass
class RbdCli:
    """``RbdMirror`` over the ``rbd`` command, through any runner."""

    runner: Runner
    site: str
    base_argv: tuple[str, ...] = ("rbd",)
    timeout: float = 30.0

    @classmethod
    def local(cls, access: CephAccess, *, site: str) -> RbdCli:
        """Run ``rbd`` on this machine with the site's ceph.conf, keyring and client id."""
        argv = ["rbd", "--cluster", access.cluster, "--id", access.client_id]
        if access.conf:
            argv += ["-c", str(access.conf)]
        if access.keyring:
            argv += ["--keyring", str(access.keyring)]
        runner = LocalRunner(context={"site": site})
        return cls(runner=runner, site=site, base_argv=tuple(argv), timeout=access.timeout.total_seconds())

    def _run(self, args: list[str], description: str, *, as_json: bool = False) -> str:
        argv = [*self.base_argv, *args, *(["--format", "json"] if as_json else [])]
        try:
            result = self.runner.run(argv, description=f"{description} on {self.site}", timeout=self.timeout)
        except CommandFailed as exc:
            if exc.exit_code in RETRYABLE_EXIT_CODES and not isinstance(exc, TransientError):
                raise TransientError(
                    str(exc), hint="retried: the peer may still be propagating", context=exc.context
                ) from None
            raise
        return result.stdout

    def _json(self, args: list[str], description: str) -> Any:
        out = self._run(args, description, as_json=True)
        try:
            return json.loads(out)
        except ValueError:
            raise StandbyError(
                f"{description} on {self.site}: rbd printed output that is not JSON: {out.strip()[:120]!r}",
                hint="check the rbd version (Ceph 16 or newer) and the cluster's health",
                context={"site": self.site, "argv": [*self.base_argv, *args]},
            ) from None

    def pool_status(self, pool: str) -> dict[str, Any]:
        """See :class:`RbdMirror`."""
        data: dict[str, Any] = self._json(
            ["mirror", "pool", "status", pool, "--verbose"], f"mirror status of pool {pool}"
        )
        return data

    def image_status(self, pool: str, image: str) -> dict[str, Any]:
        """See :class:`RbdMirror`."""
        data: dict[str, Any] = self._json(
            ["mirror", "image", "status", f"{pool}/{image}"], f"mirror status of {pool}/{image}"
        )
        return data

    def image_info(self, pool: str, image: str) -> dict[str, Any]:
        """See :class:`RbdMirror`."""
        data: dict[str, Any] = self._json(["info", f"{pool}/{image}"], f"info of {pool}/{image}")
        return data

    def snapshots(self, pool: str, image: str) -> list[dict[str, Any]]:
        """See :class:`RbdMirror`."""
        data: list[dict[str, Any]] = self._json(
            ["snap", "ls", "--all", f"{pool}/{image}"], f"snapshots of {pool}/{image}"
        )
        return data

    def promote(self, pool: str, image: str, *, force: bool = False) -> None:
        """See :class:`RbdMirror`."""
        self._run(
            ["mirror", "image", "promote", f"{pool}/{image}", *(["--force"] if force else [])],
            f"promote of {pool}/{image}",
        )

    def demote(self, pool: str, image: str) -> None:
        """See :class:`RbdMirror`."""
        self._run(["mirror", "image", "demote", f"{pool}/{image}"], f"demote of {pool}/{image}")

    def resync(self, pool: str, image: str) -> None:
        """See :class:`RbdMirror`."""
        self._run(["mirror", "image", "resync", f"{pool}/{image}"], f"resync of {pool}/{image}")

    def mirror_snapshot(self, pool: str, image: str) -> None:
        """See :class:`RbdMirror`."""
        self._run(["mirror", "image", "snapshot", f"{pool}/{image}"], f"mirror snapshot of {pool}/{image}")
