"""msgspec structs for the Kubernetes JSON we read and write: only the fields we use.

A Node object is tens of kilobytes; decoding it straight into these structs keeps name, uid,
resourceVersion, pod CIDRs and our one annotation and drops the rest at parse time, so 10,000
nodes take a few megabytes instead of hundreds.
"""

from __future__ import annotations

import msgspec

from kaput_not.core.model import HOST_ANNOTATION, IGNORE_ANNOTATION
from kaput_not.decoding import Decoder


class ObjectMeta(msgspec.Struct, omit_defaults=True):
    name: str = ""
    namespace: str = ""
    resourceVersion: str = ""  # noqa: N815 - Kubernetes field name
    # Kept so that a read-modify-PUT (the Lease's renewals) does not drop them: the guard's
    # state lives in an annotation of the Lease.
    labels: dict[str, str] | None = None
    annotations: dict[str, str] | None = None


class NodeMeta(msgspec.Struct):
    name: str = ""
    uid: str = ""
    resourceVersion: str = ""  # noqa: N815
    annotations: dict[str, str] | None = None


class NodeSpec(msgspec.Struct):
    podCIDRs: list[str] = msgspec.field(default_factory=list)  # noqa: N815
    podCIDR: str = ""  # noqa: N815 - set alone by clusters older than dual-stack


class Node(msgspec.Struct):
    metadata: NodeMeta
    spec: NodeSpec = msgspec.field(default_factory=NodeSpec)

    def host_name(self) -> str | None:
        """The Netmaker host the `kaput-not.io/netmaker-host` annotation names, if any."""
        named = (self.metadata.annotations or {}).get(HOST_ANNOTATION, "").strip()
        return named or None

    def ignored(self) -> bool:
        """Opted out by `kaput-not.io/ignore: "true"` (any other value is not an opt-out)."""
        annotations = self.metadata.annotations
        return annotations is not None and annotations.get(IGNORE_ANNOTATION, "").strip() == "true"

    def pod_cidrs(self) -> tuple[str, ...]:
        if self.spec.podCIDRs:
            return tuple(self.spec.podCIDRs)
        return (self.spec.podCIDR,) if self.spec.podCIDR else ()


class ListMeta(msgspec.Struct):
    resourceVersion: str = ""  # noqa: N815
    continue_: str = msgspec.field(default="", name="continue")


class NodeList(msgspec.Struct):
    metadata: ListMeta
    items: list[Node]


class Status(msgspec.Struct):
    """A Kubernetes `Status`: the body of an error reply and of a watch ERROR event."""

    code: int = 0
    reason: str = ""
    message: str = ""


class WatchEvent(msgspec.Struct):
    type: str
    object: msgspec.Raw


class LeaseSpec(msgspec.Struct, omit_defaults=True):
    holderIdentity: str | None = None  # noqa: N815
    leaseDurationSeconds: int | None = None  # noqa: N815
    acquireTime: str | None = None  # noqa: N815
    renewTime: str | None = None  # noqa: N815
    leaseTransitions: int | None = None  # noqa: N815


class Lease(msgspec.Struct):
    metadata: ObjectMeta
    spec: LeaseSpec = msgspec.field(default_factory=LeaseSpec)
    apiVersion: str = "coordination.k8s.io/v1"  # noqa: N815
    kind: str = "Lease"


node_list_decoder = Decoder(NodeList)
node_decoder = Decoder(Node)
event_decoder = Decoder(WatchEvent)
status_decoder = Decoder(Status)
lease_decoder = Decoder(Lease)
encoder = msgspec.json.Encoder()
