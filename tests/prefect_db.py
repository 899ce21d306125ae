"""A Prefect database already migrated to head, copied into every Prefect server the tests start.

A Prefect server on a fresh SQLite file runs every Alembic migration before it answers: about
6.5 s of CPU each (measured: ``prefect server database upgrade`` on an empty file took 10.3 s of
CPU, on a file already at head 3.8 s, most of it imports). The tests start about ten servers per
``make test`` (one harness per pytest-xdist worker, and the servers of tests/server and
tests/browser), so each one now starts from a copy of one migrated file instead. The server still
runs its migrations on start (``PREFECT_API_DATABASE_MIGRATE_ON_START``), which is a no-op at head
and brings an older copy up to date, so a template left by an older Prefect is still correct.

The template is built once per machine and Prefect version, under a lock, and published by an atomic
rename, so concurrent workers wait for the first one and never read half a file.
"""

from __future__ import annotations

import fcntl
import os
import shutil
import sqlite3
import subprocess
import sys
import tempfile
from importlib.metadata import version
from pathlib import Path

TEMPLATE_DIR = Path(tempfile.gettempdir()) / f"standby-prefect-db-template-{os.getuid()}"


def template() -> Path:
    """The migrated database for this Prefect version (built on first use)."""
    TEMPLATE_DIR.mkdir(parents=True, exist_ok=True)
    target = TEMPLATE_DIR / f"prefect-{version('prefect')}.db"
    if target.exists():
        return target
    with (TEMPLATE_DIR / ".lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if target.exists():  # another worker built it while this one waited
            return target
        work = Path(tempfile.mkdtemp(prefix="build-", dir=TEMPLATE_DIR))
        try:
            db = work / "prefect.db"
            subprocess.run(
                [str(Path(sys.executable).with_name("prefect")), "server", "database", "upgrade", "-y"],
                env={
                    **os.environ,
                    "PREFECT_HOME": str(work),
                    "PREFECT_SERVER_DATABASE_CONNECTION_URL": f"sqlite+aiosqlite:///{db}",
                },
                check=True,
                capture_output=True,
                timeout=600,
            )
            with sqlite3.connect(db) as conn:  # one self-contained file: no WAL beside it
                conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
                conn.execute("PRAGMA journal_mode=DELETE")
            db.replace(target)
        finally:
            shutil.rmtree(work, ignore_errors=True)
    return target


def seed(db: Path) -> None:
    """Put a copy of the migrated template at ``db`` (a server's database file, not there yet)."""
    db.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(template(), db)


def mkdtemp_with_database(name: str = "prefect-test.db") -> str:
    """``tempfile.mkdtemp`` that also puts the migrated database in the new folder as ``name``:
    ``prefect_test_harness`` makes its folder with ``mkdtemp`` and its database is ``prefect-test.db`` there."""
    folder = tempfile.mkdtemp()
    seed(Path(folder) / name)
    return folder
