"""Record real ``rbd ... --format json`` outputs from the two-site Ceph lab into ``tests/golden/rbd/``.

Usage::

    python -m lab.record_golden --lab-dir /tmp/golden-lab [--port-base 16850] [--out tests/golden/rbd]

It drives one snapshot-mode image (``golden-snap``) and one journal-mode image (``golden-journal``)
through replication, forced promotion, split-brain, resync and a dead rbd-mirror daemon, and saves
what ``rbd`` printed at each step. Every ``X.json`` gets an ``X.meta.json`` sidecar with the site,
the exact command, the scenario, the wall-clock epoch at capture and the host's timezone (``rbd``
prints ``last_update`` in local time without a zone), so RPO tests can use the right ``now``.
``README.md`` in the output folder lists every file.

Run it on a dedicated lab folder: it force-promotes, demotes and resyncs the golden images and
stops site-b's rbd-mirror for a while. A lab it started itself is stopped at the end; a lab that
was already running is left running with rbd-mirror restored.
"""

from __future__ import annotations

import argparse
import json
import logging
import re
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lab.ceph import (
    DEFAULT_POOL,
    CephLabError,
    CephSite,
    _stop_pids,
    ceph_down,
    ceph_status,
    ceph_up,
    create_mirrored_image,
    run,
    wait_for,
)

log = logging.getLogger("lab.record_golden")

SNAP_IMAGE = "golden-snap"
JOURNAL_IMAGE = "golden-journal"
REPO_ROOT = Path(__file__).resolve().parent.parent


def _timezone() -> dict[str, Any]:
    """The host's timezone, as the rbd-mirror daemons (same host, same TZ) use it for ``last_update``."""
    name = ""
    try:
        name = Path("/etc/timezone").read_text().strip()
    except OSError:
        link = Path("/etc/localtime")
        if link.is_symlink():
            name = str(link.readlink()).split("zoneinfo/")[-1]
    local = time.localtime()
    return {
        "name": name or time.strftime("%Z"),
        "abbreviation": time.strftime("%Z"),
        "utc_offset_seconds": local.tm_gmtoff,
    }


def _description_json(status: dict[str, Any]) -> dict[str, Any]:
    """The JSON part of a ``replaying, {...}`` description ({} when there is none)."""
    text = str(status.get("description", ""))
    start = text.find("{")
    if start < 0:
        return {}
    try:
        data = json.loads(text[start:])
    except ValueError:
        return {}
    return data if isinstance(data, dict) else {}


