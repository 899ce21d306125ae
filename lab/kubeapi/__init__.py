"""A strict fake kube-apiserver for the Standby lab, spoken to over real HTTP by kubectl (1.31) and the
official ``kubernetes`` Python client.

Quick start::

    from lab.kubeapi import KubeApiServer, allowlist_handler
    srv = KubeApiServer(state_dir="/tmp/site-a", pvc_bind_delay=0.5)
    srv.start()                       # returns the bound port; srv.url == "http://127.0.0.1:<port>"
    ...
    srv.stop()                        # state is written to <state_dir>/kubeapi-state.json

Constructor knobs: ``host``, ``port`` (0 = free port), ``state_dir`` (load on start, save on change,
debounced, atomic rename), ``exec_handler``, ``pod_can_start``, ``tick_interval`` (1 s),
``pvc_bind_delay``, ``pod_start_delay``, ``workload_delay``, ``builtin_controllers``, ``verbose``.

Store API (``srv.store``; every method takes/returns plain dicts, deep-copied; ``resource`` is a loose
reference such as ``"pods"``, ``"Deployment"``, ``"volumereplications"``, ``"apps/v1/deployments"``)::

    get(resource, namespace, name)            -> obj       (ApiError 404 if absent)
    try_get(resource, namespace, name)        -> obj | None
    list(resource, namespace=None, match=None)-> [obj]     (match: callable(obj) -> bool)
    create(resource, obj, namespace=None, keep_status=False)
    update(resource, obj, namespace=None, subresource=None)       (stale resourceVersion -> 409)
    patch(resource, namespace, name, body, patch_type=MERGE_PATCH, subresource=None)
    patch_status(resource, namespace, name, status)   (merge patch via /status)
    replace_status(resource, namespace, name, status)
    delete(resource, namespace, name, propagation=None)   (cascades to ownerReferences dependents)
    resource_version, events_since(rv), wait_change(rv, timeout)

Errors are :class:`lab.kubeapi.errors.ApiError` (``code``, ``reason``, ``message``, ``status()``).

Controllers: ``srv.add_controller(fn)`` where ``fn(store, event_type, obj)`` runs in the controller thread
for every change (``ADDED``/``MODIFIED``/``DELETED``, ``obj`` is the new state) and every tick
(``TICK``, ``obj=None``). :class:`lab.kubeapi.controllers.Reconciler` is a helper for delayed, level-based
controllers. Built-in: PV/PVC static binding (:mod:`lab.kubeapi.binding`), Deployment → ReplicaSet → Pods,
StatefulSet → Pods + PVCs, pod start-up gated by ``pod_can_start(store, pod) -> (bool, reason)``
(``srv.set_pod_can_start``; :func:`lab.kubeapi.workloads.pvcs_bound` is a ready-made hook).

Exec: ``exec_handler(namespace, pod, container, argv, stdin) -> (exit_code, stdout, stderr)``;
:func:`allowlist_handler(allowed, env, pod_label)` runs allowed commands as subprocesses (no shell, timeout)
in pods carrying ``pod_label``, else exits 126. ``srv.set_exec_handler(h)``.

Admin endpoints (not under /api)::

    POST   /_fake/faults   {"match": {"method": "GET", "path_regex": "...", "verb": "list"},
                            "status": 503, "count": 2, "delay_seconds": 0, "message": "..."}  (or a list)
    GET    /_fake/faults   DELETE /_fake/faults (clear)
    GET    /_fake/stats    {"total", "by_verb", "by_resource", "by_code"}; DELETE resets
    GET    /_fake/state    the full store snapshot

Python equivalents: ``srv.add_fault(dict_or_Fault)``, ``srv.clear_faults()``, ``srv.stats.snapshot()``.

CLI: ``python -m lab.kubeapi serve --port P --state-dir D [--exec-allow rbd,ceph] [--exec-env K=V]...
[--exec-pod-label app=rook-ceph-tools] [--controllers module:function]...`` prints ``READY <url>``.

Authentication and RBAC (``admin_token=...``, ``--admin-token-file``; see :mod:`lab.kubeapi.auth` and
:mod:`lab.kubeapi.rbac`): bearer tokens (the admin's, and ServiceAccount tokens minted through
``serviceaccounts/<name>/token``), Role/ClusterRole/RoleBinding/ClusterRoleBinding evaluated as Kubernetes
does, the real 401 and 403 Status bodies, and a JSON-lines audit log of every request. Without an admin
token every request is the superuser (any token works). ``tls=True`` or ``tls_dir`` serves HTTPS with a
self-signed certificate (``srv.ca_file``): kubectl sends a kubeconfig's token only over TLS.

Known gaps: RBAC has no aggregated ClusterRoles and no escalate/bind checks; no protobuf
(report v1.31 so kubectl sends JSON); approximate strategic merge (schema-driven from the offline OpenAPI
schemas); server-side apply has no field ownership (fields removed from an applied manifest stay, no
conflicts); pagination is not a snapshot (continue tokens resume by key on current data); watch history
holds the last 20000 changes (older resourceVersions get 410 Expired); pods run no containers (no logs,
exec goes to the exec handler); admission is only ValidatingAdmissionPolicy, for the subset of CEL and fields
that Standby's shipped policy uses (:mod:`lab.kubeapi.admission`: a policy using more is refused with 422,
never stored unenforced; deletecollection is not admitted), no mutating admission, no default StorageClass,
no quota, no webhooks; deletion is
immediate (no graceful termination), garbage collection is synchronous; unknown fields answer 422 (the
brief's choice; a real server answers 400 BadRequest "strict decoding error").
"""

from lab.kubeapi.controllers import TICK, Reconciler
from lab.kubeapi.errors import ApiError
from lab.kubeapi.exec import AllowlistHandler, allowlist_handler
from lab.kubeapi.faults import Fault
from lab.kubeapi.kubeconfig import write_kubeconfig
from lab.kubeapi.server import KubeApiServer
from lab.kubeapi.store import Event, Store
from lab.kubeapi.workloads import pvcs_bound

__all__ = [
    "TICK",
    "AllowlistHandler",
    "ApiError",
    "Event",
    "Fault",
    "KubeApiServer",
    "Reconciler",
    "Store",
    "allowlist_handler",
    "pvcs_bound",
    "write_kubeconfig",
]
