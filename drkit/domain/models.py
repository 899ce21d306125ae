"""Configuration models: the sites and the protected apps.

These are pure data. They are frozen pydantic models with ``extra="forbid"``, so a typo in the
configuration file is an error, not a silently ignored key. Every field has a description, which is
what the CLI, the docs and Prefect's UI show.

Loading them from YAML (file I/O) is in :mod:`drkit.config`.
"""

from __future__ import annotations

import warnings
from datetime import timedelta
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BeforeValidator, Field, PrivateAttr, SecretStr, model_validator

from drkit.domain.app_checks import Checks
from drkit.domain.errors import ConfigError
from drkit.domain.model_base import _NAME, Duration, Model, home_site_alias
from drkit.domain.model_base import (
    DeprecatedField as DeprecatedField,  # re-exported: the warning class users filter on
)
from drkit.domain.opennebula_models import (
    OpenNebulaAccess,
    OpenNebulaApp,
    kind_problem,
    unsupported,
    vm_defaults,
    vm_sites_problem,
)
from drkit.domain.restore_spec import RestoreSpec
from drkit.domain.step_limits import STARTUP_DEFAULT, STEP_LIMITS, Limits

# --------------------------------------------------------------------------------------------- sites


class KubeAccess(Model):
    """How to reach a site's Kubernetes API."""

    context: str | None = Field(None, description="kubeconfig context to use; the current context when empty")
    kubeconfig: Path | None = Field(
        None, description="kubeconfig file; $KUBECONFIG or ~/.kube/config when empty"
    )
    in_cluster: bool = Field(False, description="use the pod's service account instead of a kubeconfig")

    @model_validator(mode="after")
    def _one_way(self) -> KubeAccess:
        if self.in_cluster and (self.context or self.kubeconfig):
            raise ValueError("in_cluster cannot be combined with context or kubeconfig; choose one")
        return self


class CephAccess(Model):
    """How to run ``rbd`` against a site's Ceph cluster."""

    mode: Literal["local", "rook-toolbox"] = Field(
        "local",
        description="'local': run rbd here with conf/keyring; 'rook-toolbox': exec into the toolbox pod",
    )
    cluster: str = Field("ceph", description="Ceph cluster name (rbd --cluster)")
    conf: Path | None = Field(None, description="ceph.conf path (local mode)")
    keyring: Path | None = Field(None, description="keyring path (local mode); from ceph.conf when empty")
    client_id: str = Field(
        "admin",
        description="cephx client id without 'client.' (rbd --id, in either mode); give a user with "
        "mon 'profile rbd' and osd/mgr 'profile rbd pool=<pool>' (see the README), not admin",
    )
    toolbox: str = Field(
        "rook-ceph/rook-ceph-tools",
        description="Rook's toolbox (rook-toolbox mode): namespace/deployment (its running pod is looked up: "
        "RBAC must allow exec on any pod of the namespace) or namespace/pod/name (exec into that pod only: "
        "RBAC can name it)",
    )
    timeout: Duration = Field(timedelta(seconds=30), description="timeout of one rbd call")

    @model_validator(mode="after")
    def _mode_fields(self) -> CephAccess:
        if self.mode == "local" and self.conf is None:
            raise ValueError("mode 'local' needs 'conf' (the path of the site's ceph.conf)")
        if self.mode == "rook-toolbox":
            toolbox_target(self.toolbox)
        return self


def toolbox_target(text: str) -> tuple[str, str, str]:
    """``(namespace, kind, name)`` of a ``toolbox`` setting: kind ``deployment`` for
    ``namespace/deployment``, ``pod`` for ``namespace/pod/name``; ValueError otherwise."""
    parts = text.split("/")
    if len(parts) == 2 and all(parts):
        return parts[0], "deployment", parts[1]
    if len(parts) == 3 and parts[1] == "pod" and parts[0] and parts[2]:
        return parts[0], "pod", parts[2]
    raise ValueError(
        "'toolbox' must be written namespace/deployment (e.g. rook-ceph/rook-ceph-tools) or "
        "namespace/pod/name (e.g. rook-ceph/pod/standby-tools-0)"
    )


