"""The Netmaker side of a pass: one consistent snapshot, and the part a one-node pass needs."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from kaput_not.core.model import ZERO_UUID, Egress, Host, NmNode


@dataclass(frozen=True, slots=True)
class NetmakerView:
    """One consistent snapshot of Netmaker: hosts, nodes, and every egress per network."""

    hosts: Sequence[Host] = ()
    nodes: Sequence[NmNode] = ()
    egress: Mapping[str, Sequence[Egress]] = field(default_factory=dict)
    #: Optional index: every rule in `egress` routed through one of the given node ids. A
    #: single-node pass uses it instead of scanning every rule (the cache keeps one).
    routed: Callable[[Iterable[str]], Sequence[Egress]] | None = None
    #: Optional index: the hosts named so, and their nodes, as `narrowed` would find them. A
    #: single-node pass uses it instead of scanning every host and node.
    members: Callable[[str], tuple[Sequence[Host], Sequence[NmNode]]] | None = None
    #: Each network's own address ranges (`addressrange`, `addressrange6`): a pod CIDR that
    #: overlaps the range of a network its rules would be written in is refused.
    address_ranges: Mapping[str, tuple[str, ...]] = field(default_factory=dict)

    def networks(self) -> set[str]:
        """Networks whose egress lists a full pass needs: every network a node is in."""
        return {n.network for n in self.nodes if n.id != ZERO_UUID} | set(self.egress)


def narrowed(netmaker: NetmakerView, names: Sequence[str]) -> NetmakerView:
    """The hosts named so and their nodes only: all a single-node pass can touch."""
    hosts: list[Host] = []
    nodes: list[NmNode] = []
    for name in names:
        if netmaker.members is not None:
            found = netmaker.members(name)
        else:
            found = members(netmaker.hosts, netmaker.nodes, name)
        hosts.extend(found[0])
        nodes.extend(found[1])
    return NetmakerView(
        hosts=hosts,
        nodes=nodes,
        egress=netmaker.egress,
        routed=netmaker.routed,
        address_ranges=netmaker.address_ranges,
    )


def members(
    hosts: Sequence[Host], nodes: Sequence[NmNode], name: str
) -> tuple[tuple[Host, ...], tuple[NmNode, ...]]:
    """The hosts named `name`, and the nodes that are theirs by host id or by a host's list."""
    named = tuple(h for h in hosts if h.name == name)
    host_ids = {h.id for h in named}
    listed = {node_id for h in named for node_id in h.node_ids}
    return named, tuple(n for n in nodes if n.host_id in host_ids or n.id in listed)
