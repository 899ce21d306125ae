"""A fake OpenNebula front-end (oned's XML-RPC API, the subset Standby uses), one per lab site.

State only: VMs, images, virtual networks, datastores and VM templates live in a JSON file; nothing
touches Ceph or starts a VM process (see :mod:`lab.opennebula.runtime` for that seam). Standard
library only; see ``README.md`` in this folder.
"""
