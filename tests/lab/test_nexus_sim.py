"""Nexus simulator over real HTTP, on a file-backed volume, started with Debian's /usr/bin/python3.

The simulator must run without the project venv (only stdlib + rbd/rados), so every test starts it as a
subprocess under /usr/bin/python3 and talks to it with httpx.
"""

from __future__ import annotations

import hashlib
import os
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

from lab.nexus_sim.volume import SUPERBLOCK_SIZE
from lab.procs import answers

REPO_ROOT = Path(__file__).resolve().parents[2]
SYSTEM_PYTHON = "/usr/bin/python3"
PASSWORD = "s3cr3t-Pa55"
AUTH = ("admin", PASSWORD)
REST = "/service/rest/v1"
MiB = 1024 * 1024

pytestmark = pytest.mark.skipif(not os.path.exists(SYSTEM_PYTHON), reason="needs Debian's /usr/bin/python3")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Sim:
    """One simulator process on a volume file."""

    volume: Path
    workdir: Path
    extra: list[str] = field(default_factory=list)
    port: int = 0
    proc: subprocess.Popen[str] | None = None

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def log_file(self) -> Path:
        return self.workdir / "nexus-sim.log"

    @property
    def pid_file(self) -> Path:
        return self.workdir / "nexus-sim.pid"

    def argv(self) -> list[str]:
        return [
            SYSTEM_PYTHON,
            "-m",
            "lab.nexus_sim",
            "--host",
            "127.0.0.1",
            "--port",
            str(self.port),
            "--file",
            str(self.volume),
            "--log-file",
            str(self.log_file),
            "--pid-file",
            str(self.pid_file),
            *self.extra,
        ]

    def launch(self) -> subprocess.Popen[str]:
        self.port = self.port or free_port()
        env = {"PATH": "/usr/bin:/bin", "NEXUS_ADMIN_PASSWORD": PASSWORD, "PYTHONPATH": str(REPO_ROOT)}
        self.proc = subprocess.Popen(
            self.argv(), cwd=REPO_ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        return self.proc

    def start(self, timeout: float = 20.0) -> Sim:
        proc = self.launch()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise AssertionError(
                    f"simulator exited {proc.returncode}: {proc.stderr.read() if proc.stderr else ''}"
                    f"\n{self.log()}"
                )
            if answers(f"{self.base}{REST}/status", timeout=1.0):
                return self
            time.sleep(0.05)
        raise AssertionError(f"simulator not ready within {timeout}s\n{self.log()}")

    def stop(self) -> int:
        assert self.proc is not None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout=15)
        finally:
            if self.proc.stdout:
                self.proc.stdout.close()
            if self.proc.stderr:
                self.proc.stderr.close()

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=10)

    def log(self) -> str:
        return self.log_file.read_text() if self.log_file.exists() else ""

    def client(self, auth: tuple[str, str] | None = AUTH) -> httpx.Client:
        return httpx.Client(base_url=self.base, auth=auth, timeout=10.0)


def make_volume(path: Path, size: int = 16 * MiB) -> Path:
    with open(path, "wb") as handle:
        handle.truncate(size)
    return path


@pytest.fixture
def volume(tmp_path: Path) -> Path:
    return make_volume(tmp_path / "nexus.img")


@pytest.fixture
def sim(volume: Path, tmp_path: Path) -> Iterator[Sim]:
    instance = Sim(volume, tmp_path).start()
    yield instance
    instance.kill()


@pytest.fixture
def admin(sim: Sim) -> Iterator[httpx.Client]:
    with sim.client() as client:
        yield client


def raw_repo(name: str, policy: str = "ALLOW") -> dict[str, object]:
    return {
        "name": name,
        "online": True,
        "storage": {"blobStoreName": "default", "strictContentTypeValidation": False, "writePolicy": policy},
        "raw": {"contentDisposition": "ATTACHMENT"},
    }


def create_repo(client: httpx.Client, name: str, policy: str = "ALLOW") -> None:
    response = client.post(f"{REST}/repositories/raw/hosted", json=raw_repo(name, policy))
    assert response.status_code == 201, response.text


