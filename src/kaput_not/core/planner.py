"""Desired versus actual egress rules, turned into a plan of creates, updates and deletes.

The planner is a pure function of three snapshots: Kubernetes nodes (name and pod CIDRs),
Netmaker hosts and nodes, and every egress in the networks involved. The same function serves
one Kubernetes node (after an event) and the whole cluster (start-up and periodic resync), so an
event and a resync can never disagree. Every action carries a reason a person can read.

A node's pass is a pass over the hosts it resolves to (now, and before a delete or a change of
annotation) and every node that claims them, found through the claims index (core/claims.py)
rather than a scan: ownership of a host is decided from all its claimants in either scope.

Rules (numbered as in docs/design.md section 3; 5-7, 12 and 14 are the controller's), each in a
function named for it:

1. Match an existing rule to E(N, M, i) by ownership, index i and M.id in `nodes`; a slot left
   without a match takes one of ours that nothing else claims with the same network, index and
   name (its routing node was edited by hand, or its host joined again), so it keeps its id.
2. Update in place, keeping the id, when any owned field drifted: range (compared as networks),
   name, description, nat, status, the nodes map.
3. Several rules matching one E(N, M, i): keep one, delete the rest.
4. Delete ours that nothing desires: index beyond the CIDR count, Kubernetes node gone,
   Netmaker node gone, pending delete or in another network, `nodes` empty or naming only ids
   that no longer exist. (A damaged marker is not ours: see core/egress.py.)
8. Never delete before the first complete list of Kubernetes nodes; refuse a pass that would
   delete an implausible share of our rules unless the operator allows it. (The budget across
   passes and restarts is the write guard's, controller/guard.py.)
9. Skip static pseudo-nodes and nodes pending delete. A Kubernetes node name matched by two
   Netmaker hosts is ambiguous: its rules are left alone and a warning says so. A node whose pod
   CIDRs do not parse is treated the same way: nothing is lost on bad input. The host
   annotation is untrusted (a kubelet may edit its own Node): a host a node matches by name is
   that node's, and an annotation naming it is refused (`host-taken`, the owner told through
   `NodeReport.claimed_by`); a host named only by several annotations is contested, its rules
   kept (`host-contested`); an annotation the settings turn off or do not allow claims nothing
   (`host-annotation-refused`). A deleted node's rules, and its delete grace, follow the host it
   resolved to (`resolved`), not its name.
10. No update or delete without an id (enforced by `Action` itself).
11. A Kubernetes node with no pod CIDRs yet (a rebuilt node registers first and gets its CIDRs
   seconds later) keeps its rules, unless the caller says its grace is over (`cidrless_expired`).
13. A pod CIDR that is a default route, overlaps the address range of a network its rules would
   be in, overlaps another node's CIDR (both nodes), or lies outside the cluster's pod ranges
   (when set) is refused as `bad-pod-cidr`: never written, the node's rules left alone.
   A CIDR refused on its own (a default route, outside the pod ranges) overlaps no other
   node: only a CIDR that could be written can get another node refused.

Foreign rules (no marker, or another cluster's) never appear in any action.
"""

from __future__ import annotations

import dataclasses
import itertools
import re
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import cast

from kaput_not.core.claims import KubeClaims, Span, inside, last_address, parse_cidr
from kaput_not.core.egress import (
    InvalidCidr,
    Marker,
    build_description,
    named_for,
    normalize_cidr,
    owned_by,
    parse_description,
    rule_name,
    same_range,
)
from kaput_not.core.model import (
    HOST_ANNOTATION,
    ZERO_UUID,
    Action,
    ActionKind,
    Egress,
    EgressSpec,
    Host,
    KubeNode,
    NmNode,
    NodeReport,
    NodeState,
    Plan,
    RoutedBy,
    SkipReason,
)

#: (network, index, Netmaker node id): the identity of one desired rule E(N, M, i).
RuleKey = tuple[str, int, str]


