"""``?watch=1`` streams: newline-delimited JSON events over chunked HTTP/1.1."""

from __future__ import annotations

import json
import time
from typing import TYPE_CHECKING, Any

from lab.kubeapi import selectors, tables
from lab.kubeapi.errors import ApiError, bad_request
from lab.kubeapi.store import Event

if TYPE_CHECKING:
    from lab.kubeapi.handler import Handler
    from lab.kubeapi.verbs import Request

_BOOKMARK_EVERY = 5.0
_DEFAULT_TIMEOUT = 1800.0


def _chunk(handler: Handler, payload: dict[str, Any]) -> None:
    data = json.dumps(payload, separators=(",", ":")).encode() + b"\n"
    handler.wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
    handler.wfile.flush()


def serve(handler: Handler, req: Request) -> None:
    """Stream events for ``req`` until ``timeoutSeconds``, client disconnect or server stop."""
    api, rt = handler.api, req.rt
    lmatch = selectors.label_matcher(req.query.get("labelSelector"))
    fmatch = selectors.field_matcher(req.query.get("fieldSelector"), rt.plural, rt.kind, rt.api_version)

    def match(obj: dict[str, Any] | None) -> bool:
        if obj is None:
            return False
        ns = obj["metadata"].get("namespace")
        return (req.namespace is None or ns == req.namespace) and lmatch(obj) and fmatch(obj)

    include = req.wants_table()
    bookmarks = req.query.get("allowWatchBookmarks", "").lower() in ("1", "true")
    try:
        timeout = float(req.query.get("timeoutSeconds") or _DEFAULT_TIMEOUT)
    except ValueError:
        raise bad_request("invalid timeoutSeconds") from None
    rv_param = req.query.get("resourceVersion") or "0"
    initial: list[dict[str, Any]] = []
    with api.store.changed:
        if rv_param == "0":
            last = api.store.resource_version
            initial = api.store.list(rt, req.namespace, match)
        else:
            try:
                last = int(rv_param)
            except ValueError:
                raise bad_request(f"invalid resourceVersion {rv_param!r}") from None
    handler.send_response(200)
    handler.send_header("Content-Type", "application/json")
    handler.send_header("Transfer-Encoding", "chunked")
    handler.send_header("Cache-Control", "no-cache, private")
    handler.end_headers()
    first_table = [True]

    def emit(etype: str, obj: dict[str, Any]) -> None:
        if include is not None:
            tab = tables.table(
                rt, [obj], {"resourceVersion": obj["metadata"].get("resourceVersion", "")}, include
            )
            if not first_table[0]:
                tab["columnDefinitions"] = []
            first_table[0] = False
            obj = tab
        _chunk(handler, {"type": etype, "object": obj})

    for obj in initial:
        emit("ADDED", obj)
    deadline = time.monotonic() + timeout
    idle_since = time.monotonic()
    while not api.stopping.is_set():
        events = api.store.events_since(last)
        if events is None:
            err = ApiError(
                410, f"too old resource version: {last} ({api.store.resource_version})", reason="Expired"
            )
            _chunk(handler, {"type": "ERROR", "object": err.status()})
            break
        for ev in events:
            last = ev.rv
            out = _translate(ev, rt, match)
            if out:
                emit(*out)
                idle_since = time.monotonic()
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            break
        if bookmarks and time.monotonic() - idle_since >= _BOOKMARK_EVERY:
            _chunk(
                handler,
                {
                    "type": "BOOKMARK",
                    "object": {
                        "kind": rt.kind,
                        "apiVersion": rt.api_version,
                        "metadata": {"resourceVersion": str(last)},
                    },
                },
            )
            idle_since = time.monotonic()
        api.store.wait_change(last, min(1.0, remaining))
    handler.wfile.write(b"0\r\n\r\n")
    handler.wfile.flush()


def _translate(ev: Event, rt: Any, match: Any) -> tuple[str, dict[str, Any]] | None:
    if ev.rt.group != rt.group or ev.rt.plural != rt.plural:
        return None
    if ev.type == "ADDED":
        return ("ADDED", ev.obj) if match(ev.obj) else None
    if ev.type == "DELETED":
        return ("DELETED", ev.obj) if match(ev.obj) or match(ev.old) else None
    now, before = match(ev.obj), match(ev.old)
    if now and before:
        return "MODIFIED", ev.obj
    if now:
        return "ADDED", ev.obj
    if before:
        return "DELETED", ev.obj
    return None
