"""``standby doctor``'s judgements: pure functions from what a site or a store answered to one
:class:`Check` each (pass or fail, what was seen, and the fix when failing).

What is asked of each site and store, and how, is :mod:`drkit.jobs.doctor`'s; here is only what
counts as healthy:

* **RBAC**: the permissions an app needs on a site depend on its role there. Where it runs (the
  placed primary), backups list its kinds, and a relocate or failover away stops its workload;
  where it would be recovered (the secondary), a restore creates its kinds, its PVs and its
  namespace. :func:`needed_access` lists them; the shipped manifests grant exactly these.
* **Mirroring**: the pool has a peer (:func:`judge_peers`), an rbd-mirror daemon reports OK
  (:func:`judge_daemon`), and every image of the app has a mirror-snapshot schedule at least as
  frequent as ``snapshot_interval`` on *both* sites (:func:`judge_schedule`): schedules are kept per
  cluster, so a site promoted without one takes no snapshots and the way back has no RPO.
* **Backups**: each store holds a complete backup of each app no older than the limit
  (:func:`judge_backup_age`), and the key given opens it (:func:`judge_key`).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any, Literal

from pydantic import Field

from drkit.domain.access import Access
from drkit.domain.durations import parse_duration
from drkit.domain.model_base import Model
from drkit.domain.models import KindRef, ProtectedApp

Role = Literal["primary", "secondary"]


class Check(Model):
    """One line of ``standby doctor``."""

    site: str = Field(..., description="site checked (a store shared by several sites names them all)")
    check: str = Field(..., description="what was checked, e.g. snapshot-schedule nexus")
    ok: bool = Field(..., description="whether it passed")
    seen: str = Field(..., description="what was seen")
    fix: str = Field("", description="what to do when it failed")

    def line(self) -> str:
        """``site  check  pass|FAIL  seen  (fix: ...)`` on one line."""
        tail = f"  (fix: {self.fix})" if not self.ok and self.fix else ""
        return f"{self.site:<16} {self.check:<28} {'pass' if self.ok else 'FAIL'}  {self.seen}{tail}"


# ------------------------------------------------------------------------------------------- RBAC

PV = KindRef(version="v1", kind="PersistentVolume")
NAMESPACE = KindRef(version="v1", kind="Namespace")


def needed_access(app: ProtectedApp, role: Role) -> list[tuple[str, KindRef, str, str]]:
    """What ``app`` needs on a site where it is ``role``: ``(verb, kind, namespace, name)``, the
    namespace empty for cluster-scoped kinds (the caller resolves each kind's resource name)."""
    if app.namespace is None or app.workload is None:  # a VM app: nothing of Kubernetes
        return []
    kinds = list(app.backup.kinds)
    ns, needs = app.namespace, list[tuple[str, KindRef, str, str]]()
    if role == "primary":
        needs += [("list", k, ns, "") for k in kinds]
        needs += [("list", PV, "", "")] if app.backup.include_pvs else []
        needs += [("list", NAMESPACE, "", ""), ("get", app.workload.kind, ns, "")]
    else:
        needs += [("create", k, ns, "") for k in kinds]
        needs += [("create", PV, "", "")] if app.backup.include_pvs else []
        needs += [("create", NAMESPACE, "", "")]
    if app.checks.admin_secret:  # read to freeze the app on its primary and to smoke-test it after a move
        needs.append(("get", KindRef(version="v1", kind="Secret"), ns, app.checks.admin_secret))
    unique: list[tuple[str, KindRef, str, str]] = []
    for need in needs:
        if need not in unique:
            unique.append(need)
    return unique


def judge_kinds(site: str, unserved: Sequence[str]) -> Check:
    """The apiserver serves every kind the apps need (a missing CRD stops a restore halfway)."""
    if not unserved:
        return Check(site=site, check="api-kinds", ok=True, seen="every kind the apps need is served")
    return Check(
        site=site,
        check="api-kinds",
        ok=False,
        seen=f"not served on {site}: {', '.join(unserved)}",
        fix=f"install the CRD of {unserved[0]} on {site} (as on the other site) before a move there",
    )


def judge_rbac(site: str, what: str, answers: Sequence[tuple[Access, bool]]) -> Check:
    """Every access review of ``site`` allowed (``what``: the apps and their roles there)."""
    denied = [access for access, allowed in answers if not allowed]
    if not denied:
        return Check(
            site=site, check="rbac", ok=True, seen=f"{len(answers)} permission(s) allowed for {what}"
        )
    first = denied[0]
    more = (
        f" (and {len(denied) - 1} more: " + "; ".join(str(a) for a in denied[1:4]) + ")"
        if len(denied) > 1
        else ""
    )
    return Check(
        site=site,
        check="rbac",
        ok=False,
        seen=f"{len(denied)} of {len(answers)} permission(s) for {what} denied: {first}{more}",
        fix=f"add {first.rule} to {first.role} on {site} (deployments/kubernetes/{site}/standby-rbac.yaml)"
        + (", and the others named" if len(denied) > 1 else ""),
    )


# -------------------------------------------------------------------------------------- mirroring


def judge_peers(site: str, pool: str, info: Mapping[str, Any], others: Iterable[str]) -> Check:
    """``rbd mirror pool info``: mirroring enabled on the pool, with at least one peer."""
    mode = str(info.get("mode") or "disabled")
    peers = [p for p in info.get("peers") or () if isinstance(p, dict)]
    names = ", ".join(f"{p.get('site_name') or p.get('uuid')} ({p.get('direction', '?')})" for p in peers)
    if mode == "disabled":
        return Check(
            site=site,
            check="mirror-peers",
            ok=False,
            seen=f"mirroring is disabled on pool {pool}",
            fix=f"rbd mirror pool enable {pool} image, then peer it with the other site"
            " (rbd mirror pool peer bootstrap create/import)",
        )
    if not peers:
        other = ", ".join(others)
        return Check(
            site=site,
            check="mirror-peers",
            ok=False,
            seen=f"pool {pool} ({mode} mode) has no peer",
            fix=f"peer pool {pool} with {other}: rbd mirror pool peer bootstrap create on one site,"
            " bootstrap import --direction rx-tx on the other",
        )
    return Check(
        site=site, check="mirror-peers", ok=True, seen=f"pool {pool} ({mode} mode) peered with {names}"
    )


def judge_daemon(site: str, pool: str, status: Mapping[str, Any]) -> Check:
    """``rbd mirror pool status --verbose``: a live rbd-mirror daemon reports OK.

    A daemon that restarted stays listed (not reporting) for about a minute beside the new one, so
    one healthy daemon is enough, as in the lab's own start-up check.
    """
    summary = status.get("summary") or {}
    daemons = [d for d in status.get("daemons") or () if isinstance(d, dict)]
    healthy = [d for d in daemons if d.get("health") == "OK"]
    seen = f"daemon health {summary.get('daemon_health', '?')}, {len(healthy)} of {len(daemons)} daemon(s) OK"
    if healthy:
        return Check(site=site, check="mirror-daemon", ok=True, seen=seen)
    return Check(
        site=site,
        check="mirror-daemon",
        ok=False,
        seen=seen + f" (pool {pool})",
        fix=f"start rbd-mirror on {site} (Rook: the CephRBDMirror resource and its pod); without it"
        f" {site} receives no snapshots",
    )


def rbd_interval(interval: timedelta) -> str:
    """``interval`` as ``rbd mirror snapshot schedule add`` takes it (minutes, hours or days)."""
    minutes = max(1, int(interval.total_seconds() // 60))
    if minutes % 1440 == 0:
        return f"{minutes // 1440}d"
    if minutes % 60 == 0:
        return f"{minutes // 60}h"
    return f"{minutes}m"


def effective_schedule(schedules: Iterable[Mapping[str, Any]], image: str) -> tuple[timedelta | None, str]:
    """The interval rbd_support snapshots ``image`` at, and at what level: the image's own schedule,
    else the pool's (the most specific level wins; within a level the shortest interval)."""
    image_level: list[timedelta] = []
    pool_level: list[timedelta] = []
    for entry in schedules:
        name, namespace = str(entry.get("image") or "-"), str(entry.get("namespace") or "-")
        intervals = []
        for item in entry.get("items") or ():
            try:
                intervals.append(parse_duration(str(item.get("interval"))))
            except ValueError:
                continue
        if name == image:
            image_level += intervals
        elif name == "-" and namespace == "-":
            pool_level += intervals
    if image_level:
        return min(image_level), "image"
    if pool_level:
        return min(pool_level), "pool"
    return None, ""


def judge_schedule(
    site: str, pool: str, app: ProtectedApp, schedules: Sequence[Mapping[str, Any]], *, toolbox: bool = False
) -> Check:
    """Each of ``app``'s images is snapshotted at least every ``snapshot_interval`` on ``site``."""
    want = app.snapshot_interval
    bad: list[str] = []
    good: list[str] = []
    for volume in app.volumes:
        every, level = effective_schedule(schedules, volume.image)
        if every is None:
            bad.append(f"{pool}/{volume.image} has no mirror-snapshot schedule")
        elif every > want:
            bad.append(
                f"{pool}/{volume.image} is snapshotted every {rbd_interval(every)} ({level} level),"
                f" less often than snapshot_interval {rbd_interval(want)}"
            )
        else:
            good.append(f"every {rbd_interval(every)} ({level} level)")
    check = f"snapshot-schedule {app.name}"
    if not bad:
        return Check(
            site=site,
            check=check,
            ok=True,
            seen=f"{len(good)} image(s) {', '.join(sorted(set(good)))}; snapshot_interval {rbd_interval(want)}",
        )
    where = " in the toolbox pod" if toolbox else ""
    image = next(v.image for v in app.volumes if v.image in bad[0])
    return Check(
        site=site,
        check=check,
        ok=False,
        seen="; ".join(bad),
        fix=f"on {site}{where}: rbd mirror snapshot schedule add --pool {pool} --image {image}"
        f" {rbd_interval(want)}",
    )


# ---------------------------------------------------------------------------------------- backups


def _age(delta: timedelta) -> str:
    seconds = int(delta.total_seconds())
    if seconds < 3600:
        return f"{seconds // 60}m{seconds % 60:02d}s"
    if seconds < 172800:
        return f"{seconds // 3600}h{(seconds % 3600) // 60:02d}m"
    return f"{seconds // 86400}d"


def judge_backup_age(
    store: str,
    app: str,
    newest: tuple[str, str, datetime] | None,
    now: datetime,
    max_age: timedelta,
    why_none: str = "",
) -> Check:
    """The newest complete backup of ``app`` in ``store`` (``(run, source site, finished)``) is
    younger than ``max_age``."""
    check = f"backup-age {app}"
    if newest is None:
        return Check(
            site=store,
            check=check,
            ok=False,
            seen=f"no complete backup of app {app} in this store" + (f" ({why_none})" if why_none else ""),
            fix=f"standby backup run --app {app} (a failover restores from the target's store)",
        )
    run, source, finished = newest
    age = now - finished
    seen = f"newest run {run} (from {source}) finished {_age(age)} ago; limit {_age(max_age)}"
    if age <= max_age:
        return Check(site=store, check=check, ok=True, seen=seen)
    return Check(
        site=store,
        check=check,
        ok=False,
        seen=seen,
        fix=f"standby backup run --app {app}, and check the nightly backup deployment's runs",
    )


def judge_key(
    store: str,
    app: str,
    run: str | None,
    sealed_with: Sequence[str],
    given: str | None,
    *,
    key_env: str,
    trial_error: str = "",
    ring: Sequence[str] = (),
) -> Check:
    """The key given opens ``run``, the newest backup of ``app`` in ``store``: every sealed object's key
    id is the given key's or, with a key ring (``ring``: its ids, the current one first), one of the
    ring's; and one object per key id decrypted (``trial_error`` says why one did not)."""
    check = f"backup-key {app}"
    held = tuple(ring) or ((given,) if given else ())
    if run is None:
        return Check(
            site=store,
            check=check,
            ok=True,
            seen="no backup to open yet" + ("" if given else f" (no key in ${key_env})"),
        )
    ids = sorted(set(sealed_with))
    if not ids:
        note = f"key id {given} given" if given else f"no key in ${key_env}"
        return Check(
            site=store, check=check, ok=True, seen=f"run {run} holds no sealed object ({note}; none needed)"
        )
    if given is None:
        return Check(
            site=store,
            check=check,
            ok=False,
            seen=f"run {run} holds objects sealed with key id {', '.join(ids)}; no key in ${key_env}",
            fix=f"export {key_env}=<base64 of the 32-byte master key with id {ids[0]}> (or pass --key-env VAR);"
            " without it a restore of this app stops at its Secrets",
        )
    missing = [i for i in ids if i not in held]
    if missing:
        holds = (
            f"the key in ${key_env} has id {given}"
            if len(held) == 1
            else f"the key ring in ${key_env} holds key ids {', '.join(held)}"
        )
        return Check(
            site=store,
            check=check,
            ok=False,
            seen=f"run {run} is sealed with key id {', '.join(ids)}, but {holds}",
            fix=f"put the master key with id {missing[0]} in ${key_env} (the id is printed by every backup"
            " run), or keep it in the ring as an older key (`standby key rotate` does); a new key opens"
            " only backups taken after it",
        )
    if trial_error:
        return Check(
            site=store,
            check=check,
            ok=False,
            seen=f"run {run}: a sealed object failed to open: {trial_error}",
            fix="run `standby backup verify` for the run and take a new backup",
        )
    if ids == [given] and len(held) == 1:
        return Check(
            site=store,
            check=check,
            ok=True,
            seen=f"run {run} sealed with key id {given}, the key given; one object decrypted",
        )
    return Check(
        site=store,
        check=check,
        ok=True,
        seen=f"run {run} sealed with key id {', '.join(ids)}, held by the key ring (current key id"
        f" {given}); one object per key id decrypted",
    )


def judge_key_routes(routes: Sequence[tuple[str, tuple[str, ...] | None, str]]) -> Check:
    """The key ring is the same on every route Standby can see: ``(route, key ids or None, why not
    seen)`` each (the CLI's environment variable, the flows' Secret block, the Kubernetes job's
    Secret). Routes that hold a ring must hold the same ids, in the same order (the current key first):
    otherwise runs are sealed with different keys, or a route cannot open older runs."""
    seen = [(name, ids) for name, ids, _ in routes if ids is not None]
    unseen = [f"{name}: {why}" for name, ids, why in routes if ids is None]
    tail = f"; not seen: {'; '.join(unseen)}" if unseen else ""
    described = "; ".join(f"{name}: {', '.join(ids) or 'no key'}" for name, ids in seen)
    if len(seen) < 2:
        return Check(
            site="keys",
            check="key-routes",
            ok=True,
            seen=f"{len(seen)} route seen, nothing to compare ({described or 'none'}){tail}",
        )
    first_name, first = seen[0]
    differ = [(name, ids) for name, ids in seen[1:] if ids != first]
    if not differ:
        return Check(
            site="keys",
            check="key-routes",
            ok=True,
            seen=f"{len(seen)} routes hold the same key ring ({', '.join(first) or 'no key'}){tail}",
        )
    name = differ[0][0]
    return Check(
        site="keys",
        check="key-routes",
        ok=False,
        seen=f"the key rings differ: {described}{tail}",
        fix=f"make {name} hold the same ring as {first_name}: `standby key export --block NAME` prints"
        " the flows' ring; put it in the environment variable and in the Kubernetes Secret"
        " (docs/operator-guide.md, Keys)",
    )
