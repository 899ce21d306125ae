"""RPO benchmarks: parse speed, one pool call vs per-image calls, and worst-case lag accuracy.

    .venv/bin/python -m bench.rpo            # (a) and (c); (b) when a lab is given or can be started
    STANDBY_BENCH_LAB_DIR=/tmp/mylab STANDBY_LAB_PORT_BASE=18800 .venv/bin/python -m bench.rpo

(a) parse + lag of a synthetic 1,000-image ``pool status --verbose`` (target < 0.2 s), from
    :mod:`bench.rpo_parse`.
(b) in a lab with >= 20 mirrored images: one ``rbd mirror pool status --verbose`` against one
    ``rbd mirror image status`` per image, in the same run; prints the ratio. Uses the lab named by
    ``$STANDBY_BENCH_LAB_DIR`` (with ``$STANDBY_LAB_PORT_BASE``), else brings one up on port base
    19800 in a temporary folder and tears it down (``STANDBY_BENCH_NO_LAB=1`` skips it).
(c) a synthetic day recorded as a timeline: A takes a mirror snapshot every minute, B syncs them in
    order (1-10 s, sometimes 60-120 s) with two rbd-mirror outages (9 and 23 min). For sample
    intervals of 1, 5 and 15 min it compares, per hour window and over the day, the worst-case lag:
    * truth: the sawtooth of the real (data time, completion) points;
    * reconstruction (exact mode): what a sampler listing ``rbd snap ls --all`` on both sites at each
      sample sees (the last 4 non-primary snapshots, whole-second timestamps, completion bounded by
      the next snapshot's creation on B), fed to :func:`drkit.domain.rpo.worst_lag`;
    * naive: the maximum of the true lag at the sample times.
"""

from __future__ import annotations

import math
import os
import random
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from bench import rpo_parse
from drkit.domain.rbd_status import MirrorSnapshot
from drkit.domain.rpo import Sawtooth, SyncedPoint, points_from_snapshots, worst_lag

DAY0 = datetime(2026, 11, 21, tzinfo=UTC)
RETAINED = 4  # non-primary snapshots B keeps (rbd prunes older ones)


# ----------------------------------------------------------------------------------- (a) parse


def bench_parse() -> float:
    """Best of 5 seconds for parse + lag of 1,000 images."""
    text = rpo_parse.synthesise(1000)
    rpo_parse.run(text)
    best = min(_timed(lambda: rpo_parse.run(text)) for _ in range(5))
    print(
        f"(a) parse+lag, 1000-image pool status: {best * 1000:.1f} ms (target 200 ms, ratio {best / 0.2:.2f})"
    )
    return best


def _timed(fn: Any) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


# ------------------------------------------------------------------------- (b) pool vs per image


def bench_pool_vs_images(images: int = 20) -> None:
    """One pool call vs one call per image, in a lab (given, or started and stopped here)."""
    if os.environ.get("STANDBY_BENCH_NO_LAB") == "1":
        print("(b) skipped (STANDBY_BENCH_NO_LAB=1)")
        return
    from lab import ceph
    from lab import lab as lab_mod

    given = os.environ.get("STANDBY_BENCH_LAB_DIR")
    root = Path(given) if given else Path(tempfile.mkdtemp(prefix="standby-bench-lab-"))
    if not given:
        os.environ["STANDBY_LAB_PORT_BASE"] = os.environ.get("STANDBY_BENCH_PORT_BASE", "19800")
        print(f"(b) bringing a lab up in {root} (port base {lab_mod.port_base()}) ...", flush=True)
        lab_mod.up(root, log=lambda m: None)
    sites = ceph.sites(root, lab_mod.port_base())
    a = sites["site-a"]
    pool = ceph.DEFAULT_POOL
    names = [f"bench-rpo-{i:02d}" for i in range(images)]
    try:
        for name in names:
            ceph.run(
                a.cli(
                    "create", f"{pool}/{name}", "--size", "4M", "--image-feature", "layering,exclusive-lock"
                )
            )
            ceph.run(a.cli("mirror", "image", "enable", f"{pool}/{name}", "snapshot"))
        from drkit.adapters.rbd import RbdCli
        from drkit.domain.models import CephAccess

        rbd = RbdCli.local(CephAccess(mode="local", cluster=a.cluster, conf=a.conf), site="site-a")
        total = len(rbd.pool_status(pool).get("images", []))
        pool_s = min(_timed(lambda: rbd.pool_status(pool)) for _ in range(3))
        per_image = min(_timed(lambda: [rbd.image_status(pool, n) for n in names]) for _ in range(3))
        print(
            f"(b) {len(names)} images (pool holds {total}): one pool call {pool_s * 1000:.0f} ms,"
            f" {len(names)} image calls {per_image * 1000:.0f} ms; ratio {per_image / pool_s:.1f}x"
        )
    finally:
        for name in names:
            ceph.run(a.cli("rm", f"{pool}/{name}"), 120, check=False)
        if not given:
            lab_mod.down(root, log=lambda m: None)


# --------------------------------------------------------------------------------- (c) accuracy