def upload(client: httpx.Client, repo: str, directory: str, files: dict[str, bytes]) -> httpx.Response:
    data = {"raw.directory": directory}
    parts = {}
    for index, (filename, content) in enumerate(files.items(), start=1):
        data[f"raw.asset{index}.filename"] = filename
        parts[f"raw.asset{index}"] = (filename, content, "application/octet-stream")
    return client.post(f"{REST}/components", params={"repository": repo}, data=data, files=parts)


def search(client: httpx.Client, **params: str) -> list[dict[str, object]]:
    response = client.get(f"{REST}/search/assets", params=params)
    assert response.status_code == 200, response.text
    items: list[dict[str, object]] = response.json()["items"]
    return items


# ---------------------------------------------------------------------------------------------- health


def test_status_and_writable_need_no_auth(sim: Sim) -> None:
    with sim.client(auth=None) as anon:
        assert anon.get(f"{REST}/status").status_code == 200
        assert anon.get(f"{REST}/status/writable").status_code == 200
        assert anon.get(f"{REST}/status/check").status_code == 403


def test_status_check_reports_blob_store(admin: httpx.Client, volume: Path) -> None:
    checks = admin.get(f"{REST}/status/check").json()
    ready = checks["Blob Stores Ready"]
    assert ready["healthy"] is True
    assert str(volume) in ready["details"]["device"]
    assert {"File Descriptors", "Read-Only Detector", "Blob Stores Quota"} <= set(checks)
    assert all(isinstance(c["healthy"], bool) and isinstance(c["message"], str) for c in checks.values())


def test_freeze_and_release(sim: Sim, admin: httpx.Client) -> None:
    create_repo(admin, "dr-smoke")
    with sim.client(auth=None) as anon:
        assert anon.post(f"{REST}/read-only/freeze").status_code == 403
        assert anon.post(f"{REST}/read-only/release").status_code == 403
    assert admin.get(f"{REST}/read-only").json() == {
        "frozen": False,
        "summaryReason": "",
        "systemInitiated": False,
    }
    assert admin.post(f"{REST}/read-only/release").status_code == 404
    assert admin.post(f"{REST}/read-only/freeze").status_code == 204
    assert admin.post(f"{REST}/read-only/freeze").status_code == 404
    state = admin.get(f"{REST}/read-only").json()
    assert state["frozen"] is True and state["summaryReason"] and state["systemInitiated"] is False
    assert admin.get(f"{REST}/status").status_code == 200
    assert admin.get(f"{REST}/status/writable").status_code == 503
    assert admin.get(f"{REST}/status/check").json()["Read-Only Detector"]["healthy"] is False
    refused = upload(admin, "dr-smoke", "/dr-smoke/", {"probe.txt": b"x"})
    assert refused.status_code == 503
    assert admin.put("/repository/dr-smoke/a.txt", content=b"x").status_code == 503
    assert admin.post(f"{REST}/repositories/raw/hosted", json=raw_repo("other")).status_code == 503
    assert admin.post(f"{REST}/read-only/release").status_code == 204
    assert admin.post(f"{REST}/read-only/release").status_code == 404
    assert admin.get(f"{REST}/status/writable").status_code == 200
    assert upload(admin, "dr-smoke", "/dr-smoke/", {"probe.txt": b"x"}).status_code == 204


# ---------------------------------------------------------------------------------------------- repositories


