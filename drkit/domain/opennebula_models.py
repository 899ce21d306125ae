"""Configuration of OpenNebula virtual machines: a site's front-end, and an app of ``checks.kind:
opennebula`` (which VMs, which image pool and datastores, how networks and attributes that exist
only on one site are carried over).

Pure data, like :mod:`drkit.domain.models` (which holds them as ``Site.opennebula`` and
``ProtectedApp.opennebula``). The credentials of a front-end are never a value of the file: the
file names where they are (a file, an environment variable or a Prefect Secret block). What the
rules do to a VM's template is :mod:`drkit.domain.opennebula`.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from pydantic import Field, field_validator, model_validator

from drkit.domain.errors import ConfigError
from drkit.domain.model_base import Duration, Model

if TYPE_CHECKING:
    from drkit.domain.models import ProtectedApp, Site

_LABEL = r"^[A-Za-z0-9_]+=\S.*$"
_ENV = r"^[A-Za-z_][A-Za-z0-9_]*$"


class OpenNebulaAccess(Model):
    """How to reach a site's OpenNebula front-end (its XML-RPC API, through pyone)."""

    endpoint: str = Field(
        ...,
        pattern=r"^https?://\S+$",
        description="XML-RPC endpoint of the front-end, e.g. http://one-a.example:2633/RPC2",
    )
    credentials_file: Path | None = Field(
        None,
        description="file whose first line is the session 'user:password' (OpenNebula's one_auth format);"
        " give exactly one of credentials_file, credentials_env and credentials_secret",
    )
    credentials_env: str | None = Field(
        None, pattern=_ENV, description="environment variable holding the session 'user:password'"
    )
    credentials_secret: str | None = Field(
        None,
        min_length=1,
        description="name of a Prefect Secret block holding the session 'user:password' (read by the"
        " flows, and by the CLI given --config block:NAME; the CLI given a YAML file needs"
        " credentials_file or credentials_env)",
    )
    verify_tls: bool = Field(True, description="verify the endpoint's TLS certificate (https)")
    timeout: Duration = Field(
        timedelta(seconds=30),
        gt=timedelta(0),
        le=timedelta(minutes=10),
        description="timeout of one XML-RPC call (more than 0s, at most 10m)",
    )

    @model_validator(mode="after")
    def _one_source(self) -> OpenNebulaAccess:
        given = [
            n
            for n in ("credentials_file", "credentials_env", "credentials_secret")
            if getattr(self, n) is not None
        ]
        if len(given) != 1:
            raise ValueError(
                "give exactly one of credentials_file, credentials_env and credentials_secret"
                + (f" (got {', '.join(given)})" if given else "")
                + "; the password itself is never written in the configuration"
            )
        return self


NicRule = Literal["drop-context", "refuse"]
SourceOnlyRule = Literal["drop", "rewrite", "refuse"]