def timeline(seed: int = 11) -> list[tuple[datetime, datetime, datetime]]:
    """``(data_time, sync_start_on_b, completed_at)`` of every mirror snapshot of a synthetic day."""
    rng = random.Random(seed)
    outages = [
        (DAY0 + timedelta(hours=5, minutes=10), DAY0 + timedelta(hours=5, minutes=19)),
        (DAY0 + timedelta(hours=14, minutes=2), DAY0 + timedelta(hours=14, minutes=25)),
    ]
    out = []
    done = DAY0
    for k in range(24 * 60):
        data = DAY0 + timedelta(minutes=k, seconds=rng.uniform(0, 0.9))
        start = max(data, done) + timedelta(seconds=rng.uniform(0.2, 1.0))
        duration = timedelta(seconds=rng.uniform(60, 120) if rng.random() < 0.03 else rng.uniform(1, 10))
        for o1, o2 in outages:
            if start < o2 and start + duration > o1:  # interrupted or not started: restarts after
                start = o2 + timedelta(seconds=rng.uniform(1, 5))
        done = start + duration
        out.append((data, start, done))
    return out


def _floor(t: datetime) -> datetime:
    return t.replace(microsecond=0)  # rbd prints whole seconds


def reconstruct(line: list[tuple[datetime, datetime, datetime]], every: timedelta) -> list[SyncedPoint]:
    """The points an exact-mode sampler listing both sites every ``every`` would have collected."""
    best: dict[datetime, datetime] = {}
    t = DAY0 + every
    end = line[-1][2] + every
    while t <= end:
        created = [(i, row) for i, row in enumerate(line) if row[1] <= t][-RETAINED:]
        secondary = [
            MirrorSnapshot(
                id=1000 + i,
                name=f".mirror.non_primary.{i}",
                created_at=_floor(start),
                state="non-primary",
                non_primary=True,
                complete=done <= t,
                primary_snap_id=i,
            )
            for i, (_, start, done) in created
        ]
        primary = {i: _floor(line[i][0]) for i, _ in created}
        for p in points_from_snapshots(secondary, primary, listed_at=t):
            if p.completed_at is not None:
                best[p.data_time] = min(best.get(p.data_time, p.completed_at), p.completed_at)
        t += every
    return [SyncedPoint(data_time=d, completed_at=c) for d, c in sorted(best.items())]


def bench_accuracy() -> list[dict[str, Any]]:
    """Worst-case lag per window: both reconstructions and naive sampling against the truth."""
    line = timeline()
    truth_points = [SyncedPoint(data_time=d, completed_at=c) for d, _, c in line]
    # Exact points as recorded with their completion (the lab test's poller; whole seconds, bounded up).
    recorded = [
        SyncedPoint(data_time=_floor(d), completed_at=_floor(c) + timedelta(seconds=1)) for d, _, c in line
    ]
    truth = Sawtooth(truth_points)
    windows = [
        (DAY0 + timedelta(hours=h, minutes=20), DAY0 + timedelta(hours=h + 1, minutes=20)) for h in range(23)
    ]
    day = (DAY0 + timedelta(minutes=20), DAY0 + timedelta(hours=23, minutes=50))
    rows = []
    print("(c) worst-case lag in a window, error against the truth in seconds (23 hour windows, and the day)")
    print(
        f"    {'interval':>8}  {'recorded pts':>12}  {'listings only':>13}  {'listings, day':>13}"
        f"  {'naive miss':>10}  {'naive, day':>10}  {'naive miss/interval':>19}"
    )
    for minutes in (1, 5, 15):
        every = timedelta(minutes=minutes)
        listed = reconstruct(line, every)
        rec_err, list_err, miss = [], [], []
        for w in [*windows, day]:
            true = worst_lag(truth_points, *w)
            assert true is not None
            rec = worst_lag(recorded, *w)
            lst = worst_lag(listed, *w)
            samples = []
            t = w[0]
            while t <= w[1]:
                lag = truth.lag_at(t)
                if lag is not None:
                    samples.append(lag)
                t += every
            rec_err.append(math.nan if rec is None else (rec - true).total_seconds())
            list_err.append(math.nan if lst is None else (lst - true).total_seconds())
            miss.append((true - max(samples)).total_seconds())
        row = {
            "interval_min": minutes,
            "recorded_max_err_s": max(rec_err, key=abs),
            "listings_max_err_s": max((e for e in list_err[:-1] if not math.isnan(e)), key=abs),
            "listings_day_err_s": list_err[-1],
            "naive_max_miss_s": max(miss[:-1]),
            "naive_day_miss_s": miss[-1],
        }
        rows.append(row)
        print(
            f"    {minutes:>6} m  {row['recorded_max_err_s']:>+12.1f}  {row['listings_max_err_s']:>+13.1f}"
            f"  {row['listings_day_err_s']:>+13.1f}  {row['naive_max_miss_s']:>10.1f}  {row['naive_day_miss_s']:>10.1f}"
            f"  {row['naive_max_miss_s'] / (minutes * 60):>19.2f}"
        )
    print(
        "    recorded pts: sawtooth of exact points with their completion time (target: within 2 s);"
        " listings only: completion bounded by the next B snapshot or the listing time (over-states);"
        " naive: max of the lag at the sample times (misses peaks)."
    )
    return rows


def main() -> None:
    """Run (a), (c), then (b) (which may start a lab)."""
    bench_parse()
    bench_accuracy()
    bench_pool_vs_images()


if __name__ == "__main__":
    main()
