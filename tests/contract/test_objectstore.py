"""One contract suite for ObjectStore, run on the fake and on S3ObjectStore against a moto server."""

from __future__ import annotations

import socket
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from drkit.adapters.objectstore import ObjectStore, S3Credentials, S3ObjectStore
from drkit.domain.errors import ConfigError, Conflict, NotFound, StandbyError, TransientError
from drkit.domain.models import S3Location
from drkit.testing.objectstore import FakeObjectStore
from lab.s3 import start_moto

SECRET = "moto-secret-key-value-0123456789"
CREDS = S3Credentials("moto-access-key", SECRET)

Factory = Callable[..., Any]


@pytest.fixture(scope="session")
def moto_endpoint() -> Iterator[str]:
    """The lab's moto server (its bucket ``standby`` unused: each store makes its own)."""
    server, url = start_moto(access_key=CREDS.access_key_id, secret_key=SECRET)
    try:
        yield url
    finally:
        server.stop()


def _s3_factory(endpoint: str) -> Factory:
    def make(
        *, bucket: str | None = None, create: bool = True, page_size: int = 1000, **kw: Any
    ) -> S3ObjectStore:
        name = bucket or f"bkt-{uuid.uuid4().hex[:12]}"
        if create:
            raw = boto3.client(
                "s3",
                endpoint_url=endpoint,
                region_name="us-east-1",
                aws_access_key_id=CREDS.access_key_id,
                aws_secret_access_key=SECRET,
                config=Config(s3={"addressing_style": "path"}),
            )
            raw.create_bucket(Bucket=name)
        location = S3Location(endpoint=kw.pop("endpoint", endpoint), bucket=name, prefix="standby")
        return S3ObjectStore(
            location,
            site="site-a",
            credentials=CREDS,
            page_size=page_size,
            max_attempts=1,
            connect_timeout=1,
            **kw,
        )

    return make


def _fake_factory() -> Factory:
    def make(
        *, bucket: str | None = None, create: bool = True, page_size: int = 1000, **kw: Any
    ) -> FakeObjectStore:
        endpoint = kw.pop("endpoint", "memory://fake-s3")
        return FakeObjectStore(
            site="site-a",
            bucket=bucket or "bkt-fake",
            endpoint=endpoint,
            page_size=page_size,
            bucket_exists=create,
        )

    return make


@pytest.fixture(params=["fake", "s3"])
def factory(request: pytest.FixtureRequest) -> Factory:
    if request.param == "fake":
        return _fake_factory()
    return _s3_factory(request.getfixturevalue("moto_endpoint"))


@pytest.fixture
def store(factory: Factory) -> ObjectStore:
    made: ObjectStore = factory()
    return made


def test_put_get_head_exists(store: ObjectStore) -> None:
    etag = store.put("standby/a/one.yaml", b"hello", content_type="application/yaml")
    assert etag and '"' not in etag
    assert store.get("standby/a/one.yaml") == b"hello"
    info = store.head("standby/a/one.yaml")
    assert info is not None and info.size == 5 and info.etag == etag
    assert store.exists("standby/a/one.yaml")
    assert store.head("standby/a/missing.yaml") is None
    assert not store.exists("standby/a/missing.yaml")


def test_put_overwrites_unless_conditional(store: ObjectStore) -> None:
    store.put("k/blob", b"v1")
    store.put("k/blob", b"v2")
    assert store.get("k/blob") == b"v2"
    with pytest.raises(Conflict, match=r"'k/blob' already exists"):
        store.put("k/blob", b"v3", if_none_match=True)
    assert store.get("k/blob") == b"v2"
    store.put("k/new", b"first", if_none_match=True)
    assert store.get("k/new") == b"first"


