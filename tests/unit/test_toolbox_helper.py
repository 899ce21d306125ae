"""The toolbox helper (``drkit/adapters/toolbox/rbd_helper.py``) is a real module shipped with the
package, run by ``python3 -c`` with the Python where ``rbd`` runs.

It must stay runnable by that Python: the standard library and librbd's ``rados``/``rbd`` only,
nothing of ``drkit``. :class:`RbdCli` runs it here in a real process, on stand-in ``rados`` and
``rbd`` modules (a tiny in-memory librbd), through the real runner.
"""

from __future__ import annotations

import ast
import json
import stat
import sys
from pathlib import Path

import pytest

from drkit.adapters.rbd import COPY_HELPER, COPY_MARK, RbdCli
from drkit.adapters.runner import LocalRunner
from drkit.adapters.toolbox import helper_text
from drkit.domain.errors import StandbyError, TransientError

HELPER = Path(__file__).resolve().parents[2] / "drkit" / "adapters" / "toolbox" / "rbd_helper.py"

STAND_IN_RADOS = """
class Rados:
    def __init__(self, **kw): self.kw = kw
    def conf_read_file(self, *a): pass
    def conf_parse_env(self): pass
    def conf_set(self, *a): pass
    def connect(self, timeout=0): pass
    def open_ioctx(self, pool): return pool
"""

# One replica ``img`` whose newest mirror snapshot is complete and non-primary (or, with PRIMARY, a
# primary image), and possibly a finished copy ``img-drill`` carrying its record.
STAND_IN_RBD = """
import json, os
STATE = json.loads(os.environ["STAND_IN_RBD"])
RBD_MIRROR_IMAGE_DISABLED = 0
RBD_SNAP_MIRROR_STATE_NON_PRIMARY = 2
RBD_SNAP_MIRROR_STATE_NON_PRIMARY_DEMOTED = 3
RBD_SNAP_NAMESPACE_TYPE_MIRROR = 3
class Error(Exception): pass
class RBD:
    def list(self, ioctx): return list(STATE["images"])
    def remove(self, ioctx, name): STATE["images"].pop(name, None)
class Image:
    def __init__(self, ioctx, name, read_only=False): self.name = name
    def __enter__(self): return self
    def __exit__(self, *a): return False
    def mirror_image_get_info(self):
        return {"state": 1 if self.name == "img" else 0, "primary": STATE.get("primary", False)}
    def metadata_get(self, key):
        meta = STATE["images"][self.name]
        if key not in meta: raise KeyError(key)
        return meta[key]
    def metadata_set(self, key, value): STATE["images"][self.name][key] = value
    def list_snaps(self): return [{"id": 7}]
    def snap_get_namespace_type(self, snap_id): return RBD_SNAP_NAMESPACE_TYPE_MIRROR
    def snap_get_mirror_namespace(self, snap_id):
        return {"state": RBD_SNAP_MIRROR_STATE_NON_PRIMARY, "complete": True, "primary_snap_id": 41}
    def copy(self, ioctx, dest): STATE["images"][dest] = {}
"""


def _imports(tree: ast.AST) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            names.add("." if node.level else str(node.module).split(".")[0])
    return names


def test_the_helper_is_the_shipped_module_and_imports_only_the_stdlib_and_librbd() -> None:
    text = helper_text(COPY_HELPER)
    assert text == HELPER.read_text(encoding="utf-8")
    imported = _imports(ast.parse(text))
    assert "drkit" not in imported and "." not in imported
    assert imported - set(sys.stdlib_module_names) == {"rados", "rbd"}


def _cli(tmp: Path, state: dict[str, object], monkeypatch: pytest.MonkeyPatch) -> RbdCli:
    libs = tmp / "libs"
    libs.mkdir()
    (libs / "rados.py").write_text(STAND_IN_RADOS)
    (libs / "rbd.py").write_text(STAND_IN_RBD)
    python = tmp / "python3"  # the toolbox's python: a plain interpreter that finds librbd
    python.write_text(f"#!/bin/sh\nPYTHONPATH='{libs}' exec '{sys.executable}' -s \"$@\"\n")
    python.chmod(python.stat().st_mode | stat.S_IEXEC)
    monkeypatch.setenv("STAND_IN_RBD", json.dumps(state))
    return RbdCli(
        runner=LocalRunner(context={"site": "site-b"}), site="site-b", python=str(python), timeout=5.0
    )


def test_the_helper_copies_the_replica_and_records_the_copy(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cli = _cli(tmp_path, {"images": {"img": {}}}, monkeypatch)
    record = cli.copy_latest_synced("pool", "img", "img-drill")
    assert record["dest"] == "img-drill" and record["snap_id"] == 7 and record["primary_snap_id"] == 41
    assert record["attempts"] == 1 and "reused" not in record


def test_a_finished_copy_is_reused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    done = {"dest": "img-drill", "snap_id": 5, "primary_snap_id": 40}
    cli = _cli(tmp_path, {"images": {"img": {}, "img-drill": {COPY_MARK: json.dumps(done)}}}, monkeypatch)
    assert cli.copy_latest_synced("pool", "img", "img-drill") == {**done, "reused": True}


def test_a_primary_image_is_no_replica_to_copy(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cli = _cli(tmp_path, {"images": {"img": {}}, "primary": True}, monkeypatch)
    with pytest.raises(StandbyError) as caught:
        cli.copy_latest_synced("pool", "img", "img-drill")
    assert not isinstance(caught.value, TransientError)
    assert "img is primary here: not a replica to copy" in caught.value.message
