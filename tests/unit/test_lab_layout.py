"""The lab's S3 layouts and records, without Ceph: the generated configuration, the status JSON,
the layout a lab keeps, and the S3 daemon's saved objects across a restart."""

from __future__ import annotations

from pathlib import Path

import boto3
import pytest

from drkit.config import load_config
from lab import lab as lab_mod
from lab import s3 as lab_s3
from lab.procs import LabError


def _config(tmp_path: Path, layout: str) -> Path:
    stores = lab_mod.s3_stores(tmp_path, lab_mod.Ports(21800), layout)
    lab_mod._write_config(tmp_path, stores)
    return tmp_path / "standby.yaml"


def test_shared_layout_gives_both_sites_one_store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STANDBY_LAB_PORT_BASE", "21800")
    config = load_config(_config(tmp_path, "shared"))
    a, b = (config.site(s).s3 for s in ("site-a", "site-b"))
    assert a == b
    assert a.endpoint == "http://127.0.0.1:21902" and a.bucket == "standby"
    assert a.credentials_file == tmp_path / "s3" / "credentials"


def test_per_site_layout_gives_each_site_its_own_store(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("STANDBY_LAB_PORT_BASE", "21800")
    config = load_config(_config(tmp_path, "per-site"))
    a, b = (config.site(s).s3 for s in ("site-a", "site-b"))
    assert (a.endpoint, a.bucket) == ("http://127.0.0.1:21902", "standby-site-a")
    assert (b.endpoint, b.bucket) == ("http://127.0.0.1:21903", "standby-site-b")
    assert a.credentials_file == tmp_path / "s3" / "credentials-site-a"
    assert b.credentials_file == tmp_path / "s3" / "credentials-site-b"
    assert a.prefix == b.prefix == "standby"


@pytest.mark.parametrize("layout", ["shared", "per-site"])
def test_a_lab_folder_named_dot_lab_gets_each_path_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, layout: str
) -> None:
    """``make demo``'s lab lives in ``./.lab``: its absolute paths contain ".lab/" themselves."""
    monkeypatch.setenv("STANDBY_LAB_PORT_BASE", "21800")
    root = tmp_path / ".lab"
    root.mkdir()
    config = load_config(_config(root, layout))
    for site in ("site-a", "site-b"):
        s3 = config.site(site).s3
        assert s3.credentials_file is not None and str(s3.credentials_file).startswith(
            str(root / "s3" / "credentials")
        )
        assert str(s3.credentials_file).count(".lab") == 1, s3.credentials_file
        assert str(config.site(site).kube.kubeconfig).count(".lab") == 1


def test_status_json_names_each_sites_store(tmp_path: Path) -> None:
    for layout in lab_mod.S3_LAYOUTS:
        stores = lab_mod.s3_stores(tmp_path, lab_mod.Ports(21800), layout)
        st = lab_mod.LabStatus(
            dir=tmp_path,
            running=False,
            kubeconfig=tmp_path / "k",
            config=tmp_path / "c",
            s3_endpoint=stores["site-a"].endpoint,
            ceph_confs={s: tmp_path / s for s in lab_mod.SITES},
            s3_layout=layout,
            s3=stores,
        )
        data = st.to_json()
        assert data["s3"]["layout"] == layout
        buckets = {s: data["sites"][s]["s3"]["bucket"] for s in lab_mod.SITES}
        if layout == "shared":
            assert data["s3"]["bucket"] == "standby" and set(buckets.values()) == {"standby"}
        else:
            assert "bucket" not in data["s3"]
            assert buckets == {"site-a": "standby-site-a", "site-b": "standby-site-b"}
        assert "one store per site" in lab_mod.describe(st) or layout == "shared"


def test_a_used_lab_keeps_its_layout_and_refuses_another(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("STANDBY_LAB_S3", "per-site")
    assert lab_mod._settle_layout(tmp_path, fresh=True) == "per-site"
    monkeypatch.delenv("STANDBY_LAB_S3")
    assert lab_mod._settle_layout(tmp_path, fresh=False) == "per-site"  # recorded, kept
    monkeypatch.setenv("STANDBY_LAB_S3", "shared")
    with pytest.raises(LabError, match="was set up with per-site S3"):
        lab_mod._settle_layout(tmp_path, fresh=False)
    monkeypatch.setenv("STANDBY_LAB_S3", "both")
    with pytest.raises(LabError, match="not an S3 layout"):
        lab_mod.requested_layout()


def test_default_layout_for_a_fresh_lab(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("STANDBY_LAB_S3", raising=False)
    assert lab_mod._settle_layout(tmp_path, fresh=True) == lab_mod.DEFAULT_S3_LAYOUT
    assert lab_mod.read_record(tmp_path)["s3"] == lab_mod.DEFAULT_S3_LAYOUT


def test_freshness_comes_from_the_record_then_the_apiservers_state(tmp_path: Path) -> None:
    assert lab_mod._is_fresh(tmp_path)
    (tmp_path / "kube" / "site-a").mkdir(parents=True)
    (tmp_path / "kube" / "site-a" / lab_mod.KUBE_STATE_FILE).write_text("{}")
    assert not lab_mod._is_fresh(tmp_path)  # a lab used before it had a record
    lab_mod._write_record(tmp_path, seeded=False)
    assert lab_mod._is_fresh(tmp_path)  # seeding was interrupted: seed again
    lab_mod._write_record(tmp_path, seeded=True)
    assert not lab_mod._is_fresh(tmp_path)


def test_s3_saves_and_loads_its_bucket(tmp_path: Path) -> None:
    state = tmp_path / "state"
    server, url = lab_s3.start_moto("bkt")
    try:
        client = boto3.client(
            "s3",
            endpoint_url=url,
            region_name=lab_s3.REGION,
            aws_access_key_id="k",
            aws_secret_access_key="s",
        )
        client.put_object(
            Bucket="bkt",
            Key="a/placement.json",
            Body=b'{"primary": "site-b"}',
            ContentType="application/json",
            Metadata={"epoch": "3"},
        )
        client.put_object(Bucket="bkt", Key="b/blob", Body=bytes(range(256)) * 10)
        etag = client.head_object(Bucket="bkt", Key="a/placement.json")["ETag"]
        assert lab_s3.save_bucket(client, "bkt", state) == 2
        client.delete_objects(
            Bucket="bkt", Delete={"Objects": [{"Key": "a/placement.json"}, {"Key": "b/blob"}]}
        )
        assert lab_s3.load_bucket(client, "bkt", state) == 2
        got = client.get_object(Bucket="bkt", Key="a/placement.json")
        assert got["Body"].read() == b'{"primary": "site-b"}'
        assert got["ContentType"] == "application/json" and got["Metadata"] == {"epoch": "3"}
        assert got["ETag"] == etag  # conditional writes keep working on what was saved
        assert client.get_object(Bucket="bkt", Key="b/blob")["Body"].read() == bytes(range(256)) * 10
        assert lab_s3.load_bucket(client, "bkt", tmp_path / "nothing-saved") == 0
    finally:
        server.stop()


def test_each_lab_site_waits_the_labs_probe_timeout(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Site B's rbd runs through the toolbox exec on a machine shared with the tests: the lab's plans
    give each site longer than the 3 s default before calling it unreachable."""
    monkeypatch.setenv("STANDBY_LAB_PORT_BASE", "21800")
    config = load_config(_config(tmp_path, "per-site"))
    for site in ("site-a", "site-b"):
        assert config.site(site).probe_timeout.total_seconds() == 10.0
