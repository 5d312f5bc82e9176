"""Kubernetes adapter: node list/watch into a slim store, and Lease leader election."""
