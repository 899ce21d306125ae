"""RBD mirroring through the ``rbd`` CLI, locally or inside Rook's toolbox pod.

Every call uses ``--format json`` and goes through a :class:`~drkit.adapters.runner.Runner`, so
it has a timeout, accepted exit codes and redaction. The adapter returns the decoded JSON; turning
it into typed samples is the pure domain's job (``drkit.domain.rbd_status``).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from drkit.adapters.runner import LocalRunner, Runner, command_failed
from drkit.adapters.toolbox import helper_text
from drkit.domain.errors import CommandFailed, Conflict, StandbyError, TransientError
from drkit.domain.models import CephAccess

COPY_MARK = "standby.drill.copied"
"""Image metadata key a finished scratch copy carries (its record, JSON)."""

COPY_HELPER = "rbd_helper"
"""The librbd program that makes a scratch copy (:mod:`drkit.adapters.toolbox.rbd_helper`), run by
``python3 -c`` with the Python where ``rbd`` runs (this machine's, or the toolbox pod's)."""

# rbd's exit codes that a retry can cure: EBUSY (demotion not propagated yet), EROFS (promote snapshot).
RETRYABLE_EXIT_CODES = frozenset({16, 30, 110})


# -------------------------------------------------------------------------------- error messages
# Shared with the fakes (drkit.testing.rbd, drkit.testing.mirror) so both raise the same errors with
# the same words as :class:`RbdCli`.


def retryable(error: CommandFailed) -> StandbyError:
    """``error``, or a :class:`TransientError` when its exit code is one a retry can cure."""
    if error.exit_code in RETRYABLE_EXIT_CODES and not isinstance(error, TransientError):
        return TransientError(
            str(error), hint="retried: the peer may still be propagating", context=error.context
        )
    return error


def rbd_failed(what: str, site: str, *, argv: Sequence[str], exit_code: int, output: str) -> StandbyError:
    """``rbd`` exited with ``exit_code`` for ``what`` (e.g. ``promote of pool/image``) on ``site``."""
    return retryable(
        command_failed(
            f"{what} on {site}", argv=argv, exit_code=exit_code, output=output, context={"site": site}
        )
    )


def image_missing(what: str, site: str, *, argv: Sequence[str], image: str) -> StandbyError:
    """``rbd`` could not open ``image``: it does not exist on ``site`` (exit code 2)."""
    output = f"rbd: error opening image {image}: (2) No such file or directory"
    return rbd_failed(what, site, argv=argv, exit_code=2, output=output)


def not_json(what: str, site: str, *, argv: Sequence[str], output: str) -> StandbyError:
    """``rbd`` printed something that is not JSON for ``what``."""
    return StandbyError(
        f"{what} on {site}: rbd printed output that is not JSON: {output.strip()[:120]!r}",
        hint="check the rbd version (Ceph 16 or newer) and the cluster's health",
        context={"site": site, "argv": list(argv)},
    )


def mirrored_image(pool: str, name: str, site: str) -> Conflict:
    """Standby was asked to remove a mirrored image (it removes only plain scratch images)."""
    return Conflict(
        f"{pool}/{name} on {site} is mirrored: Standby removes only plain scratch images",
        hint="remove it by hand if it really must go",
        context={"site": site},
    )


def copy_failed(pool: str, image: str, dest: str, site: str, *, code: int, message: str) -> StandbyError:
    """The scratch copy of ``pool/image`` to ``pool/dest`` stopped with :data:`COPY_HELPER`'s exit ``code``.

    3: ``dest`` is mirrored (:class:`Conflict`); 4: ``image`` is no replica to copy; 5: syncs kept
    changing the image (:class:`TransientError`, retried).
    """
    what = f"copy of the latest synced snapshot of {pool}/{image} to {pool}/{dest} on {site}"
    ctx = {"site": site}
    if code == 3:
        return Conflict(
            f"{what}: {message}", hint=f"{pool}/{dest} is not a scratch image: rename it", context=ctx
        )
    if code == 5:
        return TransientError(
            f"{what}: {message}", hint="retried: syncs kept changing the image", context=ctx
        )
    return StandbyError(
        f"{what}: {message}",
        hint=f"the drill copies a replica: check that {pool}/{image} is non-primary on {site} and replaying",
        context=ctx,
    )


class RbdMirror(Protocol):
    """RBD mirroring operations on one site."""

    site: str

    def pool_status(self, pool: str) -> dict[str, Any]:
        """``rbd mirror pool status POOL --verbose``: every image of the pool in one call."""
        ...

    def image_status(self, pool: str, image: str) -> dict[str, Any]:
        """``rbd mirror image status POOL/IMAGE``."""
        ...

    def pool_info(self, pool: str) -> dict[str, Any]:
        """``rbd mirror pool info POOL``: the mirror mode, this site's name and its peers."""
        ...

    def snapshot_schedules(self, pool: str) -> list[dict[str, Any]]:
        """``rbd mirror snapshot schedule ls --pool POOL --recursive``: every mirror-snapshot schedule
        of the pool, at pool, namespace and image level (``pool``, ``namespace``, ``image``, ``items``)."""
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

    def copy_latest_synced(self, pool: str, image: str, dest: str) -> dict[str, Any]:
        """Copy the data of the newest *complete* non-primary mirror snapshot of the secondary image
        ``image`` into the new plain image ``dest`` (not mirrored; replication of ``image`` goes on;
        see :mod:`drkit.adapters.toolbox.rbd_helper` for how it stays consistent). Idempotent: when ``dest`` already
        holds a finished copy, its record is returned. Returns ``{"dest", "snap_id",
        "primary_snap_id", "attempts", "seconds"}`` (``snap_id`` on this site's image)."""
        ...

    def remove_image(self, pool: str, name: str) -> bool:
        """``rbd rm POOL/NAME`` of a plain image; refuses a mirrored one. False when it did not exist."""
        ...