@dataclass
class Recorder:
    """Runs ``rbd`` commands, saves their JSON output and sidecars, and remembers them for the README."""

    out: Path
    lab_dir: Path
    ceph_version: str
    entries: list[dict[str, Any]] = field(default_factory=list)

    def query(self, site: CephSite, *args: str, accept: Sequence[int] = (0,)) -> tuple[int, Any, str]:
        """Run ``rbd ARGS --format json --pretty-format`` on ``site``; return (rc, JSON or None, stdout)."""
        argv = site.cli(*args, "--format", "json", "--pretty-format")
        proc = run(argv, 60, check=False, site=site.name)
        if proc.returncode not in accept:
            raise CephLabError(
                f"`{' '.join(argv)}` failed rc={proc.returncode}: {proc.stderr.strip()[-500:]}",
                site=site.name,
            )
        try:
            parsed = json.loads(proc.stdout) if proc.stdout.strip() else None
        except ValueError:
            parsed = None
        return proc.returncode, parsed, proc.stdout

    def capture(self, name: str, site: CephSite, args: Sequence[str], scenario: str) -> Any:
        """Save ``rbd ARGS --format json`` of ``site`` as ``<name>.json`` plus ``<name>.meta.json``."""
        epoch = time.time()
        _, parsed, stdout = self.query(site, *args)
        if parsed is None:
            raise CephLabError(f"`rbd {' '.join(args)}` printed no JSON for {name}", site=site.name)
        command = " ".join(
            [
                "rbd",
                "--cluster",
                site.cluster,
                "-c",
                f"<lab>/ceph/{site.name}/{site.name}.conf",
                *args,
                "--format",
                "json",
                "--pretty-format",
            ]
        )
        (self.out / f"{name}.json").write_text(stdout if stdout.endswith("\n") else stdout + "\n")
        meta = {
            "file": f"{name}.json",
            "site": site.name,
            "command": command,
            "scenario": scenario,
            "captured_at_epoch": round(epoch, 3),
            "captured_at_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(epoch)),
            "captured_at_local": time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(epoch)),
            "timezone": _timezone(),
            "ceph_version": self.ceph_version,
        }
        (self.out / f"{name}.meta.json").write_text(json.dumps(meta, indent=2) + "\n")
        self.entries.append(meta)
        log.info("captured %s (%s)", name, site.name)
        return parsed

    def status(self, site: CephSite, image: str) -> dict[str, Any]:
        """Current ``rbd mirror image status`` of ``image`` on ``site`` ({} when the command fails)."""
        rc, parsed, _ = self.query(
            site, "mirror", "image", "status", f"{DEFAULT_POOL}/{image}", accept=range(256)
        )
        return parsed if rc == 0 and isinstance(parsed, dict) else {}

    def pool_status(self, site: CephSite) -> dict[str, Any]:
        """Current ``rbd mirror pool status --verbose`` on ``site``."""
        _, parsed, _ = self.query(site, "mirror", "pool", "status", DEFAULT_POOL, "--verbose")
        return parsed if isinstance(parsed, dict) else {}

    def write_readme(self, notes: Sequence[str]) -> None:
        """Write ``README.md`` listing every captured file with its site, scenario and command."""
        lines = [
            "# Golden `rbd` JSON outputs (real Ceph)",
            "",
            f"Recorded by `python -m lab.record_golden` on the two-site lab of `lab/ceph.py` with "
            f"**{self.ceph_version}** (Debian 12 packages), one mon/mgr/memstore OSD/rbd-mirror per "
            f"site, pool `{DEFAULT_POOL}` mirrored in image mode, two-way (`rx-tx`) peers, site names "
            "`site-a` and `site-b`.",
            "",
            "Every `X.json` is exactly what the command printed (`--format json --pretty-format`). "
            "Its sidecar `X.meta.json` holds the site, the command (`<lab>` stands for the lab folder), "
            "the scenario, the wall-clock epoch at capture (`captured_at_epoch`, use it as `now` in RPO "
            "tests) and the host timezone. `last_update` in the statuses is local time of that timezone, "
            "with no zone in the text; `local_snapshot_timestamp`/`remote_snapshot_timestamp` in "
            "descriptions are epoch seconds; `timestamp` in `snap ls` is a local time string such as "
            "`Sat Nov 21 22:15:09 2026`.",
            "",
            "Images: `golden-snap` (snapshot mode, 64 MiB, features layering+exclusive-lock, schedule 1m "
            "on both sites) and `golden-journal` (journal mode, + journaling). Data is written with "
            "`rbd bench --io-type write`.",
            "",
            "| file | site | scenario | command |",
            "| --- | --- | --- | --- |",
        ]
        for entry in self.entries:
            scenario = entry["scenario"].replace("|", "\\|")
            lines.append(f"| `{entry['file']}` | {entry['site']} | {scenario} | `{entry['command']}` |")
        if notes:
            lines += ["", "## Notes from the recording run", ""] + [f"- {note}" for note in notes]
        lines += [
            "",
            "Regenerate: `python -m lab.record_golden --lab-dir /tmp/golden-lab` "
            "(mon ports 16850-16861, about 4 minutes).",
            "",
        ]
        (self.out / "README.md").write_text("\n".join(lines))


def _poll(what: str, timeout: float, fn: Callable[[], Any], interval: float = 1.0) -> Any:
    return wait_for(fn, timeout, interval, what)


def _rbd_bench(site: CephSite, image: str, total: str, io_size: str = "64K") -> subprocess.Popen[str]:
    argv = site.cli(
        "bench",
        "--io-type",
        "write",
        "--io-size",
        io_size,
        "--io-threads",
        "4",
        "--io-total",
        total,
        "--io-pattern",
        "rand",
        f"{DEFAULT_POOL}/{image}",
    )
    return subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)


def _wait_bench(proc: subprocess.Popen[str], timeout: float) -> None:
    try:
        _, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.communicate()
        raise CephLabError("rbd bench did not finish") from None
    if proc.returncode != 0:
        raise CephLabError(f"rbd bench failed rc={proc.returncode}: {err.strip()[-300:]}")


