"""The object store: a protocol, and its S3 implementation (AWS, MinIO, Ceph RGW, moto).

Keys come from :class:`drkit.domain.layout.StoreLayout`. ``put(..., if_none_match=True)`` refuses
to overwrite (with a HEAD-then-PUT fallback on stores that answer 501). Errors name the bucket,
endpoint, key, site and next action, never a secret key.
"""

from __future__ import annotations

import builtins
import configparser
import os
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple, Protocol

import botocore.session
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from drkit.adapters.runner import hide_from_commands
from drkit.domain.errors import ConfigError, Conflict, NotFound, StandbyError, TransientError
from drkit.domain.models import S3Location

AWS_ENDPOINT = "the AWS S3 endpoint"
_DELETE_BATCH = 1000


class ObjectInfo(NamedTuple):
    """One stored object as listed: its key, size in bytes and ETag (without quotes)."""

    key: str
    size: int
    etag: str


class ObjectStore(Protocol):
    """Where backups, RPO samples and drill reports are kept."""

    def put(
        self,
        key: str,
        data: bytes,
        *,
        if_none_match: bool = False,
        if_match: str | None = None,
        content_type: str = "application/octet-stream",
    ) -> str:
        """Store ``data`` under ``key``, return its ETag.

        :class:`Conflict` if ``if_none_match`` and the key exists, or if ``if_match`` (an ETag) is
        given and the stored object is absent or has another ETag (compare-and-swap).
        """
        ...

    def get(self, key: str) -> bytes:
        """The bytes stored under ``key``; :class:`NotFound` names the key when there are none."""
        ...

    def read(self, key: str) -> tuple[bytes, str]:
        """The bytes under ``key`` and their ETag, read in one call (for compare-and-swap)."""
        ...

    def head(self, key: str) -> ObjectInfo | None:
        """Size and ETag of ``key``, or ``None`` when there is no such object."""
        ...

    def exists(self, key: str) -> bool:
        """Whether ``key`` exists."""
        ...

    def list(self, prefix: str) -> Iterator[ObjectInfo]:
        """Every object whose key starts with ``prefix``, in key order (paginated lazily)."""
        ...

    def delete(self, keys: Iterable[str]) -> None:
        """Delete ``keys``; keys that do not exist are ignored."""
        ...


# -------------------------------------------------------------------------------- error messages
# Shared with the fake (drkit.testing.objectstore) so both raise the same errors with the same words.


def bucket_missing(bucket: str, endpoint: str, site: str) -> NotFound:
    """The bucket does not exist."""
    return NotFound(
        f"bucket {bucket!r} does not exist at {endpoint} (site {site})",
        hint=f"create it, or fix s3.bucket of site {site}",
        context={"bucket": bucket, "endpoint": endpoint, "site": site},
    )


def key_missing(key: str, bucket: str, endpoint: str, site: str) -> NotFound:
    """The object does not exist."""
    return NotFound(
        f"object {key!r} does not exist in bucket {bucket!r} at {endpoint} (site {site})",
        hint="check the run id; list the runs, or run the backup verification",
        context={"key": key, "bucket": bucket, "endpoint": endpoint, "site": site},
    )


def access_refused(code: str, bucket: str, endpoint: str, site: str) -> ConfigError:
    """The credentials are wrong or lack a permission."""
    return ConfigError(
        f"{endpoint} refused access to bucket {bucket!r} ({code}) for site {site}",
        hint=f"check s3.access_key_id_env / s3.secret_access_key_env (or s3.credentials_file and s3.profile)"
        f" of site {site}, and that these credentials may read and write the bucket",
        context={"code": code, "bucket": bucket, "endpoint": endpoint, "site": site},
    )


def unreachable(endpoint: str, site: str, detail: str) -> TransientError:
    """The endpoint did not answer, or answered with a server error."""
    return TransientError(
        f"object store {endpoint} of site {site} is unreachable or failing: {detail}",
        hint=f"check that the endpoint is up and reachable from here, or fix s3.endpoint of site {site}",
        context={"endpoint": endpoint, "site": site},
    )


