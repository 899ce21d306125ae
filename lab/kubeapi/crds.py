"""CustomResourceDefinitions installed when the fake apiserver starts with an empty state."""

from __future__ import annotations

from typing import Any

_STR = {"type": "string"}
_TIME = {"type": "string", "format": "date-time"}

_CONDITION: dict[str, Any] = {
    "type": "object",
    "required": ["type", "status"],
    "properties": {
        "type": _STR,
        "status": {"type": "string", "enum": ["True", "False", "Unknown"]},
        "reason": _STR,
        "message": _STR,
        "observedGeneration": {"type": "integer", "format": "int64"},
        "lastTransitionTime": _TIME,
    },
}


def _crd(
    group: str,
    kind: str,
    plural: str,
    scope: str,
    version: str,
    schema: dict[str, Any],
    columns: list[dict[str, Any]] | None = None,
    short: list[str] | None = None,
) -> dict[str, Any]:
    names: dict[str, Any] = {
        "kind": kind,
        "listKind": kind + "List",
        "plural": plural,
        "singular": kind.lower(),
    }
    if short:
        names["shortNames"] = short
    ver: dict[str, Any] = {
        "name": version,
        "served": True,
        "storage": True,
        "schema": {"openAPIV3Schema": schema},
        "subresources": {"status": {}},
    }
    if columns:
        ver["additionalPrinterColumns"] = columns
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": f"{plural}.{group}"},
        "spec": {"group": group, "names": names, "scope": scope, "versions": [ver]},
    }


def _root(spec: dict[str, Any], status: dict[str, Any]) -> dict[str, Any]:
    return {
        "type": "object",
        "properties": {
            "apiVersion": _STR,
            "kind": _STR,
            "metadata": {"type": "object"},
            "spec": spec,
            "status": status,
        },
    }


VOLUME_REPLICATION = _crd(
    "replication.storage.openshift.io",
    "VolumeReplication",
    "volumereplications",
    "Namespaced",
    "v1alpha1",
    _root(
        {
            "type": "object",
            "required": ["volumeReplicationClass", "replicationState", "dataSource"],
            "properties": {
                "volumeReplicationClass": {
                    "type": "string",
                    "x-kubernetes-validations": [
                        {"rule": "self == oldSelf", "message": "field is immutable"}
                    ],
                },
                "replicationState": {"type": "string", "enum": ["primary", "secondary", "resync"]},
                "dataSource": {
                    "type": "object",
                    "required": ["kind", "name"],
                    "properties": {"apiGroup": _STR, "kind": _STR, "name": _STR},
                    "x-kubernetes-validations": [
                        {"rule": "self == oldSelf", "message": "field is immutable"}
                    ],
                },
                "autoResync": {"type": "boolean"},
            },
        },
        {
            "type": "object",
            "properties": {
                "state": {"type": "string", "enum": ["Primary", "Secondary", "Unknown"]},
                "message": _STR,
                "observedGeneration": {"type": "integer", "format": "int64"},
                "lastStartTime": _TIME,
                "lastCompletionTime": _TIME,
                "lastSyncTime": _TIME,
                "lastSyncDuration": _STR,
                "lastSyncBytes": {"type": "integer", "format": "int64"},
                "conditions": {"type": "array", "items": _CONDITION},
            },
        },
    ),
    columns=[
        {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"},
        {"name": "VolumeReplicationClass", "type": "string", "jsonPath": ".spec.volumeReplicationClass"},
        {"name": "PVCName", "type": "string", "jsonPath": ".spec.dataSource.name"},
        {"name": "DesiredState", "type": "string", "jsonPath": ".spec.replicationState"},
        {"name": "CurrentState", "type": "string", "jsonPath": ".status.state"},
    ],
    short=["vr"],
)

VOLUME_REPLICATION_CLASS = _crd(
    "replication.storage.openshift.io",
    "VolumeReplicationClass",
    "volumereplicationclasses",
    "Cluster",
    "v1alpha1",
    _root(
        {
            "type": "object",
            "required": ["provisioner"],
            "properties": {
                "provisioner": {"type": "string"},
                "parameters": {"type": "object", "additionalProperties": {"type": "string"}},
            },
        },
        {"type": "object", "x-kubernetes-preserve-unknown-fields": True},
    ),
    columns=[{"name": "Provisioner", "type": "string", "jsonPath": ".spec.provisioner"}],
    short=["vrc"],
)

NEXUS = _crd(
    "operator.alaudadevops.io",
    "Nexus",
    "nexuses",
    "Namespaced",
    "v1alpha1",
    _root(
        {
            "type": "object",
            "properties": {
                "externalURL": {"type": "string"},
                "helmValues": {"type": "object", "x-kubernetes-preserve-unknown-fields": True},
            },
        },
        {"type": "object", "x-kubernetes-preserve-unknown-fields": True},
    ),
    columns=[{"name": "URL", "type": "string", "jsonPath": ".spec.externalURL"}],
)

PREINSTALLED: list[dict[str, Any]] = [VOLUME_REPLICATION, VOLUME_REPLICATION_CLASS, NEXUS]