def test_compare_and_swap_with_if_match(store: ObjectStore) -> None:
    first = store.put("cas/record.json", b"epoch-1")
    data, etag = store.read("cas/record.json")
    assert (data, etag) == (b"epoch-1", first)
    second = store.put("cas/record.json", b"epoch-2", if_match=etag)
    assert second != first and store.get("cas/record.json") == b"epoch-2"
    with pytest.raises(Conflict, match=r"'cas/record.json' .* changed since it was read"):
        store.put("cas/record.json", b"stale-writer", if_match=etag)  # the ETag read before epoch-2
    assert store.get("cas/record.json") == b"epoch-2"
    with pytest.raises(Conflict, match="changed since it was read"):
        store.put("cas/absent.json", b"x", if_match=first)
    assert not store.exists("cas/absent.json")


def test_list_paginates_in_key_order(factory: Factory) -> None:
    store: ObjectStore = factory(page_size=7)
    keys = [f"p/runs/{i:03d}" for i in range(23)]
    for key in reversed(keys):
        store.put(key, key.encode())
    store.put("p/other", b"x")
    store.put("q/outside", b"x")
    listed = list(store.list("p/runs/"))
    assert [o.key for o in listed] == keys
    assert all(o.size == len(o.key) for o in listed)
    assert [o.key for o in store.list("p/")][-1] == "p/runs/022"
    assert list(store.list("nothing/")) == []


def test_delete_ignores_missing_keys(store: ObjectStore) -> None:
    for i in range(5):
        store.put(f"d/{i}", b"x")
    store.delete(["d/1", "d/3", "d/never"])
    assert [o.key for o in store.list("d/")] == ["d/0", "d/2", "d/4"]
    store.delete([])
    store.delete(o.key for o in store.list("d/"))
    assert list(store.list("d/")) == []


def test_missing_key_is_not_found_naming_the_key(store: ObjectStore) -> None:
    with pytest.raises(NotFound) as caught:
        store.get("standby/backups/site-a/nexus/nope/index.json")
    assert "'standby/backups/site-a/nexus/nope/index.json'" in str(caught.value)
    assert "site-a" in str(caught.value)


def test_missing_bucket_names_bucket_endpoint_and_site(factory: Factory) -> None:
    store: ObjectStore = factory(bucket="no-such-bucket-here", create=False)
    for call in (
        lambda: store.get("k"),
        lambda: store.put("k", b"x"),
        lambda: list(store.list("")),
        lambda: store.head("k"),
    ):
        with pytest.raises(NotFound) as caught:
            call()
        text = str(caught.value)
        assert "bucket 'no-such-bucket-here' does not exist at" in text
        assert "fix s3.bucket of site site-a" in text


def test_closed_port_is_transient_and_names_the_endpoint(factory: Factory) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    endpoint = f"http://127.0.0.1:{port}"
    store: ObjectStore = factory(create=False, endpoint=endpoint)
    if isinstance(store, FakeObjectStore):
        store.unreachable = True
    for call in (lambda: store.get("k"), lambda: store.put("k", b"x"), lambda: list(store.list(""))):
        with pytest.raises(TransientError) as caught:
            call()
        assert endpoint in str(caught.value)
        assert "site-a" in str(caught.value)


def test_errors_never_contain_the_secret(factory: Factory) -> None:
    store: ObjectStore = factory(bucket="no-such-bucket-x", create=False)
    with pytest.raises(StandbyError) as caught:
        store.get("k")
    assert SECRET not in str(caught.value) and SECRET not in repr(caught.value.context)
    assert SECRET not in repr(store)


# ------------------------------------------------------------------------- fake-only fault knobs


def test_fake_fail_put_after_counts_puts() -> None:
    store = FakeObjectStore(fail_put_after=2)
    store.put("a", b"1")
    store.put("b", b"2")
    with pytest.raises(TransientError, match="put #3"):
        store.put("c", b"3")
    assert sorted(store.objects) == ["a", "b"]
    store.fail_put_after = None
    store.put("c", b"3")
    assert store.puts == 4


def test_fake_list_pages_like_s3() -> None:
    store = FakeObjectStore(page_size=10)
    for i in range(25):
        store.put(f"k/{i:02d}", b"")
    assert len(list(store.list("k/"))) == 25
    assert store.list_pages == 3


