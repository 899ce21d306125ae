"""``python -m bench``: run every ``bench/*.py`` module that has a ``main()``, one after the other."""

from __future__ import annotations

import importlib
import pkgutil
import sys
import time

import bench


def main() -> None:
    """Import each benchmark module of this package and call its ``main()``."""
    names = sorted(m.name for m in pkgutil.iter_modules(bench.__path__) if not m.name.startswith("_"))
    saved = sys.argv
    for name in names:
        module = importlib.import_module(f"bench.{name}")
        entry = getattr(module, "main", None)
        if not callable(entry):
            continue
        print(f"== bench.{name} ==", flush=True)
        started = time.perf_counter()
        sys.argv = [f"bench/{name}.py"]
        try:
            entry()
        finally:
            sys.argv = saved
        print(f"(bench.{name}: {time.perf_counter() - started:.1f} s)\n", flush=True)


if __name__ == "__main__":
    main()
