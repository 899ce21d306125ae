"""I/O behind protocols: Kubernetes, object store, rbd, volumes, Nexus, the clock, the sample store."""
