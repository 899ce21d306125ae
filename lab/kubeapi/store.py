"""In-memory object store with a global resourceVersion, an event log for watches and change listeners."""

from __future__ import annotations

import copy
import uuid
from collections.abc import Iterator
from typing import Any

from drkit.domain.merge_patch import merge_patch
from lab.kubeapi import defaults, immutable, validation
from lab.kubeapi.errors import ApiError, already_exists, bad_request, conflict, not_found
from lab.kubeapi.patch import (
    APPLY_PATCH,
    JSON_PATCH,
    MERGE_PATCH,
    STRATEGIC_PATCH,
    apply_merge,
    json_patch,
    strategic_merge,
)
from lab.kubeapi.resources import ResourceType
from lab.kubeapi.storecore import Event, StoreCore, _body, has_generation, rand_suffix

__all__ = ["Event", "Obj", "Store", "rand_suffix"]

Obj = dict[str, Any]


class Store(StoreCore):
    """Thread-safe object store. All public methods take and return plain dicts (deep copies).

    ``resource`` arguments accept a :class:`ResourceType` or a loose reference resolved by
    :meth:`Registry.resolve` (``"pods"``, ``"Deployment"``, ``"volumereplications"``).
    """

    # -- writes ---------------------------------------------------------------------------------------
    def create(
        self,
        resource: ResourceType | str,
        obj: Obj,
        namespace: str | None = None,
        *,
        strict: bool = True,
        dry_run: bool = False,
        keep_status: bool = False,
    ) -> Obj:
        """Create ``obj`` (validated, defaulted); ``keep_status`` keeps a given status (Python API only)."""
        rt = self.rt(resource)
        obj = copy.deepcopy(obj)
        meta = obj.setdefault("metadata", {})
        if not isinstance(meta, dict):
            raise bad_request("metadata must be an object")
        obj["apiVersion"], obj["kind"] = rt.api_version, rt.kind
        if rt.namespaced:
            ns = namespace or meta.get("namespace") or "default"
            if meta.get("namespace") and meta["namespace"] != ns:
                raise bad_request(
                    "the namespace of the provided object does not match the namespace sent on the request"
                )
            meta["namespace"] = ns
        else:
            meta.pop("namespace", None)
        if not strict:
            validation.prune_unknown(rt, obj)
        with self._lock:
            if not meta.get("name"):
                if not meta.get("generateName"):
                    raise ApiError(
                        422,
                        "name or generateName is required",
                        reason="Invalid",
                        details={
                            "kind": rt.kind,
                            "group": rt.group,
                            "causes": [
                                {
                                    "reason": "FieldValueRequired",
                                    "message": "Required value: name or generateName is required",
                                    "field": "metadata.name",
                                }
                            ],
                        },
                    )
                meta["name"] = meta["generateName"] + rand_suffix()
            validation.validate(rt, obj, strict)
            if rt.namespaced:
                ns_obj = self._bucket(self.rt("namespaces")).get(("", meta["namespace"]))
                if ns_obj is None:
                    raise not_found("", "namespaces", meta["namespace"])
                if (ns_obj.get("status") or {}).get("phase") == "Terminating":
                    raise ApiError(
                        403,
                        f'{rt.plural} "{meta["name"]}" is forbidden: unable to create new '
                        f"content in namespace {meta['namespace']} because it is being terminated",
                        reason="Forbidden",
                    )
            key = (meta.get("namespace", ""), meta["name"])
            if key in self._bucket(rt):
                raise already_exists(rt.group, rt.plural, meta["name"])
            status = obj.get("status")
            if "status" in rt.subresources or not rt.builtin:
                obj.pop("status", None)
            defaults.apply(rt, obj)
            if keep_status and status is not None:
                obj["status"] = status
            for k in ("resourceVersion", "deletionTimestamp", "deletionGracePeriodSeconds", "managedFields"):
                meta.pop(k, None)
            meta["uid"] = str(uuid.uuid4())
            meta["creationTimestamp"] = defaults.now()
            if has_generation(rt):
                meta["generation"] = 1
            if dry_run:
                return copy.deepcopy(obj)
            if rt.plural == "customresourcedefinitions":
                self.registry.set_crd(obj)
            return self._commit(rt, "ADDED", obj, None)

    def update(
        self,
        resource: ResourceType | str,
        obj: Obj,
        namespace: str | None = None,
        *,
        subresource: str | None = None,
        strict: bool = True,
        dry_run: bool = False,
    ) -> Obj:
        """PUT semantics: a stale ``metadata.resourceVersion`` is a 409 Conflict."""
        rt = self.rt(resource)
        meta = obj.get("metadata") or {}
        with self._lock:
            old = self.get(rt, namespace or meta.get("namespace"), meta.get("name", ""))
            rv = meta.get("resourceVersion")
            if rv and rv != old["metadata"]["resourceVersion"]:
                raise conflict(rt.group, rt.plural, old["metadata"]["name"])
            return self._replace(rt, old, copy.deepcopy(obj), subresource, strict, dry_run)

    def _replace(
        self, rt: ResourceType, old: Obj, new: Obj, subresource: str | None, strict: bool, dry_run: bool
    ) -> Obj:
        new["apiVersion"], new["kind"] = rt.api_version, rt.kind
        meta = new.setdefault("metadata", {})
        ometa = old["metadata"]
        if meta.get("name", ometa["name"]) != ometa["name"]:
            raise bad_request(
                f"the name of the object ({meta.get('name')}) does not match the name on the URL "
                f"({ometa['name']})"
            )
        if rt.namespaced and meta.get("namespace", ometa["namespace"]) != ometa["namespace"]:
            raise bad_request(
                "the namespace of the provided object does not match the namespace sent on the request"
            )
        has_status = "status" in rt.subresources
        if subresource == "status":
            merged = copy.deepcopy(old)
            if "status" in new:
                merged["status"] = new["status"]
            else:
                merged.pop("status", None)
            new = merged
        else:
            if has_status:
                if "status" in old:
                    new["status"] = copy.deepcopy(old["status"])
                else:
                    new.pop("status", None)
            for k in ("uid", "creationTimestamp", "deletionTimestamp", "deletionGracePeriodSeconds"):
                if k in ometa:
                    meta[k] = ometa[k]
                else:
                    meta.pop(k, None)
            if rt.namespaced:
                meta["namespace"] = ometa["namespace"]
            if has_generation(rt):
                meta["generation"] = ometa.get("generation", 1)
            else:
                meta.pop("generation", None)
            meta.pop("managedFields", None)
            if not strict:
                validation.prune_unknown(rt, new)
        meta = new["metadata"]
        meta["name"] = ometa["name"]
        validation.validate(rt, new, strict)
        immutable.check(rt, old, new)
        if rt.plural == "namespaces" and subresource != "status":
            new["status"] = old.get("status", {})
        if _body(new) != _body(old) and subresource != "status" and has_generation(rt):
            meta["generation"] = ometa.get("generation", 1) + 1
        if ometa.get("deletionTimestamp") and not meta.get("finalizers"):
            if dry_run:
                return new
            return self._finish_delete(rt, new)
        if new == {**old, "metadata": {**meta, "resourceVersion": ometa["resourceVersion"]}}:
            return copy.deepcopy(old)
        if dry_run:
            return new
        if rt.plural == "customresourcedefinitions":
            self.registry.set_crd(new)
        return self._commit(rt, "MODIFIED", new, old)

    def patch(
        self,
        resource: ResourceType | str,
        namespace: str | None,
        name: str,
        body: Any,
        patch_type: str = MERGE_PATCH,
        *,
        subresource: str | None = None,
        field_manager: str | None = None,
        strict: bool = True,
        dry_run: bool = False,
    ) -> Obj:
        """Apply a patch; ``application/apply-patch+yaml`` creates the object when absent."""
        rt = self.rt(resource)
        with self._lock:
            old = self.try_get(rt, namespace, name)
            if old is None:
                if patch_type == APPLY_PATCH and subresource is None:
                    if not isinstance(body, dict):
                        raise bad_request("apply patch must be an object")
                    body = copy.deepcopy(body)
                    body.setdefault("metadata", {})["name"] = name
                    return self.create(rt, body, namespace, strict=strict, dry_run=dry_run)
                raise not_found(rt.group, rt.plural, name)
            if patch_type == JSON_PATCH:
                new = json_patch(old, body)
            elif patch_type == MERGE_PATCH:
                new = merge_patch(old, body)
            elif patch_type == STRATEGIC_PATCH:
                if not rt.builtin:
                    raise ApiError(
                        415,
                        f"the body of the request was in an unknown format - accepted media types "
                        f"include: {JSON_PATCH}, {MERGE_PATCH}, {APPLY_PATCH}",
                        reason="UnsupportedMediaType",
                    )
                from lab.kubeapi import schemas

                new = strategic_merge(
                    old, body, {"$ref": "#/$defs/" + str(schemas.def_name(rt.group, rt.version, rt.kind))}
                )
            elif patch_type == APPLY_PATCH:
                if not isinstance(body, dict):
                    raise bad_request("apply patch must be an object")
                for key in ("apiVersion", "kind"):
                    if body.get(key) and body[key] != old[key]:
                        raise bad_request(f"{key} of the applied object does not match")
                from lab.kubeapi import schemas

                schema = (
                    {"$ref": "#/$defs/" + str(schemas.def_name(rt.group, rt.version, rt.kind))}
                    if rt.builtin
                    else rt.schema
                )
                new = apply_merge(old, body, schema, rt.builtin)
            else:
                raise ApiError(
                    415,
                    f"the body of the request was in an unknown format - accepted media types "
                    f"include: {JSON_PATCH}, {MERGE_PATCH}, {APPLY_PATCH}, {STRATEGIC_PATCH}",
                    reason="UnsupportedMediaType",
                )
            if not isinstance(new, dict):
                raise bad_request("patch produced a non-object")
            new.setdefault("metadata", {})
            new_rv = new["metadata"].get("resourceVersion")
            if new_rv and new_rv != old["metadata"]["resourceVersion"]:
                raise conflict(rt.group, rt.plural, name)
            return self._replace(rt, old, new, subresource, strict, dry_run)

    def patch_status(
        self, resource: ResourceType | str, namespace: str | None, name: str, status: Obj
    ) -> Obj:
        """Merge-patch ``status`` through the status subresource (the controllers' entry point)."""
        return self.patch(resource, namespace, name, {"status": status}, MERGE_PATCH, subresource="status")

    def replace_status(
        self, resource: ResourceType | str, namespace: str | None, name: str, status: Obj
    ) -> Obj:
        """Replace the whole ``status`` (no merge)."""
        rt = self.rt(resource)
        with self._lock:
            obj = self.get(rt, namespace, name)
            obj["status"] = copy.deepcopy(status)
            return self._replace(rt, self.get(rt, namespace, name), obj, "status", True, False)

    # -- deletes --------------------------------------------------------------------------------------
    def delete(
        self,
        resource: ResourceType | str,
        namespace: str | None,
        name: str,
        *,
        propagation: str | None = None,
        preconditions: Obj | None = None,
        dry_run: bool = False,
    ) -> Obj:
        """Delete (or mark for deletion when finalizers are set); dependents are garbage-collected
        synchronously unless ``propagation == "Orphan"``. Returns the last state of the object."""
        rt = self.rt(resource)
        with self._lock:
            obj = self.get(rt, namespace, name)
            pre = preconditions or {}
            if pre.get("uid") and pre["uid"] != obj["metadata"]["uid"]:
                raise conflict(rt.group, rt.plural, name)
            if pre.get("resourceVersion") and pre["resourceVersion"] != obj["metadata"]["resourceVersion"]:
                raise conflict(rt.group, rt.plural, name)
            if dry_run:
                return obj
            uid = obj["metadata"]["uid"]
            if propagation == "Orphan":
                self._orphan(uid)
            if obj["metadata"].get("finalizers") or rt.plural == "namespaces":
                if not obj["metadata"].get("deletionTimestamp"):
                    old = copy.deepcopy(obj)
                    obj["metadata"]["deletionTimestamp"] = defaults.now()
                    obj["metadata"]["deletionGracePeriodSeconds"] = 0
                    if rt.plural == "namespaces":
                        obj["status"] = {"phase": "Terminating"}
                    obj = self._commit(rt, "MODIFIED", obj, old)
                if rt.plural != "namespaces" or obj["metadata"].get("finalizers"):
                    return obj
                self._delete_namespace_contents(name)
            if propagation != "Orphan":
                self._delete_dependents(uid)
            return self._finish_delete(rt, obj)

    def _finish_delete(self, rt: ResourceType, obj: Obj) -> Obj:
        if rt.plural == "customresourcedefinitions":
            for t in self.registry.all():
                if not t.builtin and f"{t.plural}.{t.group}" == obj["metadata"]["name"]:
                    for item in self.list(t):
                        self._finish_delete(t, item)
            self.registry.remove_crd(obj["metadata"]["name"])
        current = self._bucket(rt).get((obj["metadata"].get("namespace", ""), obj["metadata"]["name"]))
        return self._commit(rt, "DELETED", copy.deepcopy(current or obj), current)

    def _orphan(self, uid: str) -> None:
        for rt, dep in self._dependents(uid):
            old = copy.deepcopy(dep)
            dep["metadata"]["ownerReferences"] = [
                r for r in dep["metadata"]["ownerReferences"] if r["uid"] != uid
            ]
            if not dep["metadata"]["ownerReferences"]:
                del dep["metadata"]["ownerReferences"]
            self._commit(rt, "MODIFIED", dep, old)

    def _dependents(self, uid: str) -> Iterator[tuple[ResourceType, Obj]]:
        for rt in self.registry.all():
            for dep in list(self._bucket(rt).values()):
                if any(r.get("uid") == uid for r in dep["metadata"].get("ownerReferences") or []):
                    yield rt, dep

    def _delete_dependents(self, uid: str) -> None:
        for rt, dep in list(self._dependents(uid)):
            meta = dep["metadata"]
            if self._bucket(rt).get((meta.get("namespace", ""), meta["name"])) is not None:
                self.delete(rt, meta.get("namespace"), meta["name"])

    def _delete_namespace_contents(self, ns: str) -> None:
        for rt in self.registry.all():
            if rt.namespaced:
                for (ons, name), _ in list(self._bucket(rt).items()):
                    if ons == ns:
                        obj = self._bucket(rt).get((ons, name))
                        if obj is not None:
                            obj = copy.deepcopy(obj)
                            obj["metadata"].pop("finalizers", None)
                            self._finish_delete(rt, obj)
