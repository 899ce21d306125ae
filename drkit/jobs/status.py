"""What ``standby status`` and the ``status`` flow say of each app, read once from a probing world.

Per app: the home site (the configuration), the placement record's primary and secondary, the
primary the sites report, each site's mirroring, the secondary's lag, the newest complete backup
held by ANY store of the world (taken on either site: after a failover the last backup may have
been taken on the old primary and copied to the new one's store), and the last operation. What
could not be read is a warning, never an exception: a lost site is shown, not fatal.

The JSON shape (:meth:`AppStatus.as_json`) keeps the fields of the first ``standby status --json``
(``primary``, ``secondary``, ``home``, ``epoch``, ``observed_primary``, ``mirroring``,
``lag_seconds``, ``last_backup``, ``last_operation``, ``operation_in_progress``, ``warnings``)
and adds the backup's source, store, time and age, and each site's mirroring health line.
"""

from __future__ import annotations

from drkit.domain.errors import IntegrityError, NotFound, StandbyError
from drkit.domain.layout import parse_run_id
from drkit.domain.placement import AppView, Placement, SiteView, disagreements, home_placement
from drkit.domain.status import AppStatus, BackupSeen
from drkit.jobs.backup import store_label
from drkit.jobs.backup_runs import missing_key_id, resolve_run
from drkit.jobs.operations import hold_of, list_journals
from drkit.jobs.world import PlacementRead, World, observe_app, observe_placed


def site_health(view: SiteView) -> str:
    """One site's mirroring as one line: ``primary up+stopped``, ``secondary up+replaying``, or
    ``unreachable``; images that differ are listed ``image=role state``."""
    if not view.reachable:
        return "unreachable"
    seen = {image: f"{role} {view.states.get(image, '')}".strip() for image, role in view.roles.items()}
    if not seen:
        return "-"
    if len(set(seen.values())) == 1:
        return next(iter(seen.values()))
    return ", ".join(f"{image}={line}" for image, line in sorted(seen.items()))


def last_backup(world: World, app: str, sites: tuple[str, ...], warnings: list[str]) -> BackupSeen | None:
    """The newest complete backup of ``app`` taken on any of ``sites``, in any store of the world.

    Authenticated with the world's key when one is loaded (a run sealed with a key the ring lacks
    still counts: it exists; ``backup verify`` names the key it needs). A store that does not
    answer, or whose ``latest`` fails its check, is a warning.
    """
    found: list[BackupSeen] = []
    for ref in world.stores():
        label = store_label(ref)
        for site in sites:
            try:
                try:
                    run = resolve_run(ref.store, ref.layout, site, app, None, key=world.key, label=label)
                except IntegrityError as error:
                    if missing_key_id(error, world.key) is None:
                        raise
                    run = resolve_run(ref.store, ref.layout, site, app, None, label=label)
            except NotFound:
                continue
            except StandbyError as error:
                warnings.append(f"backups of {site} in the store of {label}: {error}")
                break  # the store did not answer (or refused): its other site says no more
            found.append(BackupSeen(run_id=run, site=site, store=label, taken_at=parse_run_id(run).started))
    return max(found, key=lambda b: parse_run_id(b.run_id), default=None)


def app_status(world: World, name: str) -> AppStatus:
    """The status of app ``name`` (observe through :meth:`World.probing` so a lost site costs seconds)."""
    app = world.config.app(name)
    refused = ""
    placed: PlacementRead | None
    record: Placement
    view: AppView
    try:
        placed, view = observe_placed(world, app)
        record = placed.record
    except IntegrityError as error:  # no copy of the record passes: show what the sites say
        refused, placed = error.message, None
        record = home_placement(app)
        view = observe_app(world, app, record)
    journals = list_journals(world, name)
    last = journals[-1] if journals else None
    warnings = ([] if refused else disagreements(record, view)) + view.split_brain()
    warnings += [f"{s} unreachable: {view.sites[s].error}" for s in view.unreachable()]
    if placed is not None:
        warnings += [f"store of {s} unreachable: {error}" for s, error in placed.errors.items()]
        warnings += list(placed.refused.values())  # a copy failing its integrity check: not used
    else:
        warnings.append(refused)
    backup = last_backup(world, name, (app.home_site, app.secondary_site), warnings)
    hold = hold_of(world, record)
    if hold is not None:
        warnings.append(f"operation {hold.op_id} holds the app ({hold.state}: {hold.detail})")
    observed = view.primaries()
    return AppStatus(
        app=name,
        home=app.home_site,
        primary=None if refused else record.primary,
        secondary=None if refused else record.secondary,
        epoch=None if refused else record.epoch,
        observed_primary=observed[0]
        if len(observed) == 1
        else (None if not observed else ",".join(observed)),
        mirroring={s: dict(v.states) for s, v in view.sites.items()},
        mirroring_health={s: site_health(v) for s, v in view.sites.items()},
        lag_seconds=view.lag_seconds,
        last_backup=backup,
        last_operation=f"{last.op_id} {last.status}" if last else None,
        operation_in_progress=record.operation,
        warnings=tuple(warnings),
        observed_at=world.clock.now(),
    )
