"""The configuration file: valid example, and one-line errors naming file, field path and expectation."""

from __future__ import annotations

import re
from datetime import timedelta
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from drkit.config import load_config, parse_config
from drkit.domain.bounded_yaml import YamlLimits, YamlTooLarge, expanded_size, load_bounded
from drkit.domain.durations import parse_duration
from drkit.domain.errors import ConfigError
from drkit.domain.models import DeprecatedField
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
    # Standby's own cephx user, and a named toolbox pod that RBAC can grant exec on alone.
    assert {s.ceph.client_id for s in cfg.sites} == {"standby"}
    assert cfg.site("site-b").ceph.toolbox == "rook-ceph/pod/standby-tools-0"


@pytest.mark.parametrize(
    ("edit", "expected"),
    [
        (("rpo_target: 5m", "rpo_target: soon"), "apps[0].rpo_target: expected a duration like"),
        (("client_id: standby,", "client_id: standby, colour: red,"), "sites[0].ceph.colour: unknown field"),
        (("home_site: site-a", "home_site: site-c"), "unknown site 'site-c'"),
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
    assert "app nexus: namespace nexus-dr, home site-a -> site-b" in ok.stdout

    bad = tmp_path / "bad.yaml"
    bad.write_text(EXAMPLE.read_text().replace("rpo_target: 5m", "rpo_target: soon"))
    res = runner.invoke(app, ["config", "check", str(bad)])
    assert res.exit_code == 2
    assert res.stdout == ""
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1
    assert f"{bad}: app nexus: apps[0].rpo_target" in lines[0]


# ------------------------------------------------------------------ bounded YAML (alias bombs)


def _laughs(levels: int, width: int = 9) -> str:
    """Nested anchors: level ``n`` is a list of ``width`` aliases of level ``n - 1``."""
    lines = ["l0: &l0 [" + ", ".join(["lol"] * width) + "]"]
    lines += [f"l{n}: &l{n} [" + ", ".join([f"*l{n - 1}"] * width) + "]" for n in range(1, levels)]
    return "\n".join(lines) + "\n"


def test_an_alias_bomb_is_refused_before_validation() -> None:
    """Six levels of nine: 600 thousand values once expanded, from 200 bytes."""
    text = "sites:\n" + "".join(f"  - {line}\n" for line in _laughs(6).splitlines()) + "apps: []\n"
    with pytest.raises(ConfigError) as info:
        parse_config(text, source=Path("bomb.yaml"))
    message = str(info.value)
    assert message.startswith(
        "bomb.yaml: not read as a configuration: aliases expand it to more than 100000 values"
    )
    assert "\n" not in message and info.value.hint


@pytest.mark.parametrize(
    ("text", "limits", "expected"),
    [
        (_laughs(4), YamlLimits(max_expanded=1000), "aliases expand it to more than 1000 values"),
        (_laughs(3), YamlLimits(max_aliases=10), "more than 10 alias uses"),
        ("a: [" + ", ".join(["x"] * 50) + "]\n", YamlLimits(max_nodes=40), "more than 40 values"),
        (
            "a: " + "[" * 12 + "]" * 12 + "\n",
            YamlLimits(max_depth=10),
            "nested too deeply (more than 10 levels)",
        ),
        ("a: " + "x" * 200 + "\n", YamlLimits(max_chars=100), "more than 100 characters"),
        ("a: &a [x, {b: *a}]\n", YamlLimits(), "an alias names a list or mapping that contains it"),
    ],
)
def test_each_yaml_bound_is_enforced(text: str, limits: YamlLimits, expected: str) -> None:
    with pytest.raises(YamlTooLarge, match=re.escape(expected)):
        load_bounded(text, limits)


def test_yaml_within_bounds_loads_as_safe_load_does() -> None:
    text = (
        "defaults: &defaults {snapshot_interval: 1m, rpo_target: 5m, checks: &checks {kind: nexus}}\n"
        "apps:\n"
        "  - {<<: *defaults, name: one}\n  - {<<: *defaults, name: two, checks: *checks}\n"
        "  - {<<: *defaults, name: three}\n" + _laughs(3)  # 9 * 9 * 9 values: far under the bound
    )
    assert load_bounded(text) == yaml.safe_load(text)
    assert load_bounded("") is None and load_bounded("# only a comment\n") is None
    assert load_bounded(EXAMPLE.read_text()) == yaml.safe_load(EXAMPLE.read_text())  # it uses an anchor


def test_expanded_size_counts_each_alias_use() -> None:
    node = yaml.compose(_laughs(3, width=2))
    # root mapping 1 + 3 keys + l0 (1 + 2) + l1 (1 + 2 * 3) + l2 (1 + 2 * 7)
    assert expanded_size(node, 1000) == 1 + 3 + 3 + 7 + 15


def test_primary_site_is_read_as_home_site_with_a_warning() -> None:
    """``primary_site``, the older name of ``home_site``, is still accepted in YAML (and as an
    attribute), each with a warning naming the new name."""
    older = EXAMPLE.read_text().replace("home_site: site-a", "primary_site: site-a", 1)
    with pytest.warns(DeprecatedField, match="app nexus: primary_site is the older name of home_site"):
        cfg = parse_config(older, source=Path("old.yaml"))
    assert cfg.app("nexus").home_site == "site-a"
    assert "primary_site" not in cfg.app("nexus").model_dump()
    with pytest.warns(DeprecationWarning, match="use home_site"):
        assert cfg.app("nexus").primary_site == "site-a"
    both = EXAMPLE.read_text().replace("home_site: site-a", "primary_site: site-b\n    home_site: site-a", 1)
    with pytest.raises(ConfigError, match=r"primary_site .* and home_site differ"):
        parse_config(both, source=Path("both.yaml"))
