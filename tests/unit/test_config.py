"""The configuration file: valid example, and one-line errors naming file, field path and expectation."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from typer.testing import CliRunner

from drkit.config import load_config, parse_config
from drkit.domain.durations import parse_duration
from drkit.domain.errors import ConfigError
from standby.cli import app

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "standby.example.yaml"


def test_example_config_is_valid() -> None:
    cfg = load_config(EXAMPLE)
    nexus = cfg.app("nexus")
    assert nexus.rpo_target == timedelta(minutes=5)
    assert nexus.volumes[0].image == "csi-vol-459e6f28-a158-4ae9-b5da-163448c35119"
    assert str(nexus.workload.kind) == "operator.alaudadevops.io/v1alpha1/Nexus"
    assert cfg.site("site-b").ceph.mode == "rook-toolbox"
    # Relative paths are resolved against the file's folder.
    assert cfg.site("site-a").ceph.conf == ROOT / ".lab/ceph/site-a/site-a.conf"


@pytest.mark.parametrize(
    ("edit", "expected"),
    [
        (("rpo_target: 5m", "rpo_target: soon"), "apps[0].rpo_target: expected a duration like"),
        (("client_id: admin}", "client_id: admin, colour: red}"), "sites[0].ceph.colour: unknown field"),
        (("primary_site: site-a", "primary_site: site-c"), "unknown site 'site-c'"),
        (("bucket: standby", "bucket: x"), "sites[0].s3.bucket: String should have at least 3 characters"),
        (("  - name: nexus", "  - name: Nexus!"), "apps[0].name: String should match pattern"),
        (("rpo_target: 5m", "rpo_target: 30s"), "below snapshot_interval"),
        (
            ("volume_replication_class: rbd-volumereplicationclass", "mode: snapshot"),
            "needs 'volume_replication_class'",
        ),
    ],
)
def test_errors_name_the_field_path(edit: tuple[str, str], expected: str) -> None:
    text = EXAMPLE.read_text()
    assert edit[0] in text
    with pytest.raises(ConfigError) as info:
        parse_config(text.replace(edit[0], edit[1], 1), source=Path("bad.yaml"))
    message = str(info.value)
    assert message.startswith("bad.yaml: ")
    assert expected in message
    assert "\n" not in message


def test_yaml_syntax_error_names_line() -> None:
    with pytest.raises(ConfigError, match=r"bad.yaml: not valid YAML at line \d+, column \d+"):
        parse_config("sites:\n  - {name: a\n  - b: [\n", source=Path("bad.yaml"))


def test_missing_file_says_what_to_do(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"configuration file not found.*--config FILE"):
        load_config(tmp_path / "nope.yaml")


@pytest.mark.parametrize(
    ("text", "seconds"), [("90s", 90), ("5m", 300), ("1h", 3600), ("1d", 86400), (12, 12), ("1.5m", 90)]
)
def test_durations(text: object, seconds: float) -> None:
    assert parse_duration(text) == timedelta(seconds=seconds)


@pytest.mark.parametrize("text", ["soon", "5 minutes", "", True, None])
def test_bad_durations(text: object) -> None:
    with pytest.raises(ValueError, match="expected a duration"):
        parse_duration(text)


def test_cli_config_check(tmp_path: Path) -> None:
    runner = CliRunner()
    ok = runner.invoke(app, ["config", "check", str(EXAMPLE)])
    assert ok.exit_code == 0, ok.output
    assert "app nexus: namespace nexus-dr, site-a -> site-b" in ok.stdout

    bad = tmp_path / "bad.yaml"
    bad.write_text(EXAMPLE.read_text().replace("rpo_target: 5m", "rpo_target: soon"))
    res = runner.invoke(app, ["config", "check", str(bad)])
    assert res.exit_code == 2
    assert res.stdout == ""
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1
    assert f"{bad}: app nexus: apps[0].rpo_target" in lines[0]