def changed_since_read(key: str, bucket: str, endpoint: str, site: str) -> Conflict:
    """A compare-and-swap put found the object changed (or gone) since it was read."""
    return Conflict(
        f"object {key!r} in bucket {bucket!r} at {endpoint} (site {site}) changed since it was read;"
        " not overwritten",
        hint="another writer got there first: read it again and decide anew",
        context={"key": key, "bucket": bucket, "endpoint": endpoint, "site": site},
    )


def exists_already(key: str, bucket: str, endpoint: str, site: str) -> Conflict:
    """A conditional put found the key already written."""
    return Conflict(
        f"object {key!r} already exists in bucket {bucket!r} at {endpoint} (site {site}); not overwritten",
        hint="keys written once (blobs, indexes) are never replaced; read the existing object instead",
        context={"key": key, "bucket": bucket, "endpoint": endpoint, "site": site},
    )


# ------------------------------------------------------------------------------------ credentials


@dataclass(frozen=True)
class S3Credentials:
    """An access key pair; the secret never shows in a ``repr``."""

    access_key_id: str
    secret_access_key: str = field(repr=False)
    session_token: str | None = field(default=None, repr=False)

    @classmethod
    def from_location(
        cls, location: S3Location, environ: Mapping[str, str] | None = None
    ) -> S3Credentials | None:
        """Credentials named by ``location``: its environment variables, else its credentials file.

        ``None`` when the location names none (boto3's default chain is then used).
        """
        env = os.environ if environ is None else environ
        hide_from_commands(location.access_key_id_env, location.secret_access_key_env)
        if location.access_key_id_env or location.secret_access_key_env:
            names = (location.access_key_id_env, location.secret_access_key_env)
            values = [env.get(n) if n else None for n in names]
            if not all(values):
                missing = ", ".join(n or "(not set)" for n, v in zip(names, values, strict=True) if not v)
                raise ConfigError(
                    f"S3 credentials: environment variable(s) {missing} are not set",
                    hint="export them, or set s3.credentials_file instead",
                )
            return cls(str(values[0]), str(values[1]))
        if location.credentials_file is not None:
            parser = configparser.ConfigParser()
            if not parser.read(location.credentials_file):
                raise ConfigError(
                    f"S3 credentials file {location.credentials_file} cannot be read",
                    hint="check s3.credentials_file (relative paths are resolved against the config file)",
                )
            section = parser[location.profile] if parser.has_section(location.profile) else None
            if (
                section is None
                or "aws_access_key_id" not in section
                or "aws_secret_access_key" not in section
            ):
                raise ConfigError(
                    f"S3 credentials file {location.credentials_file} has no complete profile"
                    f" [{location.profile}] (aws_access_key_id and aws_secret_access_key)",
                    hint="fix the file or s3.profile",
                )
            return cls(
                section["aws_access_key_id"],
                section["aws_secret_access_key"],
                section.get("aws_session_token"),
            )
        return None


# ------------------------------------------------------------------------------------ S3 adapter

_NOT_FOUND_KEY = {"NoSuchKey", "404", "NotFound"}
_DENIED = {
    "AccessDenied",
    "InvalidAccessKeyId",
    "SignatureDoesNotMatch",
    "InvalidToken",
    "ExpiredToken",
    "InvalidClientTokenId",
    "403",
    "AllAccessDisabled",
}
_TRANSIENT = {
    "SlowDown",
    "RequestTimeout",
    "InternalError",
    "ServiceUnavailable",
    "ConditionalRequestConflict",
}


_LOADER: list[Any] = []
"""The botocore data loader of the process's first store, shared by the later ones: each new botocore
session would otherwise parse botocore's JSON models (S3's, the endpoints') again: about 0.1 s of CPU
per store."""


def _s3_client(**options: Any) -> Any:
    """An S3 client of a fresh botocore session (its own credential chain) sharing the parsed models."""
    core = botocore.session.get_session()
    if _LOADER:
        core.register_component("data_loader", _LOADER[0])
    else:
        _LOADER.append(core.get_component("data_loader"))
    return core.create_client("s3", **options)


