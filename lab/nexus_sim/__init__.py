"""Nexus Repository 3 simulator whose blob store and database live on a block device.

The device is an RBD image (through librbd) or a plain file.  Runs under Debian's ``/usr/bin/python3``
with only the standard library plus ``rados``/``rbd``; see ``README.md`` in this folder.
"""
