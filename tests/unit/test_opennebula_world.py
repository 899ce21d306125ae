"""The World's OpenNebula front-end per site: built on first use from the site's access and its
session (a Prefect Secret block in memory, a file or an environment variable), never shown; a
fake world hands in its fakes instead."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import SecretStr

from drkit.adapters.opennebula import PyoneFrontend
from drkit.domain.errors import ConfigError
from drkit.domain.models import Site, SiteSecrets
from drkit.jobs.sites import frontend_for, one_session
from drkit.jobs.world import SiteBundle
from drkit.testing.objectstore import FakeObjectStore
from drkit.testing.opennebula import FakeOneFrontend
from drkit.testing.vm_dr import SESSION_ENV, fake_vm_config, fake_vm_dr

SESSION = "oneadmin:s3cret-one-pw"


def _site(**access: object) -> Site:
    site = fake_vm_config().site("site-a")
    assert site.opennebula is not None
    fields = {"credentials_env": None, "credentials_file": None, "credentials_secret": None, **access}
    return site.model_copy(update={"opennebula": site.opennebula.model_copy(update=fields)})


def test_a_fake_world_hands_in_its_front_ends() -> None:
    dr = fake_vm_dr()
    assert dr.world.bundle("site-b").opennebula is dr.fronts["site-b"]
    assert isinstance(dr.world.bundle("site-a").probing().opennebula, FakeOneFrontend)


def test_the_session_comes_from_memory_a_file_or_a_variable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    secret = _site(credentials_secret="one-a").with_secrets(
        SiteSecrets(opennebula_session=SecretStr(SESSION))
    )
    assert one_session(secret) == SESSION
    auth = tmp_path / "one.auth"
    auth.write_text(SESSION + "\nignored\n")
    assert one_session(_site(credentials_file=auth)) == SESSION
    monkeypatch.setenv(SESSION_ENV, SESSION)
    assert one_session(_site(credentials_env=SESSION_ENV)) == SESSION


@pytest.mark.parametrize(
    ("access", "words"),
    [
        (
            {"credentials_file": Path("/nonexistent/one.auth")},
            "the OpenNebula credentials file /nonexistent/one.auth cannot be read",
        ),
        ({"credentials_env": SESSION_ENV}, f"no OpenNebula session user:password in {SESSION_ENV}"),
        ({"credentials_secret": "one-a"}, "is in Prefect Secret block one-a, which only the flows"),
    ],
)
def test_a_session_that_cannot_be_read_is_one_line_naming_the_site(
    access: dict[str, object], words: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(SESSION_ENV, raising=False)
    with pytest.raises(ConfigError) as info:
        one_session(_site(**access))
    assert words in str(info.value) and "site-a" in str(info.value) and "\n" not in str(info.value)


def test_the_real_front_end_is_built_lazily_and_never_shows_the_session(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv(SESSION_ENV, SESSION)
    site = _site(credentials_env=SESSION_ENV)
    bundle = SiteBundle(site, FakeObjectStore(site="site-a"), timeout=5.0)
    front = bundle.opennebula
    assert isinstance(front, PyoneFrontend) and bundle.opennebula is front
    assert front.timeout == 5.0 and front.site == "site-a"
    assert SESSION not in repr(front) and "s3cret" not in repr(front)
    assert frontend_for(site).timeout == 30.0  # the access's own timeout


def test_a_site_without_a_front_end_is_a_config_error() -> None:
    site = fake_vm_config().site("site-a").model_copy(update={"opennebula": None})
    with pytest.raises(ConfigError, match="site site-a has no OpenNebula front-end"):
        assert SiteBundle(site, FakeObjectStore(site="site-a")).opennebula is None


@pytest.mark.parametrize("verify", [True, False])
def test_the_sites_verify_tls_reaches_the_transport(verify: bool, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(SESSION_ENV, SESSION)
    site = _site(credentials_env=SESSION_ENV)
    assert site.opennebula is not None
    site = site.model_copy(
        update={
            "opennebula": site.opennebula.model_copy(
                update={"endpoint": "https://one.example:2633/RPC2", "verify_tls": verify}
            )
        }
    )
    front = frontend_for(site)
    assert front._server._ServerProxy__transport.https_verify is verify
