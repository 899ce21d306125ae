"""The NexusApi contract: the real adapter (HttpNexus) against the Nexus simulator over HTTP, and the fake."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterator

import pytest

from drkit.adapters.nexus import HttpNexus, NexusApi
from drkit.domain.errors import NotFound, PreconditionFailed, StandbyError, TransientError
from drkit.testing.nexus import FakeNexus
from tests.labhelpers import free_port, nexus_simulator

PASSWORD = "contract-pass"


@pytest.fixture(scope="module")
def nexus_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with nexus_simulator(tmp_path_factory.mktemp("nexus"), PASSWORD) as url:
        yield url


@pytest.fixture(params=["http", "fake"])
def nexus(request: pytest.FixtureRequest) -> Iterator[NexusApi]:
    """The real adapter against the simulator, and the fake: one contract."""
    if request.param == "fake":
        yield FakeNexus(
            url="http://nexus.fake", site="site-x", data={}, password=PASSWORD, given_password=PASSWORD
        )
        return
    with HttpNexus(
        request.getfixturevalue("nexus_url"), username="admin", password=PASSWORD, site="site-x"
    ) as api:
        yield api


def test_freeze_makes_it_read_only_until_released(nexus: NexusApi) -> None:
    nexus.ensure_raw_repository("dr-freeze")
    nexus.freeze()
    nexus.freeze()  # already frozen: fine
    try:
        assert nexus.frozen() and not nexus.writable() and nexus.readable()
        with pytest.raises(StandbyError):
            nexus.upload("dr-freeze", "x.bin", b"x")
    finally:
        nexus.release()
    nexus.release()  # not frozen: fine
    assert not nexus.frozen() and nexus.writable()
    nexus.upload("dr-freeze", "x.bin", b"x")


def test_repository_upload_download_search_delete(nexus: NexusApi) -> None:
    assert nexus.readable() and nexus.writable()
    assert nexus.ensure_raw_repository("dr-smoke") is True
    assert nexus.ensure_raw_repository("dr-smoke") is False
    payload = os.urandom(70_000)
    nexus.upload("dr-smoke", "probe/one.bin", payload)
    assert nexus.download("dr-smoke", "probe/one.bin") == payload
    (asset,) = nexus.search("dr-smoke", "/probe/one.bin")
    assert asset.path.lstrip("/") == "probe/one.bin"
    assert asset.sha256 == hashlib.sha256(payload).hexdigest()
    nexus.delete("dr-smoke", "probe/one.bin")
    with pytest.raises(NotFound, match="site-x"):
        nexus.download("dr-smoke", "probe/one.bin")
    with pytest.raises(NotFound):
        nexus.delete("dr-smoke", "probe/one.bin")
    with pytest.raises(NotFound, match="Component not found"):
        nexus.delete_component(asset.id)  # an asset id is not a component id


def test_errors_name_the_nexus_and_never_the_password(nexus_url: str) -> None:
    with HttpNexus(nexus_url, username="admin", password="wrong-secret", site="site-x") as nexus:
        with pytest.raises(PreconditionFailed) as info:
            nexus.upload("dr-smoke", "x.bin", b"x")
        assert nexus_url in str(info.value) and "wrong-secret" not in str(info.value)
    with (
        HttpNexus(f"http://127.0.0.1:{free_port()}", username="admin", password=PASSWORD, timeout=2) as gone,
        pytest.raises(TransientError, match="unreachable"),
    ):
        gone.readable()