class OpenNebulaApp(Model):
    """The VMs of an app of ``checks.kind: opennebula`` and how their definitions cross sites."""

    vm_ids: tuple[int, ...] | None = Field(
        None,
        min_length=1,
        description="ids of the VMs to protect on the home site's front-end; give vm_ids or vm_label",
    )
    vm_label: str | None = Field(
        None,
        pattern=_LABEL,
        description="KEY=VALUE in the user template of the VMs to protect (e.g. DR=standby); every VM"
        " of the home site's front-end carrying it; give vm_ids or vm_label",
    )
    image_pool: str = Field(
        "one", min_length=1, description="RBD pool of the VMs' disks, mirrored to the other site"
    )
    datastores: dict[str, int | str] = Field(
        ...,
        description="per site name: the image datastore (id or name) where the VMs' disks are registered"
        " as persistent images on that site; both of the app's sites",
    )
    networks: dict[str, str] = Field(
        default_factory=dict,
        description="virtual network names: home site's network -> secondary site's network (the way"
        " back reads it in reverse). A NIC on a network named here moves to its counterpart",
    )
    mapped_nic_addresses: Literal["drop", "keep"] = Field(
        "drop",
        description="a NIC moved to a mapped network: 'drop' its IP, IP6 and MAC and its ETH<n>_ context"
        " (the target network leases new ones, as the guide does when the sites' ranges differ);"
        " 'keep' them (the two networks carry the same ranges)",
    )
    unmapped_nic: NicRule = Field(
        "refuse",
        description="a NIC whose network is not in 'networks': 'drop-context' drops its IP, IP6, MAC and"
        " ETH<n>_ context and keeps it on the target's network of the same name (the NIC is dropped"
        " when the target has none); 'refuse' stops the plan",
    )
    source_only: SourceOnlyRule = Field(
        "refuse",
        description="an attribute that exists only on the source site (an ISO or CDROM disk, a disk not"
        " mirrored, a kernel or context file path, a scheduling requirement naming its hosts or"
        " datastores): 'drop' it, 'rewrite' its value with 'rewrites', or 'refuse' (the plan stops)",
    )
    drill_network: str | None = Field(
        None,
        min_length=1,
        description="virtual network on the secondary site the VMs of an isolated drill are started on"
        " (every NIC moves to it, its static addresses dropped); none: the drill's VMs have no NIC"
        " (each NIC dropped, recorded in the drill's journal)",
    )
    rewrites: dict[str, str] = Field(
        default_factory=dict,
        description="source_only 'rewrite': the source value -> the value on the target (an image name,"
        " a path, a requirement expression); an attribute whose value is not here is refused",
    )

    @field_validator("vm_ids")
    @classmethod
    def _ids(cls, ids: tuple[int, ...] | None) -> tuple[int, ...] | None:
        if ids is not None:
            if any(i < 0 for i in ids):
                raise ValueError("VM ids are 0 or more")
            repeated = sorted({i for i in ids if ids.count(i) > 1})
            if repeated:
                raise ValueError(f"repeated VM ids: {', '.join(map(str, repeated))}")
        return ids

    @field_validator("datastores")
    @classmethod
    def _datastores(cls, value: dict[str, int | str]) -> dict[str, int | str]:
        for site, ref in value.items():
            if (isinstance(ref, int) and ref < 0) or (isinstance(ref, str) and not ref.strip()):
                raise ValueError(f"site {site}: a datastore is an id (0 or more) or a name, got {ref!r}")
        return value

    @field_validator("networks", "rewrites")
    @classmethod
    def _no_empty(cls, value: dict[str, str]) -> dict[str, str]:
        for key, target in value.items():
            if not key.strip() or not target.strip():
                raise ValueError(f"empty name in {key!r}: {target!r}")
        return value

    @model_validator(mode="after")
    def _rules(self) -> OpenNebulaApp:
        if (self.vm_ids is None) == (self.vm_label is None):
            raise ValueError("give exactly one of vm_ids and vm_label")
        if self.source_only == "rewrite" and not self.rewrites:
            raise ValueError("source_only 'rewrite' needs 'rewrites' (source value -> target value)")
        if self.source_only != "rewrite" and self.rewrites:
            raise ValueError(f"'rewrites' is only read with source_only 'rewrite', not {self.source_only!r}")
        return self

    def label(self) -> tuple[str, str] | None:
        """``(KEY, VALUE)`` of :attr:`vm_label`, or None when the VMs are named by id."""
        if self.vm_label is None:
            return None
        key, _, value = self.vm_label.partition("=")
        return key, value

    def describe(self) -> str:
        """The protected VMs in a few words: ``VMs 0, 1`` or ``VMs labelled DR=standby``."""
        if self.vm_ids is not None:
            return "VMs " + ", ".join(map(str, self.vm_ids))
        return f"VMs labelled {self.vm_label}"

    def network_map(self, source_is_home: bool) -> dict[str, str]:
        """Source network -> target network for a move away from home (``source_is_home``) or back
        (the reverse of :attr:`networks`; a target named by two home networks is left out, so its NICs
        follow the ``unmapped_nic`` rule)."""
        if source_is_home:
            return dict(self.networks)
        targets = list(self.networks.values())
        return {b: a for a, b in self.networks.items() if targets.count(b) == 1}


