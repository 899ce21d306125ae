"""HTTP/1.1 server speaking the Nexus REST subset (stdlib ``ThreadingHTTPServer``)."""

from __future__ import annotations

import json
import logging
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from lab.nexus_sim import health, xo
from lab.nexus_sim.auth import REALM_HEADER, AuthConfig, Principal
from lab.nexus_sim.multipart import MultipartError, parse_form
from lab.nexus_sim.store import BadRequest, Malformed, SearchQuery, Store, StoreError, normalise_path

LOG = logging.getLogger("nexus_sim.http")
REST = "/service/rest/v1"
SERVER_VERSION = "Nexus/3.70.1-02 (OSS)"
NO_RESULTS = "Asset search returned no results"
MULTIPLE_RESULTS = (
    "Search returned multiple assets, please refine search criteria to find a single asset "
    "or use the sort query parameter to retrieve the first result."
)
_ASSET_FIELD = re.compile(r"^raw\.asset(\d+)$")


@dataclass
class Response:
    """What a route returns; ``body`` is bytes already encoded."""

    status: int
    body: bytes = b""
    content_type: str | None = None
    headers: dict[str, str] = field(default_factory=dict)


def text(status: int, message: str) -> Response:
    """Plain-text answer, like Nexus' ``WebApplicationMessageException``."""
    return Response(status, message.encode(), "text/plain; charset=utf-8")


def as_json(status: int, payload: Any) -> Response:
    """JSON answer."""
    return Response(status, json.dumps(payload, indent=2).encode(), "application/json")


@dataclass
class Request:
    """A parsed request handed to routes."""

    method: str
    path: str
    query: dict[str, str]
    headers: Any
    body: bytes
    params: dict[str, str]
    principal: Principal
    client_ip: str
    base_url: str

    def arg(self, name: str) -> str | None:
        """First value of a query parameter, None when absent or blank."""
        value = self.query.get(name)
        return value if value else None


Handler = Callable[["Api", Request], Response]


@dataclass(frozen=True)
class Route:
    """One endpoint: method, path regex, handler, access level and the 403 text."""

    method: str
    pattern: re.Pattern[str]
    handler: Handler
    access: str  # "none" | "read" | "admin"
    forbidden: str = "Insufficient permissions"


