"""The placement record in the object stores: read, written by compare-and-swap, signed.

* :func:`read_placement` reads the record from every site's store (the highest epoch wins, so a
  failover works while the lost site's store is down); :func:`write_placement` writes it by
  compare-and-swap to each of them, and :func:`update_placement` does both. With a key
  (:attr:`World.key <drkit.jobs.world.World.key>`) each copy is signed, and a copy whose MAC fails
  is reported and not used (:mod:`drkit.domain.signed_state`).
* :func:`sign_placement` adopts a record written without the key, once checked against both sites.

Jobs that only need *where the app runs now* ask :meth:`World.placement
<drkit.jobs.world.World.placement>` (read once per run); operations read and write the record
here, under their compare-and-swap.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from contextlib import suppress
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING

from drkit.adapters.objectstore import ObjectStore
from drkit.adapters.probes import in_parallel
from drkit.domain.errors import (
    Conflict,
    IntegrityError,
    NotFound,
    PreconditionFailed,
    StandbyError,
    TransientError,
)
from drkit.domain.models import ProtectedApp
from drkit.domain.placement import Placement, home_placement
from drkit.domain.signed_state import UNAUTHENTICATED, placement_context, seal, unseal

if TYPE_CHECKING:
    from drkit.jobs.world import StoreRef, World


@dataclass(frozen=True)
class PlacementRead:
    """The placement record as read, with each store's ETag (None: no record there)."""

    record: Placement
    etags: dict[str, str | None]
    errors: dict[str, str]
    refused: dict[str, str] = field(default_factory=dict)
    """Stores whose copy failed its integrity check, and why: not used; the next write replaces it."""


def _placement_name(app: str, store: str) -> str:
    return f"placement record of app {app} in the store of {store}"


def read_placement(world: World, app: ProtectedApp) -> PlacementRead:
    """The record with the highest epoch among the reachable stores' authenticated copies, or the
    home placement when no store holds one.

    With a key (:attr:`World.key`), a copy whose MAC fails (forged, copied from another app,
    written without the key) is not used: it is named in :attr:`PlacementRead.refused` and warned
    about once. :class:`IntegrityError` when copies were found but none passes (the primary is
    not decided from a forgery); :class:`TransientError` when no store answers.
    """
    key = world.state_key()
    found: list[Placement] = []
    etags: dict[str, str | None] = {}
    errors: dict[str, str] = {}
    refused: dict[str, str] = {}
    hints: list[str] = []
    refs = world.stores()
    if len(refs) > 1:  # the highest epoch wins among those that answer: each one is a spare
        refs = [world.spare(ref) for ref in refs]

    def read(ref: StoreRef) -> tuple[bytes, str] | StandbyError:
        try:
            return ref.store.read(ref.layout.placement_key(app.name))
        except StandbyError as error:
            return error

    for ref, answer in zip(refs, in_parallel(*(lambda r=r: read(r) for r in refs)), strict=True):
        name, layout = ref.name, ref.layout
        if isinstance(answer, NotFound):
            etags[name] = None
            continue
        if isinstance(answer, StandbyError):
            errors[name] = str(answer)
            continue
        data, etag = answer
        etags[name] = etag
        try:
            body = unseal(
                json.loads(data),
                key,
                what="placement",
                context=placement_context(app.name),
                name=_placement_name(app.name, name),
            )
            found.append(Placement.model_validate(body))
        except IntegrityError as error:
            refused[name] = error.message
            hints.append(error.hint)
            world.warn(f"{error.message}; that copy is not used (the next write of the record replaces it)")
        except ValueError as error:
            raise StandbyError(
                f"placement record of app {app.name} in the store of {name} is not valid: {str(error)[:200]}",
                hint=f"inspect {layout.placement_key(app.name)}; delete it to fall back to the home site",
                context={"site": name, "app": app.name},
            ) from None
    if not etags:
        raise TransientError(
            f"no object store answered for the placement of app {app.name}: " + "; ".join(errors.values()),
            hint="check the sites' s3 settings and endpoints; nothing was changed",
            context={"app": app.name},
        )
    if refused and not found:
        raise IntegrityError(
            "; ".join(refused.values())
            + f"; no copy passes, so the primary of app {app.name} is not decided",
            hint=f'nothing was changed; {hints[0]} (see "integrity check failed" in the operator\'s guide)',
            context={"app": app.name, "stores": ", ".join(refused)},
        )
    record = max(found, key=lambda p: p.epoch) if found else home_placement(app)
    return PlacementRead(record=record, etags=etags, errors=errors, refused=refused)


