"""Fakes of the adapters for tests, benchmarks and demos: in memory, with explicit fault knobs.

They raise the same errors as the real adapters (the shared builders in the adapter modules), and
the contract suites in ``tests/contract`` run the same tests on a fake and on its real adapter.
"""