class Api:
    """Route handlers bound to one store."""

    def __init__(self, store: Store) -> None:
        self.store = store

    # -------------------------------------------------------------- status & read-only
    def status(self, req: Request) -> Response:
        """GET /v1/status: 200 when the volume is readable, else 503."""
        return Response(200 if health.readable(self.store) else 503)

    def writable(self, req: Request) -> Response:
        """GET /v1/status/writable: 200 when readable and not frozen, else 503."""
        return Response(200 if health.writable(self.store) else 503)

    def check(self, req: Request) -> Response:
        """GET /v1/status/check: map of check name to result (always 200)."""
        return as_json(200, health.checks(self.store))

    def read_only(self, req: Request) -> Response:
        """GET /v1/read-only: ``ReadOnlyState``."""
        state = self.store.read_only
        reason = state.summary_reason or ("" if not state.frozen else "Activated by an administrator")
        return as_json(
            200, {"frozen": state.frozen, "summaryReason": reason, "systemInitiated": state.system_initiated}
        )

    def freeze(self, req: Request) -> Response:
        """POST /v1/read-only/freeze: 204, or 404 when already frozen."""
        changed = self.store.freeze("Activated by an administrator at " + time.strftime("%Y-%m-%d %H:%M:%S"))
        return Response(204) if changed else text(404, "No change to read-only state")

    def release(self, req: Request) -> Response:
        """POST /v1/read-only/release (and force-release): 204, or 404 when not frozen."""
        return Response(204) if self.store.release() else text(404, "No change to read-only state")

    def metrics(self, req: Request) -> Response:
        """GET /service/metrics/data: Dropwizard-style gauges incl. ``readonly.enabled``."""
        gauges = {"readonly.enabled": {"value": self.store.read_only.frozen}}
        return as_json(
            200,
            {
                "version": "4.0.0",
                "gauges": gauges,
                "counters": {},
                "histograms": {},
                "meters": {},
                "timers": {},
            },
        )

    # -------------------------------------------------------------- repositories
    def list_repos(self, req: Request) -> Response:
        """GET /v1/repositories."""
        repos = sorted(self.store.repos.values(), key=lambda r: r.name)
        return as_json(200, [xo.repository_xo(req.base_url, r) for r in repos])

    def get_repo(self, req: Request) -> Response:
        """GET /v1/repositories/{name}."""
        return as_json(200, xo.repository_xo(req.base_url, self.store.repo(req.params["name"])))

    def get_raw_hosted(self, req: Request) -> Response:
        """GET /v1/repositories/raw/hosted/{name}."""
        return as_json(200, xo.raw_hosted_xo(req.base_url, self.store.repo(req.params["name"])))

    def create_raw_hosted(self, req: Request) -> Response:
        """POST /v1/repositories/raw/hosted: 201, 400 with a validation error list."""
        try:
            body = json.loads(req.body.decode("utf-8") or "null")
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise BadRequest(
                "Invalid JSON", [{"id": "*", "message": f"Unable to parse JSON: {exc}"}]
            ) from exc
        self.store.create_repo(body)
        return Response(201)

    def delete_repo(self, req: Request) -> Response:
        """DELETE /v1/repositories/{name}: 204 or 404."""
        self.store.delete_repo(req.params["name"])
        return Response(204)

    # -------------------------------------------------------------- components
    def _repo_param(self, req: Request) -> str:
        name = req.arg("repository")
        if name is None:
            raise Malformed("Parameter 'repository' is required")
        self.store.repo(name)
        return name

    def list_components(self, req: Request) -> Response:
        """GET /v1/components?repository=: one page of ``ComponentXO``."""
        name = self._repo_param(req)
        with self.store.lock:
            body = xo.page(
                self.store.components_of(name),
                req.arg("continuationToken"),
                lambda c: xo.component_xo(req.base_url, c, self.store.assets[c.asset_id]),
            )
        return as_json(200, body)

    def get_component(self, req: Request) -> Response:
        """GET /v1/components/{id}."""
        with self.store.lock:
            comp = self.store.component(req.params["id"])
            return as_json(200, xo.component_xo(req.base_url, comp, self.store.assets[comp.asset_id]))

    def delete_component(self, req: Request) -> Response:
        """DELETE /v1/components/{id}: 204, 404 'Component not found', 422 'Malformed ID'."""
        self.store.delete_component(req.params["id"])
        return Response(204)

    def upload_component(self, req: Request) -> Response:
        """POST /v1/components?repository=: raw multipart upload, 204."""
        name = self._repo_param(req)
        try:
            form = parse_form(req.headers.get("Content-Type", ""), req.body)
        except MultipartError as exc:
            raise BadRequest(str(exc), [{"id": "*", "message": str(exc)}]) from exc
        directory = form.get("raw.directory")
        if directory is None or not directory.text().strip():
            raise BadRequest(
                "Missing required component field 'Directory'",
                [{"id": "*", "message": "Missing required component field 'Directory'"}],
            )
        uploads: list[tuple[str, bytes]] = []
        for key in sorted(form, key=lambda k: (len(k), k)):
            match = _ASSET_FIELD.match(key)
            if not match:
                continue
            index, part = match.group(1), form[key]
            filename_field = form.get(f"raw.asset{index}.filename")
            filename = filename_field.text().strip() if filename_field else (part.filename or "")
            if not filename:
                message = f"Missing required asset field 'Filename' on '{index}'"
                raise BadRequest(message, [{"id": "*", "message": message}])
            uploads.append((f"{directory.text().strip()}/{filename}", part.data))
        if not uploads:
            raise BadRequest(
                "No assets found in upload", [{"id": "*", "message": "No assets found in upload"}]
            )
        paths = [normalise_path(p) for p, _ in uploads]
        if len(set(paths)) != len(paths):
            message = "The assets in this upload have identical coordinates"
            raise BadRequest(message, [{"id": "*", "message": message}])
        with self.store.lock:
            for path in paths:
                self.store.check_put(name, path)
            for path, (_, data) in zip(paths, uploads, strict=True):
                self.store.put_asset(name, path, data, "admin", req.client_ip)
        return Response(204)

    # -------------------------------------------------------------- search
    def _query(self, req: Request) -> SearchQuery:
        return SearchQuery(
            repository=req.arg("repository"),
            name=req.arg("name"),
            group=req.arg("group"),
            format=req.arg("format"),
            keyword=req.arg("q"),
            sha1=req.arg("sha1"),
            sha256=req.arg("sha256"),
            md5=req.arg("md5"),
            sha512=req.arg("sha512"),
        )

    def search_assets(self, req: Request) -> Response:
        """GET /v1/search/assets: one page of ``AssetXO``."""
        found = self.store.search(self._query(req))
        return as_json(
            200, xo.page(found, req.arg("continuationToken"), lambda a: xo.asset_xo(req.base_url, a))
        )

    def search_components(self, req: Request) -> Response:
        """GET /v1/search: one page of ``ComponentXO``."""
        with self.store.lock:
            found = self.store.search(self._query(req))
            body = xo.page(
                found,
                req.arg("continuationToken"),
                lambda a: xo.component_xo(req.base_url, self.store.components[a.component_id], a),
            )
        return as_json(200, body)

    def search_download(self, req: Request) -> Response:
        """GET /v1/search/assets/download: 302 to the single match, 400 if several, 404 if none."""
        found = self.store.search(self._query(req))
        if not found:
            return text(404, NO_RESULTS)
        if len(found) > 1 and req.arg("sort") is None:
            return text(400, MULTIPLE_RESULTS)
        url = xo.asset_xo(req.base_url, found[0])["downloadUrl"]
        return Response(302, headers={"Location": url})

    # -------------------------------------------------------------- content
    def get_content(self, req: Request) -> Response:
        """GET/HEAD /repository/{repo}/{path}: the bytes read from the volume."""
        asset, data = self.store.get_asset(req.params["repo"], unquote(req.params["path"]))
        repo = self.store.repo(asset.repository)
        filename = asset.path.rsplit("/", 1)[-1]
        disposition = "attachment" if repo.content_disposition == "ATTACHMENT" else "inline"
        headers = {
            "Content-Disposition": f'{disposition}; filename="{filename}"',
            "ETag": f'"{{SHA1{{{asset.sha1}}}}}"',
            "X-Content-Type-Options": "nosniff",
        }
        return Response(200, data, asset.content_type, headers)

    def put_content(self, req: Request) -> Response:
        """PUT /repository/{repo}/{path}: 201."""
        self.store.put_asset(
            req.params["repo"], unquote(req.params["path"]), req.body, "admin", req.client_ip
        )
        return Response(201)