def write_placement(
    world: World, app: ProtectedApp, read: PlacementRead, new: Placement, *, required: str
) -> PlacementRead:
    """Write ``new`` by compare-and-swap to every store that answered ``read``.

    The store of site ``required`` must take it; a :class:`Conflict` anywhere means another writer
    got there first and nothing more is written. Other stores that fail are named in ``errors``.
    """
    if new.epoch <= read.record.epoch:
        return read
    key = world.state_key()
    sealed = seal(new.model_dump(mode="json"), key, what="placement", context=placement_context(app.name))
    body = json.dumps(sealed, indent=2).encode()
    etags: dict[str, str | None] = {}
    errors = dict(read.errors)
    for ref in world.stores(first=required):
        must = required in ref.sites
        if not must:
            ref = world.spare(ref)
        name, store, layout = ref.name, ref.store, ref.layout
        where = layout.placement_key(app.name)
        if name not in read.etags:
            if not must:
                continue
            etag = _etag_now(
                world, store, layout.placement_key(app.name), app, name, new
            )  # it must take it: ask again
        else:
            etag = read.etags[name]
        try:
            if etag is None:
                etags[name] = store.put(where, body, if_none_match=True, content_type="application/json")
            else:
                etags[name] = store.put(where, body, if_match=etag, content_type="application/json")
        except Conflict:
            raise
        except StandbyError as error:
            if required in ref.sites:
                raise
            errors[name] = str(error)
    world.placements_read[app.name] = new  # what this run's jobs take as the app's placement from now on
    return PlacementRead(record=new, etags=etags, errors=errors)


def _etag_now(
    world: World, store: ObjectStore, key: str, app: ProtectedApp, name: str, new: Placement
) -> str | None:
    """The ETag of the record in a store that did not answer the read (None: no record there);
    :class:`Conflict` when its record is already as new as ``new`` (another writer got there). A
    copy failing its integrity check is replaced whatever its epoch (it was reported)."""
    try:
        data, etag = store.read(key)
    except NotFound:
        return None
    try:
        body = unseal(
            json.loads(data),
            world.key,
            what="placement",
            context=placement_context(app.name),
            name=_placement_name(app.name, name),
        )
        epoch = int(body.get("epoch", 0))
    except IntegrityError as error:
        world.warn(f"{error.message}; that copy is not used (the next write of the record replaces it)")
        return etag
    except (ValueError, TypeError):
        epoch = 0
    if epoch >= new.epoch:
        raise Conflict(
            f"placement record of app {app.name} in the store of {name} has epoch {epoch}, not older than {new.epoch}",
            hint="another writer got there first; plan again",
            context={"app": app.name, "site": name},
        )
    return etag


def update_placement(
    world: World, app: ProtectedApp, change: Callable[[Placement], Placement], *, required: str
) -> Placement:
    """Read the record, apply ``change``, write it back by compare-and-swap."""
    read = read_placement(world, app)
    return write_placement(world, app, read, change(read.record), required=required).record


def sign_placement(world: World, app: ProtectedApp) -> Placement | None:
    """Sign the app's placement record as it stands, once checked against both sites: the way to
    adopt a record written before the key was used (or without it). None when a copy passes (or
    there is none): the next write replaces the copies that fail.

    :class:`PreconditionFailed` (nothing written) without a key, when an operation holds the app
    (finish or abort it first), or when a site does not answer or says otherwise than the record
    (a forged primary is not signed). The record is written with its epoch grown by one, by
    compare-and-swap, to every store that answers: copies failing their check are replaced.
    """
    from drkit.domain.placement import disagreements
    from drkit.jobs.world import observe_app

    if world.key is None:
        raise PreconditionFailed(
            f"placement record of app {app.name}: no key is loaded to sign it with",
            hint="load the backup key (--key-env VAR, STANDBY_BACKUP_KEY by default) and run this again",
        )
    with suppress(IntegrityError):
        read_placement(world, app)
        return None  # a copy passes (or there is none): nothing to adopt
    unchecked = replace(world, key=None, notices=[UNAUTHENTICATED], on_warning=None)  # said: it is on purpose
    read = read_placement(unchecked, app)
    record = read.record
    if record.operation:
        raise PreconditionFailed(
            f"placement record of app {app.name} is held by {record.operation_kind} {record.operation}; not signed",
            hint=f"finish or abort that operation with the Standby that started it, then sign the record:"
            f" standby operation sign-placement --app {app.name}",
        )
    view = observe_app(world.probing(), app, record)
    wrong = disagreements(record, view) + [f"{s} does not answer" for s in view.unreachable()]
    if wrong:
        raise PreconditionFailed(
            f"placement record of app {app.name} (primary {record.primary}, epoch {record.epoch}) is not signed: "
            + "; ".join(wrong),
            hint="check the record against the sites (standby status); a forged record is deleted, not signed",
        )
    new = record.model_copy(update={"epoch": record.epoch + 1, "updated_at": world.clock.now()})
    return write_placement(world, app, read, new, required=record.primary).record
