"""Standby's engine: the pure domain, the adapters, the use cases (jobs) and their presentation."""