def test_create_repository_and_duplicate(admin: httpx.Client, sim: Sim) -> None:
    create_repo(admin, "dr-smoke")
    duplicate = admin.post(f"{REST}/repositories/raw/hosted", json=raw_repo("DR-smoke"))
    assert duplicate.status_code == 400
    assert duplicate.json() == [
        {"id": "PARAMETER name", "message": "Name is already used, must be unique (ignoring case)"}
    ]
    invalid = admin.post(f"{REST}/repositories/raw/hosted", json=raw_repo("x", policy="SOMETIMES"))
    assert invalid.status_code == 400
    assert invalid.json()[0]["id"] == "PARAMETER storage.writePolicy"
    no_storage = admin.post(f"{REST}/repositories/raw/hosted", json={"name": "y", "online": True})
    assert no_storage.status_code == 400 and no_storage.json()[0]["id"] == "PARAMETER storage"
    listed = admin.get(f"{REST}/repositories").json()
    assert listed == [
        {
            "name": "dr-smoke",
            "format": "raw",
            "type": "hosted",
            "url": f"{sim.base}/repository/dr-smoke",
            "attributes": {},
        }
    ]
    with sim.client(auth=None) as anon:
        assert anon.post(f"{REST}/repositories/raw/hosted", json=raw_repo("z")).status_code == 403


def test_delete_repository(admin: httpx.Client) -> None:
    create_repo(admin, "gone")
    assert admin.put("/repository/gone/a.txt", content=b"a").status_code == 201
    assert admin.delete(f"{REST}/repositories/gone").status_code == 204
    assert admin.delete(f"{REST}/repositories/gone").status_code == 404
    assert admin.get("/repository/gone/a.txt").status_code == 404
    assert search(admin, repository="gone") == []


# ------------------------------------------------------------------------------------- upload/download


def test_multipart_upload_then_download_is_byte_identical(admin: httpx.Client, sim: Sim) -> None:
    create_repo(admin, "dr-smoke")
    blob = os.urandom(300_000) + b"\r\n--not-a-boundary\r\n\r\n" + bytes(range(256))
    response = upload(admin, "dr-smoke", "/dr-smoke/", {"probe.txt": b"hello\n", "blob.bin": blob})
    assert response.status_code == 204, response.text
    got = admin.get("/repository/dr-smoke/dr-smoke/blob.bin")
    assert got.status_code == 200 and got.content == blob
    assert got.headers["content-length"] == str(len(blob))
    assert got.headers["content-type"] == "application/octet-stream"
    text = admin.get("/repository/dr-smoke/dr-smoke/probe.txt")
    assert text.content == b"hello\n" and text.headers["content-type"].startswith("text/plain")
    with sim.client(auth=None) as anon:  # anonymous read is allowed (Nexus default)
        assert anon.get("/repository/dr-smoke/dr-smoke/probe.txt").content == b"hello\n"
        assert anon.get("/repository/dr-smoke/dr-smoke/missing.txt").status_code == 404
        assert anon.get("/repository/nope/x.txt").status_code == 404


def test_put_upload_and_write_policies(admin: httpx.Client) -> None:
    create_repo(admin, "free")
    create_repo(admin, "once", policy="ALLOW_ONCE")
    create_repo(admin, "deny", policy="DENY")
    assert admin.put("/repository/free/dir/a.txt", content=b"v1").status_code == 201
    assert admin.put("/repository/free/dir/a.txt", content=b"v2").status_code == 201
    assert admin.get("/repository/free/dir/a.txt").content == b"v2"
    assert len(search(admin, repository="free")) == 1
    assert admin.put("/repository/once/a.txt", content=b"v1").status_code == 201
    again = admin.put("/repository/once/a.txt", content=b"v2")
    assert again.status_code == 400 and "does not allow updating" in again.text
    assert upload(admin, "once", "/", {"a.txt": b"v3"}).status_code == 400
    assert admin.get("/repository/once/a.txt").content == b"v1"
    assert admin.put("/repository/deny/a.txt", content=b"v1").status_code == 400
    assert admin.put("/repository/missing/a.txt", content=b"v1").status_code == 404


