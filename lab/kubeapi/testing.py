"""Helpers for tests that drive the fake kube-apiserver: polling and minimal manifests."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, TypeVar

T = TypeVar("T")


def wait_for(fn: Callable[[], T], timeout: float = 10.0, what: str = "condition") -> T:
    """Poll ``fn`` until it returns a truthy value (no fixed sleeps)."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        last = fn()
        if last:
            return last
        time.sleep(0.05)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}; last value: {last!r}")


def deployment(name: str, replicas: int = 1, image: str = "nginx:1.27") -> dict[str, Any]:
    """A minimal Deployment manifest."""
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "labels": {"app": name}},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": {"app": name}},
                "spec": {
                    "containers": [{"name": "main", "image": image, "env": [{"name": "A", "value": "1"}]}]
                },
            },
        },
    }


def pv(name: str, handle: str, size: str = "1Gi", sc: str = "rbd") -> dict[str, Any]:
    """A static CSI PersistentVolume."""
    return {
        "apiVersion": "v1",
        "kind": "PersistentVolume",
        "metadata": {"name": name},
        "spec": {
            "capacity": {"storage": size},
            "accessModes": ["ReadWriteOnce"],
            "storageClassName": sc,
            "csi": {"driver": "rbd.csi.ceph.com", "volumeHandle": handle},
        },
    }


def pvc(name: str, volume: str | None, size: str = "1Gi", sc: str = "rbd") -> dict[str, Any]:
    """A PersistentVolumeClaim, optionally pre-bound to ``volume``."""
    spec: dict[str, Any] = {
        "accessModes": ["ReadWriteOnce"],
        "storageClassName": sc,
        "resources": {"requests": {"storage": size}},
    }
    if volume:
        spec["volumeName"] = volume
    return {"apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": {"name": name}, "spec": spec}
