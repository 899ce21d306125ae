"""Prefect block types: configuration and secrets."""
