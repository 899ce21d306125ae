"""What the two lab sites hold at start, after the Alauda Nexus DR procedure.

Site A runs Nexus on a mirrored RBD image; site B has only the namespace, the Secret and the
cluster-level storage objects ("hot data, cold compute"). Site A also runs a second, plain app
(:func:`web_app`): a StatefulSet with one claim on its own mirrored image, protected through
configuration alone.
"""

from __future__ import annotations

import base64
from typing import Any

NAMESPACE = "nexus-dr"
NEXUS_NAME = "nexus-ddrs"
PVC_NAME = f"nexus-data-{NEXUS_NAME}-nxrm-ha-0"
PV_NAME = "pvc-231a9021-2548-433e-8583-f7b56d74aca7"
IMAGE_NAME = "csi-vol-459e6f28-a158-4ae9-b5da-163448c35119"
POOL = "replicapool"
STORAGE_CLASS = "ceph-rbd"
VR_CLASS = "rbd-volumereplicationclass"
ADMIN_SECRET = "nexus-root-password"
CSI_DRIVER = "rook-ceph.rbd.csi.ceph.com"
TOOLBOX_NS = "rook-ceph"
TOOLBOX = "rook-ceph-tools"
STANDBY_TOOLBOX = "standby-tools"
"""A toolbox StatefulSet (same image and label as Rook's): its one pod has a fixed name,
``standby-tools-0``, so the shipped RBAC grants exec on that pod only (``ceph.toolbox`` names it)."""
VOLUME_HANDLE = "0001-0009-rook-ceph-0000000000000002-459e6f28-a158-4ae9-b5da-163448c35119"
PROVISIONER_IDENTITY = "1763446982673-7963-rook-ceph.rbd.csi.ceph.com"
WEB_NAMESPACE = "web-dr"
WEB_NAME = "web"
WEB_PVC = f"data-{WEB_NAME}-0"
WEB_PV = "pvc-7c1e5d2a-90b4-4f3e-a1d6-0b5f2e8c4a11"
WEB_IMAGE = "csi-vol-7c1e5d2a-90b4-4f3e-a1d6-0b5f2e8c4a11"

Obj = dict[str, Any]


def _meta(name: str, namespace: str | None = None, **labels: str) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name}
    if namespace:
        meta["namespace"] = namespace
    if labels:
        meta["labels"] = labels
    return meta


def _mirrored_pv(
    name: str, claim: tuple[str, str], size: str, handle: str, attributes: dict[str, str]
) -> Obj:
    """A PV the Ceph CSI driver provisioned on a mirrored image, bound to ``claim`` (namespace, name)."""
    namespace, claim_name = claim
    return {
        "apiVersion": "v1",
        "kind": "PersistentVolume",
        "metadata": {"name": name, "annotations": {"pv.kubernetes.io/provisioned-by": CSI_DRIVER}},
        "spec": {
            "capacity": {"storage": size},
            "accessModes": ["ReadWriteOnce"],
            "persistentVolumeReclaimPolicy": "Delete",
            "storageClassName": STORAGE_CLASS,
            "volumeMode": "Filesystem",
            "claimRef": {
                "apiVersion": "v1",
                "kind": "PersistentVolumeClaim",
                "namespace": namespace,
                "name": claim_name,
            },
            "csi": {
                "driver": CSI_DRIVER,
                "fsType": "ext4",
                "volumeHandle": handle,
                "volumeAttributes": attributes,
            },
        },
    }


def _claim(name: str, namespace: str, labels: dict[str, str], size: str, volume: str) -> Obj:
    """A claim of ``size`` on the storage class, bound to the PV ``volume``."""
    return {
        "apiVersion": "v1",
        "kind": "PersistentVolumeClaim",
        "metadata": _meta(name, namespace, **labels),
        "spec": {
            "accessModes": ["ReadWriteOnce"],
            "resources": {"requests": {"storage": size}},
            "storageClassName": STORAGE_CLASS,
            "volumeMode": "Filesystem",
            "volumeName": volume,
        },
    }


