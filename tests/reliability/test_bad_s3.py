"""S3 refuses: wrong credentials (moto with IAM authentication on), a missing bucket, access denied by policy, nobody listening.

moto runs as its own process here (``python -m moto.server``): its authentication switch is
process-wide, so it must not touch the unauthenticated moto servers of the other tests.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import boto3
import httpx
import pytest

from tests.reliability.helpers import EXIT_BAD_INPUT, EXIT_FAILED, assert_cli_error, standby
from tests.unit.test_backup_cli import Servers, write_config

BUCKET = "standby"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass(frozen=True)
class AuthS3:
    url: str
    allowed: tuple[str, str]
    denied: tuple[str, str]


@pytest.fixture(scope="module")
def auth_s3() -> Iterator[AuthS3]:
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    proc = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                httpx.get(f"{url}/moto-api/", timeout=1)
                break
            except httpx.TransportError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)
        setup = {
            "endpoint_url": url,
            "region_name": "us-east-1",
            "aws_access_key_id": "setup",
            "aws_secret_access_key": "setup",
        }
        boto3.client("s3", **setup).create_bucket(Bucket=BUCKET)
        iam = boto3.client("iam", **setup)
        keys = {}
        for user, actions in (("standby", ["s3:*"]), ("auditor", ["s3:GetObject"])):
            iam.create_user(UserName=user)
            policy = {
                "Version": "2012-10-17",
                "Statement": [{"Effect": "Allow", "Action": actions, "Resource": "*"}],
            }
            iam.put_user_policy(UserName=user, PolicyName="p", PolicyDocument=json.dumps(policy))
            key = iam.create_access_key(UserName=user)["AccessKey"]
            keys[user] = (key["AccessKeyId"], key["SecretAccessKey"])
        # From now on every request must be signed by a known key and allowed by its policy.
        httpx.post(f"{url}/moto-api/reset-auth", content=b"0", timeout=5).raise_for_status()
        yield AuthS3(url, keys["standby"], keys["auditor"])
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def _config(
    servers: Servers, tmp: Path, monkeypatch: pytest.MonkeyPatch, url: str, key: tuple[str, str], **s3: object
) -> Path:
    monkeypatch.setenv("REL_S3_KEY", key[0])
    monkeypatch.setenv("REL_S3_SECRET", key[1])
    return write_config(
        servers,
        tmp,
        endpoint=url,
        access_key_id_env="REL_S3_KEY",
        secret_access_key_env="REL_S3_SECRET",
        **s3,
    )


def test_the_allowed_key_works(
    auth_s3: AuthS3, servers: Servers, tmp_path: Path, env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The control: the same setup with the right key lists (so the refusals below are real)."""
    config = _config(servers, tmp_path, monkeypatch, auth_s3.url, auth_s3.allowed)
    result = standby("backup", "list", "--config", str(config), "--app", "nexus")
    assert result.code == 0, result.stderr


CASES = {
    "unknown access key": (("AKIAUNKNOWN0000000000", "x" * 40), {}, EXIT_BAD_INPUT, "InvalidAccessKeyId"),
    "wrong secret key": (None, {}, EXIT_BAD_INPUT, "SignatureDoesNotMatch"),
    "policy denies listing": ("denied", {}, EXIT_BAD_INPUT, "AccessDenied"),
    "missing bucket": ("allowed", {"bucket": "no-such-bucket"}, EXIT_FAILED, "does not exist"),
}


@pytest.mark.parametrize("case", list(CASES))
@pytest.mark.parametrize("command", ["list", "run"])
def test_s3_refusals_are_one_line_naming_bucket_site_and_settings(
    auth_s3: AuthS3,
    servers: Servers,
    tmp_path: Path,
    env: dict[str, str],
    monkeypatch: pytest.MonkeyPatch,
    case: str,
    command: str,
) -> None:
    who, s3, code, expected = CASES[case]
    key = {"allowed": auth_s3.allowed, "denied": auth_s3.denied, None: (auth_s3.allowed[0], "w" * 40)}.get(
        who,
        who,  # type: ignore[arg-type]
    )
    config = _config(servers, tmp_path, monkeypatch, auth_s3.url, key, **s3)  # type: ignore[arg-type]
    result = standby("backup", command, "--config", str(config), "--app", "nexus")
    line = assert_cli_error(result, code, expected, "site site-a", auth_s3.url)
    assert key[1] not in line  # the secret key is never printed


def test_nobody_listening_is_one_line(
    servers: Servers, tmp_path: Path, env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    url = f"http://127.0.0.1:{_free_port()}"
    # Two attempts, not the default five: the message is the same, the backoff between is not needed.
    config = _config(servers, tmp_path, monkeypatch, url, ("a", "b"), max_attempts=2)
    result = standby("backup", "list", "--config", str(config), "--app", "nexus")
    assert_cli_error(result, EXIT_FAILED, "unreachable", "site site-a", url)