class S3Location(Model):
    """Where a site keeps its backups, RPO samples and drill reports (any S3-compatible store)."""

    endpoint: str | None = Field(None, description="endpoint URL (MinIO, Ceph RGW...); AWS when empty")
    bucket: str = Field(..., min_length=3, description="bucket name")
    prefix: str = Field("standby", description="key prefix under which everything is written")
    path_style: bool = Field(True, description="path-style addressing (needed by most non-AWS stores)")
    region: str = Field("us-east-1", description="region name")
    verify_tls: bool = Field(True, description="verify the endpoint's TLS certificate")
    access_key_id_env: str | None = Field(
        None, description="environment variable holding the access key id (or use a Prefect block)"
    )
    secret_access_key_env: str | None = Field(
        None, description="environment variable holding the secret access key (or use a Prefect block)"
    )
    credentials_file: Path | None = Field(
        None, description="AWS-style shared credentials file, read with 'profile'"
    )
    profile: str = Field("default", description="profile in the credentials file")
    max_attempts: int = Field(
        5, ge=1, le=20, description="attempts per S3 call (botocore retries); Prefect retries the task on top"
    )


class SiteSecrets(Model):
    """A site's credentials held in memory, for a site configured from Prefect blocks.

    A worker pod has no kubeconfig or credentials file: these values come from Secret and
    ``AwsCredentials`` blocks. They are never part of the configuration file and never dumped.
    """

    kubeconfig: SecretStr | None = Field(
        None, description="kubeconfig content (YAML), used with kube.context instead of a kubeconfig file"
    )
    s3_access_key_id: SecretStr | None = Field(None, description="S3 access key id")
    s3_secret_access_key: SecretStr | None = Field(None, description="S3 secret access key")
    s3_session_token: SecretStr | None = Field(
        None, description="S3 session token, when the keys are temporary"
    )
    opennebula_session: SecretStr | None = Field(
        None, description="OpenNebula session 'user:password', from opennebula.credentials_secret"
    )


class Site(Model):
    """One Kubernetes cluster with its Ceph cluster and its object store."""

    _secrets: SiteSecrets | None = PrivateAttr(None)

    name: str = Field(..., pattern=_NAME, description="site name, e.g. site-a")
    timezone: str = Field(
        "UTC", description="IANA zone of the site's Ceph hosts; rbd prints last_update in it without zone"
    )
    kube: KubeAccess = Field(default_factory=KubeAccess, description="Kubernetes API access")
    ceph: CephAccess = Field(..., description="Ceph access for rbd commands")
    pool: str = Field(..., min_length=1, description="RBD pool holding the mirrored images")
    storage_class: str | None = Field(None, description="storage class of the app's PVs on this site")
    s3: S3Location = Field(..., description="object store for backups, samples and reports")
    opennebula: OpenNebulaAccess | None = Field(
        None, description="the site's OpenNebula front-end, for apps of checks.kind opennebula"
    )
    probe_timeout: Duration = Field(
        timedelta(seconds=3),
        gt=timedelta(0),
        le=timedelta(minutes=5),
        description="how long a plan or `standby status` waits for one answer of this site (its Kubernetes"
        " API, Ceph, object store) before showing it unreachable with 'no answer within ...'; the sites"
        " are asked in parallel, so a site that is down costs this once (more than 0s, at most 5m). Steps"
        " that act keep their own, longer timeouts",
    )

    @property
    def secrets(self) -> SiteSecrets | None:
        """Credentials given in memory (from Prefect blocks); None when the files and variables the
        site's settings name are used."""
        return self._secrets

    def with_secrets(self, secrets: SiteSecrets) -> Site:
        """This site, using ``secrets`` instead of files; the settings themselves are unchanged."""
        site = self.model_copy()
        site._secrets = secrets
        return site

    def __getstate__(self) -> dict[Any, Any]:
        """Refused for a site carrying credentials: pickled bytes (a Prefect result, a cache, a process
        pool) would hold them in clear. Pass the site's name or its config block's name instead."""
        if self._secrets is not None:
            raise TypeError(
                f"site {self.name} carries credentials in memory and cannot be pickled;"
                " pass the site's name (or its config block's name) and load it where it is used"
            )
        return super().__getstate__()


