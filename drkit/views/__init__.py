"""Presentation: the rows, tables, markdown and charts the CLI and the Prefect tasks show."""
