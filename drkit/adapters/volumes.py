"""Volume control: promote, demote, resync and snapshot an app's mirrored images on one site.

One protocol, :class:`VolumeControl`, and two paths chosen by the app's ``mirroring.control``:

* :class:`RbdVolumes`: ``rbd mirror image promote|demote|resync|snapshot`` (local or toolbox).
* :class:`VrVolumes`: csi-addons ``VolumeReplication`` CRs (``spec.replicationState``), the Rook
  way; a forced promote is done with ``rbd`` first, so a failover does not wait for the
  controller's own back-off before it forces.

Roles are always read from Ceph (``rbd info``), never from a CR: the CR's status can lag.
Every act is idempotent: acting on a volume already in the wanted state changes nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal, Protocol

from drkit.adapters.kube import ClusterApi
from drkit.adapters.rbd import RbdMirror
from drkit.domain.errors import CommandFailed, NotFound
from drkit.domain.models import KindRef, ProtectedApp, Volume
from drkit.domain.placement import Role

VR_KIND = KindRef(group="replication.storage.openshift.io", version="v1alpha1", kind="VolumeReplication")
PVC_KIND = KindRef(version="v1", kind="PersistentVolumeClaim")
Want = Literal["primary", "secondary"]


class VolumeControl(Protocol):
    """Mirroring control of one app's volumes on one site."""

    @property
    def site(self) -> str:
        """The site's name."""
        ...

    def role(self, volume: Volume) -> Role:
        """``primary``, ``secondary`` or ``absent`` (no such image on this site), from Ceph."""
        ...

    def mirror_state(self, volume: Volume) -> tuple[str, str]:
        """``(state, description)`` of ``rbd mirror image status``, e.g. ``("up+replaying", ...)``."""
        ...

    def promote(self, volume: Volume, *, force: bool) -> None:
        """Make the image primary here (``force``: even while the peer is primary or unreachable)."""
        ...

    def demote(self, volume: Volume) -> None:
        """Make the image secondary here."""
        ...

    def resync(self, volume: Volume) -> None:
        """Throw this side's copy away and copy the peer's again (secondary side only)."""
        ...

    def snapshot(self, volume: Volume) -> None:
        """Take a mirror snapshot now (primary side)."""
        ...

    def settled(self, volume: Volume, want: Want) -> tuple[bool, str]:
        """Whether the volume is ``want`` here as this path reports it, and what was seen."""
        ...


def _missing(error: CommandFailed) -> bool:
    """Whether rbd said the image does not exist (ENOENT, exit code 2)."""
    return error.exit_code == 2 and "No such file" in error.output_tail


def _role_of(info: dict[str, Any]) -> Role:
    mirroring = info.get("mirroring")
    if not isinstance(mirroring, dict) or "primary" not in mirroring:
        return "absent"
    return "primary" if mirroring["primary"] else "secondary"


@dataclass
class RbdVolumes:
    """:class:`VolumeControl` through the ``rbd`` CLI."""

    rbd: RbdMirror
    pool: str

    @property
    def site(self) -> str:
        """The site's name."""
        return self.rbd.site

    def role(self, volume: Volume) -> Role:
        """See :class:`VolumeControl`."""
        try:
            return _role_of(self.rbd.image_info(self.pool, volume.image))
        except CommandFailed as error:
            if _missing(error):
                return "absent"
            raise

    def mirror_state(self, volume: Volume) -> tuple[str, str]:
        """See :class:`VolumeControl`; ``("absent", ...)`` while the image does not exist (a resync
        deletes and re-creates it)."""
        try:
            status = self.rbd.image_status(self.pool, volume.image)
        except CommandFailed as error:
            if _missing(error):
                return "absent", f"no image {self.pool}/{volume.image} on {self.site}"
            if error.exit_code == 22 and "mirroring not enabled" in error.output_tail:
                return "disabled", f"mirroring not enabled on {self.pool}/{volume.image} (yet) on {self.site}"
            raise
        return str(status.get("state", "")), str(status.get("description", ""))

    def promote(self, volume: Volume, *, force: bool) -> None:
        """See :class:`VolumeControl`."""
        if self.role(volume) != "primary":
            self.rbd.promote(self.pool, volume.image, force=force)

    def demote(self, volume: Volume) -> None:
        """See :class:`VolumeControl`."""
        if self.role(volume) == "primary":
            self.rbd.demote(self.pool, volume.image)

    def resync(self, volume: Volume) -> None:
        """See :class:`VolumeControl`."""
        self.rbd.resync(self.pool, volume.image)

    def snapshot(self, volume: Volume) -> None:
        """See :class:`VolumeControl`."""
        self.rbd.mirror_snapshot(self.pool, volume.image)

    def settled(self, volume: Volume, want: Want) -> tuple[bool, str]:
        """See :class:`VolumeControl`."""
        role = self.role(volume)
        return role == want, f"{volume.image} is {role} on {self.site}"