# ---------------------------------------------------------------------------------------------- apps


class KindRef(Model):
    """A Kubernetes kind, written ``group/version/Kind`` or ``version/Kind`` for the core group."""

    group: str = Field("", description="API group; empty for the core group")
    version: str = Field(..., description="API version, e.g. v1")
    kind: str = Field(..., description="kind, e.g. Secret")

    @property
    def api_version(self) -> str:
        """``group/version``, or ``version`` for the core group."""
        return f"{self.group}/{self.version}" if self.group else self.version

    def __str__(self) -> str:
        return f"{self.api_version}/{self.kind}"


def _kind_ref(value: object) -> object:
    if isinstance(value, str):
        parts = value.split("/")
        if len(parts) == 2:
            return {"group": "", "version": parts[0], "kind": parts[1]}
        if len(parts) == 3:
            return {"group": parts[0], "version": parts[1], "kind": parts[2]}
        raise ValueError(f"expected 'group/version/Kind' or 'v1/Kind', got {value!r}")
    return value


KindSpec = Annotated[KindRef, BeforeValidator(_kind_ref)]

DEFAULT_KINDS: tuple[str, ...] = (
    "v1/Secret",
    "v1/ConfigMap",
    "v1/PersistentVolumeClaim",
    "v1/Service",
    "networking.k8s.io/v1/Ingress",
    "replication.storage.openshift.io/v1alpha1/VolumeReplication",
)


class BackupSelection(Model):
    """Which Kubernetes objects belong to the app."""

    kinds: tuple[KindSpec, ...] = Field(
        default_factory=lambda: tuple(KindRef.model_validate(_kind_ref(k)) for k in DEFAULT_KINDS),
        description="kinds to back up in the app's namespaces; PVs are added through the app's claims",
    )
    label_selector: str | None = Field(
        None, description="label selector limiting the objects; all when empty"
    )
    include_pvs: bool = Field(True, description="back up the PVs bound to the app's claims")


class Volume(Model):
    """One persistent volume of the app and its mirrored RBD image."""

    pvc: str | None = Field(None, pattern=_NAME, description="PVC name in the app's namespace (not for VMs)")
    image: str = Field(
        ..., min_length=1, description="RBD image name (the PV's imageName; a VM's, e.g. one-7)"
    )
    mode: Literal["snapshot", "journal"] | None = Field(
        None, description="RBD mirroring mode of this image, when it differs from the app's mirroring.mode"
    )


class Workload(Model):
    """The object that runs the app (its custom resource, or a StatefulSet/Deployment)."""

    kind: KindSpec = Field(..., description="kind of the app's workload object, e.g. a Nexus CR")
    name: str = Field(..., pattern=_NAME, description="name of the workload object")


class Mirroring(Model):
    """How the app's images are promoted and demoted."""

    control: Literal["volume-replication", "rbd"] = Field(
        "volume-replication", description="drive csi-addons VolumeReplication CRs, or the rbd CLI directly"
    )
    mode: Literal["snapshot", "journal"] = Field("snapshot", description="RBD mirroring mode of the images")
    volume_replication_class: str | None = Field(
        None, description="VolumeReplicationClass name (volume-replication control)"
    )

    @model_validator(mode="after")
    def _class_needed(self) -> Mirroring:
        if self.control == "volume-replication" and not self.volume_replication_class:
            raise ValueError("control 'volume-replication' needs 'volume_replication_class'")
        return self


