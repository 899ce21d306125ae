"""Benchmark: relocate, failover and failback of Nexus on the two-site lab (real Ceph), step by step.

Brings up its own lab in a temporary folder on port base 19800 (``$STANDBY_BENCH_PORT_BASE``),
with a fresh random backup key in ``$STANDBY_BACKUP_KEY``, and runs through the jobs API
(``prepare``, ``approve``, ``execute``), as an operator would:

1. a backup on site-a, then relocate site-a -> site-b;
2. a backup on site-b, a complete mirror snapshot on site-a, then relocate site-b -> site-a;
3. a backup on site-a and a complete snapshot on site-b; a failover to site-b planned with both
   sites up (planned only), then site-a lost (frozen: ``lab.lab.site_down``) and the failover to
   site-b planned again and run (data loss and the unfenced old primary acknowledged), a backup on
   site-b;
4. site-a back (``lab.lab.site_up``), then failback to site-a.

For each operation it prints the journal's steps (site, outcome, seconds from the step records'
``started_at``/``ended_at``, and this process's CPU seconds), the planning time (``prepare``,
which probes both sites in parallel, each call bounded by the site's ``probe_timeout``: a lost
site costs that once; the failover's is printed beside the same plan made with both sites up, in
the same run, against its 5 s target), the wall time from approval to
completion, for a failover the time from approval to "Nexus writable on site-b" (the end of the
``start-target`` step), and the CPU time of this Python process during ``execute``. Each is
compared with its target and with the manual anchor of the Alauda Nexus DR procedure (a manual
switchover: 4-10 minutes of careful typing). The lab is always taken down. Exits 1 when an
operation is refused or fails (its journal error is printed); a missed target is reported, not
fatal.

    .venv/bin/python -m bench.operations
"""

from __future__ import annotations

import base64
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from drkit.adapters.clock import SystemClock
from drkit.config import load_config
from drkit.domain import crypto
from drkit.domain.errors import StandbyError
from drkit.domain.models import Site
from drkit.domain.operations import Approval, Journal, Kind, StepRecord
from drkit.domain.rbd_status import parse_snap_ls
from drkit.jobs import backup as backups
from drkit.jobs.operations import approve, execute, prepare, read_journal
from drkit.jobs.world import World, build_world, read_placement

PORT_BASE = os.environ.get("STANDBY_BENCH_PORT_BASE", "19800")
APP = "nexus"
MANUAL = (240.0, 600.0)
"""A manual switchover in the Alauda Nexus DR procedure: 4 to 10 minutes of careful typing."""
TARGET_FAILOVER_WRITABLE = 60.0
TARGET_RELOCATE = 120.0
TARGET_CPU = 5.0
TARGET_PLAN_SITE_DOWN = 5.0
"""A plan appears within 5 s whatever is down."""
PLAN_WHAT = "planning with site-a frozen"
CPU_DEFINITION = (
    "CPU outside waits = user+sys CPU time of this Python process (time.process_time()) during"
    " execute(): Standby's own work; time blocked on Ceph, Kubernetes and Nexus answers or asleep"
    " between polls costs none. The rbd/ceph CLIs it runs as subprocesses are shown apart, not counted."
)


class OperationFailed(Exception):
    """An operation was refused or failed; the message holds the plan's refusals or the journal error."""


@dataclass
class Measured:
    """One operation as measured: its final journal and the timings around it."""

    label: str
    journal: Journal
    approved_at: datetime
    prepare_s: float
    wall_s: float
    cpu_s: float
    children_cpu_s: float
    step_cpu: dict[str, float] = field(default_factory=dict)
    plan_both_up_s: float | None = None
    """For the failover with site-a down: the same plan made with both sites up just before."""

    def writable_s(self) -> float | None:
        """Seconds from approval to the end of ``start-target`` (the app writable on the target)."""
        try:
            ended = self.journal.step("start-target").ended_at
        except KeyError:
            return None
        return None if ended is None else (ended - self.approved_at).total_seconds()


@dataclass
class Verdict:
    """One figure of one operation against its target."""

    label: str
    what: str
    seconds: float
    limit: float

    @property
    def ok(self) -> bool:
        """Whether the figure meets its target."""
        return self.seconds <= self.limit

    def mark(self) -> str:
        """``target <= N s  PASS`` or ``... MISS``."""
        return f"target <= {self.limit:.0f} s  {'PASS' if self.ok else 'MISS'}"


