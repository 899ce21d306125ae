"""Restore order as data: which kinds are applied first when a backup is restored. Pure.

An order is a sequence of ranks, each a set of kind names. Two placeholders: :data:`OTHER_KINDS`
(``*``) for every kind not named, and :data:`WORKLOAD` (``@workload``) for the app's workload kind.
The default (:data:`RESTORE_ORDER`) is namespaces, Secrets and ConfigMaps, PVs, PVCs,
VolumeReplications, every other kind, the workload, then Services and Ingresses: creating the
workload starts the app, so whatever it may need must exist by then; Services and Ingresses only
expose it. An app may set its own order (``restore.order`` in its configuration); without a ``*`` rank, kinds
it does not name come last.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Protocol, TypeVar

OTHER_KINDS = "*"
"""Placeholder in :data:`RESTORE_ORDER` for every kind not named elsewhere."""
WORKLOAD = "@workload"
"""Placeholder in :data:`RESTORE_ORDER` for the app's workload kind (its CR)."""
RESTORE_ORDER: tuple[tuple[str, ...], ...] = (
    ("Namespace",),
    ("Secret", "ConfigMap"),
    ("PersistentVolume",),
    ("PersistentVolumeClaim",),
    ("VolumeReplication",),
    (OTHER_KINDS,),
    (WORKLOAD,),
    ("Service", "Ingress"),
)


T = TypeVar("T")


class _Kinded(Protocol):
    @property
    def kind(self) -> str: ...


def check_order(order: Sequence[Sequence[str]]) -> tuple[tuple[str, ...], ...]:
    """``order`` as tuples; :class:`ValueError` when a rank is empty or a kind is named twice."""
    seen: dict[str, int] = {}
    for rank, kinds in enumerate(order):
        if not kinds:
            raise ValueError(f"rank {rank} is empty; list at least one kind, '*' or '@workload'")
        for kind in kinds:
            if not kind or kind.strip() != kind:
                raise ValueError(
                    f"rank {rank}: {kind!r} is not a kind name (e.g. Secret, '*' or '@workload')"
                )
            if kind in seen:
                raise ValueError(f"{kind!r} is in rank {seen[kind]} and again in rank {rank}; name it once")
            seen[kind] = rank
    return tuple(tuple(kinds) for kinds in order)


def restore_rank(kind: str, workload_kind: str | None, order: Sequence[Sequence[str]] = RESTORE_ORDER) -> int:
    """Position of ``kind`` in ``order``; the workload kind wins over a plain kind name."""
    other = len(order)
    for rank, kinds in enumerate(order):
        if WORKLOAD in kinds and workload_kind is not None and kind == workload_kind:
            return rank
        if OTHER_KINDS in kinds:
            other = rank
    for rank, kinds in enumerate(order):
        if kind in kinds:
            return rank
    return other


def sort_for_restore(
    items: Iterable[T],
    kind_of: Callable[[T], str],
    workload: _Kinded | str | None,
    order: Sequence[Sequence[str]] = RESTORE_ORDER,
) -> list[T]:
    """``items`` in restore order; a stable sort, so items of one rank keep their order.

    ``workload`` is the app's workload kind (a name, or anything with a ``kind``).
    """
    workload_kind = workload if isinstance(workload, str) or workload is None else workload.kind
    return sorted(items, key=lambda item: restore_rank(kind_of(item), workload_kind, order))
