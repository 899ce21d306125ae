"""The driver of an app of ``checks.kind: opennebula``: its VMs on one site's OpenNebula front-end.

* *Reading*: the app's VMs on the site (:func:`~drkit.jobs.opennebula_vms.app_vms`). The app
  "runs" there while one of them is not stopped (``ACTIVE``, ``PENDING`` or ``HOLD``);
  :meth:`url` is the first ``HEALTH_URL`` of their user templates, when one has it.
* *Stop* powers the running VMs off (``poweroff``) and holds a pending one; :meth:`terminate`
  terminates them (the stale VMs of the old primary, when the operation asks for it, as the
  guide's failback does before it demotes). Their persistent images stay.
* *Start* reads the saved VMs and images from the run's backup (through the step's
  :class:`~drkit.jobs.drivers.base.FromBackup`) and, per VM: registers each mirrored disk as a
  persistent image whose ``SOURCE`` is its mirrored RBD image (an image the site already has with
  that ``SOURCE`` is reused; one of that name with another ``SOURCE`` refuses), creates the VM from
  its template with the app's rules (:func:`~drkit.domain.opennebula.translate_vm`) and the marker
  ``STANDBY_ORIGIN="<app>/<id of the saved VM>"``, and deploys it. The step waits until every VM
  is ``RUNNING`` (:meth:`writable`) within its limit. A re-run finds the VM by its marker and the
  images by their ``SOURCE``: nothing is registered or created twice.
* *Smoke*: every VM ``RUNNING`` and, when its user template has a ``HEALTH_URL``, answering it.
* *Canary*: not available (:attr:`canary` is False): writing into a VM's disk needs the VM runtime
  (a guest that reads and writes its disks), which this driver does not reach yet.
* *Isolated drill* (:class:`~drkit.jobs.drivers.base.ScratchDrill`): per saved VM, the scratch
  copies of its disks registered as non-persistent images and the VM created on the drill network
  (:func:`~drkit.domain.opennebula_drill.drill_vm`), both marked ``STANDBY_DRILL="<app>"``; the
  drill's cleanup terminates the VMs and deletes the images so marked (any drill's of the app).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, ClassVar

import httpx

from drkit.adapters.kube import ClusterApi
from drkit.adapters.opennebula import OneConflict, OneFrontend, OneImage, OneNotFound, OneVm
from drkit.domain.errors import NotFound, PreconditionFailed, StandbyError, TransientError
from drkit.domain.models import KindRef, ProtectedApp, Site
from drkit.domain.opennebula import bind_images, translate_vm
from drkit.domain.opennebula_backup import KINDS, ORIGIN, SavedVm, saved_vms
from drkit.domain.opennebula_drill import DRILL, SUFFIX, drill_vm
from drkit.domain.opennebula_records import Named, TargetImage, TargetSite, VmPlan
from drkit.domain.opennebula_template import render_template
from drkit.jobs.drivers.base import FromBackup, Restore, Saved, SmokeResult
from drkit.jobs.opennebula_vms import app_vms, origin_of

if TYPE_CHECKING:
    from drkit.jobs.world import World

HEALTH_URL = "HEALTH_URL"
"""The user-template attribute naming a VM's health endpoint (``GET`` must answer 2xx)."""
RUNS = ("ACTIVE", "PENDING", "HOLD")
"""States in which a VM runs, or is about to."""