# ----------------------------------------------------------------------------------------- running


def _children_cpu() -> float:
    t = os.times()
    return t.children_user + t.children_system


def operate(
    world: World, key: crypto.MasterKey, kind: Kind, target: str | None, label: str, **acks: bool
) -> Measured:
    """Prepare, approve and execute one operation, timing each phase; :class:`OperationFailed` if it does not complete."""
    print(f"-- {label} ...", flush=True)
    started = time.perf_counter()
    prepared = prepare(world, APP, kind, target, key=key)
    prepare_s = time.perf_counter() - started
    if not prepared.plan.runnable:
        reasons = (
            "; ".join(f"{c.name}: {c.detail}" for c in prepared.plan.refusals) or prepared.plan.nothing_to_do
        )
        raise OperationFailed(f"{label}: plan refused: {reasons}")
    step_cpu: dict[str, float] = {}
    step_start: dict[str, float] = {}

    def on_step(_journal: Journal, record: StepRecord) -> None:
        now = time.process_time()
        if record.outcome == "running":
            step_start[record.name] = now
        else:
            step_cpu[record.name] = now - step_start.pop(record.name, now)

    approval = Approval(approver="bench", reason=f"bench {label}", at=datetime.now(UTC), **acks)
    wall0 = time.perf_counter()
    try:
        journal = approve(world, prepared, approval, APP)
    except StandbyError as error:
        raise OperationFailed(f"{label}: approval refused: {error}") from None
    cpu0, children0 = time.process_time(), _children_cpu()
    failure = ""
    try:
        journal = execute(world, journal, key=key, on_step=on_step)
    except StandbyError as error:
        failure = str(error)
        try:
            journal = read_journal(world, journal.op_id, APP)
        except StandbyError:
            pass
    measured = Measured(
        label=label,
        journal=journal,
        approved_at=approval.at,
        prepare_s=prepare_s,
        wall_s=time.perf_counter() - wall0,
        cpu_s=time.process_time() - cpu0,
        children_cpu_s=_children_cpu() - children0,
        step_cpu=step_cpu,
    )
    if failure or journal.status != "completed":
        print_steps(measured)
        raise OperationFailed(f"{label}: {journal.op_id} {journal.status}: {journal.error or failure}")
    return measured


def plan_only(world: World, key: crypto.MasterKey, kind: Kind, target: str | None, label: str) -> float:
    """Seconds to plan (``prepare``) an operation that is not run; prints what the plan says of each site."""
    started = time.perf_counter()
    prepared = prepare(world, APP, kind, target, key=key)
    seconds = time.perf_counter() - started
    sites = ", ".join(
        f"{name} {'answered' if v.reachable else 'UNREACHABLE: ' + v.error}"
        for name, v in prepared.facts.view.sites.items()
    )
    print(f"-- {label}: planned in {seconds:.2f} s ({sites})", flush=True)
    return seconds


def fresh_backup(world: World, key: crypto.MasterKey, site: str) -> None:
    """Back the app up from ``site`` (its current primary), as the nightly backup would."""
    app = world.config.app(APP)
    primary = read_placement(world, app).record.primary
    if primary != site:
        raise OperationFailed(f"backup: {APP} runs on {primary}, not {site}")
    b = world.bundle(site)
    started = time.perf_counter()
    summary = backups.run_backup(
        app, b.site, b.cluster, backups.app_stores(world, app, site), key=key, clock=SystemClock()
    )
    if summary.status != "complete":
        raise OperationFailed(f"backup from {site}: {summary.status}: {'; '.join(summary.warnings)}")
    print(
        f"-- backup from {site}: {summary.objects} objects in {time.perf_counter() - started:.1f} s ({summary.run_id})"
    )


def sync_now(world: World, primary: str, secondary: str, timeout: float = 120.0) -> None:
    """Take a mirror snapshot on ``primary`` and wait until ``secondary`` holds it complete."""
    from lab import seeds

    pa, pb = world.bundle(primary), world.bundle(secondary)
    started = time.perf_counter()
    pa.rbd.mirror_snapshot(pa.site.pool, seeds.IMAGE_NAME)
    mine = parse_snap_ls(pa.rbd.snapshots(pa.site.pool, seeds.IMAGE_NAME), tz="UTC")
    newest = max(s.id for s in mine if not s.non_primary)
    while time.perf_counter() - started < timeout:
        theirs = parse_snap_ls(pb.rbd.snapshots(pb.site.pool, seeds.IMAGE_NAME), tz="UTC")
        if any(s.primary_snap_id == newest and s.complete for s in theirs):
            print(
                f"-- mirror snapshot {primary} -> {secondary} complete in {time.perf_counter() - started:.1f} s"
            )
            return
        time.sleep(0.5)
    raise OperationFailed(f"{secondary} did not complete snapshot {newest} of {primary} in {timeout:.0f} s")


