"""``standby doctor``: ask each site and each object store what a disaster would otherwise reveal.

Per site: the apiserver accepts Standby's token, serves every kind the apps need, and grants what
each app needs there (access reviews, which every authenticated user may ask, so the check is
never itself denied); the pool is peered; an rbd-mirror daemon is healthy; every app's images have
a mirror-snapshot schedule at least as frequent as ``snapshot_interval``. Per store: conditional writes work (the placement
record's compare-and-swap depends on them), and for each app the newest complete backup is recent
and the key given opens it. The judging is :mod:`drkit.domain.doctor`'s; nothing here changes
anything but a probe object, which is deleted.
"""

from __future__ import annotations

import base64
import secrets
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta
from functools import partial

from drkit.domain import crypto
from drkit.domain.access import Access
from drkit.domain.doctor import (
    Check,
    Role,
    judge_backup_age,
    judge_daemon,
    judge_key,
    judge_key_routes,
    judge_kinds,
    judge_peers,
    judge_rbac,
    judge_schedule,
    needed_access,
)
from drkit.domain.errors import (
    AccessDenied,
    ConfigError,
    Conflict,
    IntegrityError,
    NotFound,
    StandbyError,
    TransientError,
)
from drkit.domain.layout import parse_run_id
from drkit.domain.models import KindRef, ProtectedApp
from drkit.domain.placement import home_placement
from drkit.jobs.backup import key_from_text
from drkit.jobs.backup_runs import load_run, missing_key_id, read_latest
from drkit.jobs.keys import run_keys
from drkit.jobs.world import StoreRef, World, read_placement

SELF_REVIEW = Access("create", "authorization.k8s.io", "selfsubjectaccessreviews")
"""Asking is allowed to every authenticated user (the default ``system:basic-user`` role)."""

DEFAULT_MAX_BACKUP_AGE = timedelta(hours=26)
"""A nightly backup, with two hours of slack."""


def run_doctor(
    world: World,
    apps: list[ProtectedApp],
    *,
    key: crypto.MasterKey | None,
    key_env: str,
    max_backup_age: timedelta = DEFAULT_MAX_BACKUP_AGE,
    key_routes: Sequence[tuple[str, tuple[str, ...] | None, str]] = (),
) -> list[Check]:
    """Every check, sites first (in configuration order), then stores, then (``key_routes`` given:
    each route's key ids, or why it was not seen) whether the routes hold the same key ring."""
    roles = _roles(world, apps)
    asks: list[Callable[[], list[Check]]] = []
    for site in world.config.sites:
        _build(world, site.name)
        here = [a for a in apps if site.name in roles[a.name]]
        kube = partial(kube_checks, world, site.name, [(a, roles[a.name][site.name]) for a in here])
        mirror = partial(mirror_checks, world, site.name, here)
        if site.ceph.mode == "rook-toolbox":  # rbd execs through the same Kubernetes client: one at a time
            asks.append(lambda kube=kube, mirror=mirror: kube() + mirror())  # type: ignore[misc]
        else:
            asks += [kube, mirror]
    # In parallel: a site that does not answer costs a call timeout or two, not one per adapter and site.
    with ThreadPoolExecutor(max_workers=len(asks), thread_name_prefix="doctor") as pool:
        checks = [c for done in pool.map(lambda ask: ask(), asks) for c in done]
    now = world.clock.now()
    for ref in world.stores():
        checks.append(conditional_writes(ref))
        for app in apps:
            checks += backup_checks(
                world, ref, app, key=key, key_env=key_env, now=now, max_age=max_backup_age
            )
    if key_routes:
        checks.append(judge_key_routes(key_routes))
    return checks


def _build(world: World, site: str) -> None:
    """Build the site's adapters here (they are built on first use, which two threads would race);
    a site whose access cannot be built says so on its own lines."""
    b = world.bundle(site)
    try:
        b.cluster  # noqa: B018
        b.rbd  # noqa: B018
    except StandbyError:
        pass


def _roles(world: World, apps: list[ProtectedApp]) -> dict[str, dict[str, Role]]:
    """Each app's role per site, from its placement (its configured home when no store answers)."""
    out: dict[str, dict[str, Role]] = {}
    for app in apps:
        try:
            record = read_placement(world, app).record
        except StandbyError:
            record = home_placement(app)
        out[app.name] = {record.primary: "primary", record.secondary: "secondary"}
    return out


# ------------------------------------------------------------------------------------------- sites


