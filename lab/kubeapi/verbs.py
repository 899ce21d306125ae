"""Verb implementations on top of the store: get, list (paginated, Table), create, update, patch, delete,
deletecollection and the ``scale`` subresource."""

from __future__ import annotations

import base64
import copy
import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from drkit.domain.merge_patch import merge_patch
from lab.kubeapi import selectors, tables
from lab.kubeapi.errors import ApiError, bad_request
from lab.kubeapi.patch import JSON_PATCH, json_patch
from lab.kubeapi.resources import ResourceType

if TYPE_CHECKING:
    from lab.kubeapi.server import KubeApiServer

Obj = dict[str, Any]


@dataclass
class Request:
    """A parsed API request."""

    verb: str
    method: str
    rt: ResourceType
    namespace: str | None
    name: str | None
    sub: str | None
    query: dict[str, str]
    query_lists: dict[str, list[str]]
    body: Any
    content_type: str
    headers: Any

    @property
    def strict(self) -> bool:
        """Unknown fields are rejected unless ``fieldValidation`` is ``Ignore`` or ``Warn``."""
        return self.query.get("fieldValidation", "Strict") not in ("Ignore", "Warn")

    @property
    def dry_run(self) -> bool:
        """``dryRun=All``."""
        return self.query.get("dryRun") == "All"

    def wants_table(self) -> str | None:
        """``includeObject`` policy when the client asked for a Table, else ``None``."""
        accept = self.headers.get("Accept") or ""
        first = accept.split(",")[0]
        if "as=Table" in first:
            return self.query.get("includeObject", "PartialObjectMetadata")
        return None


def _encode_continue(rv: int, key: tuple[str, str]) -> str:
    raw = json.dumps({"v": "meta.k8s.io/v1", "rv": rv, "start": f"{key[0]}/{key[1]}\x00"}).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _decode_continue(token: str) -> tuple[int, tuple[str, str]]:
    try:
        data = json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
        ns, _, name = data["start"].rstrip("\x00").partition("/")
        return int(data["rv"]), (ns, name)
    except (ValueError, KeyError, TypeError):
        raise bad_request("continue key is not valid: invalid continue token") from None


def list_objects(api: KubeApiServer, req: Request) -> Obj:
    """LIST with selectors and ``limit``/``continue`` pagination (keys are ``namespace/name``)."""
    rt = req.rt
    lmatch = selectors.label_matcher(req.query.get("labelSelector"))
    fmatch = selectors.field_matcher(req.query.get("fieldSelector"), rt.plural, rt.kind, rt.api_version)
    with api.store.changed:
        rv = api.store.resource_version
        items = api.store.list(rt, req.namespace, lambda o: lmatch(o) and fmatch(o))
    token = req.query.get("continue")
    if token:
        rv, start = _decode_continue(token)
        items = [o for o in items if (o["metadata"].get("namespace", ""), o["metadata"]["name"]) > start]
    meta: Obj = {"resourceVersion": str(rv)}
    limit = int(req.query.get("limit") or 0)
    if limit < 0:
        raise bad_request("limit must be non-negative")
    if limit and len(items) > limit:
        rest = len(items) - limit
        items = items[:limit]
        last = items[-1]["metadata"]
        meta["continue"] = _encode_continue(rv, (last.get("namespace", ""), last["name"]))
        if not req.query.get("labelSelector") and not req.query.get("fieldSelector"):
            meta["remainingItemCount"] = rest
    include = req.wants_table()
    if include is not None:
        return tables.table(rt, items, meta, include)
    return {"kind": rt.list_kind, "apiVersion": rt.api_version, "metadata": meta, "items": items}


def _scale(obj: Obj) -> Obj:
    sel = (obj.get("spec") or {}).get("selector") or {}
    selector = ",".join(f"{k}={v}" for k, v in (sel.get("matchLabels") or {}).items())
    m = obj["metadata"]
    return {
        "kind": "Scale",
        "apiVersion": "autoscaling/v1",
        "metadata": {
            k: m[k] for k in ("name", "namespace", "uid", "resourceVersion", "creationTimestamp") if k in m
        },
        "spec": {"replicas": (obj.get("spec") or {}).get("replicas", 0)},
        "status": {"replicas": (obj.get("status") or {}).get("replicas", 0), "selector": selector},
    }


