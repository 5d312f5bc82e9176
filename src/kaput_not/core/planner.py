"""Desired versus actual egress rules, turned into a plan of creates, updates and deletes.

The planner is a pure function of three snapshots: Kubernetes nodes (name and pod CIDRs),
Netmaker hosts and nodes, and every egress in the networks involved. The same function serves
one Kubernetes node (after an event) and the whole cluster (start-up and periodic resync), so an
event and a resync can never disagree. Every action carries a reason a person can read.

A node's pass is a pass over the hosts it resolves to (now, and before a delete or a change of
annotation) and every node that claims them, found through the claims index (core/claims.py)
rather than a scan: ownership of a host is decided from all its claimants in either scope.

Rules (numbered as in docs/design.md section 3; 5-7, 12 and 14 are the controller's), each in a
function named for it: here, or beside it in core/matching.py (1-3), core/host_owners.py and
core/refusals.py (9, 11, 13); the pass's lookups are core/pass_index.py, what it says about each
node core/reports.py.

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
   delete an implausible share of our rules unless the operator allows it. The limit, and which
   rules are ours (core/ownership.py), are decided once per pass and handed on in the plan:
   the budget across passes and restarts is the write guard's (controller/guard.py).
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

`NetmakerView`, `members`, `PlanSettings`, `RuleKey` and `ALLOW_MASS_DELETE` live in the modules
beside this one and are exported here too, where their users import them from.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from kaput_not.core.claims import KubeClaims
from kaput_not.core.desired import Desired, desired_rules
from kaput_not.core.egress import Marker
from kaput_not.core.matching import (
    adopt_by_name,
    drift,
    marker_of,
    match,
    repeated_ids,
    routes_its_slot,
)
from kaput_not.core.model import Action, ActionKind, Egress, KubeNode, Plan
from kaput_not.core.ownership import ALLOW_MASS_DELETE, DeleteLimit, Ownership, RuleKey
from kaput_not.core.pass_index import PassIndex, build_index
from kaput_not.core.refusals import unusable_node_ids
from kaput_not.core.reports import node_reports, why_unwanted
from kaput_not.core.settings import PlanSettings
from kaput_not.core.view import NetmakerView, members, narrowed

__all__ = ["ALLOW_MASS_DELETE", "NetmakerView", "PlanSettings", "RuleKey", "members", "plan"]


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
        netmaker = narrowed(netmaker, sorted(scope))
    index = build_index(kube_nodes, netmaker, settings, claims, full=only is None)
    index.gone_by_host = {h: n for n, h in resolved.items() if n not in index.kube}
    warnings: list[str] = []
    protected = unusable_node_ids(index, warnings, cidrless_expired)
    for name in keep - index.kube.keys():
        for host in index.hosts_by_name.get(resolved.get(name, name), []):
            protected.update(index.node_ids_by_host.get(host.id, ()))
    desired = desired_rules(index, settings, protected)
    # Built once per pass and handed on in the plan: the write guard judges by the same.
    ours, limit = settings.ownership(), settings.delete_limit()
    owned = _owned_rules(netmaker, ours, index, only, protected)

    actions: list[Action] = []
    repeated = repeated_ids(owned)
    matched, duplicates = match(owned, desired, repeated)
    # Rules kept other than as the rule matched to a slot they route for: duplicates' targets,
    # adopted rules, and every copy of a matched id listed more than once. Few, so a set is
    # cheap (a set of every matched id, built three times a pass, was not).
    claimed = {a.target.id for a in duplicates if a.target}
    if repeated:
        claimed |= {e.id for e in matched.values() if e.id in repeated}
    # Ours, neither claimed nor matched to a slot they route for: found once, as adoption (which
    # only gives them slots nobody matched) leaves the rest of them as they are.
    loose = [e for e in owned if e.id not in claimed and not routes_its_slot(e, desired, matched)]
    adopted = adopt_by_name(loose, desired, matched)
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
    unwanted = [_delete_unwanted(e, marker_of(e), index) for e in loose if e.id not in adopted]
    allowed, withheld, refusal = _guard_deletes(unwanted, len(owned), limit, kube_complete)
    actions.extend(allowed)
    actions.sort(key=_action_order)
    return Plan(
        actions=tuple(actions),
        withheld=tuple(withheld),
        refusal=refusal,
        warnings=tuple(warnings),
        owned=len(owned),
        nodes=node_reports(index, [*actions, *withheld], all_hosts),
        ownership=ours,
        limit=limit,
    )


def _owned_rules(
    netmaker: NetmakerView,
    ours: Ownership,
    index: PassIndex,
    only: str | None,
    protected: set[str],
) -> list[Egress]:
    """Our rules in scope. Foreign and other-cluster rules never get here.

    The rules alone, not with their markers: a tuple per rule is memory per rule, and
    `marker_of` reads one again from the description cache."""
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
            if ours.index(egress) is None or not protected.isdisjoint(egress.nodes):
                continue
            owned.append(egress)
    return owned


def _update_if_drifted(egress: Egress, want: Desired) -> Action | None:
    """Rule 2: update in place, keeping the id, when any owned field drifted."""
    spec = want.spec
    changes = drift(egress, spec)
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


def _delete_unwanted(egress: Egress, marker: Marker, index: PassIndex) -> Action:
    """Rule 4: one of ours that nothing desires, with the first reason that explains it."""
    return Action(
        kind=ActionKind.DELETE,
        reason=why_unwanted(egress, marker, index),
        network=egress.network,
        target=egress,
    )


def _guard_deletes(
    deletes: list[Action], owned: int, limit: DeleteLimit, kube_complete: bool
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
    most = limit.of(owned)
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
            key = (action.network, marker_of(target).index, tuple(sorted(target.nodes)))
        if key in held:
            copies.append(action)
        else:
            held[key] = action
    if len(held) > most and not limit.unlimited:
        return (
            copies,
            list(held.values()),
            (
                f"mass-delete guard: refusing to delete {len(held)} of {owned} owned rules "
                f"(limit {most}: {limit.fraction:.0%} of owned, at least "
                f"{limit.floor}); if this is intended, set {ALLOW_MASS_DELETE}"
            ),
        )
    return deletes, [], None


_KIND_ORDER = {ActionKind.CREATE: 0, ActionKind.UPDATE: 1, ActionKind.DELETE: 2}


def _action_order(action: Action) -> tuple[int, str, str, str]:
    """Creates and updates before deletes, so a pass adds routes before it removes any."""
    ident = action.target.id if action.target else ""
    return (_KIND_ORDER[action.kind], action.network, action.subject, ident)
