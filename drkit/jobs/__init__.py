"""Use cases without Prefect: backup, restore, verify, RPO, operations and drills."""