def _routes() -> list[Route]:
    def r(method: str, path: str, handler: Handler, access: str, forbidden: str = "") -> Route:
        return Route(
            method, re.compile(f"^{path}$"), handler, access, forbidden or "Insufficient permissions"
        )

    name = r"(?P<name>[^/]+)"
    cid = r"(?P<id>[^/]+)"
    auth_required = "Authentication required"
    return [
        r("GET", f"{REST}/status", Api.status, "none"),
        r("GET", f"{REST}/status/writable", Api.writable, "none"),
        r(
            "GET",
            f"{REST}/status/check",
            Api.check,
            "admin",
            "Insufficient permissions to retrieve system status checks",
        ),
        r("GET", f"{REST}/read-only", Api.read_only, "admin", auth_required),
        r("POST", f"{REST}/read-only/freeze", Api.freeze, "admin", auth_required),
        r("POST", f"{REST}/read-only/(?:force-)?release", Api.release, "admin", auth_required),
        r("GET", "/service/metrics/data", Api.metrics, "admin"),
        r("GET", f"{REST}/repositories", Api.list_repos, "read"),
        r(
            "POST",
            f"{REST}/repositories/raw/hosted",
            Api.create_raw_hosted,
            "admin",
            "Insufficient permissions to create repository",
        ),
        r("GET", f"{REST}/repositories/raw/hosted/{name}", Api.get_raw_hosted, "admin"),
        r("GET", f"{REST}/repositories/{name}", Api.get_repo, "read"),
        r(
            "DELETE",
            f"{REST}/repositories/{name}",
            Api.delete_repo,
            "admin",
            "Insufficient permissions to delete repository",
        ),
        r(
            "GET",
            f"{REST}/components",
            Api.list_components,
            "read",
            "Insufficient permissions to list components",
        ),
        r(
            "POST",
            f"{REST}/components",
            Api.upload_component,
            "admin",
            "Insufficient permissions to upload a component",
        ),
        r("GET", f"{REST}/components/{cid}", Api.get_component, "read"),
        r(
            "DELETE",
            f"{REST}/components/{cid}",
            Api.delete_component,
            "admin",
            "Insufficient permissions to delete component",
        ),
        r("GET", f"{REST}/search", Api.search_components, "read"),
        r("GET", f"{REST}/search/assets", Api.search_assets, "read"),
        r("GET", f"{REST}/search/assets/download", Api.search_download, "read"),
        r("GET", r"/repository/(?P<repo>[^/]+)/(?P<path>.+)", Api.get_content, "read"),
        r("HEAD", r"/repository/(?P<repo>[^/]+)/(?P<path>.+)", Api.get_content, "read"),
        r("PUT", r"/repository/(?P<repo>[^/]+)/(?P<path>.+)", Api.put_content, "admin"),
    ]


ROUTES = _routes()


class NexusHTTPServer(ThreadingHTTPServer):
    """Threading server carrying the store and auth configuration."""

    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], store: Store, auth: AuthConfig) -> None:
        super().__init__(address, NexusRequestHandler)
        self.api = Api(store)
        self.auth = auth
        self.max_body = store.volume.device.size


