"""Prefect tasks: thin wrappers over the jobs with retries, artifacts and events."""
