"""Node objects as the API server serves them: realistic JSON, the podCIDR rules, bookmarks.

A :class:`NodeRecord` is one stored version of a Node. It keeps the few values tests care about
and the JSON rendered once, at creation, because a list of 10,000 nodes is served from those
bytes. The JSON is what kubeadm + containerd nodes look like (about 4 KB): kubelet labels and
annotations, ``spec.podCIDR`` / ``spec.podCIDRs`` (only once set), and a status block with
capacity, four conditions, addresses, daemon endpoints, node info and a list of cached images,
so memory measurements against the stand-in mean something.

Two renderings, as on the wire: :attr:`NodeRecord.body` is a list item (no ``kind`` or
``apiVersion``: the real server leaves them out of list items), :meth:`NodeRecord.manifest`
is the object of a GET or a watch event (with them).

Validation follows the API server's node rules for what the seeding API can change: a DNS-1123
subdomain name; pod CIDRs that parse, at most one per IP family; and once ``spec.podCIDRs`` is
set it can never change ("node updates may not change podCIDR except from "" to valid").
"""

from __future__ import annotations

import dataclasses
import hashlib
import ipaddress
import re
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

import msgspec

from . import status

_KIND_PREFIX = b'{"kind":"Node","apiVersion":"v1",'
_NAME = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*")
_UID_NAMESPACE = uuid.UUID("6f0c1a52-8d8e-4a53-9b1e-5e0a5c3f6b11")
_VERSION = "v1.29.3"
_IMAGES = (
    ("docker.io/gravitl/netclient", "v1.5.1", 41_823_112),
    ("registry.k8s.io/kube-proxy", _VERSION, 28_398_741),
    ("registry.k8s.io/coredns/coredns", "v1.11.1", 18_182_961),
    ("quay.io/prometheus/node-exporter", "v1.7.0", 11_726_584),
    ("registry.k8s.io/metrics-server/metrics-server", "v0.7.0", 19_437_101),
    ("docker.io/fluent/fluent-bit", "2.2.2", 31_306_214),
    ("registry.k8s.io/ingress-nginx/controller", "v1.10.0", 105_336_710),
    ("docker.io/library/nginx", "1.25.4", 70_544_635),
    ("registry.k8s.io/pause", "3.9", 321_520),
)
_FORBIDDEN_CHANGE = 'node updates may not change podCIDR except from "" to valid'


def default_labels(name: str) -> dict[str, str]:
    """The labels a kubelet puts on its node."""
    return {
        "beta.kubernetes.io/arch": "amd64",
        "beta.kubernetes.io/os": "linux",
        "kubernetes.io/arch": "amd64",
        "kubernetes.io/hostname": name,
        "kubernetes.io/os": "linux",
    }


@dataclass(frozen=True)
class NodeRecord:
    """One stored version of a Node. Frozen: a change makes a new record (``revised``)."""

    name: str
    uid: str
    resource_version: str
    created: str  # creationTimestamp, RFC 3339 seconds
    labels: Mapping[str, str]
    pod_cidrs: tuple[str, ...]
    address: str  # InternalIP
    heartbeat: str  # lastHeartbeatTime of the conditions
    #: Set by the client, beside the kubelet's own (kaput-not.io/netmaker-host, say).
    annotations: Mapping[str, str] = field(default_factory=dict)
    body: bytes = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "labels", MappingProxyType(dict(self.labels)))
        object.__setattr__(self, "annotations", MappingProxyType(dict(self.annotations)))
        object.__setattr__(self, "body", msgspec.json.encode(_render(self)))

    def revised(self, **changes: Any) -> NodeRecord:
        """A copy with ``changes`` applied and the JSON rendered again."""
        return dataclasses.replace(self, **changes)

    def manifest(self) -> bytes:
        """The object as a GET or a watch event carries it: with ``kind`` and ``apiVersion``."""
        return _KIND_PREFIX + self.body[1:]

    def to_dict(self) -> dict[str, Any]:
        """The object as decoded JSON (a fresh copy each call)."""
        value = msgspec.json.decode(self.manifest())
        assert isinstance(value, dict)
        return value


def new_record(
    name: str,
    *,
    rv: int,
    created: str,
    labels: Mapping[str, str],
    pod_cidrs: tuple[str, ...],
    index: int,
    annotations: Mapping[str, str] | None = None,
) -> NodeRecord:
    uid = str(uuid.uuid5(_UID_NAMESPACE, f"{name}/{rv}"))  # a re-created node gets a new uid
    address = f"10.0.{(index >> 8) & 255}.{index & 255}"
    return NodeRecord(
        name, uid, str(rv), created, labels, pod_cidrs, address, created, annotations or {}
    )


def bookmark(resource_version: int) -> bytes:
    """The object of a BOOKMARK event: an empty Node with only ``resourceVersion`` set.

    Rendered as Go renders a zero-valued ``v1.Node``: ``creationTimestamp`` null, empty name,
    empty node info, kubelet port 0.
    """
    empty_info = dict.fromkeys(
        (
            "machineID",
            "systemUUID",
            "bootID",
            "kernelVersion",
            "osImage",
            "containerRuntimeVersion",
            "kubeletVersion",
            "kubeProxyVersion",
            "operatingSystem",
            "architecture",
        ),
        "",
    )
    return msgspec.json.encode(
        {
            "kind": "Node",
            "apiVersion": "v1",
            "metadata": {"resourceVersion": str(resource_version), "creationTimestamp": None},
            "spec": {},
            "status": {"daemonEndpoints": {"kubeletEndpoint": {"Port": 0}}, "nodeInfo": empty_info},
        }
    )


