"""The ``standby`` command line."""
