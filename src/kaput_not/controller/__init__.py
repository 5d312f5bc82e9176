"""Wiring: reads Kubernetes and Netmaker through the adapters, plans with the core, writes."""
