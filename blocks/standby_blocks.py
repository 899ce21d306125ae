"""Prefect block types of Standby.

Blocks hold configuration and secrets, and build what the engine needs; they hold no logic. The
settings are the very models of :mod:`drkit.domain.models`, so a block and the YAML file cannot
drift apart. Secrets are ``SecretStr`` fields, never part of those models.

The object store is prefect-aws's own ``S3Bucket`` (with ``AwsCredentials`` and
``AwsClientParameters``); :func:`s3_bucket_block` builds one from a site's ``S3Location``.
"""

from __future__ import annotations

from typing import Any, ClassVar

from prefect.blocks.core import Block
from prefect_aws import AwsCredentials, S3Bucket
from prefect_aws.client_parameters import AwsClientParameters
from pydantic import Field, SecretStr

from drkit.domain.models import ProtectedApp, S3Location, Site


class StandbySite(Block):
    """A site: Kubernetes access, Ceph access, pool and object store, plus their secrets."""

    _block_type_name: ClassVar[str] = "Standby Site"
    _block_type_slug: ClassVar[str] = "standby-site"
    _description: ClassVar[str] = "A Standby site: Kubernetes context, Ceph access, RBD pool and S3 location."

    site: Site = Field(..., description="the site's settings, as in the YAML configuration")
    kubeconfig: SecretStr | None = Field(
        None,
        description="kubeconfig YAML holding tokens; kept secret (prefect-kubernetes stores it in plaintext)",
    )
    ceph_keyring: SecretStr | None = Field(None, description="cephx keyring content, when not on disk")
    s3_access_key_id: SecretStr | None = Field(None, description="S3 access key id")
    s3_secret_access_key: SecretStr | None = Field(None, description="S3 secret access key")


class StandbyApp(Block):
    """A protected application: namespace, objects, volumes, mirroring control and targets."""

    _block_type_name: ClassVar[str] = "Standby App"
    _block_type_slug: ClassVar[str] = "standby-app"
    _description: ClassVar[str] = "An application protected by Standby, as in the YAML configuration."

    app: ProtectedApp = Field(..., description="the app's settings")


class NexusEndpoint(Block):
    """How to reach one Nexus instance: URL and admin credentials."""

    _block_type_name: ClassVar[str] = "Nexus Endpoint"
    _block_type_slug: ClassVar[str] = "nexus-endpoint"
    _description: ClassVar[str] = "A Nexus Repository endpoint with its admin credentials."

    url: str = Field(..., description="base URL, e.g. https://nexus.example.org")
    username: str = Field("admin", description="user for the REST API")
    password: SecretStr = Field(..., description="that user's password")
    verify_tls: bool = Field(True, description="verify the TLS certificate")


def s3_bucket_block(
    location: S3Location, access_key_id: str | None, secret_access_key: str | None
) -> S3Bucket:
    """A prefect-aws ``S3Bucket`` for a site's S3 location and its credentials."""
    config: dict[str, Any] = {"s3": {"addressing_style": "path" if location.path_style else "auto"}}
    params = AwsClientParameters(endpoint_url=location.endpoint, verify=location.verify_tls, config=config)
    creds = AwsCredentials(
        aws_access_key_id=access_key_id,
        aws_secret_access_key=secret_access_key,
        region_name=location.region,
        aws_client_parameters=params,
    )
    return S3Bucket(bucket_name=location.bucket, credentials=creds, bucket_folder=location.prefix)


BLOCK_TYPES: tuple[type[Block], ...] = (StandbySite, StandbyApp, NexusEndpoint)
