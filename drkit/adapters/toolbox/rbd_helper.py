"""Copy a replica's latest synced mirror snapshot to a plain image, with librbd (``python3-rbd``).

Run by :meth:`drkit.adapters.rbd.RbdCli.copy_latest_synced` as ``python3 -c <this file> <json>``
where ``rbd`` runs (this machine, or Rook's toolbox pod), with that Python: the standard library,
``rados`` and ``rbd`` only, and nothing of ``drkit``. ``argv[1]`` is a JSON document: ``pool``,
``image``, ``dest``, ``mark`` (the image metadata key of a finished copy), ``timeout``,
``attempts``, and in local mode ``cluster``, ``conf``, ``keyring`` and ``id``.

It prints one JSON line and exits 0 (the copy's record), 3 (``dest`` is a mirrored image, never a
scratch copy), 4 (``image`` is primary here, or has no non-primary mirror snapshot) or 5 (a sync
kept starting during the copy).

What it copies: the image's HEAD while the secondary is idle. Measured in the lab (Ceph 16.2):
rbd-mirror creates a non-primary snapshot *before* it writes that sync's data to HEAD, so reading
the newest complete non-primary snapshot by id gives the state *before* that sync (a write made
before the primary's snapshot was missing from it), while HEAD holds it. HEAD equals the newest
complete snapshot's primary point exactly while no newer (incomplete) snapshot exists, and a sync
always starts by creating one: so the copy is kept only when the newest mirror snapshot is the
same complete non-primary one before and after it; otherwise it is thrown away and retried.
"""

from __future__ import annotations

import json
import sys
import time
from typing import Any, NoReturn


def out(doc: dict[str, Any], code: int = 0) -> NoReturn:
    """Print ``doc`` as the one JSON line and exit with ``code``."""
    print(json.dumps(doc))
    sys.exit(code)


def connect(a: dict[str, Any]) -> Any:
    """The pool's I/O context, connected as ``a`` says (local mode: cluster, conf, keyring, id)."""
    import rados

    kw = {"clustername": a.get("cluster") or "ceph"}
    if a.get("id"):
        kw["rados_id"] = a["id"]
    cluster = rados.Rados(**kw)
    if a.get("conf"):
        cluster.conf_read_file(a["conf"])
    else:
        cluster.conf_read_file()
        cluster.conf_parse_env()
    if a.get("keyring"):
        cluster.conf_set("keyring", a["keyring"])
    cluster.connect(timeout=int(a.get("timeout", 30)))
    return cluster.open_ioctx(a["pool"])


def record(rbd: Any, ioctx: Any, name: str, mark: str) -> dict[str, Any] | None:
    """The record a finished copy ``name`` carries (None: unfinished); exits 3 when it is mirrored."""
    with rbd.Image(ioctx, name, read_only=True) as img:
        if img.mirror_image_get_info().get("state") != rbd.RBD_MIRROR_IMAGE_DISABLED:
            out({"error": "mirrored", "message": f"image {name} is mirrored: not a scratch copy"}, 3)
        try:
            done: dict[str, Any] = json.loads(img.metadata_get(mark))
        except (KeyError, rbd.Error):
            return None
        return done


def newest(rbd: Any, img: Any) -> dict[str, Any] | None:
    """The newest mirror snapshot of ``img``: id, non_primary, complete, primary_snap_id."""
    non_primary = (rbd.RBD_SNAP_MIRROR_STATE_NON_PRIMARY, rbd.RBD_SNAP_MIRROR_STATE_NON_PRIMARY_DEMOTED)
    best: dict[str, Any] | None = None
    for snap in img.list_snaps():
        if img.snap_get_namespace_type(snap["id"]) != rbd.RBD_SNAP_NAMESPACE_TYPE_MIRROR:
            continue
        if best is None or snap["id"] > best["id"]:
            ns = img.snap_get_mirror_namespace(snap["id"])
            best = {
                "id": snap["id"],
                "non_primary": ns["state"] in non_primary,
                "complete": bool(ns.get("complete")),
                "primary_snap_id": ns.get("primary_snap_id"),
            }
    return best


def main(argument: str) -> NoReturn:
    """Copy as the module docstring says; always exits (see there for the codes)."""
    import rbd

    a: dict[str, Any] = json.loads(argument)
    mark = a["mark"]
    ioctx = connect(a)
    lib = rbd.RBD()
    if a["dest"] in lib.list(ioctx):
        done = record(rbd, ioctx, a["dest"], mark)
        if done is not None:
            out(dict(done, reused=True))
        lib.remove(ioctx, a["dest"])  # an unfinished copy of an earlier attempt
    started, why = time.monotonic(), ""
    for attempt in range(1, int(a.get("attempts", 40)) + 1):
        with rbd.Image(ioctx, a["image"], read_only=True) as img:
            if img.mirror_image_get_info().get("primary"):
                out(
                    {"error": "primary", "message": f"{a['image']} is primary here: not a replica to copy"}, 4
                )
            before = newest(rbd, img)
            if before is None or not before["non_primary"]:
                out(
                    {"error": "no-snapshot", "message": f"{a['image']} has no non-primary mirror snapshot"}, 4
                )
            if not before["complete"]:
                why = f"a sync is in flight (snapshot {before['id']} incomplete)"
                time.sleep(0.5)
                continue
            img.copy(ioctx, a["dest"])
            after = newest(rbd, img)
        if after == before:
            done = {
                "dest": a["dest"],
                "snap_id": before["id"],
                "primary_snap_id": before["primary_snap_id"],
                "attempts": attempt,
                "seconds": round(time.monotonic() - started, 3),
            }
            with rbd.Image(ioctx, a["dest"]) as copy:
                copy.metadata_set(mark, json.dumps(done))
            out(done)
        why = f"a sync started during the copy (snapshot {before['id']} -> {after and after['id']})"
        lib.remove(ioctx, a["dest"])
    out({"error": "busy", "message": why}, 5)


if __name__ == "__main__":
    main(sys.argv[1])