@dataclass
class RbdCli:
    """``RbdMirror`` over the ``rbd`` command, through any runner."""

    runner: Runner
    site: str
    base_argv: tuple[str, ...] = ("rbd",)
    timeout: float = 30.0
    access: dict[str, str] | None = None
    """Local mode: cluster, conf, keyring and client id for the librbd script (None in the toolbox)."""
    python: str = "python3"
    copy_timeout: float = 1800.0

    @classmethod
    def local(cls, access: CephAccess, *, site: str, hide_env: Iterable[str] = ()) -> RbdCli:
        """Run ``rbd`` on this machine with the site's ceph.conf, keyring and client id; the commands get
        this process's environment minus Standby's secrets and ``hide_env`` (see :func:`command_env`)."""
        argv = ["rbd", "--cluster", access.cluster, "--id", access.client_id]
        if access.conf:
            argv += ["-c", str(access.conf)]
        if access.keyring:
            argv += ["--keyring", str(access.keyring)]
        runner = LocalRunner(context={"site": site}, hide=frozenset(hide_env))
        found = {
            "cluster": access.cluster,
            "id": access.client_id,
            "conf": str(access.conf or ""),
            "keyring": str(access.keyring or ""),
        }
        # librbd lives in the system Python (python3-rbd), not in a virtualenv.
        return cls(
            runner=runner,
            site=site,
            base_argv=tuple(argv),
            timeout=access.timeout.total_seconds(),
            access=found,
            python="/usr/bin/python3",
        )

    @classmethod
    def toolbox(cls, access: CephAccess, runner: Runner, *, site: str) -> RbdCli:
        """Run ``rbd`` in Rook's toolbox pod through ``runner``, as the cephx user ``client_id`` (its
        keyring must be where the toolbox's ceph.conf looks: Rook's toolbox reads ``/etc/ceph/keyring``)."""
        return cls(
            runner=runner,
            site=site,
            base_argv=("rbd", "--id", access.client_id),
            timeout=access.timeout.total_seconds(),
            access={"id": access.client_id},
        )

    def _run(self, args: list[str], description: str, *, as_json: bool = False) -> str:
        argv = [*self.base_argv, *args, *(["--format", "json"] if as_json else [])]
        try:
            result = self.runner.run(argv, description=f"{description} on {self.site}", timeout=self.timeout)
        except CommandFailed as exc:
            error = retryable(exc)
            if error is exc:
                raise
            raise error from None
        return result.stdout

    def _json(self, args: list[str], description: str) -> Any:
        out = self._run(args, description, as_json=True)
        try:
            return json.loads(out)
        except ValueError:
            raise not_json(description, self.site, argv=[*self.base_argv, *args], output=out) from None

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

    def pool_info(self, pool: str) -> dict[str, Any]:
        """See :class:`RbdMirror`."""
        data: dict[str, Any] = self._json(["mirror", "pool", "info", pool], f"mirror info of pool {pool}")
        return data

    def snapshot_schedules(self, pool: str) -> list[dict[str, Any]]:
        """See :class:`RbdMirror`. ``rbd`` prints nothing at all when the pool has no schedule."""
        args = ["mirror", "snapshot", "schedule", "ls", "--pool", pool, "--recursive"]
        out = self._run(args, f"mirror snapshot schedules of pool {pool}", as_json=True)
        if not out.strip():
            return []
        try:
            data = json.loads(out)
        except ValueError:
            raise not_json(
                f"mirror snapshot schedules of pool {pool}",
                self.site,
                argv=[*self.base_argv, *args],
                output=out,
            ) from None
        return list(data) if isinstance(data, list) else []

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

    def copy_latest_synced(self, pool: str, image: str, dest: str) -> dict[str, Any]:
        """See :class:`RbdMirror`."""
        args = {
            "pool": pool,
            "image": image,
            "dest": dest,
            "mark": COPY_MARK,
            "timeout": str(int(self.timeout)),
            **(self.access or {}),
        }
        argv = [self.python, "-c", helper_text(COPY_HELPER), json.dumps(args)]
        what = f"copy of the latest synced snapshot of {pool}/{image} to {pool}/{dest} on {self.site}"
        result = self.runner.run(argv, description=what, accept=(0, 3, 4, 5), timeout=self.copy_timeout)
        try:
            doc: dict[str, Any] = json.loads(result.stdout.strip().splitlines()[-1])
        except (ValueError, IndexError):
            raise StandbyError(
                f"{what}: the librbd script printed no JSON: {result.stderr.strip()[-300:]!r}",
                hint="check that python3-rbd is installed where rbd runs",
                context={"site": self.site},
            ) from None
        if result.exit_code in (3, 4, 5):
            raise copy_failed(
                pool, image, dest, self.site, code=result.exit_code, message=str(doc.get("message"))
            )
        return doc

    def remove_image(self, pool: str, name: str) -> bool:
        """See :class:`RbdMirror`."""
        try:
            info = self.image_info(pool, name)
        except CommandFailed as error:
            if error.exit_code == 2:
                return False
            raise
        mirroring = info.get("mirroring") or {}
        if mirroring and mirroring.get("state") not in (None, "disabled"):
            raise mirrored_image(pool, name, self.site)
        self._run(["rm", "--no-progress", f"{pool}/{name}"], f"removal of {pool}/{name}")
        return True
