"""A fake OpenNebula front-end (oned's XML-RPC API, the subset Standby uses), one per lab site.

VMs, images, virtual networks, datastores and VM templates live in a JSON file; in the lab a VM is
also a process on its site's Ceph (:mod:`lab.opennebula.runtime`, :mod:`lab.opennebula.guest`).
Standard library only; see ``README.md`` in this folder.
"""
