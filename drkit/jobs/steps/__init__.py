"""The steps of DR operations and drills: each observes real state, acts only when needed, and is re-runnable.

* :mod:`drkit.jobs.steps.run`: one run of a plan (:class:`Run`) and the :class:`Step` protocol;
* :mod:`drkit.jobs.steps.shared`: what operations and drills both do (stop, start and smoke-test
  the app through its driver, move and watch volumes, restore and tidy objects);
* :mod:`drkit.jobs.steps.operations`: relocate, failover and failback only;
* :mod:`drkit.jobs.steps.drill`: the drill's canary, RPO and scratch copy.

:data:`STEPS` maps the step names used by :mod:`drkit.domain.operations` and
:mod:`drkit.domain.drill` to their implementations; :func:`new_run` starts a run of a plan with the
volume path of its kind (:data:`VOLUME_PATHS`).
"""

from __future__ import annotations

from drkit.domain import crypto
from drkit.domain.models import ProtectedApp
from drkit.domain.operations import Plan
from drkit.jobs.steps.drill import (
    Canary,
    DrillPromote,
    DrillSmoke,
    ScratchCopy,
    ScratchRemoveImage,
    ScratchRestore,
    ScratchStart,
    ScratchStop,
    ScratchTidy,
    rbd_volumes,
)
from drkit.jobs.steps.operations import (
    FenceSource,
    FinalBackup,
    MovePlacement,
    Routing,
    WaitDemotion,
    WaitInflight,
)
from drkit.jobs.steps.run import RoutingHook, Run, Seen, Step, VolumePath, app_volumes
from drkit.jobs.steps.shared import (
    Demote,
    FinalSnapshot,
    InSync,
    Promote,
    Replaying,
    RestoreVolumes,
    Resync,
    Smoke,
    StartApp,
    StopApp,
    TidySource,
    keep_workload,
    kept_path,
    kept_path_of,
    kept_workload,
)
from drkit.jobs.world import World

__all__ = [
    "STEPS",
    "VOLUME_PATHS",
    "Promote",
    "RoutingHook",
    "Run",
    "Seen",
    "Smoke",
    "StartApp",
    "Step",
    "TidySource",
    "keep_workload",
    "kept_path",
    "kept_path_of",
    "kept_workload",
    "new_run",
]

STEPS: dict[str, Step] = {
    "final-backup": FinalBackup(),
    "stop-source": StopApp(),
    "stop-old": StopApp(),
    "final-snapshot": FinalSnapshot(),
    "demote-source": Demote(),
    "demote-old": Demote(),
    "wait-demotion": WaitDemotion(),
    "restore-volumes": RestoreVolumes(),
    "promote-target": Promote(),
    "start-target": StartApp(),
    "smoke-target": Smoke(),
    "routing": Routing(),
    "tidy-source": TidySource(),
    "placement": MovePlacement(),
    "mirroring-healthy": Replaying(),
    "fence-source": FenceSource(),
    "wait-inflight-sync": WaitInflight(),
    "resync-old": Resync(),
    "wait-in-sync": InSync(),
    "canary": Canary(),
    "drill-snapshot": FinalSnapshot(),
    "drill-promote": DrillPromote(),
    "drill-smoke": DrillSmoke(),
    "scratch-copy": ScratchCopy(),
    "scratch-restore": ScratchRestore(),
    "scratch-start": ScratchStart(),
    "scratch-cleanup-app": ScratchStop(),
    "scratch-cleanup-volumes": ScratchTidy(),
    "scratch-remove-image": ScratchRemoveImage(),
    "cleanup-app": StopApp(),
    "cleanup-volumes": TidySource(routing=False),
    "demote-drill": Demote(),
    "resync-drill": Resync(),
    "drill-healthy": InSync(),
}
"""Every step name a plan may hold, and its implementation."""

VOLUME_PATHS: dict[str, VolumePath] = {"drill": rbd_volumes}
"""The volume path of a plan's kind when it is not the app's own (:func:`~drkit.jobs.steps.run.app_volumes`)."""


def new_run(
    world: World,
    app: ProtectedApp,
    plan: Plan,
    op_id: str,
    key: crypto.MasterKey | None,
    *,
    backup_run: str | None,
    routing_hook: RoutingHook | None = None,
    seen: dict[str, Seen] | None = None,
) -> Run:
    """A run of ``plan`` (``seen``: what its finished steps observed, from the journal), driving
    volumes by the path of its kind."""
    return Run(
        world=world,
        app=app,
        plan=plan,
        op_id=op_id,
        key=key,
        backup_run=backup_run,
        routing_hook=routing_hook,
        seen=dict(seen or {}),
        volume_path=VOLUME_PATHS.get(plan.kind, app_volumes),
    )
