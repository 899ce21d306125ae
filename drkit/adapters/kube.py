"""Kubernetes access: the ``ClusterApi`` protocol and its real adapter, :class:`KubeCluster`.

The real adapter drives the official ``kubernetes`` client's ``DynamicClient``, so custom
resources (VolumeReplication, Nexus, ...) are handled like built-ins. Errors become Standby errors
naming the object, the site (context) and the next action (:mod:`drkit.adapters.kube_errors`);
exec into a pod is :mod:`drkit.adapters.kube_exec`.
"""

from __future__ import annotations

import functools
import json
import weakref
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any, Protocol

import yaml

from drkit.adapters.cachedir import private_dir, write_private
from drkit.adapters.kube_errors import api_call
from drkit.domain.access import Access as Access
from drkit.domain.errors import ConfigError, NotFound
from drkit.domain.models import KindRef, KubeAccess

Obj = dict[str, Any]


@dataclass(frozen=True)
class KindInfo:
    """What discovery says of a kind."""

    kind: KindRef
    plural: str
    namespaced: bool


class ClusterApi(Protocol):
    """The Kubernetes operations Standby needs."""

    site: str

    def discover(self, kind: KindRef) -> KindInfo:
        """Whether and how the cluster serves ``kind``; ``NotFound`` when it does not."""
        ...

    def list(
        self,
        kind: KindRef,
        namespace: str | None = None,
        *,
        label_selector: str | None = None,
        limit: int = 500,
    ) -> list[Obj]:
        """Every object of ``kind`` (in ``namespace``), reading LIST pages of ``limit``."""
        ...

    def get(self, kind: KindRef, name: str, namespace: str | None = None) -> Obj:
        """One object; ``NotFound`` when absent."""
        ...

    def create(self, obj: Obj, *, dry_run: bool = False) -> Obj:
        """Create ``obj``; ``Conflict`` when it exists."""
        ...

    def replace(self, obj: Obj, *, dry_run: bool = False) -> Obj:
        """Replace ``obj`` (its resourceVersion is taken from the live object when absent)."""
        ...

    def patch(self, kind: KindRef, name: str, namespace: str | None, patch: Obj) -> Obj:
        """JSON merge-patch an object."""
        ...

    def delete(self, kind: KindRef, name: str, namespace: str | None = None) -> bool:
        """Delete an object; False when it was already absent."""
        ...

    def can_i(self, access: Access) -> tuple[bool, str]:
        """Whether Standby's own credential may do ``access`` (a ``SelfSubjectAccessReview``, which
        every authenticated user may create), and the authorizer's reason; a rejected token raises."""
        ...


def kind_of(obj: Obj) -> KindRef:
    """The :class:`KindRef` of a manifest."""
    group, _, version = obj["apiVersion"].rpartition("/")
    return KindRef(group=group, version=version, kind=obj["kind"])


@functools.cache
def _private_discoverer() -> type:
    """The client's lazy discoverer, writing its cache with ``O_NOFOLLOW`` and mode 0600."""
    from kubernetes.dynamic.discovery import CacheEncoder, LazyDiscoverer

    class PrivateDiscoverer(LazyDiscoverer):
        def _write_cache(self) -> None:
            path = Path(self._Discoverer__cache_file)  # type: ignore[attr-defined]  # the client's, name-mangled
            try:
                write_private(path, json.dumps(self._cache, cls=CacheEncoder).encode())
            except (OSError, TypeError, ValueError):
                pass  # as the client's own: a cache that cannot be written is not an error

    return PrivateDiscoverer