@dataclass(frozen=True, slots=True)
class PlanSettings:
    """Policy for the planner.

    `max_delete_fraction` and `max_delete_floor` form the mass-delete guard: a pass may always
    delete up to `max_delete_floor` rules; beyond that, it may delete at most that fraction of
    the rules we own, unless `allow_mass_delete` is set.
    """

    cluster: str | None = None
    metric: int = 500
    max_delete_fraction: float = 0.5
    max_delete_floor: int = 5
    allow_mass_delete: bool = False
    #: Whether the host annotation is honoured at all, and the host names it may name (the
    #: whole name must match; None: any). A kubelet may edit its own Node's annotations.
    host_annotation: bool = True
    host_annotation_hosts: re.Pattern[str] | None = None
    #: The cluster's pod ranges: a pod CIDR outside all of them is refused. Empty: no check.
    cluster_pod_cidrs: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class NetmakerView:
    """One consistent snapshot of Netmaker: hosts, nodes, and every egress per network."""

    hosts: Sequence[Host] = ()
    nodes: Sequence[NmNode] = ()
    egress: Mapping[str, Sequence[Egress]] = field(default_factory=dict)
    #: Optional index: every rule in `egress` routed through one of the given node ids. A
    #: single-node pass uses it instead of scanning every rule (the cache keeps one).
    routed: Callable[[Iterable[str]], Sequence[Egress]] | None = None
    #: Optional index: the hosts named so, and their nodes, as `_narrowed` would find them. A
    #: single-node pass uses it instead of scanning every host and node.
    members: Callable[[str], tuple[Sequence[Host], Sequence[NmNode]]] | None = None
    #: Each network's own address ranges (`addressrange`, `addressrange6`): a pod CIDR that
    #: overlaps the range of a network its rules would be written in is refused.
    address_ranges: Mapping[str, tuple[str, ...]] = field(default_factory=dict)

    def networks(self) -> set[str]:
        """Networks whose egress lists a full pass needs: every network a node is in."""
        return {n.network for n in self.nodes if n.id != ZERO_UUID} | set(self.egress)


@dataclass(frozen=True, slots=True, eq=False)
class _Desired:
    """E(N, M, i) before it is spelled out: its spec is built where it is compared or written,
    so a full pass over every rule in sync never holds a spec per rule at once.

    Compared and hashed by identity: the pass's one `_Desired` per slot is the slot's key in
    the matching, where a `RuleKey` tuple per slot cost memory per rule.
    """

    kube_node: str
    network: str
    index: int
    count: int
    range: str
    node_id: str
    description: str
    metric: int

    @property
    def spec(self) -> EgressSpec:
        return EgressSpec(
            network=self.network,
            name=rule_name(self.kube_node, self.index, self.count),
            description=self.description,
            range=self.range,
            nat=False,
            status=True,
            nodes=RoutedBy(self.node_id, self.metric),
        )


class _DesiredRules:
    """The desired rules, stored by Netmaker node id: a node has one rule per pod CIDR, so one
    small tuple per node replaces a `RuleKey` tuple and a dict entry per rule. Found by slot,
    or all in turn."""

    __slots__ = ("_by_node",)

    def __init__(self) -> None:
        self._by_node: dict[str, tuple[_Desired, ...]] = {}

    def add(self, want: _Desired) -> None:
        """Add `want`, replacing a rule of the same slot (two Kubernetes nodes naming one host:
        the last one wins)."""
        kept = tuple(
            d
            for d in self._by_node.get(want.node_id, ())
            if (d.network, d.index) != (want.network, want.index)
        )
        self._by_node[want.node_id] = (*kept, want)

    def find(self, network: str, index: int, node_id: str) -> _Desired | None:
        """The rule of this slot, if desired (no key tuple built)."""
        for want in self._by_node.get(node_id, ()):
            if want.index == index and want.network == network:
                return want
        return None

    def wants(self) -> Iterator[_Desired]:
        """Every desired rule, without building its key."""
        for wants in self._by_node.values():
            yield from wants


@dataclass(slots=True)
class _Index:
    """Lookups built once per pass."""

    kube: dict[str, KubeNode]
    nodes: dict[str, NmNode]
    hosts: dict[str, Host]
    #: Sorted tuples, not sets: a one-element set is several times a tuple's size.
    node_ids_by_host: dict[str, tuple[str, ...]]
    hosts_by_name: dict[str, list[Host]]
    #: Kubernetes nodes by the Netmaker host name they own (by their name, or as the one node
    #: whose annotation names it): see `_resolve`.
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
            found = _normalized(kube.pod_cidrs)
            if not isinstance(found, str):
                found = _refused_range(kube, found, self) or found
            self.ranges[kube.name] = found
        return found