class Routing(Model):
    """How users are pointed at the site that runs the app after an operation."""

    mode: Literal["none", "ingress", "webhook"] = Field(
        "ingress",
        description="'none': routing is outside Standby; 'ingress': restore the app's Services and Ingresses"
        " on the new site and remove them from the old; 'webhook': call a Prefect webhook block",
    )
    webhook_block: str | None = Field(None, description="name of the Prefect webhook block (mode 'webhook')")

    @model_validator(mode="after")
    def _block_needed(self) -> Routing:
        if self.mode == "webhook" and not self.webhook_block:
            raise ValueError("mode 'webhook' needs 'webhook_block' (the name of a Prefect Webhook block)")
        return self


class ProtectedApp(Model):
    """An application protected by Standby: its namespace, objects, volumes and targets."""

    name: str = Field(..., pattern=_NAME, description="app name, e.g. nexus")
    namespace: str | None = Field(
        None, pattern=_NAME, description="namespace of the app (the same on both sites); VMs have none"
    )
    home_site: str = Field(
        ...,
        description="site where the app normally runs (its home; where it runs now is its placement record)."
        " Formerly primary_site, still read with a warning",
    )
    secondary_site: str = Field(
        ..., description="the app's other site, which holds the mirrored data while it is home"
    )
    backup: BackupSelection = Field(default_factory=BackupSelection, description="objects to back up")
    volumes: tuple[Volume, ...] = Field(..., min_length=1, description="the app's PVCs and RBD images")
    workload: Workload | None = Field(None, description="the object that runs the app; VMs have none")
    mirroring: Mirroring = Field(..., description="how images are promoted and demoted")
    snapshot_interval: Duration = Field(..., description="mirror snapshot schedule interval, e.g. 1m")
    rpo_target: Duration = Field(..., description="largest acceptable lag of the secondary site")
    rpo_max_entries_behind: int | None = Field(
        None,
        ge=1,
        description="journal-mode images (as their mirror status reports): an RPO breach when one is"
        " more than this many journal entries behind its primary (rbd's entries_behind_primary), beside"
        " rpo_target judged on the estimated lag; empty: rpo_target only",
    )
    checks: Checks = Field(default_factory=Checks, description="health and smoke checks")
    restore: RestoreSpec = Field(
        default_factory=RestoreSpec, description="restore order, storage-class fields and field changes"
    )
    routing: Routing = Field(
        default_factory=Routing, description="how users reach the app after a move ('none' for VMs if absent)"
    )
    opennebula: OpenNebulaApp | None = Field(
        None, description="the VMs of an app of checks.kind opennebula and how they cross sites"
    )
    limits: Limits = Field(
        default_factory=Limits, description="how long each step of an operation or drill may take"
    )

    @model_validator(mode="before")
    @classmethod
    def _older_home_name(cls, data: Any) -> Any:
        return home_site_alias(data)

    @model_validator(mode="before")
    @classmethod
    def _vm_defaults(cls, data: Any) -> Any:
        return vm_defaults(data)

    @model_validator(mode="after")
    def _kind_fields(self) -> ProtectedApp:
        if problem := kind_problem(self):
            raise ValueError(problem)
        return self

    def pool_on(self, site: Site) -> str:
        """The RBD pool of the app's images on ``site``: a VM app's image pool, else the site's pool."""
        return self.opennebula.image_pool if self.opennebula is not None else site.pool

    def volume_mode(self, volume: Volume) -> Literal["snapshot", "journal"]:
        """The RBD mirroring mode of ``volume``: its own, else the app's ``mirroring.mode``."""
        return volume.mode or self.mirroring.mode

    def kube_namespace(self, command: str) -> str:
        """The app's namespace; :meth:`unsupported` for ``command`` when its kind has none (a VM app)."""
        if self.namespace is None:
            raise unsupported(self.name, self.checks.kind, command)
        return self.namespace

    def kube_workload(self, command: str) -> Workload:
        """The app's workload object; :meth:`unsupported` for ``command`` when its kind has none (a VM app)."""
        if self.workload is None:
            raise unsupported(self.name, self.checks.kind, command)
        return self.workload

    def claim(self, volume: Volume, command: str) -> str:
        """``volume``'s PVC name; :meth:`unsupported` for ``command`` when its kind has none (a VM app)."""
        if volume.pvc is None:
            raise unsupported(self.name, self.checks.kind, command)
        return volume.pvc

    @property
    def primary_site(self) -> str:
        """Deprecated: :attr:`home_site` (where the app runs *now* is its placement record)."""
        warnings.warn(
            "ProtectedApp.primary_site is deprecated: use home_site, or the placement record for the current"
            " primary",
            DeprecationWarning,
            stacklevel=2,
        )
        return self.home_site

    def other_site(self, site: str) -> str:
        """The app's site that is not ``site``."""
        return self.secondary_site if site == self.home_site else self.home_site

    @model_validator(mode="after")
    def _one_startup(self) -> ProtectedApp:
        given, older = self.limits.startup, self.checks.startup_timeout
        if given is not None and older is not None and given != older:
            raise ValueError(
                f"limits.startup ({given}) and checks.startup_timeout ({older}) differ; keep one"
                " (checks.startup_timeout is the older name of limits.startup)"
            )
        return self

    def startup_limit(self) -> timedelta:
        """How long the app may take to start: ``limits.startup``, else ``checks.startup_timeout``, else 5m."""
        return self.limits.startup or self.checks.startup_timeout or STARTUP_DEFAULT

    def step_limit(self, step: str) -> timedelta:
        """How long operation step ``step`` may take (see :data:`STEP_LIMITS`)."""
        name = STEP_LIMITS.get(step, "default")
        if name == "startup":
            return self.startup_limit()
        limit: timedelta = getattr(self.limits, name)
        return limit

    @model_validator(mode="after")
    def _sites_differ(self) -> ProtectedApp:
        if self.home_site == self.secondary_site:
            raise ValueError("home_site and secondary_site must be different sites")
        if self.rpo_target < self.snapshot_interval:
            raise ValueError(
                f"rpo_target ({self.rpo_target}) is below snapshot_interval ({self.snapshot_interval});"
                " it could never be met"
            )
        return self


