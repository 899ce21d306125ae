"""Pure parts of the configuration from blocks: credentials in memory, kubeconfig reduction, durations."""

from __future__ import annotations

import base64
from datetime import timedelta
from pathlib import Path

import pytest
import yaml
from pydantic import SecretStr

from blocks.config import reduce_kubeconfig, site_kubeconfig
from drkit.config import load_config
from drkit.domain.durations import parse_duration
from drkit.domain.errors import ConfigError
from drkit.domain.models import SiteSecrets, StandbyConfig
from drkit.jobs.sites import cluster_for, s3_credentials_for

ROOT = Path(__file__).resolve().parents[2]

KUBECONFIG = {
    "apiVersion": "v1",
    "kind": "Config",
    "current-context": "site-a",
    "clusters": [
        {"name": "a", "cluster": {"server": "https://a.example:6443", "certificate-authority": "ca.crt"}},
        {"name": "b", "cluster": {"server": "https://b.example:6443"}},
    ],
    "users": [{"name": "ua", "user": {"token": "token-a"}}, {"name": "ub", "user": {"token": "token-b"}}],
    "contexts": [
        {"name": "site-a", "context": {"cluster": "a", "user": "ua"}},
        {"name": "site-b", "context": {"cluster": "b", "user": "ub"}},
    ],
}


@pytest.fixture
def config() -> StandbyConfig:
    return load_config(ROOT / "standby.example.yaml")


def test_a_loaded_config_is_taken_as_it_is(config: StandbyConfig) -> None:
    assert load_config(config) is config


def test_site_secrets_travel_in_memory_and_are_never_dumped(config: StandbyConfig) -> None:
    site = config.sites[0]
    secret = SiteSecrets(
        s3_access_key_id=SecretStr("AKIA-TEST"), s3_secret_access_key=SecretStr("s3-secret-x")
    )
    with_keys = site.with_secrets(secret)
    assert site.secrets is None and with_keys.secrets == secret
    placed = config.model_copy(update={"sites": (with_keys, config.sites[1])}).model_copy(
        update={"apps": config.apps}
    )
    assert placed.sites[0].secrets == secret  # kept through copies (placement makes them)
    assert "s3-secret-x" not in placed.model_dump_json() and "s3-secret-x" not in repr(with_keys)
    creds = s3_credentials_for(with_keys)
    assert creds is not None and (creds.access_key_id, creds.secret_access_key) == (
        "AKIA-TEST",
        "s3-secret-x",
    )


def test_the_kubeconfig_in_memory_is_used_instead_of_any_file(config: StandbyConfig) -> None:
    kube = yaml.safe_dump(
        {**KUBECONFIG, "clusters": [{"name": "a", "cluster": {"server": "http://127.0.0.1:1"}}]}
    )
    site = config.sites[0].with_secrets(SiteSecrets(kubeconfig=SecretStr(kube)))
    assert cluster_for(site).api_client.configuration.host == "http://127.0.0.1:1"
    bad = config.sites[0].with_secrets(SiteSecrets(kubeconfig=SecretStr("contexts: [\n  token: token-a")))
    with pytest.raises(ConfigError) as caught:
        cluster_for(bad)
    assert "token-a" not in str(caught.value) and "site-a" in str(caught.value)


def test_a_kubeconfig_is_cut_down_to_one_context_with_files_inlined(tmp_path: Path) -> None:
    (tmp_path / "ca.crt").write_bytes(b"CA-BYTES")
    text, context = reduce_kubeconfig(KUBECONFIG, None, base=tmp_path, site="site-a")
    data = yaml.safe_load(text)
    assert context == "site-a" and data["current-context"] == "site-a"
    assert [c["name"] for c in data["contexts"]] == ["site-a"] and [u["name"] for u in data["users"]] == [
        "ua"
    ]
    assert (
        data["clusters"][0]["cluster"]["certificate-authority-data"] == base64.b64encode(b"CA-BYTES").decode()
    )
    assert "token-b" not in text
    with pytest.raises(ConfigError, match="the kubeconfig has no context 'site-z'"):
        reduce_kubeconfig(KUBECONFIG, "site-z", base=tmp_path, site="site-a")


@pytest.mark.parametrize(
    ("text", "expected"),
    [("PT30S", timedelta(seconds=30)), ("P1DT2H", timedelta(days=1, hours=2)), ("5m", timedelta(minutes=5))],
)
def test_durations_read_back_as_a_block_stores_them(text: str, expected: timedelta) -> None:
    assert parse_duration(text) == expected


def test_a_config_round_trips_through_json_as_blocks_store_it(config: StandbyConfig) -> None:
    assert StandbyConfig.model_validate_json(config.model_dump_json()) == config


def test_a_kubeconfig_alias_bomb_is_refused_in_one_line(tmp_path: Path) -> None:
    lines = ['a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    lines += [f"{n}: &{n} [{','.join([f'*{p}'] * 9)}]" for p, n in zip("abcdefgh", "bcdefghi", strict=True)]
    path = tmp_path / "kubeconfig"
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(ConfigError) as caught:
        site_kubeconfig(path, None, site="site-a")
    expected = f"site site-a: cannot read kubeconfig {path}: aliases expand it to more than 100000 values"
    assert caught.value.message == expected


def test_a_site_carrying_credentials_cannot_be_pickled(config: StandbyConfig) -> None:
    import copy
    import pickle

    plain = config.sites[0]
    assert pickle.loads(pickle.dumps(plain)) == plain  # no credentials: pickled as before
    with_keys = plain.with_secrets(SiteSecrets(s3_secret_access_key=SecretStr("s3-secret-x")))
    placed = config.model_copy(update={"sites": (with_keys, config.sites[1])})
    for carrier in (with_keys, placed):
        with pytest.raises(TypeError) as caught:
            pickle.dumps(carrier)
        message = str(caught.value)
        assert "site-a" in message and "cannot be pickled" in message and "s3-secret-x" not in message
    assert copy.deepcopy(with_keys).secrets == with_keys.secrets  # copies in memory still work
