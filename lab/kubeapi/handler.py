"""HTTP request handling: routing, verbs, errors, admin endpoints."""

from __future__ import annotations

import json
import time
import traceback
from http.server import BaseHTTPRequestHandler
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, urlsplit

import yaml

from lab.kubeapi import admission, discovery, watch
from lab.kubeapi import exec as kexec
from lab.kubeapi.auth import ADMIN_USER, expiration_seconds, token_request_response
from lab.kubeapi.errors import ApiError, bad_request
from lab.kubeapi.faults import Fault
from lab.kubeapi.patch import PATCH_TYPES
from lab.kubeapi.rbac import (
    ANONYMOUS,
    Attributes,
    Decision,
    User,
    authorize,
    forbidden_details,
    forbidden_message,
)
from lab.kubeapi.resources import REVIEWS, ResourceType
from lab.kubeapi.verbs import Request, dispatch

if TYPE_CHECKING:
    from lab.kubeapi.server import KubeApiServer

OPENAPI_V2_TYPE = "application/com.github.proto-openapi.spec.v2.v1.0+protobuf"


class Handler(BaseHTTPRequestHandler):
    """One connection; HTTP/1.1 keep-alive. The body is always read before answering."""

    protocol_version = "HTTP/1.1"
    server_version = "standby-fake-kube-apiserver"

    @property
    def api(self) -> KubeApiServer:
        """The owning server."""
        return self.server.api  # type: ignore[attr-defined]

    def setup(self) -> None:
        """Finish a TLS handshake in this connection's thread (see ``KubeApiServer.tls``)."""
        handshake = getattr(self.request, "do_handshake", None)
        if handshake is not None:
            self.request.settimeout(30)
            handshake()
            self.request.settimeout(None)
        super().setup()

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet by default; set ``KubeApiServer.verbose`` to log requests to stderr."""
        if self.api.verbose:
            super().log_message(format, *args)

    def do_GET(self) -> None:
        """GET."""
        self._handle()

    do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = do_OPTIONS = do_GET

    # -- output ---------------------------------------------------------------------------------------
    def send_json(self, code: int, body: Any, content_type: str = "application/json") -> None:
        """Send a complete JSON response."""
        data = json.dumps(body, separators=(",", ":")).encode() if body is not None else b""
        self.send_response(code)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        self.send_header("Cache-Control", "no-cache, private")
        self.end_headers()
        self._code = code
        self._record()  # before the body: a client that has its answer finds the request counted
        if self.command != "HEAD":
            try:
                self.wfile.write(data)
            except (
                BrokenPipeError,
                ConnectionResetError,
            ):  # the client left: as a real apiserver, say nothing
                self.close_connection = True

    def send_error_status(self, err: ApiError) -> None:
        """Send a Status error."""
        self.send_json(err.code, err.status())

    # -- input ----------------------------------------------------------------------------------------
    def _read_body(self) -> bytes:
        length = int(self.headers.get("Content-Length") or 0)
        if length:
            return self.rfile.read(length)
        if "chunked" in (self.headers.get("Transfer-Encoding") or "").lower():
            chunks = []
            while True:
                size = int(self.rfile.readline().strip().split(b";")[0] or b"0", 16)
                if size == 0:
                    self.rfile.readline()
                    break
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
            return b"".join(chunks)
        return b""

    def _decode(self, raw: bytes, content_type: str) -> Any:
        if not raw:
            return None
        if "protobuf" in content_type:
            raise ApiError(
                415,
                "the body of the request was in an unknown format - accepted media types "
                "include: application/json, application/yaml",
                reason="UnsupportedMediaType",
            )
        try:
            if "yaml" in content_type:
                return yaml.safe_load(raw)
            return json.loads(raw)
        except (ValueError, yaml.YAMLError) as exc:
            raise bad_request(f"the body of the request could not be decoded: {exc}") from None

    # -- main -----------------------------------------------------------------------------------------
    def _handle(self) -> None:
        self._code = 0
        raw = self._read_body()
        url = urlsplit(self.path)
        path = url.path.rstrip("/") or "/"
        query_lists = parse_qs(url.query, keep_blank_values=True)
        query = {k: v[-1] for k, v in query_lists.items()}
        self._verb, self._resource = "unknown", ""
        self._user: User | None = None
        self._attrs = Attributes(verb=self.command.lower(), path=path)
        self._decision: Decision | None = None
        self._recorded = path.startswith("/_fake/")  # the fake's own admin calls are not counted
        try:
            if path.startswith("/_fake/"):
                self._admin(path, raw)
                return
            try:
                req = self._route(path, query, query_lists, raw)
            except ApiError:
                self._authenticate()  # an unauthenticated client gets its 401 first
                raise
            self._verb = req.verb if req else "discovery"
            self._resource = req.rt.plural + (f"/{req.sub}" if req.sub else "") if req else ""
            self._attrs = request_attributes(req, self.command, path)
            self._user = self._authenticate()
            self._authorize(self._user, self._attrs)
            fault = self.api.faults.take(self.command, path, self._verb)
            if fault is not None:
                if fault.delay_seconds:
                    time.sleep(fault.delay_seconds)
                if fault.status:
                    raise ApiError(fault.status, fault.message)
            if req is None:
                self._discovery(path)
            elif req.verb == "exec":
                self._code = kexec.serve(self, req, self.api.exec_handler)
            elif req.verb == "watch":
                self._code = 200
                watch.serve(self, req)
            elif req.sub == "token":
                self.send_json(201, self._token_request(req))
            elif (req.rt.group, req.rt.plural) in REVIEWS:
                self.send_json(201, self._access_review(req, self._user))
            else:
                self._admit(req, self._user)
                code, body = dispatch(self.api, req)
                self.send_json(code, body)
        except ApiError as err:
            self.send_error_status(err)
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True
        except Exception as exc:
            if self.api.verbose:
                traceback.print_exc()
            self.send_error_status(ApiError(500, f"internal error: {exc!r}"))
        finally:
            self._record()  # exec, watch and a dropped connection: once their outcome is known

    def _record(self) -> None:
        """Count the request and audit it, once."""
        if self._recorded:
            return
        self._recorded = True
        self.api.stats.record(self._verb, self._resource, self._code)
        if self.api.tokens.enabled:
            self.api.audit.record(self._user or ANONYMOUS, self._attrs, self._code, self._decision)

    # -- authentication and authorization --------------------------------------------------------------
    def _authenticate(self) -> User:
        """The request's user (the superuser while authentication is off); raises the 401."""
        tokens = self.api.tokens
        if not tokens.enabled:
            return ADMIN_USER

        def sa_uid(namespace: str, name: str) -> str | None:
            obj = self.api.store.try_get("serviceaccounts", namespace, name)
            return obj["metadata"].get("uid") if obj else None

        return tokens.authenticate(self.headers.get("Authorization"), sa_uid)

    def _authorize(self, user: User, attrs: Attributes) -> None:
        """RBAC (the decision is kept for the audit log); raises the 403 with the real Status body."""
        if not self.api.tokens.enabled:
            return
        decision = self._decision = authorize(self.api.rbac, user, attrs)
        if not decision.allowed:
            raise ApiError(
                403,
                forbidden_message(user, attrs, decision.errors),
                reason="Forbidden",
                details=forbidden_details(attrs) if attrs.is_resource else None,
            )

    def _admit(self, req: Request, user: User) -> None:
        """Validating admission (see :mod:`lab.kubeapi.admission`): refuse a policy the lab cannot
        enforce, and run the bound policies on every create, update, patch and delete."""
        operation = {"create": "CREATE", "update": "UPDATE", "patch": "UPDATE", "delete": "DELETE"}.get(
            req.verb
        )
        if operation is None or req.sub:
            return
        if req.rt.group == admission.GROUP and req.verb in ("create", "update"):
            admission.check_stored(req.rt.kind, req.body)
        store = self.api.store
        bindings = store.list(f"{admission.GROUP}/v1/ValidatingAdmissionPolicyBinding")
        if not bindings:
            return
        policies = store.list(f"{admission.GROUP}/v1/ValidatingAdmissionPolicy")
        old = store.try_get(req.rt, req.namespace, req.name) if req.name else None
        new: dict[str, Any] | None = None
        if req.verb in ("create", "update"):
            new = req.body if isinstance(req.body, dict) else None
        elif req.verb == "patch":  # the object as the patch would leave it
            new = store.patch(
                req.rt,
                req.namespace,
                req.name or "",
                req.body,
                req.content_type,
                field_manager=req.query.get("fieldManager"),
                strict=req.strict,
                dry_run=True,
            )
            if old is None:
                operation = "CREATE"
        if req.verb == "update" and old is None:
            operation = "CREATE"
        name = req.name or str(((new or {}).get("metadata") or {}).get("name") or "")
        admission.admit(
            policies,
            bindings,
            admission.Review(
                group=req.rt.group,
                version=req.rt.version,
                resource=req.rt.plural,
                operation=operation,
                name=name,
                namespace=req.namespace or "",
                username=user.name,
                groups=user.groups,
                obj=new,
                old=old if operation != "CREATE" else None,
            ),
        )

    def _token_request(self, req: Request) -> dict[str, Any]:
        """``create serviceaccounts/<name>/token``: mint a bearer token for an existing ServiceAccount."""
        if req.verb != "create":
            raise ApiError(405, "the server does not allow this method on the requested resource")
        sa = self.api.store.get("serviceaccounts", req.namespace, req.name or "")
        seconds = expiration_seconds(req.body)
        token, expires = self.api.tokens.mint(
            req.namespace or "", req.name or "", sa["metadata"]["uid"], seconds
        )
        return token_request_response(req.namespace or "", req.name or "", token, expires, req.body, seconds)

    def _access_review(self, req: Request, user: User) -> dict[str, Any]:
        """``create selfsubjectaccessreviews``: would the caller be allowed ``spec.resourceAttributes``
        (or ``spec.nonResourceAttributes``)? Answered by the same authorizer, never stored."""
        if req.verb != "create" or req.name:
            raise ApiError(
                405,
                "the server does not allow this method on the requested resource",
                reason="MethodNotAllowed",
            )
        spec = (req.body or {}).get("spec") if isinstance(req.body, dict) else None
        resource = (spec or {}).get("resourceAttributes")
        path = (spec or {}).get("nonResourceAttributes")
        if (resource is None) == (path is None):
            raise ApiError(
                422,
                "SelfSubjectAccessReview.authorization.k8s.io is invalid: spec.resourceAttributes:"
                ' Invalid value: "null": exactly one of nonResourceAttributes or resourceAttributes'
                " must be specified",
                reason="Invalid",
            )
        if resource is not None:
            asked = Attributes(
                verb=str(resource.get("verb") or ""),
                api_group=str(resource.get("group") or ""),
                resource=str(resource.get("resource") or ""),
                subresource=str(resource.get("subresource") or ""),
                namespace=str(resource.get("namespace") or ""),
                name=str(resource.get("name") or ""),
            )
        else:
            assert path is not None  # exactly one of the two is set (checked above)
            asked = Attributes(verb=str(path.get("verb") or ""), path=str(path.get("path") or ""))
        status: dict[str, Any] = {"allowed": True}
        if self.api.tokens.enabled:
            decision = authorize(self.api.rbac, user, asked)
            status = {"allowed": decision.allowed}
            if decision.allowed:
                status["reason"] = f"RBAC: allowed by {decision.by}"
            elif decision.errors:
                status["evaluationError"] = "; ".join(decision.errors)
        return {
            "kind": "SelfSubjectAccessReview",
            "apiVersion": "authorization.k8s.io/v1",
            "metadata": {"creationTimestamp": None},
            "spec": spec,
            "status": status,
        }

    def _route(
        self, path: str, query: dict[str, str], query_lists: dict[str, list[str]], raw: bytes
    ) -> Request | None:
        parts = [p for p in path.split("/") if p]
        if path in (
            "/version",
            "/healthz",
            "/livez",
            "/readyz",
            "/openapi/v2",
            "/openapi/v3",
            "/api",
            "/apis",
        ):
            return None
        if parts[:2] == ["api", "v1"]:
            group, version, rest = "", "v1", parts[2:]
        elif parts[:1] == ["apis"] and len(parts) >= 3:
            group, version, rest = parts[1], parts[2], parts[3:]
        else:
            return None
        if not rest:
            return None
        if rest[0] == "namespaces" and len(rest) >= 3 and rest[2] not in ("status", "finalize"):
            ns: str | None = rest[1]
            rest = rest[2:]
        else:
            ns = None
        rt = self.api.registry.get(group, version, rest[0])
        if rt is None or (ns is not None and not rt.namespaced):
            raise ApiError(404, "the server could not find the requested resource")
        name = rest[1] if len(rest) > 1 else None
        sub = rest[2] if len(rest) > 2 else None
        if len(rest) > 3 or (sub and sub not in rt.subresources):
            raise ApiError(404, "the server could not find the requested resource")
        return self._request(rt, ns, name, sub, query, query_lists, raw)

    def _request(
        self,
        rt: ResourceType,
        ns: str | None,
        name: str | None,
        sub: str | None,
        query: dict[str, str],
        query_lists: dict[str, list[str]],
        raw: bytes,
    ) -> Request:
        method = self.command
        ctype = (self.headers.get("Content-Type") or "application/json").split(";")[0].strip().lower()
        if sub == "token" and method == "POST":
            return Request(
                "create",
                method,
                rt,
                ns,
                name,
                sub,
                query,
                query_lists,
                self._decode(raw, ctype),
                ctype,
                self.headers,
            )
        if sub == "exec":
            if method not in ("GET", "POST"):
                raise ApiError(405, "the server does not allow this method on the requested resource")
            return Request("exec", method, rt, ns, name, sub, query, query_lists, None, ctype, self.headers)
        if method == "GET":
            is_watch = query.get("watch", "").lower() in ("1", "true")
            verb = "get" if name else ("watch" if is_watch else "list")
        elif method == "POST":
            verb = "create"
        elif method == "PUT":
            verb = "update"
        elif method == "PATCH":
            verb = "patch"
            if ctype not in PATCH_TYPES:
                raise ApiError(
                    415,
                    f"the body of the request was in an unknown format - accepted media types "
                    f"include: {', '.join(PATCH_TYPES[:4])}",
                    reason="UnsupportedMediaType",
                )
        elif method == "DELETE":
            verb = "delete" if name else "deletecollection"
        else:
            raise ApiError(405, "the server does not allow this method on the requested resource")
        if (verb in ("create",) and name) or (verb in ("update", "patch") and not name):
            raise ApiError(405, "the server does not allow this method on the requested resource")
        body = self._decode(raw, ctype)
        return Request(verb, method, rt, ns, name, sub, query, query_lists, body, ctype, self.headers)

    def _discovery(self, path: str) -> None:
        reg = self.api.registry
        parts = [p for p in path.split("/") if p]
        if path == "/version":
            self.send_json(200, discovery.VERSION_INFO)
        elif path in ("/healthz", "/livez", "/readyz"):
            data = b"ok"
            self.send_response(200)
            self.send_header("Content-Type", "text/plain; charset=utf-8")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
            self._code = 200
        elif path == "/openapi/v2":
            self.send_json(200, None, OPENAPI_V2_TYPE)
        elif path == "/api":
            self.send_json(200, discovery.api_versions(self.headers.get("Host", "127.0.0.1")))
        elif path == "/api/v1":
            self.send_json(200, discovery.resource_list(reg, "", "v1"))
        elif path == "/apis":
            self.send_json(200, discovery.api_group_list(reg))
        elif len(parts) == 2 and parts[0] == "apis" and discovery.api_group(reg, parts[1]):
            self.send_json(200, discovery.api_group(reg, parts[1]))
        elif len(parts) == 3 and parts[0] == "apis" and discovery.resource_list(reg, parts[1], parts[2]):
            self.send_json(200, discovery.resource_list(reg, parts[1], parts[2]))
        else:
            raise ApiError(404, "the server could not find the requested resource")

    def _admin(self, path: str, raw: bytes) -> None:
        api = self.api
        try:
            body = json.loads(raw) if raw else None
        except ValueError as exc:
            raise bad_request(f"invalid JSON: {exc}") from None
        if path == "/_fake/faults":
            if self.command == "POST":
                items = body if isinstance(body, list) else [body]
                try:
                    for item in items:
                        api.faults.add(Fault.from_dict(item or {}))
                except (ValueError, TypeError) as exc:
                    raise bad_request(str(exc)) from None
                self.send_json(201, {"faults": api.faults.rules()})
            elif self.command == "DELETE":
                api.faults.clear()
                self.send_json(200, {"faults": []})
            else:
                self.send_json(200, {"faults": api.faults.rules()})
        elif path == "/_fake/stats":
            if self.command == "DELETE":
                api.stats.reset()
            self.send_json(200, api.stats.snapshot())
        elif path == "/_fake/state" and self.command == "GET":
            self.send_json(200, api.store.snapshot())
        else:
            raise ApiError(404, "unknown admin endpoint")


def request_attributes(req: Request | None, method: str, path: str) -> Attributes:
    """The authorizer's view of a request, as Kubernetes' RequestInfo builds it: exec is ``create`` on
    ``pods/exec`` (a WebSocket GET too, as since 1.31), a LIST or WATCH with ``fieldSelector=metadata.name=X``
    is for the name X, and a request for a namespace object is in that namespace."""
    if req is None:
        return Attributes(verb="get" if method in ("GET", "HEAD") else method.lower(), path=path)
    verb = "create" if req.verb == "exec" else req.verb
    name = req.name or ""
    if req.verb in ("list", "watch") and not name:
        for term in (req.query.get("fieldSelector") or "").split(","):
            key, sep, value = term.partition("=")
            if sep and key.strip() == "metadata.name" and not value.startswith("="):
                name = value.strip()
    namespace = req.namespace or ""
    if req.rt.plural == "namespaces" and req.rt.group == "" and name:
        namespace = name
    return Attributes(
        verb=verb,
        api_group=req.rt.group,
        resource=req.rt.plural,
        subresource=req.sub or "",
        namespace=namespace,
        name=name,
        path=path,
    )
