"""Building a site's adapters from the configuration.

This is the one place that turns a :class:`~drkit.domain.models.Site` into the real adapters:
``ClusterApi`` (kubeconfig context or in-cluster), ``ObjectStore`` (S3) and ``RbdMirror`` (local
``rbd`` or exec into Rook's toolbox). Jobs take the adapters as arguments, so tests can hand them
fakes; the tasks and the CLI call :func:`cluster_for`, :func:`store_for` and :func:`rbd_for`.
A site configured from Prefect blocks carries its credentials in memory (:attr:`Site.secrets`);
they are used instead of the kubeconfig file and S3 keys its settings would name.
"""

from __future__ import annotations

from typing import Any

from drkit.adapters.kube import KubeCluster, KubeExecRunner
from drkit.adapters.objectstore import S3Credentials, S3ObjectStore
from drkit.adapters.rbd import RbdCli
from drkit.domain.models import Site


def cluster_for(site: Site) -> KubeCluster:
    """The site's Kubernetes API (the kubeconfig content of :attr:`Site.secrets` when given)."""
    secrets = site.secrets
    text = secrets.kubeconfig.get_secret_value() if secrets and secrets.kubeconfig else None
    return KubeCluster.from_access(site.kube, site=site.name, kubeconfig_text=text)


def s3_credentials_for(site: Site) -> S3Credentials | None:
    """The site's S3 keys: from :attr:`Site.secrets` when given, else what ``site.s3`` names."""
    secrets = site.secrets
    if secrets and secrets.s3_access_key_id and secrets.s3_secret_access_key:
        token = secrets.s3_session_token.get_secret_value() if secrets.s3_session_token else None
        return S3Credentials(
            secrets.s3_access_key_id.get_secret_value(), secrets.s3_secret_access_key.get_secret_value(), token
        )
    return S3Credentials.from_location(site.s3)


def store_for(site: Site, **options: Any) -> S3ObjectStore:
    """The site's object store."""
    options.setdefault("max_attempts", site.s3.max_attempts)
    return S3ObjectStore(site.s3, site=site.name, credentials=s3_credentials_for(site), **options)


def rbd_for(site: Site, cluster: KubeCluster | None = None) -> RbdCli:
    """The site's ``rbd``: local with its ceph.conf, or through the Rook toolbox pod."""
    if site.ceph.mode == "local":
        names = (site.s3.access_key_id_env, site.s3.secret_access_key_env)
        return RbdCli.local(site.ceph, site=site.name, hide_env=[n for n in names if n])
    kube = cluster or cluster_for(site)
    runner = KubeExecRunner(kube.api_client, site.ceph.toolbox, site=site.name)
    return RbdCli(runner=runner, site=site.name, timeout=site.ceph.timeout.total_seconds())
