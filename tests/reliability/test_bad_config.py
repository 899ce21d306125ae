"""Bad configuration files: `standby config check FILE` prints one line naming the file and exits 2."""

from __future__ import annotations

import itertools
import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.reliability.helpers import EXIT_BAD_INPUT, assert_cli_error, assert_one_line, standby

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = (ROOT / "standby.example.yaml").read_text()


def _write(text: str | bytes) -> Callable[[Path], Path]:
    def make(tmp: Path) -> Path:
        path = tmp / "standby.yaml"
        if isinstance(text, bytes):
            path.write_bytes(text)
        else:
            path.write_text(text)
        return path

    return make


def _directory(tmp: Path) -> Path:
    (tmp / "standby.yaml").mkdir()
    return tmp / "standby.yaml"


def _huge(tmp: Path) -> Path:
    path = tmp / "standby.yaml"
    with path.open("w") as f:
        f.write(EXAMPLE)
        line = "# " + "x" * 1021 + "\n"
        for _ in range(3 * 1024):  # 3 MiB of comments
            f.write(line)
    return path


def laughs(levels: int = 9, width: int = 9) -> str:
    """The YAML "billion laughs": each anchor a list of ``width`` aliases of the one before.

    At 9 by 9 it is 342 bytes, and 9**9 (387 million) strings once the aliases are expanded.
    """
    lol = '"lol"'
    lines = [f"a: &a [{','.join([lol] * width)}]"]
    for prev, name in itertools.pairwise("abcdefghijklmnopqrstuvwxyz"[:levels]):
        lines.append(f"{name}: &{name} [{','.join([f'*{prev}'] * width)}]")
    return "\n".join(lines) + "\n"


CASES: dict[str, tuple[Callable[[Path], Path], str]] = {
    "alias bomb (billion laughs)": (_write(laughs()), "aliases expand it to more than 100000 values"),
    "alias bomb in a site": (
        _write(
            EXAMPLE.replace(
                "sites:\n", "sites:\n" + "".join(f"  - {ln}\n" for ln in laughs().splitlines()), 1
            )
        ),
        "aliases expand it to more than",
    ),
    "an alias inside itself": (
        _write("sites: &s [{name: a}, *s]\napps: []\n"),
        "an alias names a list or mapping",
    ),
    "binary (a PNG)": (_write(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\xff\xfe" * 40), "not a text file"),
    "invalid UTF-8 inside text": (
        _write(EXAMPLE.encode().replace(b"nexus", b"nex\xffus", 1)),
        "not a text file",
    ),
    "empty": (_write(""), "expected a mapping with 'sites' and 'apps'"),
    "only comments": (_write("# nothing here\n"), "expected a mapping with 'sites' and 'apps'"),
    "huge (3 MiB)": (_huge, "too large"),
    "deeply nested lists": (_write("sites: " + "[" * 20000 + "]" * 20000 + "\n"), "nested too deeply"),
    "deeply nested maps": (
        _write("sites:\n" + "".join(" " * i + f"k{i}:\n" for i in range(1, 1000))),
        "nested too deeply",
    ),
    "a list at the top": (_write("- sites\n- apps\n"), "expected a mapping"),
    "sites is a string": (_write(EXAMPLE.replace("sites:", "sites: everywhere\nunused:", 1)), "sites"),
    "rpo_target is a list": (
        _write(EXAMPLE.replace("rpo_target: 5m", "rpo_target: [5, m]", 1)),
        "apps[0].rpo_target",
    ),
    "pool is a number": (_write(EXAMPLE.replace("pool: replicapool", "pool: 12", 1)), "sites[0].pool"),
    "YAML syntax": (_write("sites:\n  - {name: a\n  - b: [\n"), "not valid YAML at line"),
    "a directory": (_directory, "is a directory"),
    "missing": (lambda tmp: tmp / "absent.yaml", "configuration file not found"),
}


@pytest.mark.parametrize("case", list(CASES))
def test_bad_config_file_is_one_line_and_exit_2(case: str, tmp_path: Path) -> None:
    make, expected = CASES[case]
    path = make(tmp_path)
    result = standby("config", "check", str(path))
    line = assert_cli_error(result, EXIT_BAD_INPUT, str(path), expected)
    assert len(line) < 600, line


def test_unreadable_file_names_the_permission(tmp_path: Path) -> None:
    """As a real process; as root, without the capabilities that let root read anything."""
    path = tmp_path / "standby.yaml"
    path.write_text(EXAMPLE)
    path.chmod(0o000)
    cmd = [sys.executable, "-c", "from standby.cli import main; main()", "config", "check", str(path)]
    if os.geteuid() == 0:
        if shutil.which("setpriv") is None:
            pytest.skip("root reads any file, and setpriv is missing to drop that")
        cmd = ["setpriv", "--bounding-set=-dac_override,-dac_read_search", "--", *cmd]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode == EXIT_BAD_INPUT, proc.stderr
    assert_one_line(proc.stderr, str(path), "not readable")
