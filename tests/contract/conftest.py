"""Fixtures for contract suites."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from lab.kubeapi import KubeApiServer


@pytest.fixture
def kubeapi(tmp_path: Path) -> Iterator[KubeApiServer]:
    """A fresh fake kube-apiserver on 127.0.0.1 (free port), persisting into ``tmp_path/state``."""
    srv = KubeApiServer(state_dir=tmp_path / "state", tick_interval=0.5)
    srv.start()
    try:
        yield srv
    finally:
        srv.stop()
