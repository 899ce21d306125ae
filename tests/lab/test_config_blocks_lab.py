"""A flow run from a block-only configuration completes in the lab, with no YAML file present.

The lab's configuration is saved as Prefect blocks (what ``make up`` does with ``standby blocks
import``); then the lab's ``standby.yaml``, its kubeconfig and its S3 credentials file are moved
away, and no default kubeconfig, AWS file or variable is left to fall back on. The backup, a
dry-run restore into site B and an RPO sample run with ``config="block:..."``: site A's objects
are read through the kubeconfig in a Secret block, site B's Ceph through the toolbox pod reached
the same way, S3 with the keys of an AwsCredentials block. Site A's Ceph is reached with the
lab's ceph.conf, which is the Ceph host's file (``mode: local``), not Standby's configuration.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from prefect.blocks.system import Secret

from blocks.config import import_config, resolve_config
from drkit.config import load_config
from flows.backup import backup
from flows.restore import restore
from flows.rpo_sample import rpo_sample
from tests.lab.conftest import Lab
from tests.labhelpers import LAB_KEY_TEXT

pytestmark = pytest.mark.lab
KEY_TEXT = LAB_KEY_TEXT  # the lab's one key (tests/labhelpers.py)
NAME = "standby-lab-test"


@pytest.fixture
def blocks_only(
    lab: Lab, prefect_harness: None, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> Iterator[str]:
    lines = import_config(load_config(lab.root / "standby.yaml"), NAME)
    assert any(line.startswith("Secret standby-lab-test-site-a-kubeconfig") for line in lines)
    assert any(line.startswith("AwsCredentials standby-lab-test-site-b-s3") for line in lines)
    Secret(value=KEY_TEXT).save(f"{NAME}-key", overwrite=True)
    hidden: list[Path] = []
    try:  # the S3 credentials of either layout: s3/credentials (shared) or s3/credentials-SITE (per-site)
        for path in [
            lab.root / "standby.yaml",
            lab.kubeconfig,
            *sorted((lab.root / "s3").glob("credentials*")),
        ]:
            path.rename(path.with_name(path.name + ".hidden"))
            hidden.append(path)
        assert len(hidden) >= 3, hidden
        for var in ("STANDBY_CONFIG", "STANDBY_BACKUP_KEY", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
            monkeypatch.delenv(var, raising=False)
        monkeypatch.setenv("KUBECONFIG", str(tmp_path / "no-kubeconfig"))
        monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-aws-credentials"))
        monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-aws-config"))
        monkeypatch.chdir(tmp_path)
        yield f"block:{NAME}"
    finally:
        for path in hidden:
            path.with_name(path.name + ".hidden").rename(path)


@pytest.mark.timeout(600)
def test_flows_complete_from_a_block_only_configuration(lab: Lab, blocks_only: str) -> None:
    assert not (lab.root / "standby.yaml").exists() and not lab.kubeconfig.exists()
    cfg = resolve_config(blocks_only)
    assert all(s.kube.kubeconfig is None and s.s3.credentials_file is None for s in cfg.sites)
    key = f"secret:{NAME}-key"

    result = backup(app="nexus", config=blocks_only, key_source=key)
    assert result["status"] == "complete" and result["objects"] > 0

    restored = restore(
        app="nexus",
        target_site="site-b",
        config=blocks_only,
        dry_run=True,
        key_source=key,
        exclude_kinds=["VolumeReplication"],
    )
    assert restored["run_id"] == result["run_id"] and restored["created"]

    sampled = rpo_sample(config=blocks_only, app="nexus", compact=False)
    assert sampled["invalid_sites"] == [], sampled
    lag = sampled["apps"]["nexus"]  # type: ignore[index]
    assert lag is not None and lag >= 0
