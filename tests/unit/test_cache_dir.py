"""Caches go to a private folder (0700, this user's) and are never written through a symlink."""

from __future__ import annotations

import logging
import os
import stat
from pathlib import Path

import pytest
from kubernetes import client

from drkit.adapters.cachedir import private_dir, read_private, write_private
from drkit.adapters.kube import KubeCluster
from drkit.domain.models import KindRef
from lab.kubeapi import KubeApiServer


def _mode(path: Path) -> int:
    return stat.S_IMODE(os.lstat(path).st_mode)


def _cluster(host: str, cache_dir: Path | None = None) -> KubeCluster:
    cfg = client.Configuration()
    cfg.host = host
    return KubeCluster(client.ApiClient(cfg), site="site-x", cache_dir=cache_dir)


def test_the_discovery_cache_is_in_a_private_folder_of_this_user_not_the_shared_tmp(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(tmp_path))
    folder = _cluster("http://127.0.0.1:1")._cache_file.parent
    assert folder == tmp_path / "standby"
    assert _mode(folder) == 0o700 and os.lstat(folder).st_uid == os.getuid()


@pytest.mark.parametrize("planted", ["symlink", "open to others", "owned by another user", "a file"])
def test_a_planted_cache_folder_is_not_used_and_named_in_one_warning(
    planted: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    victim = tmp_path / "victim"
    victim.mkdir(mode=0o700)
    wanted = tmp_path / "standby-cache"
    if planted == "symlink":
        wanted.symlink_to(victim)
    elif planted == "a file":
        wanted.write_text("x")
    else:
        wanted.mkdir(mode=0o700)
        if planted == "open to others":
            os.chmod(wanted, 0o777)
        else:
            if os.getuid() != 0:
                pytest.skip("chown to another user needs root")
            os.chown(wanted, 65534, 65534)
    with caplog.at_level(logging.WARNING, logger="standby.cache"):
        kube = _cluster("http://127.0.0.1:1", cache_dir=wanted)
    used = kube._cache_file.parent
    assert used != wanted and used.resolve() != victim.resolve() and _mode(used) == 0o700
    assert [r for r in caplog.records if str(wanted) in r.getMessage() and "Fix:" in r.getMessage()]
    assert list(victim.iterdir()) == []


def test_cache_files_are_never_written_or_read_through_a_symlink(tmp_path: Path) -> None:
    folder = private_dir(tmp_path / "own")
    victim = tmp_path / "victim.txt"
    victim.write_text("precious")
    (folder / "cache.json").symlink_to(victim)
    with pytest.raises(OSError):
        write_private(folder / "cache.json", b"{}")
    with pytest.raises(OSError):
        read_private(folder / "cache.json")
    assert victim.read_text() == "precious"
    write_private(folder / "fresh.json", b"{}")
    assert _mode(folder / "fresh.json") == 0o600 and read_private(folder / "fresh.json") == b"{}"


def test_discovery_over_http_writes_its_cache_privately_and_a_stale_file_is_never_read(
    tmp_path: Path,
) -> None:
    srv = KubeApiServer(tick_interval=0.5)
    srv.start()
    try:
        folder = private_dir(tmp_path / "cache")
        kube = _cluster(srv.url, cache_dir=folder)
        assert not kube._cache_file.exists()  # removed when the client was made: never read as found
        assert kube.discover(KindRef(version="v1", kind="ConfigMap")).plural == "configmaps"
        assert kube._cache_file.exists() and _mode(kube._cache_file) == 0o600
    finally:
        srv.stop()
