"""Kubernetes access: the ``ClusterApi`` protocol, its real adapter, and exec into a pod.

The real adapter drives the official ``kubernetes`` client's ``DynamicClient``, so custom
resources (VolumeReplication, Nexus, ...) are handled like built-ins. Errors become Standby errors
naming the object, the site (context) and the next action.
"""

from __future__ import annotations

import functools
import json
import time
import weakref
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any, Protocol

import yaml

from drkit.adapters.cachedir import private_dir, write_private
from drkit.adapters.runner import CommandResult, Redactor, check, tail
from drkit.domain.access import Access as Access
from drkit.domain.access import access_denied
from drkit.domain.errors import (
    CommandTimedOut,
    ConfigError,
    Conflict,
    NotFound,
    StandbyError,
    TransientError,
)
from drkit.domain.models import KindRef, KubeAccess, toolbox_target

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


# -------------------------------------------------------------------------------- error messages
# Shared with the fake (drkit.testing.kube) so both raise the same errors with the same words.


def kind_not_served(site: str, what: str, detail: str, *, hint: str = "") -> NotFound:
    """The apiserver does not serve the kind (its CRD is not installed)."""
    return NotFound(
        f"{what} on {site}: kind not served ({detail})",
        hint=hint or "install its CRD",
        context={"site": site, "object": what},
    )


def status_error(site: str, what: str, status: int, reason: str, *, not_found_hint: str = "") -> StandbyError:
    """The Standby error for an HTTP ``status`` the apiserver answered to ``what``.

    404 -> :class:`NotFound`; 409 -> :class:`Conflict`; 401/403 -> :class:`AccessDenied` (one line
    naming the verb, resource and site, and the RBAC rule to add, or that the token is expired or
    wrong; never retried); 400/415/422 -> :class:`StandbyError` (an invalid manifest); any other ->
    :class:`TransientError`.
    """
    ctx = {"site": site, "object": what}
    message = f"{what} on {site}: {status} {reason}"
    if status == 404:
        return NotFound(message, hint=not_found_hint, context=ctx)
    if status == 409:
        return Conflict(message, hint="re-read the object and retry", context=ctx)
    if status in (401, 403):
        return access_denied(site, what, status, reason)
    if status in (400, 415, 422):
        return StandbyError(message, hint="the manifest is invalid for this cluster", context=ctx)
    return TransientError(message, hint="the apiserver failed; the call is retried", context=ctx)


def apiserver_unreachable(site: str, what: str, cause: str) -> TransientError:
    """The apiserver did not answer (``cause``: the client's exception name)."""
    return TransientError(
        f"{what} on {site}: apiserver unreachable ({cause})",
        hint=f"check site {site}'s apiserver; the call is retried",
        context={"site": site, "object": what},
    )


def untrusted_certificate(site: str, what: str, detail: str) -> ConfigError:
    """The apiserver's TLS certificate failed verification: a configuration mistake, not retried."""
    return ConfigError(
        f"{what} on {site}: the apiserver's TLS certificate is not trusted ({detail})",
        hint=f"fix certificate-authority(-data) of site {site}'s kubeconfig context, or its server URL",
        context={"site": site, "object": what},
    )


def api_call(site: str, what: str, fn: Callable[[], Any], *, not_found_hint: str = "") -> Any:
    """Run one Kubernetes API call, turning the client's errors into Standby's (naming site and object).

    Statuses map as :func:`status_error` says; a timeout or an unreachable apiserver ->
    :class:`TransientError` (retried by the flows); an untrusted TLS certificate -> ``ConfigError``.
    A refused exec WebSocket handshake (reported by the client as status 0) counts as its HTTP status.
    """
    from kubernetes.client.exceptions import ApiException
    from kubernetes.dynamic.exceptions import DynamicApiError, ResourceNotFoundError
    from urllib3.exceptions import HTTPError as Urllib3Error

    try:
        return fn()
    except ResourceNotFoundError as exc:
        raise kind_not_served(site, what, str(exc), hint=not_found_hint) from None
    except (ApiException, DynamicApiError) as exc:
        status = int(getattr(exc, "status", 0) or 0)
        if status == 0:
            status = _handshake_status(exc)
        raise status_error(site, what, status, _reason(exc), not_found_hint=not_found_hint) from None
    except (Urllib3Error, OSError) as exc:
        tls = _tls_problem(exc)
        if tls:
            raise untrusted_certificate(site, what, tls) from None
        raise apiserver_unreachable(site, what, type(exc).__name__) from None


