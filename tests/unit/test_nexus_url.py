"""The Nexus admin password goes only to an https URL or to one the configuration names: an http
``status.url`` in the Nexus CR (which whoever can write the CR chooses) is refused in one line."""

from __future__ import annotations

from pathlib import Path

import pytest

from drkit.adapters.nexus import NexusApi
from drkit.config import load_config
from drkit.domain.errors import PreconditionFailed
from drkit.domain.models import KindRef
from drkit.jobs.drivers.nexus import NexusDriver
from drkit.testing.dr import NEXUS, NS, FakeDr, fake_dr
from lab import lab

CR = KindRef(group="operator.alaudadevops.io", version="v1alpha1", kind="Nexus")


class Recording:
    """A Nexus factory that records every URL it was asked to send the password to."""

    def __init__(self, dr: FakeDr) -> None:
        self.dr = dr
        self.sent: list[str] = []

    def __call__(self, url: str, password: str, site: str) -> NexusApi:
        self.sent.append(url)
        return self.dr.nexus_factory(url, password, site)


def _driver(dr: FakeDr, url: str | None = None, **checks: object) -> tuple[NexusDriver, Recording]:
    bundle = dr.world.bundle("site-a")
    app = dr.world.config.app("nexus")
    if checks:
        app = app.model_copy(update={"checks": app.checks.model_copy(update=checks)})
    bundle.cluster.get(CR, NEXUS, NS)  # the fake's controller starts Nexus on site-a
    if url is not None:
        bundle.cluster.patch(CR, NEXUS, NS, {"status": {"url": url}})
    record = Recording(dr)
    return NexusDriver(app=app, site=bundle.site, cluster=bundle.cluster, nexus_factory=record), record


def test_an_https_url_from_the_cr_gets_the_password() -> None:
    dr = fake_dr()
    driver, record = _driver(dr)
    assert driver.url() == "https://nexus.site-a.fake"
    assert driver.writable() and record.sent == ["https://nexus.site-a.fake"]


@pytest.mark.parametrize(
    "url", ["http://attacker.example:8081", "http://127.0.0.1:8081", "HTTP://nexus.site-a.fake"]
)
def test_an_http_url_from_the_cr_is_refused_in_one_line_and_gets_no_password(url: str) -> None:
    dr = fake_dr()
    driver, record = _driver(dr, url)
    for call in (
        driver.writable,
        driver.api,
        driver.quiesce,
        lambda: driver.smoke("t1"),
        lambda: driver.answers(url),
    ):
        with pytest.raises(PreconditionFailed) as caught:
            call()
        message = str(caught.value)
        assert "\n" not in message and "app nexus" in message and "site-a" in message and url in message
        assert "checks.urls" in message
    assert record.sent == []


def test_an_http_url_the_configuration_names_gets_the_password() -> None:
    dr = fake_dr()
    url = "http://127.0.0.1:8081"
    driver, record = _driver(dr, url, urls={"site-a": url})
    driver.api()
    assert record.sent == [url]


def test_the_lab_config_names_its_loopback_nexus_urls(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("STANDBY_LAB_PORT_BASE", "17300")
    ports = lab.Ports(17300)
    lab._write_config(tmp_path, lab.s3_stores(tmp_path, ports, "per-site"))
    app = load_config(tmp_path / "standby.yaml").app("nexus")
    assert app.checks.urls == {s: f"http://127.0.0.1:{ports.nexus(s)}" for s in lab.SITES}