def test_upload_errors_and_auth(sim: Sim, admin: httpx.Client) -> None:
    create_repo(admin, "dr-smoke")
    missing = admin.post(
        f"{REST}/components", data={"raw.directory": "/d"}, files={"raw.asset1": ("a.txt", b"a")}
    )
    assert missing.status_code == 422 and missing.text == "Parameter 'repository' is required"
    unknown = upload(admin, "nope", "/d/", {"a.txt": b"a"})
    assert unknown.status_code == 404
    no_dir = admin.post(
        f"{REST}/components", params={"repository": "dr-smoke"}, files={"raw.asset1": ("a.txt", b"a")}
    )
    assert no_dir.status_code == 400 and "Directory" in no_dir.json()[0]["message"]
    with sim.client(auth=None) as anon:
        forbidden = upload(anon, "dr-smoke", "/d/", {"a.txt": b"a"})
        assert forbidden.status_code == 403 and "Insufficient permissions" in forbidden.text
        assert anon.put("/repository/dr-smoke/a.txt", content=b"a").status_code == 403
    with sim.client(auth=("admin", "wrong")) as bad:
        for response in (
            upload(bad, "dr-smoke", "/d/", {"a.txt": b"a"}),
            bad.get(f"{REST}/search/assets"),
            bad.post(f"{REST}/read-only/freeze"),
        ):
            assert response.status_code == 401
            assert response.headers["www-authenticate"] == 'BASIC realm="Sonatype Nexus Repository Manager"'
    assert search(admin, repository="dr-smoke") == []


def test_no_anonymous_mode_answers_401(volume: Path, tmp_path: Path) -> None:
    instance = Sim(volume, tmp_path, extra=["--no-anonymous"]).start()
    try:
        with instance.client(auth=None) as anon:
            assert anon.get(f"{REST}/status").status_code == 200
            assert anon.get(f"{REST}/repositories").status_code == 401
            assert anon.post(f"{REST}/read-only/freeze").status_code == 401
    finally:
        assert instance.stop() == 0


def test_concurrent_uploads_survive_restart(
    sim: Sim, admin: httpx.Client, volume: Path, tmp_path: Path
) -> None:
    create_repo(admin, "par")
    blobs = {f"t{t}/f{i}.bin": os.urandom(10_000 + t * 100 + i) for t in range(6) for i in range(8)}

    def worker(names: list[str]) -> list[int]:
        with sim.client() as client:
            return [client.put(f"/repository/par/{n}", content=blobs[n]).status_code for n in names]

    names = sorted(blobs)
    with ThreadPoolExecutor(max_workers=6) as pool:
        codes = [c for chunk in pool.map(worker, [names[i::6] for i in range(6)]) for c in chunk]
    assert codes == [201] * len(names)
    head = admin.head("/repository/par/t0/f0.bin")
    assert head.status_code == 200 and head.content == b""
    assert head.headers["content-length"] == str(len(blobs["t0/f0.bin"]))
    assert sim.stop() == 0
    again = Sim(volume, tmp_path).start()
    try:
        with again.client() as client:
            for name, blob in blobs.items():
                assert client.get(f"/repository/par/{name}").content == blob
    finally:
        assert again.stop() == 0


def test_body_larger_than_volume_is_413(admin: httpx.Client, tmp_path: Path) -> None:
    create_repo(admin, "big")
    too_big = admin.put("/repository/big/huge.bin", content=b"\0" * (17 * MiB))
    assert too_big.status_code == 413


# ---------------------------------------------------------------------------------------------- search


