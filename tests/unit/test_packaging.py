"""The wheel holds the product alone; what only a checkout has fails with one line outside it."""

from __future__ import annotations

import sys
import tomllib
from pathlib import Path

import pytest
from setuptools import find_packages
from typer.testing import CliRunner

from standby.cli import app

ROOT = Path(__file__).resolve().parents[2]
PRODUCT = {"drkit", "standby", "flows", "tasks", "blocks"}
CHECKOUT_ONLY = {"lab", "bench", "tests", "deployments"}


def _packaged() -> list[str]:
    """The packages ``pip wheel .`` puts in the wheel, found as setuptools finds them from pyproject."""
    config = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    found = config["tool"]["setuptools"]["packages"]["find"]
    return find_packages(where=str(ROOT), include=found["include"], exclude=found.get("exclude", ()))


def test_the_wheel_holds_the_product_and_nothing_else() -> None:
    packaged = _packaged()
    assert {name.split(".")[0] for name in packaged} == PRODUCT
    assert not [name for name in packaged if name.split(".")[0] in CHECKOUT_ONLY]
    # every sub-package of the product comes along (the fakes of drkit.testing too: benches and demos use them)
    on_disk = find_packages(where=str(ROOT), include=[f"{p}.*" for p in PRODUCT])
    assert on_disk and set(on_disk) <= set(packaged)
    assert "drkit.testing" in packaged


def test_the_makefile_puts_the_checkout_on_the_import_path() -> None:
    makefile = (ROOT / "Makefile").read_text(encoding="utf-8")
    assert "export PYTHONPATH := $(CURDIR)" in makefile


def test_standby_lab_outside_a_checkout_says_so_in_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # As installed from the wheel: no `lab` package to import, and no checkout in the current folder.
    for name in [m for m in sys.modules if m == "lab" or m.startswith("lab.")]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "lab", None)
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(app, ["lab", "status", "--lab-dir", str(tmp_path)])
    assert result.exit_code == 2, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1, lines
    assert "needs a source checkout" in lines[0] and str(tmp_path) in lines[0] and "next:" in lines[0]
    assert "Traceback" not in result.output


def test_standby_lab_in_a_checkout_finds_the_lab(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(ROOT)
    result = CliRunner().invoke(app, ["lab", "status", "--json", "--lab-dir", str(tmp_path / "no-lab")])
    assert "source checkout" not in result.output
    assert result.exit_code == 0, result.output
    assert '"running": false' in result.output