def _scale_verb(api: KubeApiServer, req: Request) -> tuple[int, Obj]:
    store, rt = api.store, req.rt
    with store.changed:
        obj = store.get(rt, req.namespace, req.name or "")
        scale = _scale(obj)
        if req.verb == "get":
            return 200, scale
        if req.verb == "update":
            new = req.body or {}
            rv = (new.get("metadata") or {}).get("resourceVersion")
            if rv and rv != obj["metadata"]["resourceVersion"]:
                from lab.kubeapi.errors import conflict

                raise conflict(rt.group, rt.plural, req.name or "")
        elif req.content_type == JSON_PATCH:
            new = json_patch(scale, req.body)
        else:
            new = merge_patch(scale, req.body)
        replicas = (new.get("spec") or {}).get("replicas")
        if not isinstance(replicas, int) or isinstance(replicas, bool) or replicas < 0:
            raise ApiError(
                422,
                f'Scale.autoscaling "{req.name}" is invalid: spec.replicas: Invalid value: '
                f"{replicas}: must be greater than or equal to 0",
                reason="Invalid",
                details={
                    "name": req.name,
                    "group": "autoscaling",
                    "kind": "Scale",
                    "causes": [
                        {
                            "reason": "FieldValueInvalid",
                            "field": "spec.replicas",
                            "message": "Invalid value: must be greater than or equal to 0",
                        }
                    ],
                },
            )
        updated = store.patch(
            rt, req.namespace, req.name or "", {"spec": {"replicas": replicas}}, dry_run=req.dry_run
        )
        return 200, _scale(updated)


def _delete_response(rt: ResourceType, obj: Obj) -> Obj:
    if (
        not rt.builtin
        or rt.plural
        in ("pods", "namespaces", "customresourcedefinitions", "persistentvolumes", "persistentvolumeclaims")
        or obj["metadata"].get("finalizers")
    ):
        return obj
    return {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Success",
        "details": {
            "name": obj["metadata"]["name"],
            "group": rt.group,
            "kind": rt.plural,
            "uid": obj["metadata"]["uid"],
        },
    }


def dispatch(api: KubeApiServer, req: Request) -> tuple[int, Any]:
    """Run a non-streaming verb; returns (HTTP code, body)."""
    store, rt = api.store, req.rt
    if req.sub == "scale":
        if req.verb not in ("get", "update", "patch"):
            raise ApiError(405, "the server does not allow this method on the requested resource")
        return _scale_verb(api, req)
    if req.sub == "log":
        raise ApiError(400, "logs are not available: pods do not run containers in the fake apiserver")
    if req.sub and req.verb not in ("get", "update", "patch"):
        raise ApiError(405, "the server does not allow this method on the requested resource")
    if req.verb == "get":
        obj = store.get(rt, req.namespace, req.name or "")
        include = req.wants_table()
        if include is not None:
            return 200, tables.table(
                rt, [obj], {"resourceVersion": obj["metadata"]["resourceVersion"]}, include
            )
        return 200, obj
    if req.verb == "list":
        return 200, list_objects(api, req)
    if req.verb in ("create", "update") and not isinstance(req.body, dict):
        raise bad_request("the body of the request must be a JSON object")
    if req.verb == "create":
        return 201, store.create(rt, req.body, req.namespace, strict=req.strict, dry_run=req.dry_run)
    if req.verb == "update":
        body = copy.deepcopy(req.body)
        name = (body.get("metadata") or {}).get("name")
        if name and name != req.name:
            raise bad_request(
                f"the name of the object ({name}) does not match the name on the URL ({req.name})"
            )
        body.setdefault("metadata", {})["name"] = req.name
        return 200, store.update(
            rt, body, req.namespace, subresource=req.sub, strict=req.strict, dry_run=req.dry_run
        )
    if req.verb == "patch":
        existed = store.try_get(rt, req.namespace, req.name or "") is not None
        obj = store.patch(
            rt,
            req.namespace,
            req.name or "",
            req.body,
            req.content_type,
            subresource=req.sub,
            field_manager=req.query.get("fieldManager"),
            strict=req.strict,
            dry_run=req.dry_run,
        )
        return (200 if existed else 201), obj
    if req.verb == "delete":
        opts = req.body if isinstance(req.body, dict) else {}
        propagation = req.query.get("propagationPolicy") or opts.get("propagationPolicy")
        dry = req.dry_run or opts.get("dryRun") == ["All"]
        obj = store.delete(
            rt,
            req.namespace,
            req.name or "",
            propagation=propagation,
            preconditions=opts.get("preconditions"),
            dry_run=dry,
        )
        return 200, _delete_response(rt, obj)
    if req.verb == "deletecollection":
        listing = list_objects(
            api,
            Request(
                "list",
                "GET",
                rt,
                req.namespace,
                None,
                None,
                {k: v for k, v in req.query.items() if k != "limit"},
                req.query_lists,
                None,
                "",
                {},
            ),
        )
        deleted = []
        for item in listing["items"]:
            m = item["metadata"]
            if store.try_get(rt, m.get("namespace"), m["name"]) is not None:
                deleted.append(store.delete(rt, m.get("namespace"), m["name"], dry_run=req.dry_run))
        return 200, {
            "kind": rt.list_kind,
            "apiVersion": rt.api_version,
            "metadata": {"resourceVersion": str(store.resource_version)},
            "items": deleted,
        }
    raise ApiError(405, "the server does not allow this method on the requested resource")
