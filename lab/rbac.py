"""The lab under the shipped RBAC: an admin credential for the lab itself, and Standby's own.

Each site's apiserver runs with authentication and RBAC on. The lab brings itself up and seeds the
sites with the admin token (``kube/admin-token``; the ``kubeconfig`` file). It then applies the
manifests shipped in ``deployments/kubernetes/<site>/`` exactly as an operator would, mints a token for
the ``standby/standby`` ServiceAccount with the TokenRequest API (``kubectl create token``), and writes
``kubeconfig-standby``, which the lab's ``standby.yaml`` uses. So every lab test runs Standby with the
shipped permissions, and each apiserver's audit log (``kube/<site>/audit.jsonl``) records what it did.
"""

from __future__ import annotations

import secrets
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parent.parent
MANIFESTS = ROOT / "deployments" / "kubernetes"
SA_NAMESPACE = "standby"
SA_NAME = "standby"
TOKEN_SECONDS = 7 * 24 * 3600  # a lab lives a few hours; a real worker would mint short-lived tokens
ADMIN_KUBECONFIG = "kubeconfig"
STANDBY_KUBECONFIG = "kubeconfig-standby"


def admin_token_file(root: Path) -> Path:
    """The lab's admin token (created once, mode 600): what the apiservers accept as the superuser."""
    path = root / "kube" / "admin-token"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(f"lab-admin-{secrets.token_urlsafe(24)}\n")
        path.chmod(0o600)
    return path


def admin_token(root: Path) -> str:
    """The admin token's value."""
    return admin_token_file(root).read_text().strip()


def audit_log(root: Path, site: str) -> Path:
    """The site apiserver's audit log (JSON lines)."""
    return root / "kube" / site / "audit.jsonl"


def site_manifests(site: str) -> list[dict[str, Any]]:
    """The shipped objects for ``site``, in file order (``deployments/kubernetes/<site>/*.yaml``)."""
    objects: list[dict[str, Any]] = []
    for path in sorted((MANIFESTS / site).glob("*.yaml")):
        objects += [d for d in yaml.safe_load_all(path.read_text()) if d]
    return objects


def apply(client: Any, objects: list[dict[str, Any]]) -> None:
    """Create each object, or replace it when it exists (a re-run applies edited manifests)."""
    from kubernetes.dynamic.exceptions import NotFoundError

    for obj in objects:
        res = client.resources.get(api_version=obj["apiVersion"], kind=obj["kind"])
        meta = obj["metadata"]
        try:
            live = res.get(name=meta["name"], namespace=meta.get("namespace"))
        except NotFoundError:
            res.create(body=obj, namespace=meta.get("namespace"))
            continue
        body = {**obj, "metadata": {**meta, "resourceVersion": live.metadata.resourceVersion}}
        res.replace(body=body, namespace=meta.get("namespace"))


def mint_token(client: Any) -> str:
    """A token for ``standby/standby`` (``POST .../serviceaccounts/standby/token``)."""
    from kubernetes import client as k8s

    core = k8s.CoreV1Api(client.client)
    request = k8s.AuthenticationV1TokenRequest(
        spec=k8s.V1TokenRequestSpec(audiences=[], expiration_seconds=TOKEN_SECONDS)
    )
    answer = core.create_namespaced_service_account_token(SA_NAME, SA_NAMESPACE, request)
    if answer.status is None:
        raise RuntimeError(f"the apiserver minted no token for {SA_NAMESPACE}/{SA_NAME}")
    return str(answer.status.token)


def tls_dir(root: Path) -> Path:
    """Where the apiservers' shared self-signed certificate lives (``kube/tls.crt``, ``kube/tls.key``)."""
    from lab.kubeapi.tls import ensure_certificate

    folder = root / "kube"
    ensure_certificate(folder)
    return folder


def ca_file(root: Path) -> Path:
    """The apiservers' CA certificate (their own self-signed certificate)."""
    return tls_dir(root) / "tls.crt"


def ca_context(root: Path) -> Any:
    """An SSL context trusting the lab's apiservers, for plain HTTPS calls (httpx ``verify=``)."""
    import ssl

    return ssl.create_default_context(cafile=str(ca_file(root)))