def _tls_problem(exc: BaseException) -> str:
    """The TLS verification failure behind a connection error (urllib3 nests it in ``reason``), or ''."""
    import ssl

    seen: object = exc
    for _ in range(6):
        if isinstance(seen, ssl.SSLCertVerificationError):
            return str(seen.verify_message or "certificate verify failed")
        if isinstance(seen, ssl.SSLError):
            return str(seen.reason or "TLS error")
        if not isinstance(seen, BaseException):
            return ""
        nested = getattr(seen, "reason", None)
        if not isinstance(nested, BaseException) and seen.args and isinstance(seen.args[0], BaseException):
            nested = seen.args[0]
        seen = nested if isinstance(nested, BaseException) else (seen.__cause__ or seen.__context__)
    return ""


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
                    "in-cluster config" if access.in_cluster else f"kubeconfig {access.kubeconfig or '(default)'}"
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
            self._dyn = self._call("discovery", lambda: self._dynamic.DynamicClient(
                self.api_client, cache_file=str(self._cache_file), discoverer=_private_discoverer()))  # fmt: skip
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

        attrs = client.V1ResourceAttributes(verb=access.verb, group=access.group, resource=access.resource,
                                            namespace=access.namespace or None, name=access.name or None)  # fmt: skip
        body = client.V1SelfSubjectAccessReview(spec=client.V1SelfSubjectAccessReviewSpec(resource_attributes=attrs))
        api = client.AuthorizationV1Api(self.api_client)
        answer = self._call(f"access review ({access})", lambda: api.create_self_subject_access_review(
            body, _request_timeout=self.timeout))  # fmt: skip
        status = answer.status
        return bool(status and status.allowed), str((status and status.reason) or "")


def _handshake_status(exc: Any) -> int:
    """The HTTP status of a refused exec WebSocket handshake (the client reports it as status 0)."""
    import re

    m = re.search(r"Handshake status (\d{3})", str(getattr(exc, "reason", "") or ""))
    return int(m.group(1)) if m else 0


def _reason(exc: Any) -> str:
    import json

    body = getattr(exc, "body", None)
    try:
        data = json.loads(body) if body else {}
        return str(data.get("message") or data.get("reason") or getattr(exc, "reason", ""))
    except (TypeError, ValueError):
        return str(getattr(exc, "reason", "") or exc)