@dataclass
class VrVolumes:
    """:class:`VolumeControl` through csi-addons ``VolumeReplication`` CRs (one per PVC, same name)."""

    cluster: ClusterApi
    rbd_volumes: RbdVolumes
    app: ProtectedApp
    auto_resync: bool = False

    @property
    def site(self) -> str:
        """The site's name."""
        return self.cluster.site

    def role(self, volume: Volume) -> Role:
        """See :class:`VolumeControl`."""
        return self.rbd_volumes.role(volume)

    def mirror_state(self, volume: Volume) -> tuple[str, str]:
        """See :class:`VolumeControl`."""
        return self.rbd_volumes.mirror_state(volume)

    def _vr(self, volume: Volume) -> dict[str, Any] | None:
        try:
            return self.cluster.get(
                VR_KIND, self.app.claim(volume, "mirroring.control volume-replication"), self.app.namespace
            )
        except NotFound:
            return None

    def _has_claim(self, volume: Volume) -> bool:
        try:
            self.cluster.get(
                PVC_KIND, self.app.claim(volume, "mirroring.control volume-replication"), self.app.namespace
            )
        except NotFound:
            return False
        return True

    def _want(self, volume: Volume, state: str) -> None:
        """Make the VR ask for ``state`` (created when absent, which needs its PVC)."""
        vr = self._vr(volume)
        if vr is None:
            if not self._has_claim(volume):
                raise NotFound(
                    f"VolumeReplication {self.app.namespace}/{volume.pvc} on {self.site}: its PVC does not exist",
                    hint="restore the PV and PVC first (the restore-volumes step)",
                    context={"site": self.site, "pvc": volume.pvc},
                )
            self.cluster.create(self.manifest(volume, state))
            return
        spec = vr.get("spec") or {}
        if spec.get("replicationState") != state or bool(spec.get("autoResync")) != self.auto_resync:
            patch = {"spec": {"replicationState": state, "autoResync": self.auto_resync}}
            self.cluster.patch(
                VR_KIND,
                self.app.claim(volume, "mirroring.control volume-replication"),
                self.app.namespace,
                patch,
            )

    def manifest(self, volume: Volume, state: str) -> dict[str, Any]:
        """The VolumeReplication of ``volume`` asking for ``state``."""
        return {
            "apiVersion": VR_KIND.api_version,
            "kind": VR_KIND.kind,
            "metadata": {"name": volume.pvc, "namespace": self.app.namespace},
            "spec": {
                "autoResync": self.auto_resync,
                "volumeReplicationClass": self.app.mirroring.volume_replication_class,
                "replicationState": state,
                "dataSource": {"apiGroup": "", "kind": "PersistentVolumeClaim", "name": volume.pvc},
            },
        }

    def promote(self, volume: Volume, *, force: bool) -> None:
        """See :class:`VolumeControl`."""
        if force:
            self.rbd_volumes.promote(volume, force=True)
        self._want(volume, "primary")

    def demote(self, volume: Volume) -> None:
        """See :class:`VolumeControl`. Without a PVC (and so no VR) the image is demoted with rbd."""
        if self._vr(volume) is None and not self._has_claim(volume):
            self.rbd_volumes.demote(volume)
            return
        self._want(volume, "secondary")

    def resync(self, volume: Volume) -> None:
        """See :class:`VolumeControl`."""
        if self._vr(volume) is None and not self._has_claim(volume):
            self.rbd_volumes.resync(volume)
            return
        self._want(volume, "resync")

    def snapshot(self, volume: Volume) -> None:
        """See :class:`VolumeControl` (csi-addons has no one-off snapshot: rbd takes it)."""
        self.rbd_volumes.snapshot(volume)

    def settled(self, volume: Volume, want: Want) -> tuple[bool, str]:
        """See :class:`VolumeControl`: Ceph agrees and the VR says ``Completed``, not ``Degraded`` or
        ``Resyncing`` (checking ``Completed`` alone let a relocate read stale data: Ramen #176)."""
        role = self.role(volume)
        vr = self._vr(volume)
        if vr is None:
            return role == want, f"{volume.image} is {role} on {self.site} (no VolumeReplication)"
        status = vr.get("status") or {}
        conditions = {c.get("type"): c.get("status") for c in status.get("conditions") or []}
        ok = (
            role == want
            and str(status.get("state", "")).lower() == want
            and conditions.get("Completed") == "True"
            and conditions.get("Degraded") != "True"
            and conditions.get("Resyncing") != "True"
        )
        seen = (
            f"{volume.image} is {role} on {self.site}; VR state {status.get('state')}, "
            f"Completed={conditions.get('Completed')}, Degraded={conditions.get('Degraded')}, "
            f"Resyncing={conditions.get('Resyncing')}"
        )
        return ok, seen


def volumes_for(
    app: ProtectedApp, cluster: ClusterApi, rbd: RbdMirror, pool: str, *, auto_resync: bool = False
) -> VolumeControl:
    """The app's volume control on one site, by its ``mirroring.control``."""
    direct = RbdVolumes(rbd, pool)
    if app.mirroring.control == "rbd":
        return direct
    return VrVolumes(cluster, direct, app, auto_resync=auto_resync)