# ------------------------------------------------------------------ rules across an app and its sites


def kind_problem(app: ProtectedApp) -> str | None:
    """What is wrong with ``app``'s fields for its ``checks.kind``, or None.

    Every kind but ``opennebula`` needs a namespace, a workload and a PVC per volume, and has no
    ``opennebula`` section; a VM app has none of the three, its images are driven with ``rbd`` (no
    VolumeReplication CRs without PVCs), its routing is not ``ingress``, and it names a datastore
    for each of its sites.
    """
    kind = app.checks.kind
    if kind != "opennebula":
        if app.opennebula is not None:
            return f"opennebula: only read for checks.kind opennebula, not {kind!r}; remove it"
        missing = [f for f in ("namespace", "workload") if getattr(app, f) is None]
        missing += [f"volumes[{i}].pvc" for i, v in enumerate(app.volumes) if v.pvc is None]
        if missing:
            return (
                f"{', '.join(missing)}: required for checks.kind {kind!r} (only kind opennebula goes without)"
            )
        return None
    if app.opennebula is None:
        return "checks.kind opennebula needs an 'opennebula' section (its VMs and datastores)"
    for field in ("namespace", "workload"):
        if getattr(app, field) is not None:
            return f"{field}: an app of checks.kind opennebula has no Kubernetes {field}; remove it"
    for i, volume in enumerate(app.volumes):
        if volume.pvc is not None:
            return f"volumes[{i}].pvc: a VM's disk has no PVC; remove it (keep its image)"
    if app.mirroring.control != "rbd":
        return (
            "mirroring.control: an app of checks.kind opennebula has no PVCs to carry VolumeReplication"
            " CRs; use 'rbd'"
        )
    if app.routing.mode == "ingress":
        return (
            "routing.mode: 'ingress' restores Kubernetes Services and Ingresses, which VMs do not have;"
            " use 'none' or 'webhook'"
        )
    absent = [s for s in (app.home_site, app.secondary_site) if s not in app.opennebula.datastores]
    if absent:
        return f"opennebula.datastores: no datastore for {', '.join(absent)} (give one per app site)"
    return None


def vm_sites_problem(sites: Sequence[Site], app: ProtectedApp, index: int) -> str | None:
    """For a VM app (``apps[index]``): its datastores name known sites, and both of its sites have
    an ``opennebula`` front-end; None when fine (or when ``app`` is not a VM app)."""
    if app.opennebula is None:
        return None
    known = {s.name: s for s in sites}
    for site in app.opennebula.datastores:
        if site not in known:
            return (
                f"app {app.name}: apps[{index}].opennebula.datastores: unknown site {site!r};"
                f" known sites: {', '.join(known)}"
            )
    for name in (app.home_site, app.secondary_site):
        if name in known and known[name].opennebula is None:
            return (
                f"app {app.name}: apps[{index}].checks.kind: site {name} has no 'opennebula' section (its"
                " front-end's endpoint and credentials), which checks.kind opennebula needs"
            )
    return None


def unsupported(app: str, kind: str, command: str) -> ConfigError:
    """The error of ``command`` reaching a Kubernetes part (namespace, workload, PVC) of ``app``,
    whose ``kind`` has none: one line naming the app, the kind and the command."""
    return ConfigError(
        f"app {app}: {command} is not supported yet for checks.kind {kind!r}"
        " (it has no Kubernetes namespace, workload or PVCs)",
        hint=f"leave app {app} out of {command}",
        context={"app": app, "kind": kind, "command": command},
    )


def vm_defaults(data: object) -> object:
    """An app's raw fields with the defaults of a VM app filled in: its routing is ``none`` when
    absent (a VM has no Ingress to restore). Other apps' fields are returned as they are."""
    if isinstance(data, dict) and "routing" not in data:
        checks = data.get("checks")
        kind = checks.get("kind") if isinstance(checks, dict) else getattr(checks, "kind", None)
        if kind == "opennebula":
            return {**data, "routing": {"mode": "none"}}
    return data