def scenario(
    root: Path, key: crypto.MasterKey, site_down: Callable[[], Any], site_up: Callable[[], Any]
) -> list[Measured]:
    """Relocate there and back, failover with site-a lost, failback (see the module docstring)."""
    config = load_config(root / "standby.yaml")
    # The production default probe_timeout (the lab's own is longer, for its shared test machine).
    default = Site.model_fields["probe_timeout"].default
    config = config.model_copy(
        update={"sites": tuple(s.model_copy(update={"probe_timeout": default}) for s in config.sites)}
    )
    world = build_world(config, timeout=20.0)
    out = []
    fresh_backup(world, key, "site-a")
    out.append(report(operate(world, key, "relocate", "site-b", "relocate site-a -> site-b")))
    fresh_backup(world, key, "site-b")
    sync_now(world, "site-b", "site-a")  # the lag guard wants site-a's first snapshot after the move
    out.append(report(operate(world, key, "relocate", "site-a", "relocate site-b -> site-a")))
    fresh_backup(world, key, "site-a")
    sync_now(world, "site-a", "site-b")
    both_up = plan_only(world, key, "failover", "site-b", "failover plan with both sites up (not run)")
    site_down()
    print("-- site-a DOWN (frozen)", flush=True)
    try:
        label = "failover to site-b (site-a down)"
        failover = operate(world, key, "failover", "site-b", label, data_loss=True, unfenced=True)
        failover.plan_both_up_s = both_up
        print(f"-- the plan says: cannot be fenced: {'; '.join(failover.journal.plan.unfenced) or 'nothing'}")
        out.append(report(failover))
        fresh_backup(world, key, "site-b")
    finally:
        site_up()
        print("-- site-a UP again", flush=True)
    out.append(report(operate(world, key, "failback", None, "failback site-b -> site-a")))
    return out


# ---------------------------------------------------------------------------------------- printing


