"""Kubeconfig files for the fake apiservers (plain HTTP, dummy token)."""

from __future__ import annotations

from pathlib import Path

import yaml


def write_kubeconfig(path: str | Path, clusters: dict[str, str], default_context: str) -> Path:
    """Write a kubeconfig with one cluster, user and context per ``{context_name: server_url}``."""
    if default_context not in clusters:
        raise ValueError(f"default context {default_context!r} is not one of {sorted(clusters)}")
    doc = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": n, "cluster": {"server": url}} for n, url in clusters.items()],
        "users": [{"name": f"{n}-user", "user": {"token": "fake-token"}} for n in clusters],
        "contexts": [
            {"name": n, "context": {"cluster": n, "user": f"{n}-user", "namespace": "default"}}
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