def plan(
    kube_nodes: Iterable[KubeNode],
    netmaker: NetmakerView,
    settings: PlanSettings,
    *,
    only: str | None = None,
    kube_complete: bool = True,
    cidrless_expired: frozenset[str] = frozenset(),
    keep: frozenset[str] = frozenset(),
    claims: KubeClaims | None = None,
    resolved: Mapping[str, str] | None = None,
) -> Plan:
    """Plan one pass: for the whole cluster, or for the Kubernetes node named `only`.

    In the single-node scope, `kube_nodes` may lack that node (it was deleted: its rules go),
    and only rules routed through that name's Netmaker nodes are considered; orphans that no
    name can claim (`nodes: {}`, vanished node ids) are left to the full pass.
    `kube_complete` is False until the first complete list of Kubernetes nodes has arrived.
    `cidrless_expired` names the nodes without pod CIDRs whose grace is over: only their rules
    may go for want of CIDRs. `keep` names Kubernetes nodes deleted a moment ago: the rules of
    the hosts they resolved to are left alone while the delete grace runs (a rebuild may bring
    the node back).

    `claims` holds every Kubernetes node's host claim and pod CIDRs (built from `kube_nodes`
    when not given): a single-node pass judges its node against all the others through it, and
    plans every node that claims the same host, so each of their passes decides alike.
    `resolved` gives, per node name, the host it resolved to before (deleted, or annotated
    elsewhere since): its delete and grace are judged by that host, not by its name.
    """
    all_hosts = netmaker.hosts  # a near miss may be any host, not only the narrowed ones
    resolved = resolved or {}
    if claims is None:
        kube_nodes = list(kube_nodes)
        claims = KubeClaims(kube_nodes)
    if only is not None:
        me = next((k for k in kube_nodes if k.name == only), None)
        scope = {me.netmaker_host} if me is not None else set()
        if only in resolved:
            scope.add(resolved[only])
        scope = scope or {only}
        relevant = {k.name: k for host in sorted(scope) for k in claims.claimants(host)}
        if me is not None:
            relevant[me.name] = me
        kube_nodes = list(relevant.values())
        netmaker = _narrowed(netmaker, sorted(scope))
    index = _index(kube_nodes, netmaker, settings, claims, full=only is None)
    index.gone_by_host = {h: n for n, h in resolved.items() if n not in index.kube}
    warnings: list[str] = []
    protected = _unusable_node_ids(index, warnings, cidrless_expired)
    for name in keep - index.kube.keys():
        for host in index.hosts_by_name.get(resolved.get(name, name), []):
            protected.update(index.node_ids_by_host.get(host.id, ()))
    desired = _desired_rules(index, settings, protected)
    owned = _owned_rules(netmaker, settings, index, only, protected)

    actions: list[Action] = []
    repeated = _repeated_ids(owned)
    matched, duplicates = _match(owned, desired, repeated)
    # Rules kept other than as the rule matched to a slot they route for: duplicates' targets,
    # adopted rules, and every copy of a matched id listed more than once. Few, so a set is
    # cheap (a set of every matched id, built three times a pass, was not).
    claimed = {a.target.id for a in duplicates if a.target}
    if repeated:
        claimed |= {e.id for e in matched.values() if e.id in repeated}
    # Ours, neither claimed nor matched to a slot they route for: found once, as adoption (which
    # only gives them slots nobody matched) leaves the rest of them as they are.
    loose = [e for e in owned if e.id not in claimed and not _routes_its_slot(e, desired, matched)]
    adopted = _adopt_by_name(loose, desired, matched)
    for want, egress in matched.items():
        update = _update_if_drifted(egress, want)
        if update is not None:
            actions.append(update)
    for want in desired.wants():
        if want not in matched:
            actions.append(
                Action(
                    kind=ActionKind.CREATE,
                    reason="no rule yet",
                    network=want.network,
                    spec=want.spec,
                    kube_node=want.kube_node,
                )
            )
    actions.extend(duplicates)
    unwanted = [_delete_unwanted(e, _marker(e), index) for e in loose if e.id not in adopted]
    allowed, withheld, refusal = _guard_deletes(unwanted, len(owned), settings, kube_complete)
    actions.extend(allowed)
    actions.sort(key=_action_order)
    return Plan(
        actions=tuple(actions),
        withheld=tuple(withheld),
        refusal=refusal,
        warnings=tuple(warnings),
        owned=len(owned),
        nodes=node_reports(index, [*actions, *withheld], all_hosts),
    )