def _volume_replication(claim: str, namespace: str, labels: dict[str, str], *, auto_resync: bool) -> Obj:
    """The primary VolumeReplication of ``claim`` (named after it, as in the DR procedure)."""
    return {
        "apiVersion": "replication.storage.openshift.io/v1alpha1",
        "kind": "VolumeReplication",
        "metadata": _meta(claim, namespace, **labels),
        "spec": {
            "autoResync": auto_resync,
            "volumeReplicationClass": VR_CLASS,
            "replicationState": "primary",
            "dataSource": {"apiGroup": "", "kind": "PersistentVolumeClaim", "name": claim},
        },
    }


def common(admin_password: str) -> list[Obj]:
    """Objects both sites have: namespaces, the admin Secret, storage classes and the Rook toolbox."""
    app_labels = {"app.kubernetes.io/part-of": "nexus-ddrs"}
    return [
        {"apiVersion": "v1", "kind": "Namespace", "metadata": _meta(NAMESPACE)},
        {"apiVersion": "v1", "kind": "Namespace", "metadata": _meta(TOOLBOX_NS)},
        {"apiVersion": "v1", "kind": "Namespace", "metadata": _meta(WEB_NAMESPACE)},
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": _meta(ADMIN_SECRET, NAMESPACE, **app_labels),
            "type": "Opaque",
            "data": {"password": base64.b64encode(admin_password.encode()).decode()},
        },
        {
            "apiVersion": "storage.k8s.io/v1",
            "kind": "StorageClass",
            "metadata": _meta(STORAGE_CLASS),
            "provisioner": CSI_DRIVER,
            "parameters": {
                "clusterID": "rook-ceph",
                "pool": POOL,
                "imageFormat": "2",
                "imageFeatures": "layering",
            },
            "reclaimPolicy": "Delete",
            "volumeBindingMode": "Immediate",
        },
        {
            "apiVersion": "replication.storage.openshift.io/v1alpha1",
            "kind": "VolumeReplicationClass",
            "metadata": _meta(VR_CLASS),
            "spec": {
                "provisioner": CSI_DRIVER,
                "parameters": {"mirroringMode": "snapshot", "schedulingInterval": "1m"},
            },
        },
        {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": _meta(TOOLBOX, TOOLBOX_NS, app=TOOLBOX),
            "spec": {
                "replicas": 1,
                "selector": {"matchLabels": {"app": TOOLBOX}},
                "template": {
                    "metadata": {"labels": {"app": TOOLBOX}},
                    "spec": {
                        "containers": [
                            {
                                "name": TOOLBOX,
                                "image": "quay.io/ceph/ceph:v16.2.15",
                                "command": ["sleep", "infinity"],
                            }
                        ]
                    },
                },
            },
        },
        {
            "apiVersion": "apps/v1",
            "kind": "StatefulSet",
            "metadata": _meta(STANDBY_TOOLBOX, TOOLBOX_NS, app=TOOLBOX),
            "spec": {
                "replicas": 1,
                "serviceName": STANDBY_TOOLBOX,
                "selector": {"matchLabels": {"app": TOOLBOX, "toolbox": STANDBY_TOOLBOX}},
                "template": {
                    "metadata": {"labels": {"app": TOOLBOX, "toolbox": STANDBY_TOOLBOX}},
                    "spec": {
                        "containers": [
                            {
                                "name": TOOLBOX,
                                "image": "quay.io/ceph/ceph:v16.2.15",
                                "command": ["sleep", "infinity"],
                            }
                        ]
                    },
                },
            },
        },
    ]