def test_search_checksums_and_download_redirect(admin: httpx.Client, sim: Sim) -> None:
    create_repo(admin, "dr-smoke")
    one, two = b"first artifact\n", os.urandom(4096)
    assert upload(admin, "dr-smoke", "/dr-smoke/", {"one.txt": one, "two.bin": two}).status_code == 204
    items = search(admin, repository="dr-smoke", name="dr-smoke/one.txt")
    assert len(items) == 1
    item = items[0]
    assert item["checksum"] == {
        "sha1": hashlib.sha1(one).hexdigest(),
        "sha256": hashlib.sha256(one).hexdigest(),
        "md5": hashlib.md5(one).hexdigest(),
        "sha512": hashlib.sha512(one).hexdigest(),
    }
    assert item["repository"] == "dr-smoke" and item["format"] == "raw" and item["fileSize"] == len(one)
    assert item["path"] == "/dr-smoke/one.txt"
    assert item["downloadUrl"] == f"{sim.base}/repository/dr-smoke/dr-smoke/one.txt"
    assert httpx.get(str(item["downloadUrl"])).content == one
    by_sha = search(admin, sha256=hashlib.sha256(two).hexdigest())
    assert [i["path"] for i in by_sha] == ["/dr-smoke/two.bin"]
    assert len(search(admin, repository="dr-smoke", name="dr-smoke/*")) == 2

    download = f"{REST}/search/assets/download"
    found = admin.get(download, params={"repository": "dr-smoke", "name": "/dr-smoke/two.bin"})
    assert found.status_code == 302 and found.headers["location"].endswith(
        "/repository/dr-smoke/dr-smoke/two.bin"
    )
    assert (
        admin.get(
            download, params={"repository": "dr-smoke", "name": "dr-smoke/two.bin"}, follow_redirects=True
        ).content
        == two
    )
    many = admin.get(download, params={"repository": "dr-smoke"})
    assert many.status_code == 400 and "multiple assets" in many.text
    assert admin.get(download, params={"repository": "dr-smoke", "sort": "name"}).status_code == 302
    none = admin.get(download, params={"repository": "dr-smoke", "name": "nothing"})
    assert none.status_code == 404 and none.text == "Asset search returned no results"


def test_search_pages_with_continuation_token(admin: httpx.Client) -> None:
    create_repo(admin, "bulk")
    for i in range(57):
        assert admin.put(f"/repository/bulk/f/{i:03d}.txt", content=str(i).encode()).status_code == 201
    first = admin.get(f"{REST}/search/assets", params={"repository": "bulk"}).json()
    assert len(first["items"]) == 50 and first["continuationToken"]
    second = admin.get(
        f"{REST}/search/assets",
        params={"repository": "bulk", "continuationToken": first["continuationToken"]},
    ).json()
    assert len(second["items"]) == 7 and second["continuationToken"] is None
    paths = [i["path"] for i in first["items"] + second["items"]]
    assert paths == [f"/f/{i:03d}.txt" for i in range(57)]
    bad = admin.get(f"{REST}/search/assets", params={"repository": "bulk", "continuationToken": "zz"})
    assert bad.status_code == 400


def test_components_list_and_delete(admin: httpx.Client) -> None:
    create_repo(admin, "dr-smoke")
    assert upload(admin, "dr-smoke", "/d/", {"a.txt": b"a", "b.txt": b"b"}).status_code == 204
    assert admin.get(f"{REST}/components").status_code == 422
    listing = admin.get(f"{REST}/components", params={"repository": "dr-smoke"}).json()
    assert [c["name"] for c in listing["items"]] == ["/d/a.txt", "/d/b.txt"]
    comp = listing["items"][0]
    assert comp["group"] == "/d" and comp["format"] == "raw" and comp["assets"][0]["path"] == "/d/a.txt"
    assert admin.get(f"{REST}/components/{comp['id']}").json()["id"] == comp["id"]
    assert admin.delete(f"{REST}/components/{comp['id']}").status_code == 204
    gone = admin.delete(f"{REST}/components/{comp['id']}")
    assert gone.status_code == 404 and gone.text == "Component not found"
    assert admin.delete(f"{REST}/components/!!!not-an-id").status_code == 422
    assert admin.get("/repository/dr-smoke/d/a.txt").status_code == 404
    assert admin.get("/repository/dr-smoke/d/b.txt").content == b"b"


# ---------------------------------------------------------------------------------------------- persistence


