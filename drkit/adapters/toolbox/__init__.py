"""Programs Standby runs with the Python of the place where ``rbd`` runs (this machine or Rook's
toolbox pod), not imported by Standby itself.

Each module here is shipped with the package and run as ``python3 -c <its text>`` (see
:func:`helper_text`): it may import only the standard library and what that Python has (librbd's
``rados`` and ``rbd``), never ``drkit``, and it runs on the toolbox's Python (3.9 and newer).
"""

from __future__ import annotations

from importlib import resources


def helper_text(name: str) -> str:
    """The source of helper module ``name`` (e.g. ``rbd_helper``), to run with ``python3 -c``."""
    return resources.files(__name__).joinpath(f"{name}.py").read_text(encoding="utf-8")
