"""Unprotected connections outside the lab are named: a kubeconfig with insecure-skip-tls-verify and a
plain http S3 endpoint, one warning line each (logged, and printed by ``standby config check``)."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic import SecretStr
from typer.testing import CliRunner

from drkit.config import load_config
from drkit.domain.models import SiteSecrets
from drkit.domain.transport import is_loopback, kubeconfig_warning, s3_endpoint_warning
from drkit.jobs import sites
from standby.cli import app

ROOT = Path(__file__).resolve().parents[2]


def _kubeconfig(server: str, insecure: bool) -> dict[str, Any]:
    cluster: dict[str, Any] = {"server": server}
    if insecure:
        cluster["insecure-skip-tls-verify"] = True
    return {
        "apiVersion": "v1",
        "kind": "Config",
        "current-context": "a",
        "clusters": [{"name": "ca", "cluster": cluster}],
        "users": [{"name": "ua", "user": {"token": "t"}}],
        "contexts": [{"name": "a", "context": {"cluster": "ca", "user": "ua"}}],
    }


@pytest.mark.parametrize(
    ("host", "loopback"),
    [
        ("127.0.0.1", True),
        ("127.8.9.10", True),
        ("::1", True),
        ("[::1]", True),
        ("localhost", True),
        ("LOCALHOST", True),
        ("10.0.0.1", False),
        ("s3.example.com", False),
        ("localhost.evil.com", False),
        ("", False),
        (None, False),
    ],
)
def test_loopback_is_127_0_0_0_8_ipv6_one_and_localhost(host: str | None, loopback: bool) -> None:
    assert is_loopback(host) is loopback


def test_an_http_s3_endpoint_is_warned_about_outside_loopback_only() -> None:
    line = s3_endpoint_warning("site-b", "http://minio.dr.example:9000")
    assert line is not None and "\n" not in line
    assert "site-b" in line and "http://minio.dr.example:9000" in line and "sites[site-b].s3.endpoint" in line
    for quiet in (
        "https://minio.dr.example:9000",
        "http://127.0.0.1:16902",
        "http://[::1]:9000",
        "http://localhost:9000",
        None,
        "",
    ):
        assert s3_endpoint_warning("site-b", quiet) is None


def test_a_kubeconfig_skipping_tls_verification_is_warned_about_outside_loopback_only() -> None:
    line = kubeconfig_warning(
        "site-a", _kubeconfig("https://k8s.a.example:6443", True), None, where="kubeconfig x"
    )
    assert line is not None and "\n" not in line
    assert "site-a" in line and "insecure-skip-tls-verify" in line and "certificate-authority" in line
    assert (
        kubeconfig_warning("site-a", _kubeconfig("https://k8s.a.example:6443", False), None, where="x")
        is None
    )
    assert kubeconfig_warning("site-a", _kubeconfig("https://127.0.0.1:6443", True), None, where="x") is None
    assert (
        kubeconfig_warning("site-a", _kubeconfig("https://k8s.a.example:6443", True), "other", where="x")
        is None
    )


def _config_file(tmp_path: Path, *, insecure: bool, endpoint: str) -> Path:
    kube = tmp_path / "kubeconfig"
    kube.write_text(yaml.safe_dump(_kubeconfig("https://k8s.a.example:6443", insecure)))
    data = yaml.safe_load((ROOT / "standby.example.yaml").read_text())
    for site in data["sites"]:
        site["kube"] = {"kubeconfig": str(kube), "context": "a"}
        site["s3"]["endpoint"] = endpoint
    path = tmp_path / "standby.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def test_config_check_prints_one_warning_line_each_naming_the_site_and_the_fix(tmp_path: Path) -> None:
    path = _config_file(tmp_path, insecure=True, endpoint="http://s3.dr.example:9000")
    result = CliRunner().invoke(app, ["config", "check", str(path)])
    assert result.exit_code == 0, result.output
    warnings = [line.strip() for line in result.output.splitlines() if "warning:" in line]
    assert len(warnings) == 4  # two sites, two warnings each
    for site in ("site-a", "site-b"):
        mine = [w for w in warnings if f"site {site}:" in w]
        assert any("insecure-skip-tls-verify" in w and "fix:" in w for w in mine)
        assert any("http://s3.dr.example:9000" in w and f"sites[{site}].s3.endpoint" in w for w in mine)


def test_the_lab_config_and_https_get_no_warning(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["config", "check", str(ROOT / "standby.example.yaml")])
    assert result.exit_code == 0 and "warning" not in result.output
    path = _config_file(tmp_path, insecure=False, endpoint="https://s3.dr.example")
    result = CliRunner().invoke(app, ["config", "check", str(path)])
    assert result.exit_code == 0 and "warning" not in result.output


def test_building_the_adapters_logs_each_warning_once(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    cfg = load_config(_config_file(tmp_path, insecure=False, endpoint="http://s3.dr.example:9000"))
    insecure = yaml.safe_dump(_kubeconfig("https://k8s.b.example:6443", True))
    keys = {"s3_access_key_id": SecretStr("id"), "s3_secret_access_key": SecretStr("secret")}
    site = cfg.sites[1].with_secrets(SiteSecrets(kubeconfig=SecretStr(insecure), **keys))
    sites._warned.clear()
    with caplog.at_level(logging.WARNING, logger="standby.security"):
        for _ in range(2):
            sites.cluster_for(site)
            sites.store_for(site)
    lines = [r.getMessage() for r in caplog.records if r.name == "standby.security"]
    assert len(lines) == 2 and all("site site-b" in line for line in lines)
    assert any("Prefect Secret block" in line and "insecure-skip-tls-verify" in line for line in lines)
