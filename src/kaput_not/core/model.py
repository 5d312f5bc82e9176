"""Frozen value types the planner reasons about.

They hold only what the contract needs, already decoded: adapters turn wire formats into these
and back, so the core never sees JSON, HTTP or Kubernetes objects.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from kaput_not.core.ownership import DeleteLimit, Ownership

#: Netmaker gives external (remote-access) clients this id and host id in GET /api/nodes.
ZERO_UUID = "00000000-0000-0000-0000-000000000000"


#: A Node annotation naming its Netmaker host, when the two names differ (FQDN, case).
HOST_ANNOTATION = "kaput-not.io/netmaker-host"
#: `"true"` on a Node opts it out: it is treated as gone (its rules go after the grace, through
#: the delete guard) and never warned about. Like NODE_SELECTOR, for one node.
IGNORE_ANNOTATION = "kaput-not.io/ignore"


@dataclass(frozen=True, slots=True)
class KubeNode:
    """A Kubernetes node as far as we care: its name, `spec.podCIDRs` in their order, and the
    Netmaker host name its `kaput-not.io/netmaker-host` annotation gives, if any."""

    name: str
    pod_cidrs: tuple[str, ...] = ()
    host_name: str | None = None
    #: metadata.uid, so an Event about the node is found by `kubectl describe node`.
    uid: str = ""

    @property
    def netmaker_host(self) -> str:
        """The Netmaker host name this node matches: the annotation's, else its own name."""
        return self.host_name or self.name


@dataclass(frozen=True, slots=True)
class Host:
    """A Netmaker host (one machine running netclient); `node_ids` has one id per network."""

    id: str
    name: str
    node_ids: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Network:
    """A Netmaker network: its name (`netid`) and its own address ranges (IPv4, IPv6)."""

    name: str
    ranges: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class NmNode:
    """A Netmaker node: one host's membership of one network."""

    id: str
    host_id: str
    network: str
    pending_delete: bool = False
    is_static: bool = False

    @property
    def routable(self) -> bool:
        """Whether rules may route through it: not a pseudo-node, not on its way out."""
        return not (self.is_static or self.pending_delete or self.id == ZERO_UUID)


class RoutedBy(Mapping[str, int]):
    """A rule's `nodes` map when it names one Netmaker node, as nearly every rule does: 48
    bytes where a one-entry dict takes 184 (20,000 rules live in the cache and in a first
    sync's plan). Equal to the dict with the same entry, either way round."""

    __slots__ = ("_metric", "_node_id")

    def __init__(self, node_id: str, metric: int) -> None:
        self._node_id = node_id
        self._metric = metric

    def __getitem__(self, key: str) -> int:
        if key == self._node_id:
            return self._metric
        raise KeyError(key)

    def __iter__(self) -> Iterator[str]:
        return iter((self._node_id,))

    def __len__(self) -> int:
        return 1

    def __contains__(self, key: object) -> bool:
        return key == self._node_id

    def __eq__(self, other: object) -> bool:
        if isinstance(other, RoutedBy):
            return self._node_id == other._node_id and self._metric == other._metric
        if isinstance(other, Mapping):
            if len(other) != 1 or self._node_id not in other:
                return False
            return bool(other[self._node_id] == self._metric)
        return NotImplemented

    __hash__ = None  # type: ignore[assignment]  # equal to a dict, so unhashable like one

    def __repr__(self) -> str:
        return repr({self._node_id: self._metric})

    def __reduce__(self) -> tuple[Any, ...]:
        return (RoutedBy, (self._node_id, self._metric))


@dataclass(frozen=True, slots=True)
class EgressSpec:
    """The fields of an egress that kaput-not owns, as it wants them (no id)."""

    network: str
    name: str
    description: str
    range: str
    nat: bool
    status: bool
    nodes: Mapping[str, int] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Egress:
    """An egress as Netmaker stores it: an id plus the fields we read."""

    id: str
    network: str
    name: str
    description: str
    range: str
    nat: bool
    status: bool
    nodes: Mapping[str, int] = field(default_factory=dict)


