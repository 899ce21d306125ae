"""``standby backup run|list|show|verify|restore|decrypt`` through typer's CliRunner.

Real adapters over in-process servers: a fake kube-apiserver seeded like the lab's site A (the
Nexus app, with its admin Secret) and a moto S3 server. Each test writes its own configuration
(``standby.example.yaml`` with the servers' addresses and its own S3 prefix), with the S3
credentials and the backup key in environment variables, as an operator would.

Secret values are only ever checked for absence (or compared by hash), so a failing assertion
cannot print one.
"""

from __future__ import annotations

import base64
import hashlib
import json
import logging
import re
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import Result
from kubernetes import client
from typer.testing import CliRunner

from drkit.adapters.kube import KubeCluster
from drkit.domain.crypto import MasterKey
from lab import seeds
from lab.kubeapi import KubeApiServer, write_kubeconfig
from lab.s3 import start_moto
from standby.cli import app as standby_app

PASSWORD = "cli-test-admin-pw-5519"
KEY_BYTES = bytes(range(7, 39))
WRONG_BYTES = bytes(range(100, 132))
KEY_ID = MasterKey(KEY_BYTES).key_id
WRONG_ID = MasterKey(WRONG_BYTES).key_id
ROOT = Path(__file__).resolve().parents[2]
RUN_ID = re.compile(r"^\d{8}T\d{6}Z-[0-9a-f]{6}$")
SECRET_PATH = f"core/v1/Secret/{seeds.NAMESPACE}/{seeds.ADMIN_SECRET}"

runner = CliRunner()


@dataclass
class Servers:
    kubeconfig: Path
    s3_url: str
    site_b: KubeApiServer


@pytest.fixture(scope="module")
def servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Servers]:
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    tmp = tmp_path_factory.mktemp("cli")
    moto, s3_url = start_moto("standby", access_key="cli", secret_key="cli")
    a, b = KubeApiServer(port=0, tick_interval=0.2), KubeApiServer(port=0, tick_interval=0.2)
    a.start()
    b.start()
    try:
        cfg = client.Configuration()
        cfg.host = a.url
        kube_a = KubeCluster(client.ApiClient(cfg), site="site-a", cache_dir=tmp)
        for obj in [*seeds.common(PASSWORD), *seeds.primary_app("http://nexus.lab.local")]:
            kube_a.create(obj)
        kubeconfig = write_kubeconfig(tmp / "kubeconfig", {"site-a": a.url, "site-b": b.url}, "site-a")
        yield Servers(kubeconfig, s3_url, b)
    finally:
        a.stop()
        b.stop()
        moto.stop()


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    values = {
        "CLI_TEST_S3_KEY": "cli",
        "CLI_TEST_S3_SECRET": "cli",
        "STANDBY_BACKUP_KEY": base64.b64encode(KEY_BYTES).decode(),
        "CLI_TEST_WRONG_KEY": base64.b64encode(WRONG_BYTES).decode(),
    }
    for name, value in values.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("STANDBY_CONFIG", raising=False)
    return values


def write_config(servers: Servers, tmp: Path, **s3: Any) -> Path:
    data: dict[str, Any] = yaml.safe_load((ROOT / "standby.example.yaml").read_text())
    for site in data["sites"]:
        site["kube"] = {"kubeconfig": str(servers.kubeconfig), "context": site["name"]}
        site["ceph"] = {"mode": "local", "conf": "/nonexistent/ceph.conf"}
        site["s3"] = {
            "endpoint": servers.s3_url,
            "bucket": "standby",
            "prefix": f"cli-{uuid.uuid4().hex[:8]}",
            "region": "us-east-1",
            "access_key_id_env": "CLI_TEST_S3_KEY",
            "secret_access_key_env": "CLI_TEST_S3_SECRET",
            **s3,
        }
    path = tmp / "standby.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


@pytest.fixture
def config(servers: Servers, tmp_path: Path, env: dict[str, str]) -> Path:
    return write_config(servers, tmp_path)


def standby(config: Path, *args: str) -> Result:
    return runner.invoke(standby_app, ["backup", args[0], "--config", str(config), *args[1:]])


def leaks(result: Result) -> bool:
    """Whether the admin password shows in the result's stdout or stderr, plain or base64."""
    needles = (PASSWORD, base64.b64encode(PASSWORD.encode()).decode())
    return any(n in result.stdout or n in result.stderr for n in needles)


def stderr_lines(result: Result) -> list[str]:
    return [line for line in result.stderr.splitlines() if line.strip()]


def store_sections(stdout: str) -> dict[str, list[str]]:
    """``backup list`` output: each ``store of ...:`` header and the run rows under it."""
    sections: dict[str, list[str]] = {}
    for line in stdout.splitlines():
        if line.startswith("store of "):
            sections[line] = []
        elif line[:2] in ("* ", "  "):
            sections[list(sections)[-1]].append(line)
    return sections


def run_id_of(result: Result) -> str:
    last = result.stdout.strip().splitlines()[-1]
    assert RUN_ID.match(last), f"last line is not a run id: {last!r}"
    return last