def kube_checks(world: World, site: str, apps: list[tuple[ProtectedApp, Role]]) -> list[Check]:
    """``kube-token`` (the apiserver answers and accepts the token), ``api-kinds`` (it serves every
    kind the apps need: a restore stops at a CRD that is missing) and ``rbac`` (access reviews)."""
    answers: list[tuple[Access, bool]] = []
    unserved: list[str] = []
    try:
        cluster = world.bundle(site).cluster  # a kubeconfig that cannot be loaded fails here
        # First a review every authenticated user may ask: it proves the token, and it is bounded by
        # the call timeout (the discovery below is not, and would hang on an apiserver that accepts
        # connections but never answers).
        cluster.can_i(SELF_REVIEW)
        for app, role in apps:
            for verb, kind, namespace, name in needed_access(app, role):
                try:
                    info = cluster.discover(kind)
                except NotFound:
                    unserved += [] if str(kind) in unserved else [str(kind)]
                    continue
                access = Access(verb, kind.group, info.plural, namespace if info.namespaced else "", name)
                if access not in (a for a, _ in answers):
                    answers.append((access, cluster.can_i(access)[0]))
    except AccessDenied as error:
        return [Check(site=site, check="kube-token", ok=False, seen=error.message, fix=error.hint)]
    except StandbyError as error:
        fix = f"check the apiserver of {site} and sites[{site}].kube"
        return [
            Check(
                site=site,
                check="kube-token",
                ok=False,
                seen=f"not checked: {error.message}",
                fix=fix if isinstance(error, TransientError) else error.hint or fix,
            )
        ]
    token = Check(
        site=site, check="kube-token", ok=True, seen="the apiserver answers and accepts Standby's credential"
    )
    what = ", ".join(f"{app.name} ({role})" for app, role in apps) or "no app"
    return [token, judge_kinds(site, unserved), judge_rbac(site, what, answers)]


def mirror_checks(world: World, site: str, apps: list[ProtectedApp]) -> list[Check]:
    """``mirror-peers``, ``mirror-daemon`` and one ``snapshot-schedule`` per app; when the site's
    ``rbd`` does not answer, one failed line says so and the rest are not asked."""
    b = world.bundle(site)
    pool = b.site.pool
    others = [s.name for s in world.config.sites if s.name != site]
    try:
        rbd = b.rbd
        checks = [judge_peers(site, pool, rbd.pool_info(pool), others)]
        checks.append(judge_daemon(site, pool, rbd.pool_status(pool)))
        schedules = rbd.snapshot_schedules(pool)
    except StandbyError as error:
        fix = f"check the Ceph cluster of {site} and sites[{site}].ceph (rbd must answer there)"
        return [
            Check(
                site=site,
                check="mirror-peers",
                ok=False,
                seen=f"rbd did not answer: {error.message}",
                fix=fix if isinstance(error, TransientError) else error.hint or fix,
            )
        ]
    toolbox = b.site.ceph.mode == "rook-toolbox"
    return checks + [judge_schedule(site, pool, app, schedules, toolbox=toolbox) for app in apps]


# ------------------------------------------------------------------------------------------ stores


def conditional_writes(ref: StoreRef) -> Check:
    """Write a probe only if absent, again (refused), over a wrong ETag (refused), over the right
    one (taken); then delete it. A store that ignores the conditions lets two operations both take
    the placement record."""
    where, store = "/".join(ref.sites), ref.store
    key = ref.layout.doctor_probe_key(ref.name, secrets.token_hex(6))
    fix = (
        "use an S3 service that honours If-None-Match and If-Match on PutObject (AWS S3, recent MinIO"
        " or Ceph RGW); without them the placement record's compare-and-swap is not safe"
    )
    wrong: list[str] = []
    try:
        etag = store.put(key, b"standby doctor probe 1", if_none_match=True, content_type="text/plain")
        trials: list[tuple[str, bytes, bool, str | None]] = [
            ("a second If-None-Match put was taken", b"standby doctor probe 2", True, None),
            ("a put with a stale If-Match ETag was taken", b"standby doctor probe 3", False, "0" * 32),
        ]
        for what, body, if_none_match, if_match in trials:
            try:
                store.put(key, body, if_none_match=if_none_match, if_match=if_match)
                wrong.append(what)
            except Conflict:
                pass
        try:
            current = store.head(key)
            store.put(key, b"standby doctor probe 4", if_match=current.etag if current else etag)
        except Conflict:
            wrong.append("a put with the current ETag was refused")
        store.delete([key])
    except StandbyError as error:
        return Check(
            site=where,
            check="store-conditional-writes",
            ok=False,
            seen=f"the store failed: {error.message}",
            fix=error.hint or "check the sites' s3 settings",
        )
    if wrong:
        return Check(site=where, check="store-conditional-writes", ok=False, seen="; ".join(wrong), fix=fix)
    return Check(
        site=where,
        check="store-conditional-writes",
        ok=True,
        seen="If-None-Match and If-Match honoured (probe written, swapped, deleted)",
    )


