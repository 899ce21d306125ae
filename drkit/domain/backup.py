"""The backup engine's pure parts, one import away; each lives in its own module.

A backup run goes (the I/O is the caller's, :mod:`drkit.jobs.backup`):

1. LIST what :func:`drkit.domain.selection.plan_lists` asks for, keep ``select_objects``;
2. :func:`~drkit.domain.backup_plan.plan_backup` normalizes each object, renders canonical YAML,
   computes its content address and blob key, and lists only the blobs no earlier index knows;
3. upload each :class:`~drkit.domain.backup_plan.Upload` with ``if_none_match=True`` (a blob is
   write-once; one left by a killed run is read back and referenced);
4. write the run's index (:mod:`drkit.domain.backup_index`) LAST, then ``latest``: a compact full
   index, or a pointer to the previous run's full index when nothing changed.

Restoring reads the index, checks each blob (:mod:`drkit.domain.blobs`) and applies the objects in
the app's restore order (:mod:`drkit.domain.restore_order`).
"""

from __future__ import annotations

from drkit.domain.backup_index import (
    INDEX_FORMAT,
    POINTER_FORMAT,
    BackupIndex,
    IndexEntry,
    IndexPointer,
    RunFacts,
    RunMetadata,
    StoredEntry,
    StoredIndex,
    decode_index,
    encode_index,
    encode_pointer,
    resolve_pointer,
    same_entries,
)
from drkit.domain.backup_plan import (
    BackupPlan,
    Upload,
    build_index,
    canonical_yaml,
    entry_for_stored,
    known_blobs,
    plan_backup,
)
from drkit.domain.blobs import addressed_plaintext, open_blob
from drkit.domain.restore_order import OTHER_KINDS, RESTORE_ORDER, WORKLOAD, restore_rank, sort_for_restore

__all__ = [
    "INDEX_FORMAT",
    "OTHER_KINDS",
    "POINTER_FORMAT",
    "RESTORE_ORDER",
    "WORKLOAD",
    "BackupIndex",
    "BackupPlan",
    "IndexEntry",
    "IndexPointer",
    "RunFacts",
    "RunMetadata",
    "StoredEntry",
    "StoredIndex",
    "Upload",
    "addressed_plaintext",
    "build_index",
    "canonical_yaml",
    "decode_index",
    "encode_index",
    "encode_pointer",
    "entry_for_stored",
    "known_blobs",
    "open_blob",
    "plan_backup",
    "resolve_pointer",
    "restore_rank",
    "same_entries",
    "sort_for_restore",
]