def node_reports(
    index: _Index, actions: Sequence[Action], all_hosts: Sequence[Host]
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


def _served(action: Action, index: _Index) -> str | None:
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
    kube: KubeNode, index: _Index, pending: bool, near_misses: Callable[[str], list[str]]
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


def _narrowed(netmaker: NetmakerView, names: Sequence[str]) -> NetmakerView:
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


def _index(
    kube_nodes: Iterable[KubeNode],
    netmaker: NetmakerView,
    settings: PlanSettings,
    claims: KubeClaims,
    *,
    full: bool,
) -> _Index:
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
    owners, skips, claimed_by, contested = _resolve(kube, settings)
    cluster_spans = tuple(_cluster_span(cidr) for cidr in settings.cluster_pod_cidrs)
    return _Index(
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


def _annotated(kube: KubeNode) -> bool:
    """Whether `kube` claims its host through the annotation (one naming another host)."""
    return kube.host_name is not None and kube.host_name != kube.name


def _resolve(
    kube: Mapping[str, KubeNode], settings: PlanSettings
) -> tuple[
    dict[str, KubeNode], dict[str, tuple[SkipReason, str]], dict[str, tuple[str, ...]], set[str]
]:
    """Rule 9: which node owns each host name claimed, from every claimant of it.

    A node owns the host of its own name, and no annotation takes it: an annotation naming it
    is refused (`HOST_TAKEN`) and the owner is told (`claimed_by`). A host claimed only by
    annotation belongs to its one claimant; claimed so by several, to none of them
    (`HOST_CONTESTED`: its rules are kept). An annotation the settings refuse claims nothing.
    Returns the owners by host name, the skipped nodes, the owners' refused claimants and the
    contested host names.
    """
    owners: dict[str, KubeNode] = {}
    skips: dict[str, tuple[SkipReason, str]] = {}
    by_annotation: dict[str, list[KubeNode]] = {}
    for node in kube.values():
        if not _annotated(node):
            owners[node.name] = node
            continue
        refused = _annotation_refused(node, settings)
        if refused is not None:
            skips[node.name] = (SkipReason.HOST_ANNOTATION_REFUSED, refused)
        else:
            by_annotation.setdefault(node.netmaker_host, []).append(node)
    claimed_by: dict[str, tuple[str, ...]] = {}
    contested: set[str] = set()
    for host, claimants in by_annotation.items():
        names = tuple(sorted(k.name for k in claimants))
        owner = owners.get(host)
        if owner is not None:
            claimed_by[owner.name] = names
            for node in claimants:
                skips[node.name] = (
                    SkipReason.HOST_TAKEN,
                    f"its annotation {HOST_ANNOTATION}={host} names the Netmaker host of "
                    f"Kubernetes node {host}, which matches it by name and keeps it; remove "
                    "the annotation or correct it",
                )
        elif len(claimants) > 1:
            contested.add(host)
            for node in claimants:
                skips[node.name] = (
                    SkipReason.HOST_CONTESTED,
                    f"nodes {', '.join(names)} all name Netmaker host {host!r} in their "
                    f"{HOST_ANNOTATION} annotation; its rules are left as they are until "
                    "one claim remains",
                )
        else:
            owners[host] = claimants[0]
    return owners, skips, claimed_by, contested


def _annotation_refused(kube: KubeNode, settings: PlanSettings) -> str | None:
    """Why the settings refuse `kube`'s host annotation, or None when they allow it."""
    if not settings.host_annotation:
        return (
            f"its annotation {HOST_ANNOTATION}={kube.host_name} is ignored: the host "
            "annotation is turned off (HOST_ANNOTATION_ENABLED=false)"
        )
    pattern = settings.host_annotation_hosts
    if pattern is not None and pattern.fullmatch(kube.netmaker_host) is None:
        return (
            f"its annotation {HOST_ANNOTATION}={kube.host_name} names a host that "
            f"HOST_ANNOTATION_HOSTS ({pattern.pattern}) does not allow"
        )
    return None


def _unusable_node_ids(
    index: _Index, warnings: list[str], cidrless_expired: frozenset[str]
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


def _refused_range(kube: KubeNode, ranges: tuple[str, ...], index: _Index) -> str | None:
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


def _inside_a_mesh(ranges: tuple[str, ...], host: Host, index: _Index) -> str | None:
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


def _cluster_span(cidr: str) -> Span:
    span = parse_cidr(cidr)
    if span is None:  # the config normalises it: only a PlanSettings built by hand gets here
        raise ValueError(f"cluster pod range {cidr!r} is not a CIDR; use e.g. 10.244.0.0/16")
    return span


def _normalized(cidrs: Sequence[str]) -> tuple[str, ...] | str:
    try:
        return tuple(normalize_cidr(cidr) for cidr in cidrs)
    except InvalidCidr as exc:
        return f"pod CIDR {exc}; its rules are left alone"


def _desired_rules(index: _Index, settings: PlanSettings, protected: set[str]) -> _DesiredRules:
    """E(N, M, i) for every Kubernetes node N that owns its host, routable Netmaker node M of
    that host, and index i."""
    desired = _DesiredRules()
    for name, kube in index.kube.items():
        if not kube.pod_cidrs or name in index.skips:
            continue
        hosts = index.hosts_by_name.get(kube.netmaker_host, [])
        if len(hosts) != 1:
            continue
        ranges = index.pod_ranges(kube)
        if isinstance(ranges, str):
            continue  # unusable CIDRs: its node ids are protected
        count = len(ranges)
        for node_id in index.node_ids_by_host.get(hosts[0].id, ()):  # sorted by `_index`
            node = index.nodes.get(node_id)
            if node is None or node_id in protected or not node.routable:
                continue
            if node.host_id != hosts[0].id:
                continue
            for i, cidr in enumerate(ranges):
                desired.add(
                    _Desired(
                        kube_node=name,
                        network=node.network,
                        index=i,
                        count=count,
                        range=cidr,
                        node_id=node.id,
                        description=build_description(i, settings.cluster),
                        metric=settings.metric,
                    )
                )
    return desired


def _owned_rules(
    netmaker: NetmakerView,
    settings: PlanSettings,
    index: _Index,
    only: str | None,
    protected: set[str],
) -> list[Egress]:
    """Our rules in scope. Foreign and other-cluster rules never get here.

    The rules alone, not with their markers: a tuple per rule is memory per rule, and
    `_marker` reads one again from the description cache."""
    in_scope: set[str] | None = None
    if only is not None:
        in_scope = set()  # the view is narrowed to the hosts of the pass
        for host in netmaker.hosts:
            in_scope.update(index.node_ids_by_host.get(host.id, ()))
    owned: list[Egress] = []
    candidates: Iterable[Iterable[Egress]] = netmaker.egress.values()
    if in_scope is not None and netmaker.routed is not None:
        candidates = [netmaker.routed(in_scope)]
    for egresses in candidates:
        for egress in egresses:
            # Scope first: it is a set lookup, and a one-node pass skips nearly every rule.
            if in_scope is not None and in_scope.isdisjoint(egress.nodes):
                continue
            marker = parse_description(egress.description)
            if marker is None or not owned_by(marker, settings.cluster):
                continue
            if not egress.id or not protected.isdisjoint(egress.nodes):
                continue
            owned.append(egress)
    return owned


def _marker(egress: Egress) -> Marker:
    """The marker of one of our rules (`_owned_rules` kept only rules that have one)."""
    marker = parse_description(egress.description)
    assert marker is not None
    return marker


def _repeated_ids(owned: list[Egress]) -> set[str]:
    """Ids listed more than once (none from a sound server: an id is one row of one network).

    A server that ignores `?network=`, say, lists every rule in every network. Such copies are
    matched and kept by id, never as separate rules: a copy left unmatched must not read as
    unwanted and be deleted (by id, taking the live rule with it), nor take a second slot.
    Found by sorting, not with a set of every id (memory per rule).
    """
    ids = sorted(e.id for e in owned)
    return {a for a, b in itertools.pairwise(ids) if a == b}


def _routes_its_slot(
    egress: Egress, desired: _DesiredRules, matched: Mapping[_Desired, Egress]
) -> bool:
    """Whether `egress` is the rule matched to a slot it routes for."""
    index = _marker(egress).index
    for node_id in egress.nodes:
        want = desired.find(egress.network, index, node_id)
        if want is not None and matched.get(want) is egress:
            return True
    return False


def _match(
    owned: list[Egress], desired: _DesiredRules, repeated: set[str]
) -> tuple[dict[_Desired, Egress], list[Action]]:
    """Rules 1 and 3: pick one existing rule per desired slot; the other candidates are
    duplicates.

    The keeper is the rule that needs no write, else the one routed through this node alone,
    else the lowest id, so the choice is stable from one pass to the next. A slot whose one
    candidate routes through that node alone, under an id listed once, is settled at once (no
    other slot can want that rule); the contested ones are settled in slot order, each id
    taken once, as every slot once was.
    """
    # A slot's one candidate is kept as is, a list only for the rare slot with several: a
    # list per slot is memory per rule on every full pass. The dict then becomes the matching
    # itself, each slot's candidates replaced by its keeper (rather than a second dict).
    candidates: dict[_Desired, Egress | list[Egress]] = {}
    for egress in owned:
        index = _marker(egress).index
        for node_id in egress.nodes:
            want = desired.find(egress.network, index, node_id)
            if want is not None:
                found = candidates.get(want)
                if found is None:
                    candidates[want] = egress
                elif isinstance(found, list):
                    found.append(egress)
                else:
                    candidates[want] = [found, egress]
    contested = [
        w
        for w, c in candidates.items()
        if isinstance(c, list) or len(c.nodes) != 1 or c.id in repeated
    ]
    taken: set[str] = set()
    losers: dict[str, tuple[Egress, Egress]] = {}
    for want in sorted(contested, key=_slot):
        group = candidates[want]
        if not isinstance(group, list):
            if group.id in taken:
                del candidates[want]
            else:
                taken.add(group.id)
            continue
        spec = want.spec
        free = [e for e in group if e.id not in taken]
        if not free:
            del candidates[want]
            continue
        free.sort(key=lambda e: (bool(_drift(e, spec)), len(e.nodes) != 1, e.id))
        keeper = free[0]
        candidates[want] = keeper
        taken.add(keeper.id)
        for other in free[1:]:
            losers.setdefault(other.id, (other, keeper))
    duplicates = [
        Action(
            kind=ActionKind.DELETE,
            reason=f"duplicate of {keeper.id}",
            network=egress.network,
            target=egress,
        )
        for egress_id, (egress, keeper) in sorted(losers.items())
        if egress_id not in taken
    ]
    return cast(dict[_Desired, Egress], candidates), duplicates  # every list is settled


def _slot(want: _Desired) -> RuleKey:
    return (want.network, want.index, want.node_id)


def _adopt_by_name(
    loose: list[Egress], desired: _DesiredRules, matched: dict[_Desired, Egress]
) -> set[str]:
    """Rule 1's fallback: a desired slot that no rule routes for takes a spare rule of ours with
    the same network, index and name, instead of a delete and a create. Returns the ids taken.

    A rule whose `nodes` was edited by hand, or emptied by Netmaker before its host joined
    again, then keeps its id (ACL policies in Netmaker refer to egress ids). Spare means one of
    the `loose` rules (matched to no slot, not a duplicate); the lowest id wins, so the choice
    is stable.
    """
    spare: dict[tuple[str, int, str], list[Egress]] = defaultdict(list)
    for egress in loose:
        spare[(egress.network, _marker(egress).index, egress.name)].append(egress)
    adopted: set[str] = set()
    if not spare:
        return adopted
    for want in sorted((w for w in desired.wants() if w not in matched), key=_slot):
        found = spare.get(
            (want.network, want.index, rule_name(want.kube_node, want.index, want.count))
        )
        if found:
            found.sort(key=lambda e: e.id)
            matched[want] = found.pop(0)
            adopted.add(matched[want].id)
    return adopted


def _drift(egress: Egress, spec: EgressSpec) -> list[str]:
    """The owned fields that differ, as short phrases for the action's reason."""
    changes: list[str] = []
    if not same_range(egress.range, spec.range):
        changes.append(f"range {egress.range or '(empty)'} -> {spec.range}")
    if egress.name != spec.name:
        changes.append(f"name {egress.name!r} -> {spec.name!r}")
    if egress.description != spec.description:
        changes.append("description")
    if egress.nat != spec.nat:
        changes.append(f"nat {_json(egress.nat)} -> {_json(spec.nat)}")
    if egress.status != spec.status:
        changes.append(f"status {_json(egress.status)} -> {_json(spec.status)}")
    if egress.nodes != spec.nodes:
        changes.append(f"nodes {dict(egress.nodes)} -> {dict(spec.nodes)}")
    return changes


def _json(flag: bool) -> str:
    """A boolean as Netmaker's API and dashboard write it (`true`, not Python's `True`)."""
    return "true" if flag else "false"


def _update_if_drifted(egress: Egress, want: _Desired) -> Action | None:
    """Rule 2: update in place, keeping the id, when any owned field drifted."""
    spec = want.spec
    changes = _drift(egress, spec)
    if not changes:
        return None
    return Action(
        kind=ActionKind.UPDATE,
        reason="drifted: " + "; ".join(changes),
        network=egress.network,
        spec=spec,
        target=egress,
        kube_node=want.kube_node,
    )


def _delete_unwanted(egress: Egress, marker: Marker, index: _Index) -> Action:
    """Rule 4: one of ours that nothing desires, with the first reason that explains it."""
    return Action(
        kind=ActionKind.DELETE,
        reason=_why_unwanted(egress, marker, index),
        network=egress.network,
        target=egress,
    )


def _why_unwanted(egress: Egress, marker: Marker, index: _Index) -> str:
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


def _gone(egress: Egress, host: str, index: _Index) -> str:
    """Why a rule of a host no Kubernetes node owns goes, naming the Kubernetes node: the one
    that resolved to the host (its delete is being passed), else the node the rule was named
    for when written (`<node> pods (i/n)`), else only the host."""
    name = index.gone_by_host.get(host) or named_for(egress.name)
    if name is None:
        return f"no Kubernetes node owns its Netmaker host {host}"
    if name == host:
        return f"Kubernetes node {name} is gone"
    return f"Kubernetes node {name} is gone (its Netmaker host was {host})"


def _guard_deletes(
    deletes: list[Action], owned: int, settings: PlanSettings, kube_complete: bool
) -> tuple[list[Action], list[Action], str | None]:
    """Rule 8: hold deletes before the first complete node list, and refuse a mass delete."""
    if not deletes:
        return [], [], None
    if not kube_complete:
        return (
            [],
            deletes,
            (
                f"{len(deletes)} delete(s) wait: the first complete list of Kubernetes nodes "
                "has not arrived"
            ),
        )
    limit = max(settings.max_delete_floor, int(owned * settings.max_delete_fraction))
    # A slot's copies (duplicates a lying egress list left) count once: one rule's worth lost.
    # Held, one copy keeps serving the slot's range: its other copies take no route away and
    # are never held (README), or they would stay after an honest pass.
    held: dict[tuple[str, int, tuple[str, ...]], Action] = {}
    copies: list[Action] = []
    for action in sorted(deletes, key=lambda a: a.target.id if a.target is not None else ""):
        target = action.target
        key: tuple[str, int, tuple[str, ...]]
        if target is None or not target.nodes:
            key = (action.network, -1, (target.id if target is not None else str(id(action)),))
        else:
            key = (action.network, _marker(target).index, tuple(sorted(target.nodes)))
        if key in held:
            copies.append(action)
        else:
            held[key] = action
    if len(held) > limit and not settings.allow_mass_delete:
        return (
            copies,
            list(held.values()),
            (
                f"mass-delete guard: refusing to delete {len(held)} of {owned} owned rules "
                f"(limit {limit}: {settings.max_delete_fraction:.0%} of owned, at least "
                f"{settings.max_delete_floor}); if this is intended, set {ALLOW_MASS_DELETE}"
            ),
        )
    return deletes, [], None


#: How a message tells the operator to turn the delete budgets off: as they set it.
ALLOW_MASS_DELETE = "ALLOW_MASS_DELETE=true (chart value config.allowMassDelete)"

_KIND_ORDER = {ActionKind.CREATE: 0, ActionKind.UPDATE: 1, ActionKind.DELETE: 2}


def _action_order(action: Action) -> tuple[int, str, str, str]:
    """Creates and updates before deletes, so a pass adds routes before it removes any."""
    ident = action.target.id if action.target else ""
    return (_KIND_ORDER[action.kind], action.network, action.subject, ident)