def backup_checks(
    world: World,
    ref: StoreRef,
    app: ProtectedApp,
    *,
    key: crypto.MasterKey | None,
    key_env: str,
    now: datetime,
    max_age: timedelta,
) -> list[Check]:
    """``backup-age`` and ``backup-key`` of ``app``'s newest complete backup in the store ``ref``
    (taken from whichever site: the newest run of any)."""
    where = "/".join(ref.sites)
    newest = None
    errors: list[str] = []
    sealed_for: tuple[str, str, datetime, str] | None = (
        None  # run, site, started, key id: sealed for another key
    )
    for site in world.config.sites:
        try:
            run = None
            run = read_latest(ref.store, ref.layout, site.name, app.name, key=key, label=where)
            if run is None:
                continue
            loaded = load_run(ref.store, ref.layout, site.name, app.name, run, key=key, label=where)
        except IntegrityError as error:
            needed = missing_key_id(error, key)
            if needed is None:
                errors.append(error.message)
                continue
            run = run or read_latest(ref.store, ref.layout, site.name, app.name, label=where)
            if run is not None:  # its age from its id (the index is sealed for a key not loaded)
                sealed_for = (run, site.name, parse_run_id(run).started, needed)
            continue
        except StandbyError as error:
            errors.append(error.message)
            continue
        if newest is None or loaded.index.finished > newest.index.finished:
            newest = loaded
    if newest is None and sealed_for is not None:
        run, site_name, started, needed = sealed_for
        return [
            judge_backup_age(where, app.name, (run, site_name, started), now, max_age),
            judge_key(where, app.name, run, [needed], key.key_id if key else None, key_env=key_env),
        ]
    if newest is None:
        return [
            judge_backup_age(where, app.name, None, now, max_age, "; ".join(errors)),
            judge_key(where, app.name, None, (), key.key_id if key else None, key_env=key_env),
        ]
    index = newest.index
    age = judge_backup_age(where, app.name, (index.run_id, index.site, index.finished), now, max_age)
    opened = run_keys(ref.store, index, key)
    ids = [e.key_id or "?" for e in index.objects if e.encrypted]
    return [
        age,
        judge_key(
            where,
            app.name,
            index.run_id,
            ids,
            key.key_id if key else None,
            key_env=key_env,
            trial_error=opened.error,
            ring=key.key_ids if key else (),
        ),
    ]


# -------------------------------------------------------------------------------------------- keys

SECRET = KindRef(version="v1", kind="Secret")


def job_secret_ring(
    world: World, site: str, namespace: str, name: str, var: str
) -> tuple[tuple[str, ...] | None, str]:
    """The key ids of the ring in the Kubernetes job's Secret ``namespace/name`` (its ``var`` entry)
    on ``site``, or ``None`` and why not: read only when Standby's credential may already get it
    (an access review first; no permission is added for this)."""
    try:
        cluster = world.bundle(site).cluster
        allowed, _ = cluster.can_i(Access("get", "", "secrets", namespace, name))
        if not allowed:
            return None, (
                f"Standby's credential on {site} may not read Secret {namespace}/{name} (compare"
                " `standby key id` with the job's ring by hand)"
            )
        data = (cluster.get(SECRET, name, namespace).get("data") or {}).get(var)
    except StandbyError as error:
        return None, f"Secret {namespace}/{name} on {site} not read: {error.message}"
    if not data:
        return None, f"Secret {namespace}/{name} on {site} has no {var} entry"
    try:
        ring = key_from_text(base64.b64decode(data).decode(), source=f"Secret {namespace}/{name} on {site}")
    except (ValueError, UnicodeDecodeError):
        return None, f"Secret {namespace}/{name} on {site}: {var} is not base64 text"
    except ConfigError as error:
        return None, error.message
    return (ring.key_ids if ring else ()), ""