def test_state_survives_restart(volume: Path, tmp_path: Path) -> None:
    first = Sim(volume, tmp_path).start()
    payload = os.urandom(200_000)
    with first.client() as client:
        create_repo(client, "dr-smoke")
        create_repo(client, "once", policy="ALLOW_ONCE")
        assert (
            upload(client, "dr-smoke", "/dr-smoke/", {"probe.bin": payload, "tmp.txt": b"t"}).status_code
            == 204
        )
        tmp_id = search(client, name="dr-smoke/tmp.txt")[0]
        comp_id = client.get(f"{REST}/components", params={"repository": "dr-smoke"}).json()["items"]
        doomed = next(c["id"] for c in comp_id if c["name"].endswith("tmp.txt"))
        assert tmp_id and client.delete(f"{REST}/components/{doomed}").status_code == 204
        assert client.post(f"{REST}/read-only/freeze").status_code == 204
    assert first.pid_file.exists()
    assert first.stop() == 0
    assert not first.pid_file.exists()
    assert "stopped cleanly" in first.log()

    second = Sim(volume, tmp_path).start()
    try:
        with second.client() as client:
            names = [r["name"] for r in client.get(f"{REST}/repositories").json()]
            assert names == ["dr-smoke", "once"]
            assert client.get("/repository/dr-smoke/dr-smoke/probe.bin").content == payload
            assert client.get("/repository/dr-smoke/dr-smoke/tmp.txt").status_code == 404
            assert client.get(f"{REST}/read-only").json()["frozen"] is True
            assert client.get(f"{REST}/status/writable").status_code == 503
            assert client.post(f"{REST}/read-only/release").status_code == 204
            item = search(client, name="dr-smoke/probe.bin")[0]
            assert item["checksum"]["sha256"] == hashlib.sha256(payload).hexdigest()  # type: ignore[index]
            create_repo(client, "after-restart")
    finally:
        assert second.stop() == 0


def _last_record_offset(volume: Path) -> int:
    data = volume.read_bytes()
    offset = data.rfind(b"NXRC")
    assert offset >= SUPERBLOCK_SIZE
    return offset


@pytest.mark.parametrize("damage", ["truncate-mid-record", "corrupt-body", "garbage-header"])
def test_torn_tail_is_ignored(volume: Path, tmp_path: Path, damage: str) -> None:
    first = Sim(volume, tmp_path).start()
    early, late = os.urandom(50_000), os.urandom(50_000)
    with first.client() as client:
        create_repo(client, "dr-smoke")
        assert client.put("/repository/dr-smoke/early.bin", content=early).status_code == 201
        assert client.put("/repository/dr-smoke/late.bin", content=late).status_code == 201
    assert first.stop() == 0

    last = _last_record_offset(volume)
    size = volume.stat().st_size
    with open(volume, "r+b") as handle:
        if damage == "truncate-mid-record":  # a torn write: the tail of the last record never landed
            handle.truncate(last + 30_000)
            handle.truncate(size)
        elif damage == "corrupt-body":
            handle.seek(last + 20_000)
            handle.write(b"\xff" * 512)
        else:  # half a header after the last complete record (zero it, then write a partial header)
            handle.seek(last)
            handle.write(b"NXRC" + os.urandom(20) + b"\0" * 56)

    second = Sim(volume, tmp_path).start()
    try:
        with second.client() as client:
            assert client.get("/repository/dr-smoke/early.bin").content == early
            assert client.get("/repository/dr-smoke/late.bin").status_code == 404
            assert client.get(f"{REST}/status/check").json()["Blob Stores Ready"]["details"][
                "tornTailIgnored"
            ]
            # The log continues cleanly after the torn tail.
            assert client.put("/repository/dr-smoke/next.bin", content=b"next").status_code == 201
    finally:
        assert second.stop() == 0
    assert "ignoring torn/partial tail" in second.log()

    third = Sim(volume, tmp_path).start()
    try:
        with third.client() as client:
            assert client.get("/repository/dr-smoke/early.bin").content == early
            assert client.get("/repository/dr-smoke/next.bin").content == b"next"
            assert (
                client.get(f"{REST}/status/check").json()["Blob Stores Ready"]["details"]["tornTailIgnored"]
                is None
            )
    finally:
        assert third.stop() == 0


