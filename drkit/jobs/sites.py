"""Building a site's adapters from the configuration.

This is the one place that turns a :class:`~drkit.domain.models.Site` into the real adapters:
``ClusterApi`` (kubeconfig context or in-cluster), ``ObjectStore`` (S3), ``RbdMirror`` (local
``rbd`` or exec into Rook's toolbox) and the OpenNebula front-end (``PyoneFrontend``). Only the
run's World (:mod:`drkit.jobs.world`) calls :func:`cluster_for`, :func:`store_for`, :func:`rbd_for`
and :func:`frontend_for`; jobs take the World or the adapters as
arguments, so tests can hand them fakes.
A site configured from Prefect blocks carries its credentials in memory (:attr:`Site.secrets`);
they are used instead of the kubeconfig file and S3 keys its settings would name.

A kubeconfig that skips TLS verification and a plain ``http`` S3 endpoint outside loopback are
logged once per process as a warning naming the site and the fix (:func:`transport_warnings`;
``standby config check`` prints them too).
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

import yaml

from drkit.adapters.kube import KubeCluster
from drkit.adapters.kube_exec import KubeExecRunner
from drkit.adapters.objectstore import S3Credentials, S3ObjectStore
from drkit.adapters.opennebula import PyoneFrontend
from drkit.adapters.rbd import RbdCli
from drkit.adapters.runner import hide_from_commands
from drkit.domain.errors import ConfigError
from drkit.domain.models import Site
from drkit.domain.transport import kubeconfig_warning, s3_endpoint_warning

log = logging.getLogger("standby.security")
_warned: set[str] = set()


def kube_transport_warning(site: Site) -> str | None:
    """The warning for the site's kubeconfig when its cluster skips TLS verification (an unreadable
    kubeconfig gives none here: loading it reports that)."""
    if site.kube.in_cluster:
        return None
    secrets = site.secrets
    if secrets and secrets.kubeconfig:
        text, where = secrets.kubeconfig.get_secret_value(), "the kubeconfig in memory (Prefect Secret block)"
    else:
        path = Path(site.kube.kubeconfig or os.environ.get("KUBECONFIG") or Path.home() / ".kube" / "config")
        where = f"kubeconfig {path}"
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError):
            return None
    try:
        loaded = yaml.safe_load(text)
    except yaml.YAMLError:
        return None
    return kubeconfig_warning(site.name, loaded, site.kube.context, where=where)


def transport_warnings(site: Site) -> list[str]:
    """One line per unprotected connection of ``site``: kubeconfig without TLS verification, http S3."""
    found = [kube_transport_warning(site), s3_endpoint_warning(site.name, site.s3.endpoint)]
    return [w for w in found if w]


def _warn_once(warning: str | None) -> None:
    if warning and warning not in _warned:
        _warned.add(warning)
        log.warning("%s", warning)


def cluster_for(site: Site) -> KubeCluster:
    """The site's Kubernetes API (the kubeconfig content of :attr:`Site.secrets` when given)."""
    secrets = site.secrets
    text = secrets.kubeconfig.get_secret_value() if secrets and secrets.kubeconfig else None
    _warn_once(kube_transport_warning(site))
    return KubeCluster.from_access(site.kube, site=site.name, kubeconfig_text=text)


def s3_credentials_for(site: Site) -> S3Credentials | None:
    """The site's S3 keys: from :attr:`Site.secrets` when given, else what ``site.s3`` names."""
    secrets = site.secrets
    if secrets and secrets.s3_access_key_id and secrets.s3_secret_access_key:
        token = secrets.s3_session_token.get_secret_value() if secrets.s3_session_token else None
        return S3Credentials(
            secrets.s3_access_key_id.get_secret_value(),
            secrets.s3_secret_access_key.get_secret_value(),
            token,
        )
    return S3Credentials.from_location(site.s3)


def store_for(site: Site, **options: Any) -> S3ObjectStore:
    """The site's object store."""
    options.setdefault("max_attempts", site.s3.max_attempts)
    _warn_once(s3_endpoint_warning(site.name, site.s3.endpoint))
    return S3ObjectStore(site.s3, site=site.name, credentials=s3_credentials_for(site), **options)


def rbd_for(site: Site, cluster: KubeCluster | None = None) -> RbdCli:
    """The site's ``rbd``: local with its ceph.conf, or through the Rook toolbox pod."""
    if site.ceph.mode == "local":
        names = (site.s3.access_key_id_env, site.s3.secret_access_key_env)
        return RbdCli.local(site.ceph, site=site.name, hide_env=[n for n in names if n])
    kube = cluster or cluster_for(site)
    runner = KubeExecRunner(kube.api_client, site.ceph.toolbox, site=site.name)
    return RbdCli.toolbox(site.ceph, runner, site=site.name)


def one_session(site: Site) -> str:
    """The site's OpenNebula session ``user:password``: from :attr:`Site.secrets` (a Prefect Secret
    block), else the file or environment variable ``site.opennebula`` names. Never logged; a
    ``ConfigError`` naming the site and the field (never the value) when it cannot be read."""
    access = site.opennebula
    field = f"sites[{site.name}].opennebula"
    if access is None:
        raise ConfigError(f"site {site.name} has no OpenNebula front-end", hint=f"set {field}")
    secrets = site.secrets
    if secrets is not None and secrets.opennebula_session is not None:
        text: str | None = secrets.opennebula_session.get_secret_value()
    elif access.credentials_file is not None:
        try:
            text = access.credentials_file.read_text(encoding="utf-8").splitlines()[0]
        except (OSError, UnicodeDecodeError, IndexError):
            raise ConfigError(
                f"site {site.name}: the OpenNebula credentials file {access.credentials_file} cannot be read",
                hint=f"write user:password on its first line, or fix {field}.credentials_file",
            ) from None
    elif access.credentials_env is not None:
        hide_from_commands(access.credentials_env)
        text = os.environ.get(access.credentials_env)
    else:
        raise ConfigError(
            f"site {site.name}: the OpenNebula session is in Prefect Secret block {access.credentials_secret},"
            " which only the flows (and the CLI given --config block:NAME) read",
            hint=f"give {field}.credentials_file or credentials_env to the CLI",
        )
    if not text or ":" not in text.strip():
        where = access.credentials_env or access.credentials_file or access.credentials_secret
        raise ConfigError(
            f"site {site.name}: no OpenNebula session user:password in {where}",
            hint=f"put user:password there, or fix {field}",
        )
    return text.strip()


def frontend_for(site: Site, *, timeout: float | None = None) -> PyoneFrontend:
    """The site's OpenNebula front-end over XML-RPC (its access's timeout unless ``timeout``)."""
    session = one_session(site)
    assert site.opennebula is not None
    seconds = timeout if timeout is not None else site.opennebula.timeout.total_seconds()
    return PyoneFrontend(
        site.name, site.opennebula.endpoint, session, timeout=seconds, verify_tls=site.opennebula.verify_tls
    )
