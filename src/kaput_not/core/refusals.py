"""What a pass must leave alone: rule 13's refused pod CIDRs, and the Netmaker nodes whose rules
stay as they are this pass (rules 9, 11 and 13), each cause said once as a warning."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from kaput_not.core.claims import Span, inside, last_address, parse_cidr
from kaput_not.core.egress import InvalidCidr, normalize_cidr
from kaput_not.core.model import Host, KubeNode, SkipReason

if TYPE_CHECKING:
    from kaput_not.core.pass_index import PassIndex


def unusable_node_ids(
    index: PassIndex, warnings: list[str], cidrless_expired: frozenset[str]
) -> set[str]:
    """Netmaker node ids whose rules must be left alone this pass, with a warning for each cause.

    A Kubernetes node name held by two Netmaker hosts is ambiguous, a host claimed by several
    annotations is contested, and a node whose pod CIDRs do not parse or are refused (rule 13)
    cannot be planned: writing any would guess, deleting any would lose.
    """
    protected: set[str] = set()
    for name, kube in index.kube.items():
        hosts = index.hosts_by_name.get(kube.netmaker_host, [])
        claim = index.skips.get(name)
        if claim is not None:
            warnings.append(f"node {name}: {claim[1]}")
            if claim[0] is SkipReason.HOST_CONTESTED:
                for host in hosts:
                    protected.update(index.node_ids_by_host.get(host.id, ()))
            continue
        if not kube.pod_cidrs and name not in cidrless_expired:
            # Rule 11: no CIDRs *yet* is no reason to delete; nothing to warn about either.
            for host in hosts:
                protected.update(index.node_ids_by_host.get(host.id, ()))
            continue
        ranges = index.pod_ranges(kube)
        problem = ranges if isinstance(ranges, str) else None
        if not isinstance(ranges, str) and len(hosts) == 1 and index.address_ranges:
            problem = _inside_a_mesh(ranges, hosts[0], index)
            if problem is not None:
                index.ranges[name] = problem
        if len(hosts) > 1:
            ids = ", ".join(sorted(h.id for h in hosts))
            problem = (
                f"{len(hosts)} Netmaker hosts are named {name!r} ({ids}); "
                "its rules are left alone until the name is unique"
            )
        if problem is None:
            continue
        warnings.append(f"node {name}: {problem}")
        for host in hosts:
            protected.update(index.node_ids_by_host.get(host.id, ()))
    return protected


def refused_range(kube: KubeNode, ranges: tuple[str, ...], index: PassIndex) -> str | None:
    """Rule 13: why `kube`'s pod CIDRs must not become mesh routes, or None."""
    # Decided by the CIDR alone: such a CIDR is also left out of the overlap check (claims.py),
    # so it refuses no other node. The two tests must stay the same.
    for cidr in ranges:
        if cidr.endswith("/0"):  # normalised: the prefix length is what follows the slash
            return f"pod CIDR {cidr} is a default route; refused, its rules are left alone"
        span = parse_cidr(cidr)  # normalised: it parses
        if index.cluster_spans and (span is None or not inside(span, index.cluster_spans)):
            pods = ", ".join(index.settings.cluster_pod_cidrs)
            return (
                f"pod CIDR {cidr} is outside the cluster's pod ranges ({pods}, "
                "CLUSTER_POD_CIDRS); refused, its rules are left alone"
            )
    if index.overlaps is not None:
        others = index.overlaps.get(kube.name, [])
    else:
        others = index.claims.overlapping(kube, index.cluster_spans)
    if others:
        shown = ", ".join(others[:3]) + (f" and {len(others) - 3} more" if len(others) > 3 else "")
        return (
            f"pod CIDR(s) {', '.join(ranges)} overlap those of node(s) {shown}; both are "
            "refused and their rules left alone until the overlap is gone"
        )
    return None


def _inside_a_mesh(ranges: tuple[str, ...], host: Host, index: PassIndex) -> str | None:
    """Rule 13: a pod CIDR overlapping the address range of a network the host's rules would be
    written in, or None."""
    spans: list[tuple[str, Span]] | None = None
    for node_id in index.node_ids_by_host.get(host.id, ()):
        node = index.nodes.get(node_id)
        if node is None:
            continue
        meshes = index.mesh_spans.get(node.network)
        if meshes is None:
            meshes = index.mesh_spans[node.network] = [
                (mesh, span)
                for mesh in index.address_ranges.get(node.network, ())
                if (span := parse_cidr(mesh)) is not None
            ]  # an unparsable range is Netmaker's to keep sound
        if not meshes:
            continue
        if spans is None:  # normalised: each parses
            spans = [(cidr, span) for cidr in ranges if (span := parse_cidr(cidr)) is not None]
        for mesh, outer in meshes:
            for cidr, net in spans:
                if _overlap(net, outer):
                    return (
                        f"pod CIDR {cidr} overlaps the address range {mesh} of Netmaker "
                        f"network {node.network}; refused, its rules are left alone"
                    )
    return None


def _overlap(a: Span, b: Span) -> bool:
    """Whether two CIDRs share an address (as `ipaddress`'s `overlaps`)."""
    return a[0] == b[0] and a[1] <= last_address(b) and b[1] <= last_address(a)


def cluster_span(cidr: str) -> Span:
    span = parse_cidr(cidr)
    if span is None:  # the config normalises it: only a PlanSettings built by hand gets here
        raise ValueError(f"cluster pod range {cidr!r} is not a CIDR; use e.g. 10.244.0.0/16")
    return span


def normalized(cidrs: Sequence[str]) -> tuple[str, ...] | str:
    try:
        return tuple(normalize_cidr(cidr) for cidr in cidrs)
    except InvalidCidr as exc:
        return f"pod CIDR {exc}; its rules are left alone"
