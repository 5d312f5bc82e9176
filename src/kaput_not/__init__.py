"""kaput-not: keeps Netmaker egress rules equal to every Kubernetes node's pod CIDRs."""

__version__ = "0.1.0"
