"""Warnings for connections that are not protected: a kubeconfig that skips TLS verification and a
plain ``http`` S3 endpoint, outside the lab.

The lab runs on loopback (``127.0.0.0/8``, ``::1``, ``localhost``): nothing there crosses a network,
so it gets no warning. Anywhere else, ``insecure-skip-tls-verify`` hands the apiserver's token to
whoever sits in the path, and an ``http`` endpoint carries every backup, placement record and
journal in clear (with a key, their contents are sealed, but not their names and sizes). These are
warnings, not errors: a user may have a reason; each one names the site and the fix.
"""

from __future__ import annotations

import ipaddress
from typing import Any
from urllib.parse import urlsplit

LOOPBACK_NAMES = frozenset({"localhost"})


def is_loopback(host: str | None) -> bool:
    """Whether ``host`` is this machine: ``localhost``, an address in ``127.0.0.0/8`` or ``::1``."""
    if not host:
        return False
    name = host.strip("[]").rstrip(".").lower()
    if name in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


def s3_endpoint_warning(site: str, endpoint: str | None) -> str | None:
    """One line when ``endpoint`` is plain ``http`` to anything but loopback, else ``None``."""
    if not endpoint:
        return None
    parts = urlsplit(endpoint)
    if parts.scheme.lower() != "http" or is_loopback(parts.hostname):
        return None
    return (
        f"warning: site {site}: the S3 endpoint {endpoint} is plain http, so backups, placement records"
        f" and journals cross the network unencrypted (fix: an https endpoint in sites[{site}].s3.endpoint)"
    )


def kubeconfig_warning(site: str, kubeconfig: Any, context: str | None, *, where: str) -> str | None:
    """One line when the cluster of ``context`` (default: the current one) in ``kubeconfig`` (a parsed
    kubeconfig; ``where`` names it) sets ``insecure-skip-tls-verify``, else ``None``."""
    if not isinstance(kubeconfig, dict):
        return None
    name = context or kubeconfig.get("current-context")
    contexts = {
        c.get("name"): c.get("context") or {} for c in kubeconfig.get("contexts") or [] if isinstance(c, dict)
    }
    cluster_name = (contexts.get(name) or {}).get("cluster")
    clusters = {
        c.get("name"): c.get("cluster") or {} for c in kubeconfig.get("clusters") or [] if isinstance(c, dict)
    }
    cluster = clusters.get(cluster_name) or {}
    if not isinstance(cluster, dict) or cluster.get("insecure-skip-tls-verify") is not True:
        return None
    if is_loopback(urlsplit(str(cluster.get("server") or "")).hostname):
        return None
    return (
        f"warning: site {site}: {where}, context {name}, cluster {cluster_name}, sets insecure-skip-tls-verify:"
        " the apiserver's certificate is not checked, so its token goes to whoever answers (fix: remove it"
        " and give the cluster's CA as certificate-authority or certificate-authority-data)"
    )
