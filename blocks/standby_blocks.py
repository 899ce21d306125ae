"""Prefect block types of Standby: the configuration, kept in Prefect instead of a YAML file.

``config="block:<name>"`` names a :class:`StandbyConfiguration`, which lists :class:`StandbySite`
and :class:`StandbyApp` blocks by name. Their settings are the very models of
:mod:`drkit.domain.models`, so a block and the YAML file cannot drift apart. Secrets are not in
them: a site names a Prefect ``Secret`` block (kubeconfig content) and a prefect-aws
``AwsCredentials`` block (S3 keys). The backup key is a ``Secret`` block too
(``key_source="secret:<name>"``).

Blocks hold data and no logic: loading and checking them is :mod:`blocks.config`, and the
clients are built by the run's World (:mod:`drkit.jobs.world`) from the configuration they load.
"""

from __future__ import annotations

from typing import ClassVar

from prefect.blocks.core import Block
from pydantic import Field

from drkit.domain.models import ProtectedApp, Site


class StandbySite(Block):
    """A site: its settings, and the names of the blocks holding its credentials."""

    _block_type_name: ClassVar[str] = "Standby Site"
    _block_type_slug: ClassVar[str] = "standby-site"
    _description: ClassVar[str] = (
        "A Standby site: Kubernetes context, Ceph access, RBD pool and S3 location, with the Secret"
        " and AwsCredentials blocks holding its credentials."
    )

    site: Site = Field(..., description="the site's settings, as in the YAML configuration's sites")
    kubeconfig_secret: str | None = Field(
        None,
        description="name of a Secret block holding the kubeconfig content (YAML) used with site.kube.context;"
        " when empty, site.kube says how to reach the API (kubeconfig file or in_cluster)",
    )
    aws_credentials: str | None = Field(
        None,
        description="name of a prefect-aws AwsCredentials block holding the S3 keys (only the keys are used;"
        " endpoint, bucket and region are site.s3's); when empty, site.s3 names them",
    )


class StandbyApp(Block):
    """A protected application: namespace, objects, volumes, mirroring control and targets."""

    _block_type_name: ClassVar[str] = "Standby App"
    _block_type_slug: ClassVar[str] = "standby-app"
    _description: ClassVar[str] = "An application protected by Standby, as in the YAML configuration's apps."

    app: ProtectedApp = Field(..., description="the app's settings")


class StandbyConfiguration(Block):
    """The whole configuration: which site and app blocks make it up."""

    _block_type_name: ClassVar[str] = "Standby Configuration"
    _block_type_slug: ClassVar[str] = "standby-config"
    _description: ClassVar[str] = (
        "A Standby configuration: its sites and protected apps, by block name. Flows take it as"
        ' config="block:<name>".'
    )

    sites: list[str] = Field(..., min_length=2, description="names of the Standby Site blocks (at least two)")
    apps: list[str] = Field(..., min_length=1, description="names of the Standby App blocks")


BLOCK_TYPES: tuple[type[Block], ...] = (StandbySite, StandbyApp, StandbyConfiguration)