class NexusRequestHandler(BaseHTTPRequestHandler):
    """Reads the whole request, routes it, writes one response and logs one line."""

    protocol_version = "HTTP/1.1"
    server_version = SERVER_VERSION
    sys_version = ""
    server: NexusHTTPServer

    def version_string(self) -> str:
        """``Server`` header value, as real Nexus sends it."""
        return SERVER_VERSION

    def do_GET(self) -> None:
        """Handle GET."""
        self._dispatch()

    def do_HEAD(self) -> None:
        """Handle HEAD."""
        self._dispatch()

    def do_POST(self) -> None:
        """Handle POST."""
        self._dispatch()

    def do_PUT(self) -> None:
        """Handle PUT."""
        self._dispatch()

    def do_DELETE(self) -> None:
        """Handle DELETE."""
        self._dispatch()

    def log_message(self, format: str, *args: Any) -> None:
        """Route http.server's own messages (malformed requests) to the debug log; headers never logged."""
        LOG.debug("%s - %s", self.address_string(), format % args)

    # -------------------------------------------------------------- plumbing
    def _read_body(self) -> bytes:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            chunks: list[bytes] = []
            total = 0
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    return b"".join(chunks)
                total += size
                if total > self.server.max_body:
                    raise BodyTooLarge(total)
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
        length = int(self.headers.get("Content-Length") or 0)
        if length > self.server.max_body:
            raise BodyTooLarge(length)
        return self.rfile.read(length) if length > 0 else b""

    def _dispatch(self) -> None:
        started = time.monotonic()
        split = urlsplit(self.path)
        path = split.path
        try:
            body = self._read_body()
        except BodyTooLarge as exc:
            self.close_connection = True
            self._finish(text(413, f"Request body of {exc.args[0]} bytes exceeds the volume size"), started)
            return
        except ValueError:
            self.close_connection = True
            self._finish(text(400, "Malformed request body framing"), started)
            return
        response = self._route(path, split.query, body)
        self._finish(response, started)

    def _route(self, path: str, query: str, body: bytes) -> Response:
        allowed: list[str] = []
        for route in ROUTES:
            match = route.pattern.match(path)
            if not match:
                continue
            if route.method != self.command:
                allowed.append(route.method)
                continue
            denied = self._authorize(route)
            if denied is not None:
                return denied
            req = Request(
                method=self.command,
                path=path,
                query={k: v[0] for k, v in parse_qs(query, keep_blank_values=True).items()},
                headers=self.headers,
                body=body,
                params=match.groupdict(),
                principal=self.server.auth.identify(self.headers.get("Authorization")),
                client_ip=self.client_address[0],
                base_url=self._base_url(),
            )
            try:
                return route.handler(self.server.api, req)
            except StoreError as exc:
                if exc.errors is not None:
                    return as_json(exc.status, exc.errors)
                return text(exc.status, exc.message)
            except Exception:
                LOG.exception("unhandled error on %s %s", self.command, path)
                return text(500, "Internal server error; see the simulator log")
        if allowed:
            return Response(405, headers={"Allow": ", ".join(sorted(set(allowed)))})
        return text(404, "Not Found")

    def _base_url(self) -> str:
        host = self.headers.get("Host")
        if not host:
            address, port = self.server.server_address[:2]
            host = f"{address!s}:{port}"
        return f"http://{host}"

    def _authorize(self, route: Route) -> Response | None:
        if route.access == "none":
            return None
        principal = self.server.auth.identify(self.headers.get("Authorization"))
        unauthorized = Response(
            401, b"Unauthorized", "text/plain; charset=utf-8", {"WWW-Authenticate": REALM_HEADER}
        )
        if principal is Principal.INVALID:
            return unauthorized
        if principal is Principal.ADMIN:
            return None
        if not self.server.auth.anonymous_read:
            return unauthorized
        if route.access == "read":
            return None
        return text(403, route.forbidden)

    def _finish(self, response: Response, started: float) -> None:
        try:
            self.send_response(response.status)
            if response.content_type:
                self.send_header("Content-Type", response.content_type)
            self.send_header("Content-Length", str(len(response.body)))
            for key, value in response.headers.items():
                self.send_header(key, value)
            if self.close_connection:
                self.send_header("Connection", "close")
            self.end_headers()
            if self.command != "HEAD" and response.body:
                self.wfile.write(response.body)
            self.wfile.flush()
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True
        LOG.info(
            "%s %s %d %dB %.1fms",
            self.command,
            self.path,
            response.status,
            len(response.body),
            (time.monotonic() - started) * 1000,
        )


class BodyTooLarge(Exception):
    """The request body cannot fit on the volume at all."""


def make_server(host: str, port: int, store: Store, auth: AuthConfig) -> NexusHTTPServer:
    """Bind (raises OSError when the port is taken)."""
    return NexusHTTPServer((host, port), store, auth)