class StandbyConfig(Model):
    """The whole configuration: sites and the apps they protect."""

    sites: tuple[Site, ...] = Field(..., min_length=2, description="the sites (at least two)")
    apps: tuple[ProtectedApp, ...] = Field(..., min_length=1, description="the protected apps")

    @model_validator(mode="after")
    def _references(self) -> StandbyConfig:
        names = [s.name for s in self.sites]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"site names must be unique; repeated: {', '.join(dupes)}")
        app_names = [a.name for a in self.apps]
        dupes = sorted({n for n in app_names if app_names.count(n) > 1})
        if dupes:
            raise ValueError(f"app names must be unique; repeated: {', '.join(dupes)}")
        for i, app in enumerate(self.apps):
            if problem := vm_sites_problem(self.sites, app, i):
                raise ValueError(problem)
            for site in app.checks.urls:
                if site not in names:
                    raise ValueError(
                        f"app {app.name}: apps[{i}].checks.urls: unknown site {site!r}; known sites: {', '.join(names)}"
                    )
            for field in ("home_site", "secondary_site"):
                value = getattr(app, field)
                if value not in names:
                    raise ValueError(
                        f"apps[{i}].{field}: unknown site {value!r}; known sites: {', '.join(names)}"
                    )
        return self

    def site(self, name: str) -> Site:
        """The site called ``name``; :class:`ConfigError` names the known ones."""
        for s in self.sites:
            if s.name == name:
                return s
        raise ConfigError(
            f"unknown site {name!r}; known sites: {', '.join(s.name for s in self.sites)}",
            hint="use a site name from the configuration's sites",
        )

    def app(self, name: str) -> ProtectedApp:
        """The app called ``name``; :class:`ConfigError` names the known ones."""
        for a in self.apps:
            if a.name == name:
                return a
        raise ConfigError(
            f"unknown app {name!r}; known apps: {', '.join(a.name for a in self.apps)}",
            hint="use an app name from the configuration's apps",
        )