def primary_app(external_url: str) -> list[Obj]:
    """The app as it runs on site A: PV on the mirrored image, PVC, VolumeReplication, Nexus and more."""
    labels = {"app.kubernetes.io/part-of": "nexus-ddrs"}
    attributes = {
        "clusterID": "rook-ceph",
        "imageFeatures": "layering",
        "imageFormat": "2",
        "imageName": IMAGE_NAME,
        "journalPool": POOL,
        "pool": POOL,
        "storage.kubernetes.io/csiProvisionerIdentity": PROVISIONER_IDENTITY,
    }
    return [
        _mirrored_pv(PV_NAME, (NAMESPACE, PVC_NAME), "5Gi", VOLUME_HANDLE, attributes),
        _claim(PVC_NAME, NAMESPACE, labels, "5Gi", PV_NAME),
        _volume_replication(PVC_NAME, NAMESPACE, labels, auto_resync=True),
        nexus_cr(external_url),
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": _meta(f"{NEXUS_NAME}-nxrm-ha-properties", NAMESPACE, **labels),
            "data": {"nexus.properties": "nexus.datastore.enabled=true\n"},
        },
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": _meta(f"{NEXUS_NAME}-nxrm-ha", NAMESPACE, **labels),
            "spec": {
                "type": "ClusterIP",
                "selector": {"app.kubernetes.io/instance": NEXUS_NAME},
                "ports": [{"name": "http", "port": 8081, "targetPort": 8081, "protocol": "TCP"}],
            },
        },
        {
            "apiVersion": "networking.k8s.io/v1",
            "kind": "Ingress",
            "metadata": _meta(NEXUS_NAME, NAMESPACE, **labels),
            "spec": {
                "rules": [
                    {
                        "host": "nexus-ddrs.lab.local",
                        "http": {
                            "paths": [
                                {
                                    "path": "/",
                                    "pathType": "Prefix",
                                    "backend": {
                                        "service": {"name": f"{NEXUS_NAME}-nxrm-ha", "port": {"number": 8081}}
                                    },
                                }
                            ]
                        },
                    }
                ]
            },
        },
    ]


def nexus_cr(external_url: str) -> Obj:
    """The Nexus custom resource of the Alauda operator, as in the DR procedure."""
    return {
        "apiVersion": "operator.alaudadevops.io/v1alpha1",
        "kind": "Nexus",
        "metadata": _meta(NEXUS_NAME, NAMESPACE, **{"app.kubernetes.io/part-of": "nexus-ddrs"}),
        "spec": {
            "externalURL": external_url,
            "helmValues": {
                "pvc": {"storage": "5Gi", "volumeClaimTemplate": {"enabled": True}},
                "storageClass": {"name": STORAGE_CLASS},
            },
        },
    }


def web_app() -> list[Obj]:
    """The plain app on site A: PV on its own mirrored image, its claim, a VolumeReplication, the
    StatefulSet (which the lab runs as :mod:`lab.webapp_sim`) and a Service."""
    labels = {"app": WEB_NAME}
    handle = "0001-0009-rook-ceph-0000000000000002-7c1e5d2a-90b4-4f3e-a1d6-0b5f2e8c4a11"
    attributes = {"clusterID": "rook-ceph", "imageName": WEB_IMAGE, "pool": POOL}
    return [
        _mirrored_pv(WEB_PV, (WEB_NAMESPACE, WEB_PVC), "1Gi", handle, attributes),
        _claim(WEB_PVC, WEB_NAMESPACE, labels, "1Gi", WEB_PV),
        _volume_replication(WEB_PVC, WEB_NAMESPACE, labels, auto_resync=False),
        {
            "apiVersion": "apps/v1",
            "kind": "StatefulSet",
            "metadata": {
                **_meta(WEB_NAME, WEB_NAMESPACE, **labels),
                "annotations": {"lab.standby.dev/simulate": "webapp"},
            },
            "spec": {
                "replicas": 1,
                "serviceName": WEB_NAME,
                "selector": {"matchLabels": labels},
                "template": {
                    "metadata": {"labels": labels},
                    "spec": {
                        "containers": [
                            {
                                "name": WEB_NAME,
                                "image": "registry.local/web:1.0",
                                "volumeMounts": [{"name": "data", "mountPath": "/data"}],
                            }
                        ]
                    },
                },
                "volumeClaimTemplates": [
                    {
                        "metadata": {"name": "data"},
                        "spec": {
                            "accessModes": ["ReadWriteOnce"],
                            "resources": {"requests": {"storage": "1Gi"}},
                            "storageClassName": STORAGE_CLASS,
                        },
                    }
                ],
            },
        },
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": _meta(WEB_NAME, WEB_NAMESPACE, **labels),
            "spec": {
                "type": "ClusterIP",
                "selector": labels,
                "ports": [{"name": "http", "port": 8080, "targetPort": 8080, "protocol": "TCP"}],
            },
        },
    ]
