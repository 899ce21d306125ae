"""Presentation: the rows, tables, Markdown, HTML and charts the CLI and the Prefect tasks show.

A view is a pure function of records (no I/O: it returns ``str``, ``bytes`` or rows); the jobs store
and the tasks publish what it returns. Only this package renders Markdown, HTML or charts (an
import-linter contract), and it imports nothing of the engine but :mod:`drkit.domain`.
"""