# ------------------------------------------------------------------------- S3-only error mapping


def _client_error(code: str, status: int) -> ClientError:
    return ClientError(
        {"Error": {"Code": code, "Message": "m"}, "ResponseMetadata": {"HTTPStatusCode": status}}, "Op"
    )


@pytest.fixture(scope="module")
def mapping_store() -> S3ObjectStore:
    return S3ObjectStore(
        S3Location(endpoint="http://127.0.0.1:1", bucket="bkt-map"), site="site-a", credentials=CREDS
    )


@pytest.mark.parametrize(
    ("code", "status", "expected", "words"),
    [
        ("NoSuchBucket", 404, NotFound, "create it, or fix s3.bucket of site site-a"),
        ("NoSuchKey", 404, NotFound, "'some/key' does not exist"),
        ("InvalidAccessKeyId", 403, ConfigError, "s3.access_key_id_env"),
        ("SignatureDoesNotMatch", 403, ConfigError, "s3.secret_access_key_env"),
        ("AccessDenied", 403, ConfigError, "s3.credentials_file"),
        ("PreconditionFailed", 412, Conflict, "not overwritten"),
        ("InternalError", 500, TransientError, "unreachable or failing"),
        ("SlowDown", 503, TransientError, "SlowDown"),
        ("WeirdThing", 400, StandbyError, "WeirdThing"),
    ],
)
def test_s3_error_mapping(
    mapping_store: S3ObjectStore, code: str, status: int, expected: type[StandbyError], words: str
) -> None:
    error = mapping_store._error(_client_error(code, status), "some/key")
    assert type(error) is expected
    assert words in str(error)
    assert "http://127.0.0.1:1" in str(error)
    assert SECRET not in str(error)


def test_credentials_from_location_env_and_file(tmp_path: Any) -> None:
    location = S3Location(bucket="bkt", access_key_id_env="AK", secret_access_key_env="SK")
    creds = S3Credentials.from_location(location, {"AK": "id", "SK": SECRET})
    assert creds == S3Credentials("id", SECRET)
    assert SECRET not in repr(creds)
    with pytest.raises(ConfigError, match="SK"):
        S3Credentials.from_location(location, {"AK": "id"})
    path = tmp_path / "credentials"
    path.write_text(f"[lab]\naws_access_key_id = id2\naws_secret_access_key = {SECRET}\n")
    from_file = S3Location(bucket="bkt", credentials_file=path, profile="lab")
    assert S3Credentials.from_location(from_file, {}) == S3Credentials("id2", SECRET)
    with pytest.raises(ConfigError, match=r"\[default\]"):
        S3Credentials.from_location(S3Location(bucket="bkt", credentials_file=path), {})
    assert S3Credentials.from_location(S3Location(bucket="bkt"), {}) is None


def test_s3_falls_back_when_conditional_writes_are_not_implemented() -> None:
    """A store answering 501 to If-None-Match: later conditional puts use HEAD then PUT."""
    from botocore.stub import Stubber

    store = S3ObjectStore(
        S3Location(endpoint="http://127.0.0.1:1", bucket="bkt-old"), site="site-a", credentials=CREDS
    )
    with Stubber(store._client) as stub:
        stub.add_client_error("put_object", service_error_code="NotImplemented", http_status_code=501)
        stub.add_client_error("head_object", service_error_code="404", http_status_code=404)
        stub.add_response("head_bucket", {})
        stub.add_response(
            "put_object",
            {"ETag": '"e1"'},
            {"Bucket": "bkt-old", "Key": "k", "Body": b"1", "ContentType": "application/octet-stream"},
        )
        assert store.put("k", b"1", if_none_match=True) == "e1"
        stub.add_response("head_object", {"ContentLength": 1, "ETag": '"e1"'})
        with pytest.raises(Conflict):
            store.put("k", b"2", if_none_match=True)
        stub.assert_no_pending_responses()
