"""The lookups one planning pass builds once over its snapshots, so no rule or node is found by
a scan: Kubernetes nodes, Netmaker hosts and nodes, which node owns which host, pod ranges."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from kaput_not.core.claims import KubeClaims, Span
from kaput_not.core.host_owners import resolve_hosts
from kaput_not.core.model import ZERO_UUID, Host, KubeNode, NmNode, SkipReason
from kaput_not.core.refusals import cluster_span, normalized, refused_range
from kaput_not.core.settings import PlanSettings
from kaput_not.core.view import NetmakerView


@dataclass(slots=True)
class PassIndex:
    """Lookups built once per pass."""

    kube: dict[str, KubeNode]
    nodes: dict[str, NmNode]
    hosts: dict[str, Host]
    #: Sorted tuples, not sets: a one-element set is several times a tuple's size.
    node_ids_by_host: dict[str, tuple[str, ...]]
    hosts_by_name: dict[str, list[Host]]
    #: Kubernetes nodes by the Netmaker host name they own (by their name, or as the one node
    #: whose annotation names it): see `resolve_hosts`.
    kube_by_host: dict[str, KubeNode]
    #: Nodes that own no host, why, and the one line that says so (refused or contested claims).
    skips: dict[str, tuple[SkipReason, str]]
    #: Per owner by name, the nodes whose annotations name its host (refused).
    claimed_by: dict[str, tuple[str, ...]]
    #: Host names claimed only by annotation, by more than one node: their rules are kept.
    contested: set[str]
    claims: KubeClaims
    settings: PlanSettings
    address_ranges: Mapping[str, tuple[str, ...]]
    #: The cluster's pod ranges read as numbers, once a pass (empty: no bounds).
    cluster_spans: tuple[Span, ...]
    #: Every overlap of pod CIDRs, found in one sweep for a full pass; None in a node's pass,
    #: which asks the claims index about its few nodes.
    overlaps: Mapping[str, list[str]] | None
    #: Per Kubernetes node, its pod CIDRs as Netmaker stores them, or why one is unusable:
    #: parsed once per pass for the three readers, and dropped with the pass (a cache kept
    #: between passes held an entry per rule for the life of the process).
    ranges: dict[str, tuple[str, ...] | str] = field(default_factory=dict)
    #: Each network's address ranges read as numbers (an unparsable one left out): read once
    #: a pass, not once a node.
    mesh_spans: dict[str, list[tuple[str, Span]]] = field(default_factory=dict)
    #: Per Netmaker host name, the Kubernetes node that resolved to it and is gone now (from
    #: `resolved`): a delete reason names that node, not the host (an annotation may differ).
    gone_by_host: dict[str, str] = field(default_factory=dict)

    def pod_ranges(self, kube: KubeNode) -> tuple[str, ...] | str:
        """`kube`'s pod CIDRs normalised, or the problem with the first that is not usable."""
        found = self.ranges.get(kube.name)
        if found is None:
            found = normalized(kube.pod_cidrs)
            if not isinstance(found, str):
                found = refused_range(kube, found, self) or found
            self.ranges[kube.name] = found
        return found


def build_index(
    kube_nodes: Iterable[KubeNode],
    netmaker: NetmakerView,
    settings: PlanSettings,
    claims: KubeClaims,
    *,
    full: bool,
) -> PassIndex:
    kube = {k.name: k for k in kube_nodes}
    nodes = {n.id: n for n in netmaker.nodes if n.id != ZERO_UUID}
    hosts = {h.id: h for h in netmaker.hosts}
    collected: dict[str, list[str]] = {}
    for host in netmaker.hosts:
        collected.setdefault(host.id, []).extend(host.node_ids)
    for node in nodes.values():
        collected.setdefault(node.host_id, []).append(node.id)
    node_ids_by_host = {
        host_id: tuple(sorted(set(ids))) if len(ids) > 1 else tuple(ids)
        for host_id, ids in collected.items()
    }
    hosts_by_name: dict[str, list[Host]] = defaultdict(list)
    for host in netmaker.hosts:
        hosts_by_name[host.name].append(host)
    owners, skips, claimed_by, contested = resolve_hosts(kube, settings)
    cluster_spans = tuple(cluster_span(cidr) for cidr in settings.cluster_pod_cidrs)
    return PassIndex(
        kube=kube,
        nodes=nodes,
        hosts=hosts,
        node_ids_by_host=node_ids_by_host,
        hosts_by_name=hosts_by_name,
        kube_by_host=owners,
        skips=skips,
        claimed_by=claimed_by,
        contested=contested,
        claims=claims,
        settings=settings,
        address_ranges=netmaker.address_ranges,
        cluster_spans=cluster_spans,
        overlaps=claims.overlaps(cluster_spans) if full else None,
    )
