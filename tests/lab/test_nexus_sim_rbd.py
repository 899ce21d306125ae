"""Nexus simulator on real RBD images (needs the lab's Ceph; marked ``lab``).

Fixtures expected from the lab conftest:

* ``ceph_conf``: path of the site's ceph.conf (its ``keyring`` setting must reach client.admin);
* ``cluster``: the cluster name (``--cluster``);
* ``pool``: a pool with image-mode mirroring enabled;
* ``image_primary``: an image that is mirroring primary (or not mirrored) and zeroed or already
  formatted by the simulator - the test writes repositories with unique names into it;
* ``image_secondary``: an image that is mirroring non-primary (demoted, or the replica on the peer).
"""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import time
import uuid
from pathlib import Path

import httpx
import pytest

from lab.procs import answers

REPO_ROOT = Path(__file__).resolve().parents[2]
SYSTEM_PYTHON = "/usr/bin/python3"
PASSWORD = "rbd-lab-pass"
AUTH = ("admin", PASSWORD)
REST = "/service/rest/v1"

pytestmark = pytest.mark.lab


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _argv(port: int, conf: str, cluster: str, pool: str, image: str, log: Path, *extra: str) -> list[str]:
    return [
        SYSTEM_PYTHON,
        "-m",
        "lab.nexus_sim",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--rbd-pool",
        pool,
        "--rbd-image",
        image,
        "--ceph-conf",
        conf,
        "--ceph-cluster",
        cluster,
        "--ceph-id",
        "admin",
        "--log-file",
        str(log),
        *extra,
    ]


def _env() -> dict[str, str]:
    return {
        "PATH": "/usr/bin:/bin",
        "NEXUS_ADMIN_PASSWORD": PASSWORD,
        "PYTHONPATH": str(REPO_ROOT),
        "HOME": os.environ.get("HOME", "/tmp"),
    }


