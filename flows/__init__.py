"""Prefect flows: one runbook per job, each step one task call."""