def test_device_full_is_a_clear_error(tmp_path: Path) -> None:
    volume = make_volume(tmp_path / "small.img", 512 * 1024)
    instance = Sim(volume, tmp_path).start()
    try:
        with instance.client() as client:
            create_repo(client, "dr-smoke")
            assert client.put("/repository/dr-smoke/a.bin", content=os.urandom(200_000)).status_code == 201
            full = client.put("/repository/dr-smoke/b.bin", content=os.urandom(300_000))
            assert full.status_code == 507 and "full" in full.text
            assert upload(client, "dr-smoke", "/d/", {"c.bin": os.urandom(300_000)}).status_code == 507
            assert client.get(f"{REST}/status").status_code == 200
            # Metadata-only records still fit in the reserve, so the operator can clean up.
            comp = client.get(f"{REST}/components", params={"repository": "dr-smoke"}).json()["items"][0]
            assert client.delete(f"{REST}/components/{comp['id']}").status_code == 204
            assert client.post(f"{REST}/read-only/freeze").status_code == 204
    finally:
        assert instance.stop() == 0
    assert "is full" in instance.log()
    again = Sim(volume, tmp_path).start()
    try:
        with again.client() as client:
            assert client.get("/repository/dr-smoke/a.bin").status_code == 404
            assert client.get("/repository/dr-smoke/b.bin").status_code == 404
            assert client.get(f"{REST}/read-only").json()["frozen"] is True
    finally:
        assert again.stop() == 0
    assert "torn" not in again.log()


# ---------------------------------------------------------------------------------------------- process


def _run_to_exit(sim: Sim) -> tuple[int, str]:
    proc = sim.launch()
    _out, err = proc.communicate(timeout=30)
    return proc.returncode, err + sim.log()


def test_refuses_a_volume_with_foreign_data(tmp_path: Path) -> None:
    volume = make_volume(tmp_path / "foreign.img", MiB)
    with open(volume, "r+b") as handle:
        handle.write(b"XFSB" + os.urandom(100))
    code, output = _run_to_exit(Sim(volume, tmp_path))
    assert code == 6 and "FATAL: cannot mount volume" in output and "not a nexus-sim volume" in output
    assert volume.read_bytes()[:4] == b"XFSB"


def test_missing_volume_and_missing_password(tmp_path: Path) -> None:
    code, output = _run_to_exit(Sim(tmp_path / "absent.img", tmp_path))
    assert code == 4 and "does not exist" in output
    volume = make_volume(tmp_path / "v.img", MiB)
    instance = Sim(volume, tmp_path)
    instance.port = free_port()
    env = {"PATH": "/usr/bin:/bin", "PYTHONPATH": str(REPO_ROOT)}
    proc = subprocess.run(instance.argv(), cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=30)
    assert proc.returncode == 2 and "no admin password" in proc.stderr


def test_password_file_and_second_instance_on_same_volume(sim: Sim, volume: Path, tmp_path: Path) -> None:
    other_dir = tmp_path / "other"
    other_dir.mkdir()
    password_file = other_dir / "password"
    password_file.write_text("from-file\n")
    code, output = _run_to_exit(Sim(volume, other_dir, extra=["--admin-password-file", str(password_file)]))
    assert code == 8 and "in use" in output
    solo = Sim(
        make_volume(other_dir / "solo.img", MiB),
        other_dir,
        extra=["--admin-password-file", str(password_file)],
    ).start()
    try:
        with solo.client(auth=("admin", "from-file")) as client:
            assert client.get(f"{REST}/read-only").status_code == 200
    finally:
        assert solo.stop() == 0


def test_port_in_use(volume: Path, tmp_path: Path) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        code, output = _run_to_exit(Sim(volume, tmp_path, port=busy.getsockname()[1]))
    assert code == 7 and "cannot listen" in output


def test_log_has_one_line_per_request_and_no_secrets(sim: Sim, admin: httpx.Client) -> None:
    create_repo(admin, "dr-smoke")
    admin.get(f"{REST}/search/assets", params={"repository": "dr-smoke"})
    with sim.client(auth=("admin", "wrong-guess")) as bad:
        bad.get(f"{REST}/status/check")
    assert sim.stop() == 0
    log = sim.log()
    assert "POST /service/rest/v1/repositories/raw/hosted 201" in log
    assert "GET /service/rest/v1/status/check 401" in log
    for secret in (PASSWORD, "wrong-guess", "Authorization", "Basic "):
        assert secret not in log
