"""``standby rpo parse``: through typer's CliRunner and as a real process."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner

from standby.rpo_cli import rpo_app

T0 = 1795293323  # 2026-11-21 20:35:23 UTC
REPLAYING = (
    'replaying, {"bytes_per_second":0.0,"local_snapshot_timestamp":1795293323,'
    '"remote_snapshot_timestamp":1795293323,"replay_state":"idle"}'
)
IMAGE = {
    "name": "nexus-data",
    "global_id": "g",
    "state": "up+replaying",
    "description": REPLAYING,
    "last_update": "2026-11-21 21:35:29",
}  # Europe/Paris (UTC+1): 20:35:29 UTC
POOL = {
    "summary": {"health": "ERROR", "daemon_health": "OK", "image_health": "ERROR", "states": {}},
    "daemons": [],
    "images": [
        IMAGE,
        {
            "name": "split",
            "global_id": "g2",
            "state": "up+error",
            "description": "split-brain",
            "last_update": "2026-11-21 21:35:29",
        },
        {
            "name": "primary",
            "global_id": "g3",
            "state": "up+stopped",
            "description": "local image is primary",
            "last_update": "2026-11-21 21:35:29",
            "peer_sites": [
                {
                    "site_name": "site-b",
                    "mirror_uuids": "u",
                    "state": "up+replaying",
                    "description": REPLAYING,
                    "last_update": "2026-11-21 21:35:20",
                }
            ],
        },
    ],
}
KEYS = {"image", "health", "lag_seconds", "reason", "source", "state", "role"}

runner = CliRunner()


def invoke(stdin: str, *args: str) -> Any:
    return runner.invoke(rpo_app, ["parse", *args], input=stdin)


def test_image_status_in_paris() -> None:
    result = invoke(json.dumps(IMAGE), "--now", str(T0 + 40), "--tz", "Europe/Paris", "--site", "site-b")
    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout)
    assert out == {
        "images": [
            {
                "image": "nexus-data",
                "health": "ok",
                "lag_seconds": 40.0,
                "source": "status",
                "state": "up+replaying",
                "role": "secondary",
                "reason": out["images"][0]["reason"],
            }
        ]
    }


def test_same_status_read_in_a_wrong_zone_has_a_null_lag() -> None:
    result = invoke(json.dumps(IMAGE), "--now", str(T0 + 40))  # read as UTC: one hour in the future
    image = json.loads(result.stdout)["images"][0]
    assert image["health"] == "unknown" and image["lag_seconds"] is None
    assert "time zone" in image["reason"]
    result = invoke(json.dumps(IMAGE), "--now", str(T0 + 40), "--tz", "Asia/Tokyo")  # 8 h in the past
    image = json.loads(result.stdout)["images"][0]
    assert image["health"] == "stale" and image["lag_seconds"] is None


def test_pool_status() -> None:
    result = invoke(json.dumps(POOL), "--now", str(T0 + 40), "--tz", "Europe/Paris", "--site", "site-a")
    assert result.exit_code == 0, result.output
    images = json.loads(result.stdout)["images"]
    assert [set(i) for i in images] == [KEYS] * 3
    assert [(i["image"], i["health"], i["lag_seconds"]) for i in images] == [
        ("nexus-data", "ok", 40.0),
        ("split", "split-brain", None),
        ("primary", "ok", 40.0),
    ]
    assert images[2]["role"] == "secondary"  # lag of the peer (secondary) side


def test_default_now_is_the_clock() -> None:
    result = invoke(json.dumps(IMAGE), "--tz", "Europe/Paris")
    image = json.loads(result.stdout)["images"][0]
    assert image["health"] == "stale"  # written in 2026-11, long before "now" unless run that evening


@pytest.mark.parametrize(
    ("stdin", "args", "match"),
    [
        ("", (), "empty input"),
        ('{"name": "x", "sta', (), "invalid JSON"),
        ("[]", (), "JSON list"),
        ('{"images": 3}', (), "'images' to be a list"),
        (json.dumps(IMAGE), ("--tz", "Nowhere/City"), "unknown time zone"),
    ],
)
def test_bad_input_exits_2_with_one_line(stdin: str, args: tuple[str, ...], match: str) -> None:
    result = invoke(stdin, *args)
    assert result.exit_code == 2
    assert result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and match in lines[0]


def test_as_a_process() -> None:
    code = "from standby.rpo_cli import rpo_app; rpo_app()"
    root = Path(__file__).resolve().parents[2]
    ok = subprocess.run(
        [sys.executable, "-c", code, "parse", "--now", str(T0 + 40), "--tz", "Europe/Paris"],
        input=json.dumps(POOL),
        capture_output=True,
        text=True,
        cwd=root,
        timeout=60,
        check=False,
    )
    assert ok.returncode == 0, ok.stderr
    assert len(json.loads(ok.stdout)["images"]) == 3
    bad = subprocess.run(
        [sys.executable, "-c", code, "parse"],
        input="{oops",
        capture_output=True,
        text=True,
        cwd=root,
        timeout=60,
        check=False,
    )
    assert bad.returncode == 2
    assert bad.stdout == "" and len(bad.stderr.strip().splitlines()) == 1


def _watch_config(tmp_path: Path) -> Path:
    from tests.rpo_config import rpo_config_doc

    path = tmp_path / "standby.yaml"
    path.write_text(yaml.safe_dump(rpo_config_doc("img")))
    return path


@pytest.mark.parametrize(
    "spelling",
    [
        ["--minutes", "0.02", "--every", "0.3", "--json"],
        ["--for", "1200ms", "--every", "300ms", "-o", "json"],
        ["--for", "1.2s", "--every", "0.3", "-o", "yaml"],
    ],
    ids=["deprecated --minutes and --json", "durations and -o json", "-o yaml"],
)
def test_watch_lists_the_secondary_and_prints_json(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, spelling: list[str]
) -> None:
    from datetime import UTC, datetime, timedelta

    from drkit.jobs import sites
    from drkit.testing.kube import FakeCluster
    from drkit.testing.rbd import FakeRbdMirror

    a, b = FakeRbdMirror(site="site-a"), FakeRbdMirror(site="site-b")
    point = datetime.now(UTC) - timedelta(seconds=30)
    a.add_image("replicapool", "img", primary=True, peer_site="site-b")
    b.add_image("replicapool", "img", peer_site="site-a")
    snap = a.add_snapshot("replicapool", "img", created_at=point)
    b.add_snapshot("replicapool", "img", created_at=point, primary_snap_id=snap)
    monkeypatch.setattr(sites, "rbd_for", lambda site, *_: {"site-a": a, "site-b": b}[site.name])
    monkeypatch.setattr(
        sites, "cluster_for", lambda site: FakeCluster(site=site.name)
    )  # the toolbox's apiserver
    config = _watch_config(tmp_path)
    result = CliRunner().invoke(rpo_app, ["watch", "-c", str(config), "--no-record", *spelling])
    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout) if "yaml" not in spelling else yaml.safe_load(result.stdout)
    assert out["polls"] >= 2 and out["images"][0]["points_written"] == 1 and out["images"][0]["failures"] == 0


@pytest.mark.parametrize(
    ("args", "match"),
    [
        (["--every", "0.1"], "every_seconds: Input should be greater than or equal to 0.2"),
        (["--app", "gitlab"], "unknown app 'gitlab'; known apps: nexus"),
    ],
)
def test_watch_bad_arguments_exit_2_with_one_line(tmp_path: Path, args: list[str], match: str) -> None:
    config = _watch_config(tmp_path)
    result = CliRunner().invoke(
        rpo_app, ["watch", "-c", str(config), "--minutes", "0.01", "--no-record", *args]
    )
    assert result.exit_code == 2, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and match in lines[0], lines


@pytest.mark.parametrize("fmt", ["table", "json", "yaml"])
def test_sample_prints_each_image_as_table_json_or_yaml(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fmt: str
) -> None:
    from datetime import UTC, datetime, timedelta

    from drkit.jobs import sites
    from drkit.testing.kube import FakeCluster
    from drkit.testing.rbd import FakeRbdMirror

    a, b = FakeRbdMirror(site="site-a"), FakeRbdMirror(site="site-b")
    point = datetime.now(UTC) - timedelta(seconds=30)
    a.add_image("replicapool", "img", primary=True, peer_site="site-b")
    b.add_image("replicapool", "img", peer_site="site-a")
    snap = a.add_snapshot("replicapool", "img", created_at=point)
    b.add_snapshot("replicapool", "img", created_at=point, primary_snap_id=snap)
    monkeypatch.setattr(sites, "rbd_for", lambda site, *_: {"site-a": a, "site-b": b}[site.name])
    monkeypatch.setattr(
        sites, "cluster_for", lambda site: FakeCluster(site=site.name)
    )  # the toolbox's apiserver
    result = CliRunner().invoke(rpo_app, ["sample", "-c", str(_watch_config(tmp_path)), "-o", fmt])
    assert result.exit_code == 0, result.output
    if fmt == "table":
        header, row = result.stdout.splitlines()[:2]
        assert header.split()[:4] == ["app", "image", "site", "health"] and row.split()[:3] == [
            "nexus",
            "img",
            "site-b",
        ]
        return
    out = json.loads(result.stdout) if fmt == "json" else yaml.safe_load(result.stdout)
    assert "nexus" in json.dumps(out) and "img" in json.dumps(out)