def _start(argv: list[str], port: int, log: Path, timeout: float = 60.0) -> subprocess.Popen[str]:
    proc = subprocess.Popen(
        argv, cwd=REPO_ROOT, env=_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(
                f"simulator exited {proc.returncode}\n{log.read_text() if log.exists() else ''}"
            )
        if answers(f"http://127.0.0.1:{port}{REST}/status", timeout=1.0):
            return proc
        time.sleep(0.1)
    proc.kill()
    raise AssertionError(f"simulator not ready in {timeout}s\n{log.read_text() if log.exists() else ''}")


def _stop(proc: subprocess.Popen[str]) -> int:
    proc.send_signal(signal.SIGTERM)
    code = proc.wait(timeout=30)
    for stream in (proc.stdout, proc.stderr):
        if stream:
            stream.close()
    return code


def test_refuses_to_mount_a_secondary_image(
    ceph_conf: str, cluster: str, pool: str, image_secondary: str, tmp_path: Path
) -> None:
    port = _free_port()
    log = tmp_path / "sim.log"
    proc = subprocess.run(
        _argv(port, ceph_conf, cluster, pool, image_secondary, log),
        cwd=REPO_ROOT,
        env=_env(),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 3, proc.stderr + log.read_text()
    expected = (
        f"FATAL: cannot mount volume: RBD image {pool}/{image_secondary} on cluster {cluster} "
        "is not primary (mirroring secondary); promote it first"
    )
    assert expected in proc.stderr
    assert expected in log.read_text()
    with pytest.raises(httpx.TransportError):
        httpx.get(f"http://127.0.0.1:{port}{REST}/status", timeout=1.0)


def test_serves_and_persists_on_a_primary_image(
    ceph_conf: str, cluster: str, pool: str, image_primary: str, tmp_path: Path
) -> None:
    log = tmp_path / "sim.log"
    repo = f"rbd-{uuid.uuid4().hex[:8]}"
    payload = os.urandom(150_000)
    port = _free_port()
    proc = _start(_argv(port, ceph_conf, cluster, pool, image_primary, log), port, log)
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", auth=AUTH, timeout=30) as client:
            body = {
                "name": repo,
                "online": True,
                "storage": {
                    "blobStoreName": "default",
                    "strictContentTypeValidation": False,
                    "writePolicy": "ALLOW",
                },
            }
            assert client.post(f"{REST}/repositories/raw/hosted", json=body).status_code == 201
            assert client.put(f"/repository/{repo}/probe.bin", content=payload).status_code == 201
            ready = client.get(f"{REST}/status/check").json()["Blob Stores Ready"]
            assert (
                ready["healthy"] is True
                and ready["details"]["device"] == f"rbd:{cluster}/{pool}/{image_primary}"
            )
    finally:
        assert _stop(proc) == 0
    assert re.search(r"nexus-sim ready on .* \(mirroring primary|\(mirroring disabled", log.read_text())

    port = _free_port()
    proc = _start(_argv(port, ceph_conf, cluster, pool, image_primary, log), port, log)
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", auth=AUTH, timeout=30) as client:
            assert client.get(f"/repository/{repo}/probe.bin").content == payload
            assert client.delete(f"{REST}/repositories/{repo}").status_code == 204
    finally:
        assert _stop(proc) == 0


def test_missing_image_and_unreachable_cluster(
    ceph_conf: str, cluster: str, pool: str, tmp_path: Path
) -> None:
    log = tmp_path / "sim.log"
    missing = subprocess.run(
        _argv(_free_port(), ceph_conf, cluster, pool, "no-such-image", log),
        cwd=REPO_ROOT,
        env=_env(),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert missing.returncode == 4 and "does not exist" in missing.stderr

    dead_conf = tmp_path / f"{cluster}.conf"
    text = Path(ceph_conf).read_text()
    dead_conf.write_text(re.sub(r"(?m)^\s*mon[ _]host\s*=.*$", "mon host = 127.0.0.1:1", text))
    dead = subprocess.run(
        _argv(_free_port(), str(dead_conf), cluster, pool, "x", log, "--connect-timeout", "3"),
        cwd=REPO_ROOT,
        env=_env(),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert dead.returncode == 5, dead.stderr
    assert "cannot reach Ceph cluster" in dead.stderr or "cannot connect" in dead.stderr


def _rbd(conf: str, cluster: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["rbd", "--cluster", cluster, "-c", conf, *args], capture_output=True, text=True, timeout=60
    )


def test_demote_while_mounted_makes_writes_fail_cleanly(
    ceph_conf: str, cluster: str, pool: str, image_primary: str, tmp_path: Path
) -> None:
    """Demoting under a running simulator: reads keep working, writes answer 500, writable answers 503."""
    log = tmp_path / "sim.log"
    spec = f"{pool}/{image_primary}"
    port = _free_port()
    proc = _start(_argv(port, ceph_conf, cluster, pool, image_primary, log), port, log)
    repo = f"rbd-{uuid.uuid4().hex[:8]}"
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", auth=AUTH, timeout=30) as client:
            body = {"name": repo, "storage": {"blobStoreName": "default", "writePolicy": "ALLOW"}}
            assert client.post(f"{REST}/repositories/raw/hosted", json=body).status_code == 201
            assert client.put(f"/repository/{repo}/a.txt", content=b"before").status_code == 201
            demoted = _rbd(ceph_conf, cluster, "mirror", "image", "demote", spec)
            assert demoted.returncode == 0, demoted.stderr
            try:
                refused = client.put(f"/repository/{repo}/b.txt", content=b"after")
                assert refused.status_code == 500 and "read-only" in refused.text
                assert client.get(f"{REST}/status/writable").status_code == 503
                assert client.get(f"/repository/{repo}/a.txt").content == b"before"
            finally:
                deadline = time.monotonic() + 90
                while True:
                    promoted = _rbd(ceph_conf, cluster, "mirror", "image", "promote", spec)
                    if promoted.returncode == 0 or time.monotonic() > deadline:
                        break
                    time.sleep(2)
                assert promoted.returncode == 0, promoted.stderr
            # librbd keeps the open handle read-only after a re-promote, like a filesystem that went
            # read-only: the volume has to be remounted (simulator restarted), which the next block does.
    finally:
        assert _stop(proc) == 0
    port = _free_port()
    proc = _start(_argv(port, ceph_conf, cluster, pool, image_primary, log), port, log)
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", auth=AUTH, timeout=30) as client:
            assert client.get(f"/repository/{repo}/a.txt").content == b"before"
            assert client.get(f"/repository/{repo}/b.txt").status_code == 404
            assert client.put(f"/repository/{repo}/c.txt", content=b"again").status_code == 201
            assert client.get(f"{REST}/status/writable").status_code == 200
            assert client.delete(f"{REST}/repositories/{repo}").status_code == 204
    finally:
        assert _stop(proc) == 0
