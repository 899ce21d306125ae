"""An OpenNebula front-end's session from a Prefect Secret block (``sites[].opennebula.
credentials_secret``), under the Prefect test harness: read into the site's in-memory secrets when
a flow resolves its configuration, never into the configuration itself; a missing or malformed
block is one line naming the site and the block, without the value."""

from __future__ import annotations

import copy
import uuid
from pathlib import Path
from typing import Any

import pytest
import yaml
from prefect.blocks.system import Secret
from pydantic import SecretStr

from blocks.config import resolve_config
from drkit.domain.errors import ConfigError

ROOT = Path(__file__).resolve().parents[2]
SESSION = "oneadmin:one-b-pw-7731"


def vm_config(folder: Path, secret: str) -> Path:
    """The example configuration, both sites with a front-end (site-b's session in block ``secret``)
    and a VM app."""
    data: dict[str, Any] = yaml.safe_load((ROOT / "standby.example.yaml").read_text())
    (folder / "one-a.auth").write_text("oneadmin:one-a-pw\n")
    data["sites"][0]["opennebula"] = {
        "endpoint": "http://127.0.0.1:2633/RPC2",
        "credentials_file": "one-a.auth",
    }
    data["sites"][1]["opennebula"] = {"endpoint": "http://127.0.0.1:2634/RPC2", "credentials_secret": secret}
    vm = copy.deepcopy(
        {
            "name": "vms",
            "home_site": "site-a",
            "secondary_site": "site-b",
            "volumes": [{"image": "one-0-0-0", "mode": "journal"}],
            "mirroring": {"control": "rbd"},
            "snapshot_interval": "1m",
            "rpo_target": "5m",
            "checks": {"kind": "opennebula"},
            "opennebula": {"vm_ids": [0], "datastores": {"site-a": 1, "site-b": 100}},
        }
    )
    data["apps"].append(vm)
    path = folder / "standby.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def test_the_session_is_read_from_its_secret_block_into_memory_only(tmp_path: Path) -> None:
    name = f"one-b-{uuid.uuid4().hex[:8]}"
    Secret(value=SecretStr(SESSION)).save(name)
    cfg = resolve_config(str(vm_config(tmp_path, name)))
    b, a = cfg.site("site-b"), cfg.site("site-a")
    assert b.secrets is not None and b.secrets.opennebula_session is not None
    assert b.secrets.opennebula_session.get_secret_value() == SESSION
    assert a.secrets is None  # site-a reads its file where the client is built
    assert SESSION not in cfg.model_dump_json() and SESSION not in repr(cfg)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (None, "site site-b: opennebula.credentials_secret: Secret block {name!r} does not exist"),
        ("just-a-password", "Secret block {name!r} does not hold an OpenNebula session 'user:password'"),
        (":nouser", "does not hold an OpenNebula session"),
    ],
)
def test_a_missing_or_malformed_session_block_is_one_line_without_its_value(
    tmp_path: Path, value: str | None, expected: str
) -> None:
    name = f"one-b-{uuid.uuid4().hex[:8]}"
    if value is not None:
        Secret(value=SecretStr(value)).save(name)
    with pytest.raises(ConfigError) as info:
        resolve_config(str(vm_config(tmp_path, name)))
    message = str(info.value)
    assert expected.format(name=name) in message and "\n" not in message
    assert value is None or value not in message