def record(lab_dir: Path, port_base: int, out: Path) -> list[str]:
    """Run every scenario on the lab and write the golden files; returns notes for the README."""
    notes: list[str] = []
    lab = ceph_up(lab_dir, port_base)
    a, b = lab["site-a"], lab["site-b"]
    version = run(["ceph", "--version"], 30).stdout.strip()
    version = re.sub(r"\s*\([0-9a-f]{40}\)", "", version)
    for site in (a, b):
        existing = json.loads(run(site.cli("ls", DEFAULT_POOL, "--format", "json"), 30).stdout or "[]")
        if SNAP_IMAGE in existing or JOURNAL_IMAGE in existing:
            raise CephLabError(
                f"{SNAP_IMAGE}/{JOURNAL_IMAGE} already exist; use a fresh --lab-dir", site=site.name
            )
    out.mkdir(parents=True, exist_ok=True)
    for old in [*out.glob("*.json"), out / "README.md"]:
        old.unlink(missing_ok=True)
    rec = Recorder(out, lab_dir, version)
    snap = f"{DEFAULT_POOL}/{SNAP_IMAGE}"
    journal = f"{DEFAULT_POOL}/{JOURNAL_IMAGE}"

    # 1. Snapshot mode, healthy replication ------------------------------------------------------
    create_mirrored_image(a, b, DEFAULT_POOL, SNAP_IMAGE, size_mb=64, mode="snapshot", schedule="1m")
    _wait_bench(_rbd_bench(a, SNAP_IMAGE, "4M"), 120)
    run(a.cli("mirror", "image", "snapshot", snap), 60)

    _, a_snaps, _ = rec.query(a, "snap", "ls", "--all", snap)
    target = max(int(s["id"]) for s in a_snaps if s.get("namespace", {}).get("state") == "primary")

    def synced() -> bool:
        _, snaps, _ = rec.query(b, "snap", "ls", "--all", snap)
        done = [
            s
            for s in snaps or []
            if s.get("namespace", {}).get("state") == "non-primary"
            and s["namespace"].get("complete")
            and int(s["namespace"].get("primary_snap_id", -1)) >= target
        ]
        if not done:
            return False
        synced_at = time.mktime(time.strptime(done[-1]["timestamp"], "%a %b %d %H:%M:%S %Y"))
        desc = _description_json(rec.status(b, SNAP_IMAGE))
        peer = (rec.status(a, SNAP_IMAGE).get("peer_sites") or [{}])[0]
        return (
            desc.get("replay_state") == "idle"
            and desc.get("local_snapshot_timestamp", 0) >= synced_at - 1
            and str(peer.get("state")) == "up+replaying"
        )

    _poll("golden-snap to be synced with data on site-b", 150, synced, 2.0)
    scenario = "snapshot mode, healthy: 4 MiB written on A, `rbd mirror image snapshot` on A, synced to B"
    rec.capture("image-status-primary-a", a, ["mirror", "image", "status", snap], scenario)
    rec.capture("image-status-secondary-b-replaying", b, ["mirror", "image", "status", snap], scenario)
    rec.capture("pool-status-verbose-a", a, ["mirror", "pool", "status", DEFAULT_POOL, "--verbose"], scenario)
    rec.capture("pool-status-verbose-b", b, ["mirror", "pool", "status", DEFAULT_POOL, "--verbose"], scenario)
    rec.capture("pool-status-a", a, ["mirror", "pool", "status", DEFAULT_POOL], scenario)
    rec.capture(
        "snap-ls-all-a", a, ["snap", "ls", "--all", snap], scenario + " (.mirror.primary.* snapshots)"
    )
    rec.capture(
        "snap-ls-all-b", b, ["snap", "ls", "--all", snap], scenario + " (.mirror.non_primary.* snapshots)"
    )
    rec.capture("image-info-primary-a", a, ["info", snap], scenario)
    rec.capture("image-info-secondary-b", b, ["info", snap], scenario)
    rec.capture(
        "mirror-pool-info-a", a, ["mirror", "pool", "info", DEFAULT_POOL], "peers after bootstrap (rx-tx)"
    )
    rec.capture(
        "mirror-pool-info-b", b, ["mirror", "pool", "info", DEFAULT_POOL], "peers after bootstrap (rx-tx)"
    )
    rec.capture(
        "snapshot-schedule-ls-a",
        a,
        ["mirror", "snapshot", "schedule", "ls", "--pool", DEFAULT_POOL, "--recursive"],
        "schedule 1m added on golden-snap",
    )
    rec.capture(
        "snapshot-schedule-ls-b",
        b,
        ["mirror", "snapshot", "schedule", "ls", "--pool", DEFAULT_POOL, "--recursive"],
        "schedule 1m added on golden-snap (on B too)",
    )

    # 2. Journal mode, entries behind -------------------------------------------------------------
    create_mirrored_image(a, b, DEFAULT_POOL, JOURNAL_IMAGE, size_mb=64, mode="journal", schedule=None)
    _poll(
        "golden-journal to replay on B",
        120,
        lambda: rec.status(b, JOURNAL_IMAGE).get("state") == "up+replaying",
        2.0,
    )
    bench = _rbd_bench(a, JOURNAL_IMAGE, "48M", io_size="4K")
    behind = 0
    initial_saved = False
    deadline = time.monotonic() + 100
    status_cmd = ["mirror", "image", "status", journal]
    try:
        while time.monotonic() < deadline:
            desc = _description_json(rec.status(b, JOURNAL_IMAGE))
            behind = int(desc.get("entries_behind_primary", 0))
            if behind > 0 and not desc.get("non_primary_position") and not initial_saved:
                initial_saved = True
                rec.capture(
                    "image-status-journal-secondary-b-initial",
                    b,
                    status_cmd,
                    "journal mode, first status after the writes began: entries behind, "
                    "empty non_primary_position",
                )
            elif behind >= 100 and desc.get("non_primary_position"):
                break
            if bench.poll() is not None:
                bench = _rbd_bench(a, JOURNAL_IMAGE, "48M", io_size="4K")
            time.sleep(1.0)
        scenario = "journal mode while `rbd bench --io-type write --io-size 4K` writes on A (B behind)"
        captured = rec.capture("image-status-journal-secondary-b", b, status_cmd, scenario)
        rec.capture(
            "pool-status-verbose-journal-b",
            b,
            ["mirror", "pool", "status", DEFAULT_POOL, "--verbose"],
            scenario,
        )
        rec.capture("image-status-journal-primary-a", a, status_cmd, scenario)
    finally:
        if bench.poll() is None:
            bench.terminate()
            bench.communicate(timeout=30)
    behind = int(_description_json(captured).get("entries_behind_primary", 0))
    notes.append(f"image-status-journal-secondary-b.json has entries_behind_primary={behind}.")

    def caught_up() -> bool:
        desc = _description_json(rec.status(b, JOURNAL_IMAGE))
        return bool(desc) and desc.get("entries_behind_primary", 1) == 0

    try:
        _poll("golden-journal to catch up", 90, caught_up, 2.0)
        rec.capture(
            "image-status-journal-secondary-b-caught-up",
            b,
            ["mirror", "image", "status", journal],
            "journal mode after the writes stopped and B caught up",
        )
    except CephLabError as exc:
        notes.append(f"journal image did not report entries_behind_primary=0 in time: {exc.message}")

    # 3. Forced promote on B while A is still primary ---------------------------------------------
    started = time.monotonic()
    run(b.cli("mirror", "image", "promote", "--force", snap), 120)
    notes.append(f"`rbd mirror image promote --force` on B took {time.monotonic() - started:.1f} s.")
    seen: set[str] = set()

    def b_primary() -> bool:
        status = rec.status(b, SNAP_IMAGE)
        key = f"{status.get('state')}|{status.get('description')}"
        if "orphan" in key and key not in seen:
            seen.add(key)
            rec.capture(
                "image-status-force-promoting-b",
                b,
                ["mirror", "image", "status", snap],
                "right after `rbd mirror image promote --force` on B (transient)",
            )
        return status.get("description") == "local image is primary" and str(status.get("state")).startswith(
            "up+"
        )

    _poll("B to say local image is primary", 90, b_primary, 1.0)
    scenario = (
        "after `rbd mirror image promote --force` on B while A is still primary (both primary, no error)"
    )
    rec.capture("image-status-force-promoted-b", b, ["mirror", "image", "status", snap], scenario)
    rec.capture("image-status-force-promoted-a", a, ["mirror", "image", "status", snap], scenario)
    rec.capture(
        "pool-status-verbose-force-promoted-a",
        a,
        ["mirror", "pool", "status", DEFAULT_POOL, "--verbose"],
        scenario,
    )
    rec.capture(
        "pool-status-verbose-force-promoted-b",
        b,
        ["mirror", "pool", "status", DEFAULT_POOL, "--verbose"],
        scenario,
    )

    # 4. Split-brain: demote the loser (A) --------------------------------------------------------
    run(a.cli("mirror", "image", "demote", snap), 60)
    _poll("A to report split-brain", 120, lambda: rec.status(a, SNAP_IMAGE).get("state") == "up+error", 2.0)
    scenario = "split-brain: forced promote on B, then `rbd mirror image demote` on A (the loser)"
    rec.capture("image-status-split-brain-a", a, ["mirror", "image", "status", snap], scenario)
    rec.capture(
        "pool-status-verbose-split-brain-a",
        a,
        ["mirror", "pool", "status", DEFAULT_POOL, "--verbose"],
        scenario + "; health ERROR",
    )
    rec.capture(
        "image-status-split-brain-b", b, ["mirror", "image", "status", snap], scenario + " (B's view)"
    )
    rec.capture(
        "pool-status-verbose-split-brain-b",
        b,
        ["mirror", "pool", "status", DEFAULT_POOL, "--verbose"],
        scenario + " (B's view)",
    )

    # 5. Resync on A ------------------------------------------------------------------------------
    run(a.cli("mirror", "image", "resync", snap), 60)
    resync_started = time.monotonic()
    states: list[str] = []

    def resync_progress() -> bool:
        status = rec.status(a, SNAP_IMAGE)
        state = str(status.get("state", ""))
        if state and state not in states:
            states.append(state)
            slug = state.replace("+", "-")
            rec.capture(
                f"image-status-resync-{len(states)}-{slug}-a",
                a,
                ["mirror", "image", "status", snap],
                f"after `rbd mirror image resync` on A (state #{len(states)} seen: {state})",
            )
            rec.capture(
                f"pool-status-verbose-resync-{len(states)}-{slug}-a",
                a,
                ["mirror", "pool", "status", DEFAULT_POOL, "--verbose"],
                f"after `rbd mirror image resync` on A (golden-snap state #{len(states)} seen: {state})",
            )
        return state == "up+replaying"

    try:
        _poll("A to finish the resync", 180, resync_progress, 1.0)
        notes.append(
            f"resync reached up+replaying on A after {time.monotonic() - resync_started:.0f} s "
            f"(states seen: {', '.join(states)})."
        )
    except CephLabError as exc:
        notes.append(f"resync did not finish in 180 s (states seen: {', '.join(states)}): {exc.message}")

    # 6. rbd-mirror stopped on B ------------------------------------------------------------------
    _stop_pids([(b, "rbd-mirror")])
    _poll(
        "B's statuses to go down",
        90,
        lambda: str(rec.status(b, JOURNAL_IMAGE).get("state", "")).startswith("down+"),
        2.0,
    )
    scenario = "rbd-mirror daemon on B stopped (SIGTERM)"
    rec.capture(
        "image-status-mirror-daemon-down-secondary-b",
        b,
        ["mirror", "image", "status", journal],
        scenario + "; golden-journal is non-primary on B",
    )
    rec.capture(
        "image-status-mirror-daemon-down-primary-b",
        b,
        ["mirror", "image", "status", snap],
        scenario + "; golden-snap is primary on B since the forced promote",
    )
    rec.capture(
        "image-status-peer-daemon-down-a",
        a,
        ["mirror", "image", "status", journal],
        scenario + "; A's view of golden-journal (peer_sites site-b)",
    )
    _poll(
        "B's daemon_health to be UNKNOWN",
        150,
        lambda: rec.pool_status(b).get("summary", {}).get("daemon_health") == "UNKNOWN",
        3.0,
    )
    rec.capture(
        "pool-status-verbose-mirror-daemon-down-b",
        b,
        ["mirror", "pool", "status", DEFAULT_POOL, "--verbose"],
        scenario + "; after the mgr dropped the daemon (daemon_health UNKNOWN)",
    )
    ceph_up(lab_dir, port_base)  # restarts rbd-mirror on B
    rec.write_readme(notes)
    return notes


def main(argv: Sequence[str] | None = None) -> int:
    """Command-line entry point."""
    parser = argparse.ArgumentParser(prog="python -m lab.record_golden", description=__doc__.split("\n\n")[0])
    parser.add_argument("--lab-dir", type=Path, required=True, help="lab folder (use a dedicated one)")
    parser.add_argument(
        "--port-base", type=int, default=16850, help="mon port base of the lab (default 16850)"
    )
    parser.add_argument(
        "--out", type=Path, default=REPO_ROOT / "tests" / "golden" / "rbd", help="output folder"
    )
    parser.add_argument("--keep-running", action="store_true", help="leave the lab running at the end")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    was_running = any(pid for site in ceph_status(args.lab_dir).values() for pid in site.values())
    started = time.monotonic()
    try:
        notes = record(args.lab_dir, args.port_base, args.out)
    except CephLabError as exc:
        log.error("recording failed: %s", exc)
        return 1
    finally:
        if not was_running and not args.keep_running:
            ceph_down(args.lab_dir)
    log.info("recorded %s in %.0f s", args.out, time.monotonic() - started)
    for note in notes:
        log.info("note: %s", note)
    return 0


if __name__ == "__main__":
    sys.exit(main())
