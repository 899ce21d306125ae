"""Kubeconfig files for the fake apiservers (plain HTTP, a bearer token per context)."""

from __future__ import annotations

import base64
from pathlib import Path

import yaml


def write_kubeconfig(
    path: str | Path,
    clusters: dict[str, str],
    default_context: str,
    tokens: dict[str, str] | None = None,
    user_suffix: str = "user",
    ca_file: str | Path | None = None,
) -> Path:
    """Write a kubeconfig with one cluster, user and context per ``{context_name: server_url}``;
    ``tokens`` gives each context's bearer token (a dummy one where absent: servers without
    authentication accept any); ``ca_file`` is the servers' CA (``certificate-authority-data``)."""
    tokens = tokens or {}
    cluster_extra = {}
    if ca_file is not None:
        cluster_extra["certificate-authority-data"] = base64.b64encode(Path(ca_file).read_bytes()).decode()
    if default_context not in clusters:
        raise ValueError(f"default context {default_context!r} is not one of {sorted(clusters)}")
    doc = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": n, "cluster": {"server": url, **cluster_extra}} for n, url in clusters.items()],
        "users": [
            {"name": f"{n}-{user_suffix}", "user": {"token": tokens.get(n, "fake-token")}} for n in clusters
        ],
        "contexts": [
            {"name": n, "context": {"cluster": n, "user": f"{n}-{user_suffix}", "namespace": "default"}}
            for n in clusters
        ],
        "current-context": default_context,
        "preferences": {},
    }
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(yaml.safe_dump(doc, sort_keys=False))
    out.chmod(0o600)
    return out