def check_name(name: str) -> None:
    if len(name) > 253 or not _NAME.fullmatch(name):
        detail = (
            "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters,"
            " '-' or '.', and must start and end with an alphanumeric character"
        )
        raise status.invalid("Node", name, [(f'Invalid value: "{name}"', "metadata.name", detail)])


_INVALID_CIDR = "must be a valid CIDR value, (e.g. 10.9.8.0/24 or 2001:db8::/64)"
_HOST_BITS = "must not have bits set beyond the prefix length"


def check_pod_cidrs(name: str, old: tuple[str, ...] | None, new: tuple[str, ...]) -> None:
    """The API server's rules for ``spec.podCIDRs`` on create (``old`` None) and update."""
    families: set[int] = set()
    for index, value in enumerate(new):
        field = f"spec.podCIDRs[{index}]"
        try:
            network = ipaddress.ip_network(value, strict=False)
        except ValueError:
            cause = (f'Invalid value: "{value}"', field, _INVALID_CIDR)
            raise status.invalid("Node", name, [cause]) from None
        if network.network_address != ipaddress.ip_interface(value).ip:
            # Seen on kube-apiserver 1.36: host bits are refused, not cleared.
            cause = (f'Invalid value: "{value}"', field, _HOST_BITS)
            raise status.invalid("Node", name, [cause])
        families.add(network.version)
    if len(new) > 2 or len(families) != len(new):
        value = "[" + " ".join(new) + "]"
        cause = (
            f"Invalid value: {value}",
            "spec.podCIDRs",
            "may specify no more than one CIDR for each IP family",
        )
        raise status.invalid("Node", name, [cause])
    if old and old != new:
        raise status.invalid("Node", name, [("Forbidden", "spec.podCIDRs", _FORBIDDEN_CHANGE)])


def _render(node: NodeRecord) -> dict[str, Any]:
    """The Node as a list item, keys in Go's field order (maps sorted, as Go sorts them)."""
    digest = hashlib.sha256(node.name.encode()).hexdigest()
    spec: dict[str, Any] = {}
    if node.pod_cidrs:
        spec["podCIDR"] = node.pod_cidrs[0]
        spec["podCIDRs"] = list(node.pod_cidrs)
    spec["providerID"] = f"kaput-not://stand-in/{node.name}"
    return {
        "metadata": {
            "name": node.name,
            "uid": node.uid,
            "resourceVersion": node.resource_version,
            "creationTimestamp": node.created,
            "labels": dict(sorted(node.labels.items())),
            "annotations": {
                "kubeadm.alpha.kubernetes.io/cri-socket": "unix:///run/containerd/containerd.sock",
                "node.alpha.kubernetes.io/ttl": "0",
                "volumes.kubernetes.io/controller-managed-attach-detach": "true",
                **node.annotations,
            },
        },
        "spec": spec,
        "status": {
            "capacity": _resources("4", "16365128Ki", "101430960Ki"),
            "allocatable": _resources("4", "16262728Ki", "93478772582"),
            "conditions": _conditions(node),
            "addresses": [
                {"type": "InternalIP", "address": node.address},
                {"type": "Hostname", "address": node.name},
            ],
            "daemonEndpoints": {"kubeletEndpoint": {"Port": 10250}},
            "nodeInfo": {
                "machineID": digest[:32],
                "systemUUID": str(uuid.UUID(digest[32:64])),
                "bootID": str(uuid.uuid5(_UID_NAMESPACE, f"boot/{node.uid}")),
                "kernelVersion": "6.1.0-18-amd64",
                "osImage": "Debian GNU/Linux 12 (bookworm)",
                "containerRuntimeVersion": "containerd://1.7.13",
                "kubeletVersion": _VERSION,
                "kubeProxyVersion": _VERSION,
                "operatingSystem": "linux",
                "architecture": "amd64",
            },
            "images": [_image(repo, tag, size) for repo, tag, size in _IMAGES],
        },
    }


def _resources(cpu: str, memory: str, storage: str) -> dict[str, str]:
    return {
        "cpu": cpu,
        "ephemeral-storage": storage,
        "hugepages-1Gi": "0",
        "hugepages-2Mi": "0",
        "memory": memory,
        "pods": "110",
    }


def _conditions(node: NodeRecord) -> list[dict[str, str]]:
    rows = (
        (
            "MemoryPressure",
            "False",
            "KubeletHasSufficientMemory",
            "kubelet has sufficient memory available",
        ),
        ("DiskPressure", "False", "KubeletHasNoDiskPressure", "kubelet has no disk pressure"),
        ("PIDPressure", "False", "KubeletHasSufficientPID", "kubelet has sufficient PID available"),
        ("Ready", "True", "KubeletReady", "kubelet is posting ready status"),
    )
    return [
        {
            "type": kind,
            "status": value,
            "lastHeartbeatTime": node.heartbeat,
            "lastTransitionTime": node.created,
            "reason": reason,
            "message": message,
        }
        for kind, value, reason, message in rows
    ]


def _image(repo: str, tag: str, size: int) -> dict[str, Any]:
    digest = hashlib.sha256(f"{repo}:{tag}".encode()).hexdigest()
    return {"names": [f"{repo}@sha256:{digest}", f"{repo}:{tag}"], "sizeBytes": size}
