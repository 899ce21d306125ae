"""A plain HTTP app for the lab: serves ``/healthz`` and keeps files on its mounted (RBD) volume.

It stands for any StatefulSet with a PVC that Standby protects through configuration alone. Like
the Nexus simulator it keeps its data inside the RBD image behind its PVC (the same on-volume
record log, :mod:`lab.nexus_sim.volume`) and refuses to start on a non-primary image, as a pod
whose volume cannot be mounted read-write never becomes ready.

    GET  /healthz           200 "ok"
    PUT  /files/<name>      store the body (201)
    GET  /files/<name>      the body last stored under <name> (200), or 404
"""