class ActionKind(StrEnum):
    CREATE = "create"
    UPDATE = "update"
    DELETE = "delete"


@dataclass(frozen=True, slots=True)
class Action:
    """One write the plan asks for, with the reason a person can read in the log.

    `spec` is the desired state for create and update; `target` the existing egress for update
    and delete. `kube_node` names the Kubernetes node the rule serves, when one is known.
    """

    kind: ActionKind
    reason: str
    network: str
    spec: EgressSpec | None = None
    target: Egress | None = None
    kube_node: str | None = None

    def __post_init__(self) -> None:
        if self.kind is not ActionKind.DELETE and self.spec is None:
            raise ValueError(f"a {self.kind} action needs a spec")
        if self.kind is not ActionKind.CREATE and (self.target is None or not self.target.id):
            # Netmaker overwrites an arbitrary egress on a PUT without id: refuse to build one.
            raise ValueError(f"a {self.kind} action needs a target egress with an id")

    @property
    def subject(self) -> str:
        """The rule's name: the one it will have, or the one it has."""
        if self.spec is not None:
            return self.spec.name
        return self.target.name if self.target is not None else ""

    def describe(self) -> str:
        """One line for logs and the demo table."""
        ident = f" {self.target.id}" if self.target is not None else ""
        return f"{self.kind}{ident} [{self.network}] {self.subject!r}: {self.reason}"


class NodeState(StrEnum):
    IN_SYNC = "in-sync"
    PENDING = "pending"
    SKIPPED = "skipped"


class SkipReason(StrEnum):
    """Why a Kubernetes node gets no rule (or keeps the ones it has untouched)."""

    NO_HOST = "no-netmaker-host"
    AMBIGUOUS_HOST = "ambiguous-host"
    NO_POD_CIDRS = "no-pod-cidrs"
    BAD_POD_CIDR = "bad-pod-cidr"
    NO_NETWORK = "no-writable-network"
    HELD = "writes-held"
    #: Its host annotation names a host that another node matches by name: that node owns it.
    HOST_TAKEN = "host-taken"
    #: Its host annotation names a host that other nodes claim by annotation too: nobody owns it.
    HOST_CONTESTED = "host-contested"
    #: Its host annotation is turned off, or names a host the allowed pattern does not match.
    HOST_ANNOTATION_REFUSED = "host-annotation-refused"


@dataclass(frozen=True, slots=True)
class NodeReport:
    """What a pass knows about one Kubernetes node: in sync, pending, or skipped and why.

    `detail` is one line for a person (the candidate host of a near miss, the bad CIDR...).
    """

    name: str
    state: NodeState
    reason: SkipReason | None = None
    detail: str = ""
    host: str | None = None
    networks: tuple[str, ...] = ()
    #: Nodes whose host annotation names this node's host, refused (`HOST_TAKEN`): the owner
    #: keeps its rules and is told.
    claimed_by: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Plan:
    """What one pass will write, and what it held back and why.

    `withheld` are deletes the safety rules refused (mass-delete guard, incomplete node list);
    `refusal` says why. `warnings` are things an operator should know (ambiguous host names,
    unusable pod CIDRs) that change nothing. `ownership` and `limit` are the pass's test of
    which rules are ours and its mass-delete limit, handed on to the write guard.
    """

    actions: tuple[Action, ...] = ()
    withheld: tuple[Action, ...] = ()
    refusal: str | None = None
    warnings: tuple[str, ...] = ()
    owned: int = 0
    nodes: tuple[NodeReport, ...] = ()
    ownership: Ownership = field(default_factory=Ownership)
    limit: DeleteLimit = field(default_factory=DeleteLimit)

    @property
    def empty(self) -> bool:
        return not self.actions

    def count(self, kind: ActionKind) -> int:
        return sum(1 for a in self.actions if a.kind is kind)
