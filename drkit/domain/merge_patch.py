"""RFC 7386 JSON merge patch, the format of :meth:`drkit.adapters.kube.ClusterApi.patch`. Pure.

One implementation for every place that applies such a patch itself: the in-memory cluster
(:mod:`drkit.testing.kube`) and the lab's kube-apiserver.
"""

from __future__ import annotations

import copy
from typing import Any


def merge_patch(target: Any, patch: Any) -> Any:
    """``target`` with ``patch`` merged in, as RFC 7386 says; neither argument is changed.

    A patch that is not an object replaces the target; in an object, ``None`` (JSON ``null``)
    removes the key and any other value is merged into the target's value of that key.
    """
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    out = copy.deepcopy(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            out.pop(key, None)
        else:
            out[key] = merge_patch(out.get(key), value)
    return out
