"""The configuration from Prefect blocks (``config="block:<name>"``) under the Prefect test harness.

Real adapters over in-process servers (two fake kube-apiservers, moto S3). A YAML configuration is
saved as blocks with ``import_config``; then the YAML, the kubeconfig and the S3 credentials file
are deleted, and the flows run from the blocks alone. Every bad block fails the flow at once with
one line naming the block and the field, and is not retried.
"""

from __future__ import annotations

import base64
import json
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml
from prefect import get_client
from prefect.blocks.system import Secret
from prefect.client.schemas.actions import BlockDocumentUpdate
from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId
from prefect.states import State
from prefect_aws import AwsCredentials

import tasks.backup as backup_tasks
from blocks.config import import_config, resolve_config
from blocks.standby_blocks import StandbyConfiguration
from drkit.config import load_config
from flows.backup import backup
from flows.restore import restore
from flows.rpo_sample import rpo_sample
from lab.s3 import start_moto
from tests.apiservers import seeded_sites

PASSWORD = "blocks-test-admin-pw-4410"
KEY_TEXT = base64.b64encode(bytes(range(210, 242))).decode()
S3_KEY, S3_SECRET = "blocks-test-key", "blocks-test-secret-9d1e"
ROOT = Path(__file__).resolve().parents[2]


@dataclass
class Env:
    s3_url: str
    kubeconfig: Path

    def yaml_config(self, folder: Path, prefix: str) -> Path:
        """A YAML configuration naming a kubeconfig file and an S3 credentials file in ``folder``."""
        data: dict[str, Any] = yaml.safe_load((ROOT / "standby.example.yaml").read_text())
        creds = folder / "s3-credentials"
        creds.write_text(f"[default]\naws_access_key_id = {S3_KEY}\naws_secret_access_key = {S3_SECRET}\n")
        kubeconfig = folder / "kubeconfig"
        kubeconfig.write_text(self.kubeconfig.read_text())
        for site in data["sites"]:
            site["kube"] = {"kubeconfig": str(kubeconfig), "context": site["name"]}
            site["ceph"] = {"mode": "local", "conf": "/nonexistent/ceph.conf"}
            site["s3"] = {
                "endpoint": self.s3_url,
                "bucket": "standby",
                "prefix": prefix,
                "credentials_file": str(creds),
            }
        path = folder / "standby.yaml"
        path.write_text(yaml.safe_dump(data))
        return path


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Env]:
    moto, s3_url = start_moto("standby", access_key=S3_KEY, secret_key=S3_SECRET)
    try:
        with seeded_sites(tmp_path_factory.mktemp("blocks"), PASSWORD) as (_, _, kubeconfig):
            yield Env(s3_url, kubeconfig)
    finally:
        moto.stop()