class KubeCluster:
    """``ClusterApi`` over the official client (kubeconfig context or in-cluster)."""

    def __init__(
        self, api_client: Any, *, site: str, cache_dir: Path | None = None, timeout: float = 30.0
    ) -> None:
        from kubernetes import dynamic

        self.site = site
        self.api_client = api_client
        self.timeout = timeout  # per request: a hung apiserver becomes a TransientError, not a hang
        # A private folder (0700, this user's, no symlink): see drkit.adapters.cachedir. The file is
        # this client's own: removed first, so the discovery client never reads one it did not write.
        cache = private_dir(cache_dir) / f"discovery-{site}-{id(self)}.json"
        cache.unlink(missing_ok=True)
        self._cache_file = cache
        weakref.finalize(self, cache.unlink, missing_ok=True)  # one file per client: never left behind
        self._dyn: Any = None
        self._dynamic = dynamic
        self.requests = 0

    @classmethod
    def from_access(cls, access: KubeAccess, *, site: str, kubeconfig_text: str | None = None) -> KubeCluster:
        """Build from a site's :class:`KubeAccess`; a bad kubeconfig is a ``ConfigError``.

        ``kubeconfig_text`` is kubeconfig content held in memory (from a Prefect Secret block); it
        is used, with ``access.context``, instead of any kubeconfig file.
        """
        from kubernetes import config
        from kubernetes.config.config_exception import ConfigException

        try:
            if kubeconfig_text is not None:
                loaded = yaml.safe_load(kubeconfig_text)
                if not isinstance(loaded, dict):
                    raise ValueError("the kubeconfig content is not a YAML mapping")
                client = config.new_client_from_config_dict(  # type: ignore[no-untyped-call]
                    loaded, context=access.context
                )
            elif access.in_cluster:
                config.load_incluster_config()  # type: ignore[no-untyped-call]
                from kubernetes.client import ApiClient

                client = ApiClient()
            else:
                client = config.new_client_from_config(  # type: ignore[no-untyped-call]
                    config_file=str(access.kubeconfig) if access.kubeconfig else None, context=access.context
                )
        except (ConfigException, FileNotFoundError, OSError, TypeError, ValueError, yaml.YAMLError) as exc:
            detail = str(exc)
            if kubeconfig_text is not None:
                where = "the kubeconfig content given in memory (Prefect Secret block)"
                if not isinstance(exc, ConfigException):  # a parser may quote the content: never its tokens
                    detail = type(exc).__name__
            else:
                where = (
                    "in-cluster config"
                    if access.in_cluster
                    else f"kubeconfig {access.kubeconfig or '(default)'}"
                )
            raise ConfigError(
                f"site {site}: cannot load {where}, context {access.context or '(current)'}: {detail}",
                hint=f"fix sites[{site}].kube (kubeconfig path and context name)",
                context={"site": site},
            ) from None
        return cls(client, site=site)

    # ----------------------------------------------------------------------------------- plumbing
    @property
    def dyn(self) -> Any:
        if self._dyn is None:
            self._dyn = self._call(
                "discovery",
                lambda: self._dynamic.DynamicClient(
                    self.api_client, cache_file=str(self._cache_file), discoverer=_private_discoverer()
                ),
            )
        return self._dyn

    def _call(self, what: str, fn: Callable[[], Any]) -> Any:
        self.requests += 1
        return api_call(self.site, what, fn)

    def _resource(self, kind: KindRef) -> Any:
        return self._call(
            f"kind {kind}", lambda: self.dyn.resources.get(api_version=kind.api_version, kind=kind.kind)
        )

    # ----------------------------------------------------------------------------------- protocol
    def discover(self, kind: KindRef) -> KindInfo:
        """See :class:`ClusterApi`."""
        res = self._resource(kind)
        return KindInfo(kind=kind, plural=res.name, namespaced=bool(res.namespaced))

    def list(
        self,
        kind: KindRef,
        namespace: str | None = None,
        *,
        label_selector: str | None = None,
        limit: int = 500,
    ) -> list[Obj]:
        """See :class:`ClusterApi`. Follows ``continue`` tokens; fills in apiVersion and kind."""
        res = self._resource(kind)
        out: list[Obj] = []
        token: str | None = None
        while True:
            kwargs: dict[str, Any] = {"limit": limit, "_request_timeout": self.timeout}
            if namespace and res.namespaced:
                kwargs["namespace"] = namespace
            if label_selector:
                kwargs["label_selector"] = label_selector
            if token:
                kwargs["_continue"] = token
            page = self._call(f"list {kind} in {namespace or 'all namespaces'}", partial(res.get, **kwargs))
            data = page.to_dict()
            for item in data.get("items", []):
                item.setdefault("apiVersion", kind.api_version)
                item.setdefault("kind", kind.kind)
                out.append(item)
            token = (data.get("metadata") or {}).get("continue")
            if not token:
                return out

    def get(self, kind: KindRef, name: str, namespace: str | None = None) -> Obj:
        """See :class:`ClusterApi`."""
        res = self._resource(kind)
        where = f"{kind.kind} {namespace + '/' if namespace else ''}{name}"
        obj: Obj = self._call(
            where, lambda: res.get(name=name, namespace=namespace, _request_timeout=self.timeout)
        ).to_dict()
        return obj

    def create(self, obj: Obj, *, dry_run: bool = False) -> Obj:
        """See :class:`ClusterApi`."""
        kind = kind_of(obj)
        res = self._resource(kind)
        meta = obj["metadata"]
        kwargs: dict[str, Any] = {"dry_run": "All"} if dry_run else {}
        where = f"create {kind.kind} {meta.get('namespace', '') + '/' if meta.get('namespace') else ''}{meta['name']}"
        created: Obj = self._call(
            where,
            lambda: res.create(
                body=obj, namespace=meta.get("namespace"), _request_timeout=self.timeout, **kwargs
            ),
        ).to_dict()
        return created

    def replace(self, obj: Obj, *, dry_run: bool = False) -> Obj:
        """See :class:`ClusterApi`."""
        kind = kind_of(obj)
        meta = obj["metadata"]
        body = dict(obj)
        if not meta.get("resourceVersion"):
            live = self.get(kind, meta["name"], meta.get("namespace"))
            body["metadata"] = {**meta, "resourceVersion": live["metadata"]["resourceVersion"]}
        res = self._resource(kind)
        kwargs: dict[str, Any] = {"dry_run": "All"} if dry_run else {}
        where = f"replace {kind.kind} {meta['name']}"
        replaced: Obj = self._call(
            where,
            lambda: res.replace(
                body=body, namespace=meta.get("namespace"), _request_timeout=self.timeout, **kwargs
            ),
        ).to_dict()
        return replaced

    def patch(self, kind: KindRef, name: str, namespace: str | None, patch: Obj) -> Obj:
        """See :class:`ClusterApi`."""
        res = self._resource(kind)
        where = f"patch {kind.kind} {name}"
        patched: Obj = self._call(
            where,
            lambda: res.patch(
                name=name,
                namespace=namespace,
                body=patch,
                content_type="application/merge-patch+json",
                _request_timeout=self.timeout,
            ),
        ).to_dict()
        return patched

    def delete(self, kind: KindRef, name: str, namespace: str | None = None) -> bool:
        """See :class:`ClusterApi`."""
        res = self._resource(kind)
        try:
            self._call(
                f"delete {kind.kind} {name}",
                lambda: res.delete(name=name, namespace=namespace, _request_timeout=self.timeout),
            )
        except NotFound:
            return False
        return True

    def can_i(self, access: Access) -> tuple[bool, str]:
        """See :class:`ClusterApi`: ``POST /apis/authorization.k8s.io/v1/selfsubjectaccessreviews``."""
        from kubernetes import client

        attrs = client.V1ResourceAttributes(
            verb=access.verb,
            group=access.group,
            resource=access.resource,
            namespace=access.namespace or None,
            name=access.name or None,
        )
        body = client.V1SelfSubjectAccessReview(
            spec=client.V1SelfSubjectAccessReviewSpec(resource_attributes=attrs)
        )
        api = client.AuthorizationV1Api(self.api_client)
        answer = self._call(
            f"access review ({access})",
            lambda: api.create_self_subject_access_review(body, _request_timeout=self.timeout),
        )
        status = answer.status
        return bool(status and status.allowed), str((status and status.reason) or "")