class KubeExecRunner:
    """A :class:`~drkit.adapters.runner.Runner` that execs into Rook's toolbox pod.

    This is how Rook users run ``rbd``: ``kubectl exec -n rook-ceph deploy/rook-ceph-tools -- rbd ...``.
    ``toolbox`` is ``namespace/deployment`` (the first running pod of the Deployment: its name is
    random, so RBAC must allow listing pods and exec on any pod of the namespace) or
    ``namespace/pod/name`` (that pod only, e.g. a toolbox StatefulSet's ``standby-tools-0``: RBAC
    names it in ``resourceNames``, and exec is granted on nothing else).
    """

    def __init__(
        self,
        api_client: Any,
        deployment: str,
        *,
        site: str,
        redact: Redactor | None = None,
        timeout: float = 30.0,
    ) -> None:
        namespace, kind, name = toolbox_target(deployment)
        self.api_client = api_client
        self.namespace, self.deployment = namespace, name
        self.named_pod = name if kind == "pod" else None
        self.site = site
        self.redact = redact or Redactor()
        self.timeout = timeout  # per API request (the pod lookup and opening the exec stream)
        self._cached_pod: str | None = None

    def _pod(self) -> str:
        """The first running pod of the deployment (remembered until a command fails)."""
        if self._cached_pod is not None:
            return self._cached_pod
        from kubernetes import client

        apps, core = client.AppsV1Api(self.api_client), client.CoreV1Api(self.api_client)
        hint = "deploy Rook's toolbox or use ceph mode 'local'"
        named = self.named_pod
        if named is not None:
            where = f"toolbox pod {self.namespace}/{named}"
            pod = api_call(self.site, where, lambda: core.read_namespaced_pod(
                named, self.namespace, _request_timeout=self.timeout), not_found_hint=hint)  # fmt: skip
            if not (pod.status and pod.status.phase == "Running"):
                raise TransientError(
                    f"{where} on {self.site} is not running ({pod.status.phase if pod.status else 'no status'})",
                    hint="wait for the toolbox pod; the call is retried",
                    context={"site": self.site},
                )
            self._cached_pod = named
            return named
        where = f"deployment {self.namespace}/{self.deployment}"
        dep = api_call(self.site, where, lambda: apps.read_namespaced_deployment(
            self.deployment, self.namespace, _request_timeout=self.timeout), not_found_hint=hint)  # fmt: skip
        labels = dep.spec.selector.match_labels or {}
        selector = ",".join(f"{k}={v}" for k, v in sorted(labels.items()))
        pods = api_call(self.site, f"pods of {where}", lambda: core.list_namespaced_pod(
            self.namespace, label_selector=selector, _request_timeout=self.timeout)).items  # fmt: skip
        running = sorted(
            str(p.metadata.name) for p in pods if p.metadata and p.status and p.status.phase == "Running"
        )
        if not running:
            raise TransientError(
                f"{where} on {self.site} has no running pod",
                hint="wait for the toolbox pod; the call is retried",
                context={"site": self.site},
            )
        self._cached_pod = running[0]
        return running[0]

    def run(
        self,
        argv: Sequence[str],
        *,
        description: str,
        accept: Iterable[int] = (0,),
        timeout: float = 30.0,
        stdin: bytes | None = None,
    ) -> CommandResult:
        """Run ``argv`` in the toolbox pod; see :class:`~drkit.adapters.runner.Runner`."""
        from kubernetes import client
        from kubernetes.stream import stream
        from websocket import WebSocketException

        pod = self._pod()
        core = client.CoreV1Api(self.api_client)
        started = time.monotonic()
        try:
            resp = api_call(self.site, f"exec into {self.namespace}/{pod}", lambda: stream(
                core.connect_get_namespaced_pod_exec, pod, self.namespace, command=list(argv),
                stderr=True, stdin=stdin is not None, stdout=True, tty=False, _preload_content=False,
                _request_timeout=self.timeout,
            ))  # fmt: skip
        except StandbyError:
            self._cached_pod = None  # the pod may have gone: look it up again next time
            raise
        out: list[str] = []
        err: list[str] = []
        try:
            if stdin is not None:
                resp.write_stdin(stdin.decode())
            while resp.is_open():
                if time.monotonic() - started > timeout:
                    raise CommandTimedOut(
                        f"{description}: timed out after {timeout:.0f}s in {self.namespace}/{pod} on {self.site}",
                        argv=[self.redact(a) for a in argv], exit_code=None,
                        output_tail=tail(self.redact("".join(err))),
                    )  # fmt: skip
                resp.update(timeout=0.5)
                out.append(resp.read_stdout() if resp.peek_stdout() else "")
                err.append(resp.read_stderr() if resp.peek_stderr() else "")
            code = resp.returncode
        except (WebSocketException, OSError) as exc:
            self._cached_pod = None
            raise TransientError(
                f"{description}: exec stream to {self.namespace}/{pod} on {self.site} broke ({type(exc).__name__})",
                hint=f"check site {self.site}'s apiserver and the toolbox pod; the call is retried",
                context={"site": self.site, "pod": pod},
            ) from None
        finally:
            resp.close()
        result = CommandResult(
            argv=tuple(self.redact(a) for a in argv),
            exit_code=int(code if code is not None else -1),
            stdout=self.redact("".join(out)),
            stderr=self.redact("".join(err)),
            seconds=time.monotonic() - started,
        )
        check(result, description=description, accept=accept, context={"site": self.site, "pod": pod})
        return result