@pytest.fixture
def no_files(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Nothing to fall back on: no $STANDBY_CONFIG, no default kubeconfig, no AWS files or keys."""
    monkeypatch.chdir(tmp_path)
    for var in ("STANDBY_CONFIG", "STANDBY_BACKUP_KEY", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("KUBECONFIG", str(tmp_path / "no-kubeconfig"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-aws-credentials"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-aws-config"))
    monkeypatch.setenv("HOME", str(tmp_path))


@pytest.fixture
def saved(env: Env, tmp_path_factory: pytest.TempPathFactory, no_files: None) -> str:
    """A configuration saved as blocks under a fresh name; its YAML and credential files deleted."""
    name = f"cfg-{uuid.uuid4().hex[:8]}"
    folder = tmp_path_factory.mktemp(name)
    path = env.yaml_config(folder, name)
    lines = import_config(load_config(path), name)
    assert lines[-1].startswith(f"Standby Configuration {name}")
    assert not any(S3_SECRET in line or "fake-token" in line for line in lines)
    for file in folder.iterdir():
        file.unlink()
    Secret(value=KEY_TEXT).save(f"{name}-key", overwrite=True)
    return name


@pytest.fixture
def fast_retries(monkeypatch: pytest.MonkeyPatch) -> None:
    for t in (backup_tasks.back_up_app, backup_tasks.verify_run, backup_tasks.restore_app):
        monkeypatch.setattr(t, "retry_delay_seconds", 0)


# --------------------------------------------------------------------------------- block-only runs


def test_backup_and_restore_run_from_blocks_alone(saved: str) -> None:
    cfg = resolve_config(f"block:{saved}")
    for site in cfg.sites:
        assert site.kube.kubeconfig is None and site.s3.credentials_file is None
        assert site.secrets is not None and site.secrets.kubeconfig is not None
        assert site.secrets.s3_secret_access_key is not None
        assert site.secrets.s3_secret_access_key.get_secret_value() == S3_SECRET
        assert S3_SECRET not in repr(site.secrets) and S3_SECRET not in cfg.model_dump_json()
        assert "fake-token" not in cfg.model_dump_json()
        kube = yaml.safe_load(site.secrets.kubeconfig.get_secret_value())
        assert [c["name"] for c in kube["contexts"]] == [site.name]  # only the site's own context
    result = backup(app="nexus", config=f"block:{saved}", key_source=f"secret:{saved}-key")
    assert result["status"] == "complete" and result["objects"] == 9
    restored = restore(
        app="nexus",
        target_site="site-b",
        config=f"block:{saved}",
        dry_run=True,
        key_source=f"secret:{saved}-key",
        exclude_kinds=["VolumeReplication"],
    )
    assert restored["run_id"] == result["run_id"] and restored["created"]


def test_config_from_standby_config_variable(saved: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STANDBY_CONFIG", f"block:{saved}")
    assert [s.name for s in resolve_config(None).sites] == ["site-a", "site-b"]


def test_a_block_reference_given_to_a_file_loader_says_so(no_files: None) -> None:
    from drkit.domain.errors import ConfigError

    with pytest.raises(ConfigError, match="names a Prefect block; only the flows read"):
        load_config(Path("block:prod"))


# ------------------------------------------------------------------------------------- bad input


def _update(slug: str, name: str, change: Callable[[dict[str, Any]], None]) -> None:
    """Edit a saved block's data as the API or UI would, without the client's validation."""
    with get_client(sync_client=True) as c:
        doc = c.read_block_document_by_name(name, slug)
        data = dict(doc.data)
        change(data)
        c.update_block_document(doc.id, BlockDocumentUpdate(data=data, merge_existing_data=False))


def _edited(slug: str, block: str, path: str, value: Any) -> Callable[[str], str]:
    """A bad-input maker: set ``path`` (dotted) of block ``<name><block>`` of type ``slug`` to ``value``."""

    def make(name: str) -> str:
        def change(data: dict[str, Any]) -> None:
            *parents, last = path.split(".")
            for part in parents:
                data = data[part]
            data[last] = value

        _update(slug, name + block, change)
        return f"block:{name}"

    return make


def _error(state: State[Any]) -> str:
    assert state.is_failed(), state
    error = state.result(raise_on_failure=False)
    assert isinstance(error, Exception)
    return str(error)


def _task_run_counts(state: State[Any]) -> list[int]:
    with get_client(sync_client=True) as c:
        runs = c.read_task_runs(
            flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[state.state_details.flow_run_id]))
        )
    return [r.run_count for r in runs]


def _missing_config(name: str) -> str:
    return "block:nope-" + name


def _empty_reference(name: str) -> str:
    return "block:"


def _missing_site_block(name: str) -> str:
    StandbyConfiguration(sites=[f"{name}-site-a", f"{name}-site-c"], apps=[f"{name}-nexus"]).save(
        name, overwrite=True
    )
    return f"block:{name}"


def _kubeconfig_not_yaml(name: str) -> str:
    Secret(value="apiVersion: v1\ncontexts: [unclosed\n").save(f"{name}-site-a-kubeconfig", overwrite=True)
    return f"block:{name}"


def _kubeconfig_json_not_a_kubeconfig(name: str) -> str:
    Secret(value='{"kind": "Config"}').save(f"{name}-site-a-kubeconfig", overwrite=True)
    return f"block:{name}"


def _aws_credentials_without_keys(name: str) -> str:
    AwsCredentials(region_name="us-east-1").save(f"{name}-site-b-s3", overwrite=True)
    return f"block:{name}"


KUBE, AWS = "kubeconfig_secret: ", "aws_credentials: AWS Credentials block"
BAD: dict[str, tuple[Callable[[str], str], list[str]]] = {
    "config block missing": (
        _missing_config,
        ["Standby Configuration block 'nope-", "does not exist", "known: "],
    ),
    "empty block name": (_empty_reference, ["config 'block:' names no block", 'config="block:<name>"']),
    "site block missing": (_missing_site_block, ["sites[1]: Standby Site block", "-site-c' does not exist"]),
    "site block invalid": (
        _edited("standby-site", "-site-b", "site.s3.bucket", "x"),
        ["sites[1]: Standby Site block", "site.s3.bucket", "at least 3"],
    ),
    "app block invalid": (
        _edited("standby-app", "-nexus", "app.rpo_target", "soon"),
        ["apps[0]: Standby App block", "app.rpo_target", "'soon'"],
    ),
    "config block invalid": (
        _edited("standby-config", "", "sites", "site-a"),
        ["Standby Configuration block", "sites: ", "list"],
    ),
    "kubeconfig Secret missing": (
        _edited("standby-site", "-site-a", "kubeconfig_secret", "gone-kubeconfig"),
        [KUBE, "Secret block 'gone-kubeconfig' does not exist"],
    ),
    "kubeconfig not YAML": (_kubeconfig_not_yaml, ["-site-a': " + KUBE, "is not valid YAML at line"]),
    "kubeconfig JSON, not a kubeconfig": (_kubeconfig_json_not_a_kubeconfig, [KUBE, "is not a kubeconfig"]),
    "context not in kubeconfig": (
        _edited("standby-site", "-site-a", "site.kube.context", "site-z"),
        [KUBE, "has no context 'site-z'"],
    ),
    "AwsCredentials missing": (
        _edited("standby-site", "-site-b", "aws_credentials", "no-such-s3-keys"),
        [AWS + " 'no-such-s3-keys' does not exist"],
    ),
    "AwsCredentials without keys": (_aws_credentials_without_keys, [AWS, "has no access key id"]),
    "Secret and file both": (
        _edited("standby-site", "-site-a", "site.kube.kubeconfig", "/etc/kubeconfig"),
        [KUBE + "cannot be combined with site.kube.kubeconfig"],
    ),
}


def _check(state: State[Any], expected: list[str]) -> None:
    message = _error(state)
    assert "\n" not in message, message
    for part in expected:
        assert part in message, message
    assert "(next: " in message, message
    assert "Traceback" not in message and S3_SECRET not in message and "fake-token" not in message
    assert all(count <= 1 for count in _task_run_counts(state)), "a configuration error was retried"


@pytest.mark.parametrize("case", list(BAD))
def test_a_bad_block_fails_the_flow_at_once_with_one_line(case: str, saved: str) -> None:
    make, expected = BAD[case]
    config = make(saved)
    _check(backup(app="nexus", config=config, key_source=f"secret:{saved}-key", return_state=True), expected)


@pytest.mark.parametrize("case", ["site block invalid", "kubeconfig Secret missing"])
def test_a_bad_block_fails_the_run_once_before_any_task(case: str, saved: str, fast_retries: None) -> None:
    """Every flow resolves its configuration once, before its first task (the tasks take the run's
    World): a bad block fails the run there, never retried; so do the restore flow with its source
    given and rpo-sample."""
    make, expected = BAD[case]
    config = make(saved)
    restored = restore(
        app="nexus",
        target_site="site-b",
        source_site="site-a",
        config=config,
        dry_run=True,
        key_source=f"secret:{saved}-key",
        return_state=True,
    )
    _check(restored, expected)
    assert _task_run_counts(restored) == []
    _check(rpo_sample(config=config, return_state=True), expected)


def test_standby_blocks_import_saves_a_yaml_file_as_blocks(env: Env, tmp_path: Path, no_files: None) -> None:
    from typer.testing import CliRunner

    from standby.cli import app

    name = f"cli-{uuid.uuid4().hex[:8]}"
    path = env.yaml_config(tmp_path, name)
    result = CliRunner().invoke(
        app, ["blocks", "import", str(path), "--name", name, "--backup-key", f"{name}-key"]
    )
    assert result.exit_code == 0, result.output
    assert f"saved Standby Configuration {name}" in result.output and "created Secret block" in result.output
    assert S3_SECRET not in result.output and "fake-token" not in result.output
    assert Secret.load(f"{name}-key").get()
    assert [s.name for s in resolve_config(f"block:{name}").sites] == ["site-a", "site-b"]
    again = CliRunner().invoke(
        app, ["blocks", "import", str(path), "--name", name, "--backup-key", f"{name}-key"]
    )
    assert again.exit_code == 0 and f"Secret block '{name}-key' exists" in again.output
    missing = CliRunner().invoke(app, ["blocks", "import", str(tmp_path / "none.yaml"), "--name", name])
    assert missing.exit_code == 2 and "configuration file not found" in missing.output


def test_the_cli_reads_the_configuration_from_blocks_like_the_flows(
    saved: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``standby -c block:NAME`` (or ``$STANDBY_CONFIG=block:NAME``): no YAML, kubeconfig or S3 file."""
    from typer.testing import CliRunner

    from standby.cli import app

    monkeypatch.setenv("STANDBY_BACKUP_KEY", KEY_TEXT)
    ran = CliRunner().invoke(app, ["-c", f"block:{saved}", "backup", "run", "-a", "nexus"])
    assert ran.exit_code == 0, ran.output
    run_id = ran.stdout.strip().splitlines()[-1]
    monkeypatch.setenv("STANDBY_CONFIG", f"block:{saved}")
    listed = CliRunner().invoke(app, ["backup", "list", "-a", "nexus", "-o", "json"])
    assert listed.exit_code == 0, listed.output
    assert run_id in [r["run_id"] for s in json.loads(listed.stdout)["stores"] for r in s["runs"]]
