"""A private folder for Standby's caches, and files in it opened without following symlinks.

The Kubernetes discovery cache used to sit in the shared temporary folder under a guessable name:
another local user could plant a file there (read back as the cluster's API list) or a symlink
(written through, over a file of the victim's). Caches now go to a per-user folder created with
mode 0700 (``<tmp>/standby-<uid>``, or ``$XDG_RUNTIME_DIR/standby`` when set); a folder at that
path that is a symlink, not a folder, not owned by this user or open to others is not used: a
warning is logged and a fresh private folder (``mkdtemp``) is used instead. Files are created with
``O_NOFOLLOW`` and mode 0600.
"""

from __future__ import annotations

import logging
import os
import stat
import tempfile
from pathlib import Path

log = logging.getLogger("standby.cache")


def default_cache_root() -> Path:
    """Where the per-user cache folder goes: ``$XDG_RUNTIME_DIR/standby`` or ``<tmp>/standby-<uid>``."""
    runtime = os.environ.get("XDG_RUNTIME_DIR")
    if runtime:
        return Path(runtime) / "standby"
    return Path(tempfile.gettempdir()) / f"standby-{os.getuid()}"


def unsafe_reason(path: Path) -> str:
    """Why ``path`` must not hold this user's caches (``""``: it is a private folder of this user)."""
    try:
        st = os.lstat(path)
    except OSError as exc:
        return f"cannot be read ({exc.strerror or exc})"
    if stat.S_ISLNK(st.st_mode):
        return "is a symlink"
    if not stat.S_ISDIR(st.st_mode):
        return "is not a folder"
    if st.st_uid != os.getuid():
        return f"is owned by uid {st.st_uid}, not {os.getuid()}"
    if st.st_mode & 0o077:
        return f"is open to other users (mode {stat.S_IMODE(st.st_mode):o}, not 700)"
    return ""


def private_dir(path: Path | None = None) -> Path:
    """A folder only this user can use: ``path`` (default :func:`default_cache_root`), created 0700.

    When ``path`` is unsafe (see :func:`unsafe_reason`), one warning names it and the fix, and a
    fresh private folder is returned instead; ``path`` is never followed or changed.
    """
    wanted = path or default_cache_root()
    try:
        os.mkdir(wanted, 0o700)
    except FileExistsError:
        pass
    except OSError as exc:
        log.warning("cache folder %s cannot be created (%s); using a fresh private folder", wanted, exc)
        return Path(tempfile.mkdtemp(prefix="standby-"))
    reason = unsafe_reason(wanted)
    if reason:
        log.warning(
            "cache folder %s %s; not used (a fresh private folder is used instead)."
            " Fix: remove it, or make it a folder of this user with mode 700",
            wanted,
            reason,
        )
        return Path(tempfile.mkdtemp(prefix="standby-"))
    return wanted


def write_private(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` (mode 0600), never through a symlink (``O_NOFOLLOW``)."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW | getattr(os, "O_CLOEXEC", 0)
    fd = os.open(path, flags, 0o600)
    with os.fdopen(fd, "wb") as out:
        out.write(data)


def read_private(path: Path) -> bytes:
    """The bytes of ``path``, never read through a symlink (``O_NOFOLLOW``: a symlink is an ``OSError``)."""
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | getattr(os, "O_CLOEXEC", 0))
    with os.fdopen(fd, "rb") as src:
        return src.read()
