"""Run ids and the object-store layout."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone

import pytest

from drkit.domain.errors import ConfigError
from drkit.domain.layout import RunId, StoreLayout, logical_path, new_run_id, parse_run_id

T0 = datetime(2026, 11, 21, 22, 5, 1, 123456, tzinfo=UTC)
ADDRESS = "ab" + "0" * 62


def test_run_id_format_and_parse_round_trip() -> None:
    run = new_run_id(T0, bytes.fromhex("a1b2c3ff"))
    assert str(run) == "20261121T220501Z-a1b2c3"
    assert parse_run_id(str(run)) == run
    assert run.started == T0.replace(microsecond=0)


def test_run_id_uses_utc_whatever_the_zone() -> None:
    paris = timezone(timedelta(hours=1))
    assert str(new_run_id(datetime(2026, 1, 1, 0, 30, tzinfo=paris), b"\0\0\1")) == "20251231T233000Z-000001"


def test_run_ids_sort_by_time_as_text_and_as_values() -> None:
    runs = [
        new_run_id(T0 + timedelta(seconds=s), bytes([255 - s % 256, 0, 0]))
        for s in (0, 1, 59, 3600, 86400 * 40)
    ]
    assert sorted(runs) == runs
    assert sorted(str(r) for r in runs) == [str(r) for r in runs]


@pytest.mark.parametrize(
    "text", ["", "20261121T220501Z", "20261121T220501Z-ABCDEF", "2026-11-21-abcdef", "x/../y"]
)
def test_parse_run_id_rejects(text: str) -> None:
    with pytest.raises(ConfigError, match="is not a run id"):
        parse_run_id(text)


def test_run_id_needs_aware_time_and_entropy() -> None:
    with pytest.raises(ValueError, match="timezone"):
        RunId(datetime(2026, 1, 1), "abcdef")
    with pytest.raises(ValueError, match="entropy"):
        new_run_id(T0, b"\1")


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (("v1", "Secret", "nexus-dr", "root"), "core/v1/Secret/nexus-dr/root"),
        (("v1", "PersistentVolume", None, "pvc-1"), "core/v1/PersistentVolume/_cluster/pvc-1"),
        (("apps/v1", "StatefulSet", "ns", "db"), "apps/v1/StatefulSet/ns/db"),
        (
            ("operator.alaudadevops.io/v1alpha1", "Nexus", "nexus-dr", "nexus-ddrs"),
            "operator.alaudadevops.io/v1alpha1/Nexus/nexus-dr/nexus-ddrs",
        ),
    ],
)
def test_logical_path(args: tuple[str, str, str | None, str], expected: str) -> None:
    assert logical_path(*args) == expected


@pytest.mark.parametrize("name", ["..", "a/b", "", ".hidden"])
def test_logical_path_refuses_unsafe_names(name: str) -> None:
    with pytest.raises(ValueError):
        logical_path("v1", "Secret", "ns", name)


def test_every_key() -> None:
    layout = StoreLayout("/standby/")
    run = parse_run_id("20261121T220501Z-a1b2c3")
    assert layout.app_root("site-a", "nexus") == "standby/backups/site-a/nexus"
    assert layout.blob_key("site-a", "nexus", ADDRESS, encrypted=False) == (
        f"standby/backups/site-a/nexus/blobs/sha256/ab/{ADDRESS}.yaml"
    )
    assert layout.blob_key("site-a", "nexus", ADDRESS, encrypted=True).endswith(f"/ab/{ADDRESS}.yaml.enc")
    assert (
        layout.index_key("site-a", "nexus", run)
        == "standby/backups/site-a/nexus/20261121T220501Z-a1b2c3/index.json.gz"
    )
    assert layout.latest_key("site-a", "nexus") == "standby/backups/site-a/nexus/latest"
    assert layout.rpo_samples_key("site-b", date(2026, 11, 21), "0930") == (
        "standby/rpo/site-b/2026-11-21/samples-0930.parquet"
    )
    assert (
        layout.drill_report_key("nexus", run, "html")
        == "standby/drills/nexus/20261121T220501Z-a1b2c3/report.html"
    )
    assert (
        layout.drill_chart_key("nexus", run, "lag")
        == "standby/drills/nexus/20261121T220501Z-a1b2c3/charts/lag.png"
    )
    assert StoreLayout("").latest_key("s", "a") == "backups/s/a/latest"


def test_parse_keys_back() -> None:
    layout = StoreLayout("standby")
    run = parse_run_id("20261121T220501Z-a1b2c3")
    assert layout.run_id_of_index_key("site-a", "nexus", layout.index_key("site-a", "nexus", run)) == run
    assert layout.run_id_of_index_key("site-a", "nexus", layout.latest_key("site-a", "nexus")) is None
    assert layout.run_id_of_index_key("site-a", "other", layout.index_key("site-a", "nexus", run)) is None
    blob = layout.blob_key("site-a", "nexus", ADDRESS, encrypted=True)
    assert layout.is_blob_key("site-a", "nexus", blob)
    assert not layout.is_blob_key("site-a", "nexus", layout.index_key("site-a", "nexus", run))


@pytest.mark.parametrize(
    "call",
    [
        lambda lay: lay.blob_key("s", "a", "xyz", encrypted=False),
        lambda lay: lay.drill_report_key("a", "20261121T220501Z-a1b2c3", "pdf"),
        lambda lay: lay.index_key("s", "a", "latest"),
        lambda lay: lay.app_root("..", "a"),
        lambda lay: lay.app_root("s", "a/b"),
    ],
)
def test_bad_inputs_are_refused(call: object) -> None:
    with pytest.raises((ValueError, ConfigError)):
        call(StoreLayout())  # type: ignore[operator]