class OpenNebulaDriver:
    """Stop, start and smoke-test the VMs of an app of ``checks.kind: opennebula`` on one site."""

    kind: ClassVar[str] = "opennebula"
    canary: ClassVar[bool] = False
    """A canary goes into a VM's disk, which needs the VM runtime: not available yet."""
    start_converges: ClassVar[bool] = True
    """:meth:`start` may be called again while the app is not writable (see
    :data:`~drkit.jobs.drivers.base.START_CONVERGES`): it creates only what is missing."""

    def __init__(
        self, app: ProtectedApp, site: Site, frontend: Callable[[], OneFrontend], *, deploy_host: int = 0
    ) -> None:
        self.app = app
        self.site = site
        self._frontend = frontend
        self.deploy_host = deploy_host
        """The host ``one.vm.deploy`` places a created VM on (OpenNebula's first host, 0)."""

    @classmethod
    def build(
        cls, app: ProtectedApp, site: Site, cluster: ClusterApi, world: World | None
    ) -> OpenNebulaDriver:
        """The :data:`~drkit.jobs.drivers.base.DriverFactory` (the front-end is the world's, built on
        first use; without a world, one from the site's access)."""
        if world is not None:
            bundle = world.bundle(site.name)
            return cls(app, site, lambda: bundle.opennebula)
        from drkit.jobs.sites import frontend_for

        return cls(app, site, lambda: frontend_for(site))

    @property
    def frontend(self) -> OneFrontend:
        """The site's front-end."""
        return self._frontend()

    # ------------------------------------------------------------------------------------ reading
    def vms(self) -> list[OneVm]:
        """The app's VMs on the site, by id."""
        return app_vms(self.frontend, self.app, self.site.name)

    def workload_object(self) -> dict[str, Any] | None:
        vms = [vm for vm in self.vms() if vm.state in RUNS]
        if not vms:
            return None
        return {"vms": [{"id": vm.id, "name": vm.name, "state": _state(vm)} for vm in vms]}

    def url(self) -> str | None:
        for vm in self.vms():
            found = vm.user_template.get(HEALTH_URL)
            if isinstance(found, str) and found and vm.state in RUNS:
                return found
        return None

    def answers(self, url: str) -> bool:
        try:
            httpx.get(url, timeout=2.0)
        except (TransientError, httpx.HTTPError):
            return False
        return True

    def _failed(self, vms: list[OneVm]) -> tuple[str, ...]:
        failed: list[str] = [f"VM {vm.id} {vm.name} is {_state(vm)}" for vm in vms if not vm.running]
        for vm in vms:
            url = vm.user_template.get(HEALTH_URL)
            if vm.running and isinstance(url, str) and url and not _healthy(url):
                failed.append(f"VM {vm.id} {vm.name}: GET {url}")
        return tuple(failed) if vms else (f"no VM of app {self.app.name} on {self.site.name}",)

    def missing(self) -> list[str]:
        """The origins (``<app>/<id>``) a start registered images for here but no VM stands for
        yet: a start cut short between two VMs (see :meth:`start`)."""
        prefix = f"{self.app.name}/"
        wanted = {
            str(i.template.get(ORIGIN))
            for i in self.frontend.images()
            if str(i.template.get(ORIGIN, "")).startswith(prefix)
        }
        home = self.site.name == self.app.home_site
        standing = {_origin_of(vm, self.app.name, home) for vm in self.vms()}
        return sorted(wanted - standing)

    def writable(self) -> bool:
        return not self._failed(self.vms()) and not self.missing()

    def quiesce(self) -> bool:
        return False

    def release(self) -> None:
        """Deploy or resume the app's VMs left pending or powered off here (a start cut short)."""
        for vm in self.vms():
            self._converge(vm)

    # ------------------------------------------------------------------------------- stop, start
    def stop(self) -> bool:
        acted = False
        for vm in self.vms():
            if vm.state == "ACTIVE":
                self.frontend.vm_action(vm.id, "poweroff")
            elif vm.state == "PENDING":
                self.frontend.vm_action(vm.id, "hold")
            else:
                continue
            acted = True
        return acted

    def terminate(self, *, hard: bool = False) -> bool:
        """Terminate the app's VMs on the site (their persistent images stay); False when none was left."""
        vms = self.vms()
        for vm in vms:
            self.frontend.vm_action(vm.id, "terminate-hard" if hard else "terminate")
        return bool(vms)

    def leftovers(self) -> list[str]:
        """The app's copies on this site once it runs elsewhere: every VM made by Standby here
        (marked with its origin; the originals on the home site are only powered off, as the guide
        does). See :class:`~drkit.jobs.drivers.base.Leftovers`."""
        return [f"VM {vm.id} {vm.name} ({vm.state})" for vm in self.vms() if vm.user_template.get(ORIGIN)]

    def tidy(self) -> None:
        """Terminate the stale copies (their persistent images stay registered, so a later move back
        reuses them: the guide's failback terminates the VM on B)."""
        for vm in self.vms():
            if vm.user_template.get(ORIGIN):
                self.frontend.vm_action(vm.id, "terminate")

    def start(self, restore: Restore) -> None:
        if not isinstance(restore, FromBackup):
            raise PreconditionFailed(
                f"app {self.app.name}: its VMs start from the backup's saved records, which this start"
                " was not given",
                hint="start the app through an operation (relocate, failover, failback)",
                context={"app": self.app.name, "site": self.site.name},
            )
        saved = saved_vms(restore.saved(tuple(k.kind for k in KINDS)))
        if not saved:
            raise NotFound(
                f"app {self.app.name}: the backup holds no VM to start on {self.site.name}",
                hint=f"run `standby backup run --app {self.app.name}` on the site the VMs run on",
                context={"app": self.app.name, "site": self.site.name},
            )
        standing = {one.origin_id: self._existing(one) for one in saved}
        plans = [(one, self._register(one)) for one in saved if standing[one.origin_id] is None]
        for one in saved:
            found = standing[one.origin_id]
            if found is not None:
                self._converge(found)
        for one, (plan, ids) in plans:
            self._allocate(one, plan, ids)

    def _existing(self, saved: SavedVm) -> OneVm | None:
        """The VM already standing for ``saved`` here: marked with its origin, or (on the home
        site) the original itself, whether ``saved`` is it or a copy of it."""
        fe, origin = self.frontend, saved.origin_id
        marked = fe.vms_labelled(ORIGIN, origin_of(self.app, origin))
        if marked:
            return marked[0]
        if self.site.name == self.app.home_site:
            try:
                vm = fe.vm(origin)
            except OneNotFound:
                return None
            return vm if vm.state != "DONE" and not vm.user_template.get(ORIGIN) else None
        return None

    def _converge(self, vm: OneVm) -> None:
        """Bring a VM standing here to ``ACTIVE``: deploy it (pending, held, undeployed, stopped) or
        resume it (powered off, suspended)."""
        fe = self.frontend
        if vm.state == "HOLD":
            fe.vm_action(vm.id, "release")
            fe.deploy_vm(vm.id, self.deploy_host)
        elif vm.state in ("PENDING", "STOPPED", "UNDEPLOYED"):
            fe.deploy_vm(vm.id, self.deploy_host)
        elif vm.state in ("POWEROFF", "SUSPENDED"):
            fe.vm_action(vm.id, "resume")

    def _target(self) -> TargetSite:
        """What this site's front-end has: networks, the app's datastore, images."""
        fe = self.frontend
        images = fe.images()
        stores = {i.datastore_id: i.datastore for i in images}
        ref = self.app.opennebula.datastores.get(self.site.name) if self.app.opennebula else None
        if isinstance(ref, int) and ref not in stores:
            try:
                stores[ref] = fe.datastore(ref).name
            except OneNotFound:
                pass
        return TargetSite(
            name=self.site.name,
            networks=tuple(Named(id=n.id, name=n.name) for n in fe.vnets()),
            datastores=tuple(Named(id=i, name=n) for i, n in sorted(stores.items())),
            images=tuple(TargetImage(id=i.id, name=i.name, source=i.source) for i in images),
        )

    def _plan(self, saved: SavedVm, target: TargetSite) -> VmPlan:
        """The way of ``saved`` onto this site with the app's rules (its refusals included)."""
        one = self.app.opennebula
        assert one is not None
        return translate_vm(
            saved.vm,
            saved.images,
            target,
            one,
            source_is_home=self.site.name != self.app.home_site,
            mirrored={v.image for v in self.app.volumes},
        )

    def refusals(self, saved: Saved) -> tuple[str, ...]:
        """What this site would refuse of the backup's VMs (see :class:`~drkit.jobs.drivers.base.Preflight`):
        the translation's refusals of every VM not already standing here, read before any change."""
        vms = saved_vms(saved(tuple(k.kind for k in KINDS)))
        if not vms:
            return (f"the backup holds no VM of app {self.app.name} to start on {self.site.name}",)
        target = self._target()
        out: list[str] = []
        for one in vms:
            if self._existing(one) is None:
                plan = self._plan(one, target)
                out += [str(refusal) for refusal in plan.refusals]
        return tuple(out)

    def _register(self, saved: SavedVm) -> tuple[VmPlan, dict[str, int]]:
        """The VM's way here, and its images registered (or reused): name -> id. Each image
        registered carries the VM's origin, so a start cut short before the VM was created is
        seen (:meth:`missing`)."""
        plan = self._plan(saved, self._target())
        if plan.refusals:
            raise PreconditionFailed(
                f"app {self.app.name}: VM {plan.vm} cannot be created on {self.site.name}: "
                + "; ".join(str(r) for r in plan.refusals),
                hint=f"fix what is named (or apps[{self.app.name}].opennebula's rules), then run the operation again",
                context={"app": self.app.name, "site": self.site.name, "vm": plan.vm},
            )
        fe = self.frontend
        ids: dict[str, int] = {}
        for image in plan.images:
            if image.reuse is not None:
                continue
            text = render_template({**image.template, ORIGIN: origin_of(self.app, saved.origin_id)})
            try:
                new = fe.allocate_image(text, image.datastore_id)
            except OneConflict:
                same = fe.images(source=image.source)
                if not same:
                    raise
                new = same[0].id  # registered meanwhile with this SOURCE
            if not fe.image(new).persistent:
                fe.make_persistent(new, True)
            ids[image.name] = new
        return plan, ids

    def _allocate(self, saved: SavedVm, plan: VmPlan, ids: dict[str, int]) -> int:
        """Create the VM with its marker, from its images, and deploy it."""
        template = bind_images(plan, ids)
        template[ORIGIN] = origin_of(self.app, saved.origin_id)
        fe = self.frontend
        vm_id = fe.allocate_vm(render_template(template))
        fe.deploy_vm(vm_id, self.deploy_host)
        return vm_id

    # -------------------------------------------------------------------------- isolated drill
    scratch_what: ClassVar[str] = "non-persistent images on the scratch copies and VMs marked STANDBY_DRILL"
    no_canary: ClassVar[str] = (
        "a canary in a VM's disk needs the VM runtime, which this driver does not reach yet"
    )

    def _drill_vms(self) -> list[OneVm]:
        return self.frontend.vms_labelled(DRILL, self.app.name)

    def _drill_images(self) -> list[OneImage]:
        return [i for i in self.frontend.images() if i.template.get(DRILL) == self.app.name]

    def _drill_plan(self, saved: SavedVm, drill: str, copies: Mapping[str, str]) -> VmPlan:
        one = self.app.opennebula
        assert one is not None
        return drill_vm(
            saved.vm,
            saved.images,
            self._target(),
            one,
            app=self.app.name,
            drill=drill,
            scratch=lambda rbd: copies.get(rbd, rbd),
            mirrored=set(copies),
        )

    def start_scratch(self, saved: Saved, copies: Mapping[str, str], drill: str) -> tuple[str, ...]:
        """Per saved VM without a drill VM here: register each scratch copy as a non-persistent
        image and create the VM from its template on the drill network, marked ``STANDBY_DRILL``
        (see :func:`~drkit.domain.opennebula_drill.drill_vm`); a drill VM left pending is deployed."""
        fe = self.frontend
        standing = {vm.name: vm for vm in self._drill_vms()}
        decisions: list[str] = []
        for one in saved_vms(saved(tuple(k.kind for k in KINDS))):
            plan = self._drill_plan(one, drill, copies)
            found = standing.get(str(plan.template["NAME"]))
            if found is not None:
                self._converge(found)
                continue
            if plan.refusals:
                raise PreconditionFailed(
                    f"app {self.app.name}: the drill cannot start VM {plan.vm} on {self.site.name}: "
                    + "; ".join(str(r) for r in plan.refusals),
                    hint=f"fix what is named (e.g. apps[{self.app.name}].opennebula.drill_network), then run"
                    f" the drill again; its cleanup removes what it made: standby drill cleanup --app {self.app.name}",
                    context={"app": self.app.name, "site": self.site.name, "vm": plan.vm},
                )
            ids: dict[str, int] = {}
            for image in plan.images:
                if image.reuse is None:
                    ids[image.name] = fe.allocate_image(render_template(image.template), image.datastore_id)
            vm_id = fe.allocate_vm(render_template(bind_images(plan, ids)))
            fe.deploy_vm(vm_id, self.deploy_host)
            decisions += [str(d) for d in plan.decisions]
        return tuple(decisions)

    def scratch_refusals(self, saved: Saved, copies: Mapping[str, str]) -> tuple[str, ...]:
        standing = {vm.name for vm in self._drill_vms()}
        out: list[str] = []
        for one in saved_vms(saved(tuple(k.kind for k in KINDS))):
            plan = self._drill_plan(one, "", copies)
            if str(plan.template["NAME"]) not in standing:
                out += [str(refusal) for refusal in plan.refusals]
        return tuple(out)

    def scratch_missing(self, saved: Saved) -> tuple[str, ...]:
        names = {f"{one.vm.name}{SUFFIX}" for one in saved_vms(saved(tuple(k.kind for k in KINDS)))}
        vms = self._drill_vms()
        absent = tuple(
            f"no drill VM {name} on {self.site.name}" for name in sorted(names - {v.name for v in vms})
        )
        return absent + (self._failed(vms) if vms else ())

    def scratch_smoke(self, tag: str) -> SmokeResult:
        return self._smoke_of(self._drill_vms())

    def scratch_started(self) -> tuple[str, ...]:
        return tuple(f"drill VM {vm.id} {vm.name} on {self.site.name}" for vm in self._drill_vms())

    def scratch_left(self) -> tuple[str, ...]:
        vms = list(self.scratch_started())
        images = [
            f"drill image {i.id} {i.name} ({i.source}) on {self.site.name}" for i in self._drill_images()
        ]
        return tuple(vms + images)

    def stop_scratch(self) -> None:
        """Terminate (hard: a scratch copy keeps nothing) the drills' VMs; every one is tried, and
        those that could not be terminated are named in one error."""
        self._each(
            [(f"drill VM {vm.id} {vm.name}", vm.id) for vm in self._drill_vms()],
            lambda vm_id: self.frontend.vm_action(vm_id, "terminate-hard"),
        )

    def remove_scratch(self) -> None:
        """Delete the drills' images no VM uses any more; every one is tried, and those that could
        not be deleted (or that a VM still uses) are named in one error."""
        images = self._drill_images()
        used = [
            f"drill image {i.id} {i.name} (used by VMs {', '.join(map(str, i.vms))})" for i in images if i.vms
        ]
        self._each(
            [(f"drill image {i.id} {i.name} ({i.source})", i.id) for i in images if not i.vms],
            self.frontend.delete_image,
            used,
        )

    def _each(
        self, targets: list[tuple[str, int]], act: Callable[[int], None], failed: list[str] | None = None
    ) -> None:
        failed = list(failed or [])
        for what, ident in targets:
            try:
                act(ident)
            except StandbyError as error:
                failed.append(f"{what}: {error.message}")
        if failed:
            raise PreconditionFailed(
                f"app {self.app.name}: the drill's cleanup could not remove from {self.site.name}: "
                + "; ".join(failed),
                hint=f"fix what is named on {self.site.name}'s front-end, then run the cleanup again:"
                f" standby drill cleanup --app {self.app.name}",
                context={"app": self.app.name, "site": self.site.name},
            )

    # ------------------------------------------------------------------------------ smoke, canary
    def smoke(self, tag: str) -> SmokeResult:
        return self._smoke_of(self.vms())

    def _smoke_of(self, vms: list[OneVm]) -> SmokeResult:
        failed = self._failed(vms)
        running = bool(vms) and all(vm.running for vm in vms)
        return SmokeResult(
            readable=running,
            writable=running,
            login=True,
            path="",
            sha256="",
            round_trip=running,
            failed=failed,
        )

    def write_canary(self, path: str, data: bytes) -> None:
        raise PreconditionFailed(
            f"app {self.app.name}: checks.kind 'opennebula' has no canary yet (a canary in a VM's disk"
            " needs the VM runtime)",
            hint="leave the canary out of drills of VM apps",
            context={"app": self.app.name, "site": self.site.name},
        )

    def read_canary(self, path: str) -> bytes | None:
        self.write_canary(path, b"")
        return None

    def backup_kinds(self) -> tuple[KindRef, ...]:
        return KINDS


def _origin_of(vm: OneVm, app: str, home: bool) -> str:
    """The origin a VM here stands for: its marker, or (an original on the home site) itself."""
    marker = vm.user_template.get(ORIGIN)
    if isinstance(marker, str) and marker:
        return marker
    return f"{app}/{vm.id}" if home else ""


def _state(vm: OneVm) -> str:
    return "RUNNING" if vm.running else vm.lcm_state if vm.state == "ACTIVE" else vm.state


def _healthy(url: str) -> bool:
    try:
        return httpx.get(url, timeout=5.0).is_success
    except httpx.HTTPError:
        return False
