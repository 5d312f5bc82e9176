"""What a pass says: per Kubernetes node, in sync, pending or skipped and why, and why a rule of
ours goes (rule 4), so "why has this node no rule?" always has an answer."""

from __future__ import annotations

import dataclasses
from collections import defaultdict
from collections.abc import Callable, Sequence

from kaput_not.core.egress import Marker, named_for
from kaput_not.core.model import (
    HOST_ANNOTATION,
    Action,
    Egress,
    Host,
    KubeNode,
    NodeReport,
    NodeState,
    SkipReason,
)
from kaput_not.core.pass_index import PassIndex


def node_reports(
    index: PassIndex, actions: Sequence[Action], all_hosts: Sequence[Host]
) -> tuple[NodeReport, ...]:
    """Every Kubernetes node of the pass: in sync, pending (an action serves it), or skipped
    with the reason, so "why has this node no rule?" always has an answer."""
    pending = {name for a in actions if (name := _served(a, index)) is not None}
    lookalikes: dict[str, list[str]] | None = None

    def near(name: str) -> list[str]:
        # Built on the first node without a host only: a node event must not pay a scan of
        # every host name when its own host is there.
        nonlocal lookalikes
        if lookalikes is None:
            lookalikes = defaultdict(list)
            for host in all_hosts:
                lookalikes[_loose(host.name)].append(host.name)
        return [n for n in lookalikes.get(_loose(name), []) if n != name]

    reports = []
    for kube in sorted(index.kube.values(), key=lambda k: k.name):
        report = _report(kube, index, kube.name in pending, near)
        claimed_by = index.claimed_by.get(kube.name)
        if claimed_by:
            report = dataclasses.replace(report, claimed_by=claimed_by)
        reports.append(report)
    return tuple(reports)


def _served(action: Action, index: PassIndex) -> str | None:
    """The Kubernetes node an action serves: named on it, or found through its routing node."""
    if action.kube_node is not None:
        return action.kube_node
    target = action.target
    for node_id in target.nodes if target is not None else ():
        node = index.nodes.get(node_id)
        host = index.hosts.get(node.host_id) if node is not None else None
        kube = index.kube_by_host.get(host.name) if host is not None else None
        if kube is not None:
            return kube.name
    return None


def _loose(name: str) -> str:
    """A host name as a near miss compares it: lower case, first DNS label."""
    return name.split(".", 1)[0].lower()


def _report(
    kube: KubeNode, index: PassIndex, pending: bool, near_misses: Callable[[str], list[str]]
) -> NodeReport:
    wanted = kube.netmaker_host
    claim = index.skips.get(kube.name)
    if claim is not None:
        return NodeReport(kube.name, NodeState.SKIPPED, claim[0], claim[1], wanted)
    hosts = index.hosts_by_name.get(wanted, [])
    if not hosts:
        near = near_misses(wanted)
        detail = f"no Netmaker host is named {wanted!r}"
        if near:
            detail += (
                f"; did you mean {near[0]!r}? If that host is this node, annotate the node "
                f"{HOST_ANNOTATION}={near[0]}"
            )
        return NodeReport(kube.name, NodeState.SKIPPED, SkipReason.NO_HOST, detail)
    if len(hosts) > 1:
        ids = ", ".join(sorted(h.id for h in hosts))
        detail = f"{len(hosts)} Netmaker hosts are named {wanted!r} ({ids})"
        return NodeReport(kube.name, NodeState.SKIPPED, SkipReason.AMBIGUOUS_HOST, detail)
    host = hosts[0]
    networks = tuple(
        sorted(
            node.network
            for node_id in index.node_ids_by_host.get(host.id, ())
            if (node := index.nodes.get(node_id)) is not None
            and node.routable
            and node.host_id == host.id
        )
    )

    def skipped(reason: SkipReason, detail: str) -> NodeReport:
        return NodeReport(kube.name, NodeState.SKIPPED, reason, detail, host.name, networks)

    if not kube.pod_cidrs:
        return skipped(SkipReason.NO_POD_CIDRS, "no pod CIDRs yet (spec.podCIDRs is empty)")
    ranges = index.pod_ranges(kube)
    if isinstance(ranges, str):
        return skipped(SkipReason.BAD_POD_CIDR, ranges)
    if not networks:
        return skipped(
            SkipReason.NO_NETWORK,
            f"Netmaker host {host.name!r} is in no network a rule can route through",
        )
    state = NodeState.PENDING if pending else NodeState.IN_SYNC
    return NodeReport(kube.name, state, None, "", host.name, networks)


def why_unwanted(egress: Egress, marker: Marker, index: PassIndex) -> str:
    if not egress.nodes:
        return "it routes through no Netmaker node (nodes is {}): Netmaker removed its node"
    existing = [index.nodes[n] for n in sorted(egress.nodes) if n in index.nodes]
    if not existing:
        gone = ", ".join(sorted(egress.nodes))
        return f"its Netmaker node {gone} no longer exists"
    node = existing[0]
    host = index.hosts.get(node.host_id)
    if node.is_static:
        return f"it routes through static pseudo-node {node.id}"
    if node.pending_delete:
        return f"its Netmaker node {node.id} is pending delete"
    if host is None:
        return f"the Netmaker host of node {node.id} no longer exists"
    kube = index.kube_by_host.get(host.name)
    if kube is None:
        return _gone(egress, host.name, index)
    if node.network != egress.network:
        return f"its routing node {node.id} is in network {node.network}, not {egress.network}"
    if marker.index >= len(kube.pod_cidrs):
        return (
            f"index {marker.index} is beyond the {len(kube.pod_cidrs)} pod CIDR(s) "
            f"of node {host.name}"
        )
    return "no Kubernetes node desires it"


def _gone(egress: Egress, host: str, index: PassIndex) -> str:
    """Why a rule of a host no Kubernetes node owns goes, naming the Kubernetes node: the one
    that resolved to the host (its delete is being passed), else the node the rule was named
    for when written (`<node> pods (i/n)`), else only the host."""
    name = index.gone_by_host.get(host) or named_for(egress.name)
    if name is None:
        return f"no Kubernetes node owns its Netmaker host {host}"
    if name == host:
        return f"Kubernetes node {name} is gone"
    return f"Kubernetes node {name} is gone (its Netmaker host was {host})"
