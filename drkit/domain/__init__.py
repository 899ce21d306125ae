"""Pure models and rules: no I/O, no Prefect, time injected."""