def _secs(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"


def print_steps(m: Measured) -> None:
    """The journal's steps: name, site, outcome, seconds, CPU seconds."""
    j = m.journal
    print(f"{m.label}  [{j.op_id}, {j.status}]")
    print(f"  {'step':22}{'site':9}{'outcome':10}{'seconds':>9}{'cpu s':>8}")
    for s in j.steps:
        cpu = m.step_cpu.get(s.name)
        print(f"  {s.name:22}{s.site:9}{s.outcome:10}{_secs(s.seconds):>9}{_secs(cpu):>8}")
        if s.error:
            print(f"    error: {s.error}")
    if j.error:
        print(f"  journal error: {j.error}")


def vs_manual(seconds: float) -> str:
    """``seconds`` against the manual 4-10 minutes, as a speed-up range."""
    lo, hi = MANUAL[0] / max(seconds, 1e-3), MANUAL[1] / max(seconds, 1e-3)
    verdict = "faster" if lo >= 1 else "(manual / measured)"
    return f"{seconds:.1f} s vs manual {MANUAL[0]:.0f}–{MANUAL[1]:.0f} s: {lo:.1f}x–{hi:.1f}x {verdict}"


def _writable_what(m: Measured) -> str:
    return f"approval -> Nexus writable on {m.journal.target}"


def verdicts(m: Measured) -> dict[str, Verdict]:
    """The targets that apply to ``m``, by what they measure."""
    out = []
    if m.journal.kind == "relocate":
        out.append(Verdict(m.label, "approval -> completed", m.wall_s, TARGET_RELOCATE))
    writable = m.writable_s()
    if m.journal.kind == "failover" and writable is not None:
        out.append(Verdict(m.label, _writable_what(m), writable, TARGET_FAILOVER_WRITABLE))
    if m.plan_both_up_s is not None:
        out.append(Verdict(m.label, PLAN_WHAT, m.prepare_s, TARGET_PLAN_SITE_DOWN))
    out.append(Verdict(m.label, "CPU outside waits", m.cpu_s, TARGET_CPU))
    return {v.what: v for v in out}


def report(m: Measured) -> Measured:
    """Print one operation's table and figures; returns ``m``."""
    print_steps(m)
    targets = verdicts(m)
    mark = lambda what: targets[what].mark() if what in targets else ""  # noqa: E731
    writable = m.writable_s()
    rows: list[tuple[str, str, str]] = [
        ("planning (prepare)", f"{m.prepare_s:.1f} s", "before approval, not in the totals"),
    ]
    if m.plan_both_up_s is not None:
        rows = [
            ("planning with site-a frozen", f"{m.prepare_s:.2f} s", mark(PLAN_WHAT)),
            ("  the same plan with both sites up", f"{m.plan_both_up_s:.2f} s", "same run, just before"),
        ]
    rows += [
        ("approval -> completed", f"{m.wall_s:.1f} s", mark("approval -> completed")),
    ]
    if writable is not None:
        rows.append((_writable_what(m), f"{writable:.1f} s", mark(_writable_what(m))))
    rows.append(("CPU outside waits (this process)", f"{m.cpu_s:.2f} s", mark("CPU outside waits")))
    rows.append(("  rbd/ceph CLI subprocesses' CPU", f"{m.children_cpu_s:.2f} s", "not counted"))
    for name, value, note in rows:
        print(f"  {name:40}{value:>9}   {note}".rstrip())
    print(f"  approval -> completed: {vs_manual(m.wall_s)}")
    if m.journal.kind == "failover" and writable is not None:
        print(f"  approval -> writable:  {vs_manual(writable)}")
    print(flush=True)
    return m


def summary(results: list[Measured]) -> None:
    """Every target once more, the comparison with the manual procedure, and the CPU definition."""
    print(
        f"summary (targets: failover approval -> writable <= {TARGET_FAILOVER_WRITABLE:.0f} s,"
        f" relocate <= {TARGET_RELOCATE:.0f} s, CPU outside waits <= {TARGET_CPU:.0f} s,"
        f" planning with site-a frozen <= {TARGET_PLAN_SITE_DOWN:.0f} s)"
    )
    for m in results:
        for v in verdicts(m).values():
            print(f"  {v.label + ': ' + v.what:72}{v.seconds:8.2f} s   {v.mark()}")
    print(
        f"manual anchor (Alauda Nexus DR procedure, a manual switchover): {MANUAL[0]:.0f}–{MANUAL[1]:.0f} s"
    )
    for m in results:
        writable = m.writable_s()
        if m.journal.kind == "failover" and writable is not None:
            print(f"  {m.label}, approval -> writable: {vs_manual(writable)}")
        print(f"  {m.label}, approval -> completed: {vs_manual(m.wall_s)}")
    print(f"note: {CPU_DEFINITION}")


# -------------------------------------------------------------------------------------------- main


@contextmanager
def _env(**values: str) -> Iterator[None]:
    saved = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def main() -> None:
    """Bring a lab up, run the operations, print the tables, take the lab down; exit 1 on a failure."""
    root = Path(tempfile.mkdtemp(prefix="standby-bench-ops-"))
    key_text = base64.b64encode(os.urandom(32)).decode()
    with _env(STANDBY_LAB_PORT_BASE=PORT_BASE, STANDBY_LAB_DIR=str(root), STANDBY_BACKUP_KEY=key_text):
        from lab import lab as lab_mod

        key = backups.key_from_env("STANDBY_BACKUP_KEY")
        assert key is not None
        print(
            f"operations benchmark: Nexus on the two-site lab (real Ceph), {root}, port base {lab_mod.port_base()}"
        )
        failed = ""
        started = time.perf_counter()
        try:
            lab_mod.up(root, log=lambda m: None)
            print(f"-- lab up in {time.perf_counter() - started:.0f} s", flush=True)
            results = scenario(
                root,
                key,
                site_down=lambda: lab_mod.site_down(root, "site-a", log=lambda m: None),
                site_up=lambda: lab_mod.site_up(root, "site-a", log=lambda m: None),
            )
            summary(results)
        except OperationFailed as error:
            failed = str(error)
        finally:
            lab_mod.down(root, log=lambda m: None)
        if failed:
            print(f"-- lab down (logs kept in {root})")
        else:
            shutil.rmtree(root, ignore_errors=True)
            print(f"-- lab down ({root} removed)")
    if failed:
        print(f"FAILED: {failed}", file=sys.stderr)
        raise SystemExit(1)


if __name__ == "__main__":
    main()