def test_run_rerun_list_show_verify(config: Path) -> None:
    first = standby(config, "run", "--app", "nexus")
    assert first.exit_code == 0, first.output
    first_id = run_id_of(first)
    assert "9 new" in first.stdout and f"encryption key id: {KEY_ID}" in first.stdout

    again = standby(config, "run", "--app", "nexus")
    assert again.exit_code == 0, again.output
    second_id = run_id_of(again)
    assert second_id != first_id
    assert "0 new, 9 reused" in again.stdout and f"unchanged: points at run {first_id}" in again.stdout

    listed = standby(config, "list", "--app", "nexus")
    assert listed.exit_code == 0, listed.output
    sections = store_sections(listed.stdout)
    assert list(sections) == [
        "store of site-a:",
        "store of site-b:",
    ]  # each site has its own prefix: 2 stores
    for lines in sections.values():  # the run landed complete in both
        rows = {line[2:].split()[0]: line for line in lines}
        assert list(rows) == [first_id, second_id]  # oldest first
        assert rows[first_id].startswith("  ") and "same-as" not in rows[first_id]  # not latest: no '*'
        latest = rows[second_id]
        assert latest.startswith("* ") and f"same-as={first_id}" in latest and "objects=9" in latest

    for run in (second_id, "latest"):
        shown = standby(config, "show", run, "--app", "nexus")
        assert shown.exit_code == 0, shown.output
        assert f"run {second_id} of app nexus on site site-a: complete" in shown.stdout
        assert f"unchanged: objects of run {first_id}" in shown.stdout
        assert SECRET_PATH in shown.stdout and len(re.findall(r"enc:", shown.stdout)) == 9

    verified = standby(config, "verify", "--app", "nexus")
    assert verified.exit_code == 0, verified.output
    assert f"verify {second_id} of app nexus (site site-a): OK" in verified.stdout
    assert "objects checked: 9 (9 encrypted)" in verified.stdout
    old = standby(config, "verify", first_id, "--app", "nexus", "--dry-run-site", "site-b")
    assert old.exit_code == 0, old.output
    assert "server-side dry-run restore on site site-b: done" in old.stdout

    for result in (first, again, listed, shown, verified, old):
        found = leaks(result)
        assert not found, "a Secret value was printed"


def test_restore_dry_run_into_site_b(config: Path) -> None:
    several = standby(config, "run")  # the configuration protects nexus and web: --app is needed
    assert several.exit_code == 2 and "pass --app nexus|web" in several.stderr, several.output
    assert standby(config, "run", "--app", "nexus").exit_code == 0
    dry = standby(
        config, "restore", "--app", "nexus", "--to", "site-b", "--namespace", "nexus-dr-drill", "--dry-run"
    )
    assert dry.exit_code == 0, dry.output
    assert "would restore backup" in dry.stdout and "created: 9, updated: 0, skipped (exist): 0" in dry.stdout
    found = leaks(dry)
    assert not found, "a Secret value was printed"


def test_restore_into_a_namespace_not_the_apps_is_refused_in_one_line(config: Path) -> None:
    assert standby(config, "run", "--app", "nexus").exit_code == 0
    refused = standby(config, "restore", "--app", "nexus", "--to", "site-b", "--namespace", "kube-system")
    assert refused.exit_code != 0 and refused.stdout == ""
    line = refused.stderr.strip()
    assert "\n" not in line and "namespace kube-system" in line and "app nexus" in line
    assert "nexus-dr" in line and "nexus-dr-drill" in line


def test_decrypt_a_secret_with_the_right_key_prints_it(config: Path) -> None:
    assert standby(config, "run", "--app", "nexus").exit_code == 0
    result = standby(config, "decrypt", SECRET_PATH, "--app", "nexus")
    assert result.exit_code == 0, result.stderr  # stderr only: stdout holds the Secret
    manifest = yaml.safe_load(result.stdout)
    assert (manifest["kind"], manifest["metadata"]["name"]) == ("Secret", seeds.ADMIN_SECRET)
    stored = base64.b64decode(manifest["data"]["password"])
    assert hashlib.sha256(stored).hexdigest() == hashlib.sha256(PASSWORD.encode()).hexdigest()


def test_decrypt_with_a_wrong_key_names_both_key_ids_on_one_line(config: Path) -> None:
    assert standby(config, "run", "--app", "nexus").exit_code == 0
    result = standby(config, "decrypt", SECRET_PATH, "--app", "nexus", "--key-env", "CLI_TEST_WRONG_KEY")
    assert result.exit_code != 0 and result.stdout == ""
    lines = stderr_lines(result)
    assert len(lines) == 1 and KEY_ID in lines[0] and WRONG_ID in lines[0], lines
    found = leaks(result)
    assert not found, "a Secret value was printed"


def test_decrypt_of_an_unknown_object_says_how_to_list_them(config: Path) -> None:
    run_id = run_id_of(standby(config, "run", "--app", "nexus"))
    result = standby(config, "decrypt", "core/v1/Secret/nope/nope", "--app", "nexus")
    assert result.exit_code == 1
    assert stderr_lines(result) == [
        f"error: run {run_id} of app nexus has no object 'core/v1/Secret/nope/nope'"
        f" (next: list its objects with `standby backup show {run_id}`)"
    ]