class S3ObjectStore:
    """:class:`ObjectStore` on any S3-compatible endpoint, through boto3."""

    def __init__(
        self,
        location: S3Location,
        *,
        site: str,
        credentials: S3Credentials | None = None,
        max_attempts: int = 5,
        connect_timeout: float = 10.0,
        read_timeout: float = 60.0,
        page_size: int = 1000,
        conditional_writes: bool | None = None,
    ) -> None:
        self.location = location
        self.site = site
        self.bucket = location.bucket
        self.endpoint = location.endpoint or AWS_ENDPOINT
        self.page_size = page_size
        self._conditional = conditional_writes
        config = Config(
            region_name=location.region,
            retries={"max_attempts": max_attempts, "mode": "standard"},
            connect_timeout=connect_timeout,
            read_timeout=read_timeout,
            s3={"addressing_style": "path" if location.path_style else "auto"},
        )
        keys: dict[str, Any] = {}
        if credentials is not None:
            keys = {
                "aws_access_key_id": credentials.access_key_id,
                "aws_secret_access_key": credentials.secret_access_key,
                "aws_session_token": credentials.session_token,
            }
        self._client: Any = _s3_client(
            endpoint_url=location.endpoint, verify=location.verify_tls, config=config, **keys
        )

    @classmethod
    def from_location(
        cls, location: S3Location, *, site: str, environ: Mapping[str, str] | None = None, **options: Any
    ) -> S3ObjectStore:
        """A store using the credentials ``location`` names (see :meth:`S3Credentials.from_location`)."""
        return cls(location, site=site, credentials=S3Credentials.from_location(location, environ), **options)

    def __repr__(self) -> str:
        return f"S3ObjectStore(site={self.site!r}, endpoint={self.endpoint!r}, bucket={self.bucket!r})"

    # ------------------------------------------------------------------------------ error mapping
    def _error(self, error: Exception, key: str | None = None) -> StandbyError:
        """The project error for a botocore error (other exceptions are raised again as they are)."""
        if isinstance(error, ClientError):
            info = error.response.get("Error", {})
            code = str(info.get("Code", ""))
            status = int(error.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0) or 0)
            if code == "NoSuchBucket":
                return bucket_missing(self.bucket, self.endpoint, self.site)
            if code in _NOT_FOUND_KEY:
                if key is None:  # only bucket-level calls (head_bucket, list) have no key
                    return bucket_missing(self.bucket, self.endpoint, self.site)
                return key_missing(key, self.bucket, self.endpoint, self.site)
            if code in _DENIED or status == 403:
                return access_refused(code or str(status), self.bucket, self.endpoint, self.site)
            if code == "PreconditionFailed" or status == 412:
                return exists_already(key or "?", self.bucket, self.endpoint, self.site)
            if code in _TRANSIENT or status >= 500:
                return unreachable(self.endpoint, self.site, f"{code or status}: {info.get('Message', '')}")
            return StandbyError(
                f"{self.endpoint} answered {code or status} for bucket {self.bucket!r}"
                + (f" key {key!r}" if key else "")
                + f" (site {self.site}): {info.get('Message', '')}",
                hint="read the store's message; check s3 settings of the site",
                context={"code": code, "bucket": self.bucket, "endpoint": self.endpoint, "site": self.site},
            )
        if isinstance(error, BotoCoreError):
            return unreachable(self.endpoint, self.site, type(error).__name__)
        raise error

    def _call(self, operation: str, key: str | None = None, **kwargs: Any) -> Any:
        try:
            return getattr(self._client, operation)(Bucket=self.bucket, **kwargs)
        except (ClientError, BotoCoreError) as error:
            raise self._error(error, key) from None

    # -------------------------------------------------------------------------------- operations
    def put(
        self,
        key: str,
        data: bytes,
        *,
        if_none_match: bool = False,
        if_match: str | None = None,
        content_type: str = "application/octet-stream",
    ) -> str:
        """See :meth:`ObjectStore.put`."""
        if if_match is not None:
            return self._put_if_match(key, data, if_match, content_type)
        if if_none_match and self._conditional is False:
            if self.head(key) is not None:
                raise exists_already(key, self.bucket, self.endpoint, self.site)
            if_none_match = False
        extra: dict[str, Any] = {"IfNoneMatch": "*"} if if_none_match else {}
        try:
            answer = self._client.put_object(
                Bucket=self.bucket, Key=key, Body=data, ContentType=content_type, **extra
            )
        except ClientError as error:
            code = str(error.response.get("Error", {}).get("Code", ""))
            if if_none_match and code == "NotImplemented":
                self._conditional = False
                return self.put(key, data, if_none_match=True, content_type=content_type)
            raise self._error(error, key) from None
        except Exception as error:
            raise self._error(error, key) from None
        if if_none_match:
            self._conditional = True
        return str(answer.get("ETag", "")).strip('"')

    def _put_if_match(self, key: str, data: bytes, etag: str, content_type: str) -> str:
        try:
            answer = self._client.put_object(
                Bucket=self.bucket, Key=key, Body=data, ContentType=content_type, IfMatch=f'"{etag}"'
            )
        except ClientError as error:
            info = error.response.get("Error", {})
            status = int(error.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0) or 0)
            if str(info.get("Code", "")) in ("PreconditionFailed", "NoSuchKey") or status in (404, 412):
                raise changed_since_read(key, self.bucket, self.endpoint, self.site) from None
            raise self._error(error, key) from None
        except Exception as error:
            raise self._error(error, key) from None
        return str(answer.get("ETag", "")).strip('"')

    def get(self, key: str) -> bytes:
        """See :meth:`ObjectStore.get`."""
        return self.read(key)[0]

    def read(self, key: str) -> tuple[bytes, str]:
        """See :meth:`ObjectStore.read`."""
        answer = self._call("get_object", key, Key=key)
        try:
            return bytes(answer["Body"].read()), str(answer.get("ETag", "")).strip('"')
        except Exception as error:
            raise self._error(error, key) from None

    def head(self, key: str) -> ObjectInfo | None:
        """See :meth:`ObjectStore.head`. On a 404 the bucket is checked: a missing bucket is an error."""
        try:
            answer = self._call("head_object", key, Key=key)
        except NotFound as error:
            if error.context.get("key") != key:
                raise
            self._call("head_bucket")
            return None
        return ObjectInfo(key, int(answer.get("ContentLength", 0)), str(answer.get("ETag", "")).strip('"'))

    def exists(self, key: str) -> bool:
        """See :meth:`ObjectStore.exists`."""
        return self.head(key) is not None

    def list(self, prefix: str) -> Iterator[ObjectInfo]:
        """See :meth:`ObjectStore.list`; each page holds at most ``page_size`` keys."""
        token: str | None = None
        while True:
            kwargs: dict[str, Any] = {"Prefix": prefix, "MaxKeys": self.page_size}
            if token:
                kwargs["ContinuationToken"] = token
            answer = self._call("list_objects_v2", None, **kwargs)
            for item in answer.get("Contents", []):
                yield ObjectInfo(str(item["Key"]), int(item["Size"]), str(item.get("ETag", "")).strip('"'))
            token = answer.get("NextContinuationToken")
            if not answer.get("IsTruncated") or not token:
                return

    def delete(self, keys: Iterable[str]) -> None:
        """See :meth:`ObjectStore.delete`; sent in batches of 1000."""
        batch: builtins.list[str] = []
        for key in keys:
            batch.append(key)
            if len(batch) == _DELETE_BATCH:
                self._delete_batch(batch)
                batch = []
        if batch:
            self._delete_batch(batch)

    def _delete_batch(self, keys: Sequence[str]) -> None:
        answer = self._call(
            "delete_objects", None, Delete={"Objects": [{"Key": k} for k in keys], "Quiet": True}
        )
        errors = answer.get("Errors") or []
        if errors:
            first = errors[0]
            code = str(first.get("Code", ""))
            if code in _DENIED:
                raise access_refused(code, self.bucket, self.endpoint, self.site)
            raise StandbyError(
                f"{len(errors)} of {len(keys)} deletes failed in bucket {self.bucket!r} at {self.endpoint}"
                f" (site {self.site}); first {first.get('Key')!r}: {code} {first.get('Message', '')}",
                hint="read the store's message and run the deletion again",
                context={"bucket": self.bucket, "endpoint": self.endpoint, "site": self.site, "code": code},
            )
