"""Registering Standby's block types with the Prefect API."""

from __future__ import annotations

from prefect.blocks.core import Block
from prefect.blocks.system import Secret
from prefect_aws import AwsCredentials

from blocks.standby_blocks import BLOCK_TYPES
from drkit.domain.errors import StandbyError


def register_all() -> list[str]:
    """Register Standby's block types, and the Secret and prefect-aws ones they use; return their slugs."""
    done: list[str] = []
    types: tuple[type[Block], ...] = (*BLOCK_TYPES, Secret, AwsCredentials)
    for block_type in types:
        try:
            block_type.register_type_and_schema()
        except Exception as exc:  # the Prefect client raises many kinds; name the API to check
            raise StandbyError(
                f"cannot register block type {block_type.get_block_type_slug()}: {exc}",
                hint="start the Prefect server (make up) or set PREFECT_API_URL",
            ) from None
        done.append(block_type.get_block_type_slug())
    return done