def test_run_without_a_key_refuses_secrets_on_one_line(config: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("STANDBY_BACKUP_KEY")
    result = standby(config, "run", "--app", "nexus")
    assert result.exit_code == 2 and result.stdout == ""
    lines = stderr_lines(result)
    assert len(lines) == 1, lines
    assert seeds.ADMIN_SECRET in lines[0] and "no backup encryption key" in lines[0]
    assert "STANDBY_BACKUP_KEY" in lines[0]
    listed = standby(config, "list", "--app", "nexus")  # nothing was written
    assert listed.exit_code == 0 and listed.stdout.startswith(
        "store of site-a: no finished backup of app nexus"
    )


@pytest.mark.parametrize(
    ("s3", "named"),
    [
        ({"bucket": "no-such-bucket"}, "s3.bucket of site site-a"),
        ({"access_key_id_env": "CLI_TEST_UNSET_VAR"}, "CLI_TEST_UNSET_VAR"),
    ],
)
def test_bad_s3_settings_give_one_line_naming_the_field(
    servers: Servers, tmp_path: Path, env: dict[str, str], s3: dict[str, str], named: str
) -> None:
    config = write_config(servers, tmp_path, **s3)
    for args in (("run", "--app", "nexus"), ("list", "--app", "nexus")):
        result = standby(config, *args)
        assert result.exit_code != 0 and result.stdout == ""
        lines = stderr_lines(result)
        assert len(lines) == 1 and lines[0].startswith("error: ") and named in lines[0], lines


def test_unknown_run_is_one_line(config: Path) -> None:
    assert standby(config, "run", "--app", "nexus").exit_code == 0
    result = standby(config, "show", "20200101T000000Z-abcdef", "--app", "nexus")
    assert result.exit_code == 1
    lines = stderr_lines(result)
    assert len(lines) == 1 and "has no index" in lines[0] and "standby backup list" in lines[0], lines


def test_after_a_key_rotation_runs_from_before_and_after_verify_and_restore_with_the_ring(
    config: Path, env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """On moto S3 and the fake apiserver, through the CLI's route (the ring in the environment)."""
    before = standby(config, "run", "--app", "nexus")
    assert before.exit_code == 0, before.output
    made = runner.invoke(standby_app, ["key", "generate"])
    new_text, new_id = made.stdout.strip(), MasterKey.parse(made.stdout.strip()).key_id
    monkeypatch.setenv(
        "STANDBY_BACKUP_KEY", f"{new_text},{env['STANDBY_BACKUP_KEY']}"
    )  # rotated: new key first
    after = standby(config, "run", "--app", "nexus")
    assert after.exit_code == 0, after.output
    assert f"encryption key id: {new_id}" in after.stdout and "9 new" in after.stdout
    for run in (run_id_of(before), run_id_of(after)):
        verified = standby(config, "verify", run, "--app", "nexus")
        assert verified.exit_code == 0, verified.output
        assert f"verify {run} of app nexus (site site-a): OK" in verified.stdout
        assert "key ring: 4 retained run(s) checked, 0 not opened" in verified.stdout  # 2 runs x 2 stores
        restored = standby(
            config,
            "restore",
            run,
            "--app",
            "nexus",
            "--to",
            "site-b",
            "--namespace",
            "nexus-dr-drill",
            "--dry-run",
        )
        assert restored.exit_code == 0, restored.output
        assert f"would restore backup {run}" in restored.stdout and "created: 9" in restored.stdout
    monkeypatch.setenv("STANDBY_BACKUP_KEY", new_text)  # the older key dropped too early
    short = standby(config, "verify", "--app", "nexus")
    assert short.exit_code != 0
    assert f"run {run_id_of(before)} is sealed with key id {KEY_ID}, which the key ring lacks" in short.output


@pytest.mark.parametrize("fmt", ["json", "yaml"])
def test_list_show_and_verify_print_records_with_o(config: Path, fmt: str) -> None:
    run = run_id_of(standby(config, "run", "--app", "nexus"))

    def data(*args: str) -> Any:
        result = standby(config, *args, "-a", "nexus", "-o", fmt)
        assert result.exit_code == 0, result.output
        return json.loads(result.stdout) if fmt == "json" else yaml.safe_load(result.stdout)

    listed = data("list")
    assert listed["app"] == "nexus" and listed["site"] == "site-a"
    assert [r["run_id"] for s in listed["stores"] for r in s["runs"]] == [run] * len(listed["stores"])
    assert all(s["latest"] == run for s in listed["stores"])
    shown = data("show", "latest")
    assert shown["index"]["run_id"] == run and shown["index"]["objects"] and shown["store"]
    verified = data("verify", run)
    assert verified["ok"] is True and verified["run_id"] == run and verified["problems"] == []
    assert all(s["run_id"] == run and s["bad"] == [] for s in verified["stores"])
