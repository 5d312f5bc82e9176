"""`kaput-not plan` and `kaput-not status`: read the cluster and Netmaker once, and say what a
sync would do, or what is there; `plan --apply` does one guarded sync; `kaput-not acknowledge`
lets the delete budget's trip go, once.

Same configuration as `run` (the environment), same planner; no watch: one complete node list
and one Netmaker snapshot. `plan --apply` writes as `run` does: through the same write guard
and the same state on the Lease, only while holding the Lease (it refuses, naming the holder,
while another replica leads), and not at all under DRY_RUN.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import defaultdict
from collections.abc import Sequence
from contextlib import AsyncExitStack
from dataclasses import dataclass

from kaput_not.config import Settings
from kaput_not.controller.app import (
    StartupError,
    budget_settings,
    clients,
    plan_settings,
    state_store,
)
from kaput_not.controller.executor import Executor
from kaput_not.controller.guard import WriteGuard
from kaput_not.controller.guard_state import ACK_ANNOTATION, format_ack
from kaput_not.controller.metrics import Metrics
from kaput_not.controller.reconciler import PassReport, Reconciler
from kaput_not.core.egress import owned_by, parse_description
from kaput_not.core.model import Action, Egress, KubeNode, Plan
from kaput_not.core.planner import NetmakerView, plan
from kaput_not.kube.api import KubeApi
from kaput_not.kube.informer import NodeInformer
from kaput_not.kube.lease import LeaderElector, LeaseConfig
from kaput_not.netmaker.cache import CachedNetmaker

#: Where rules no Kubernetes node claims are listed.
UNCLAIMED = "(no node)"


@dataclass(frozen=True, slots=True)
class Reading:
    nodes: Sequence[KubeNode]
    view: NetmakerView
    #: What a sync does now (with `apply`: the guarded plan it did).
    plan: Plan
    applied: PassReport | None = None
    #: `plan --apply` under DRY_RUN: planned only, nothing written.
    dry_run: bool = False


class LeaseHeld(Exception):
    """`plan --apply` while another replica holds the Lease: one line naming the holder."""


async def read_once(settings: Settings, *, apply: bool = False) -> Reading:
    dry_run = apply and settings.dry_run
    apply = apply and not dry_run
    async with AsyncExitStack() as stack:
        client, kube = clients(settings, Metrics(), stack)
        informer = NodeInformer(kube, lambda _: None, label_selector=settings.node_selector)
        elector = await _hold_lease(settings, kube, stack) if apply else None
        guard = WriteGuard(
            budget_settings(settings),
            cluster=settings.cluster_name,
            store=state_store(settings, kube, elector),
        )
        if apply:
            remembered = await guard.peek()
            informer.remembered = remembered.nodes if remembered is not None else None
        await informer.sync_once()
        nodes = informer.nodes()
        cache = CachedNetmaker(client, ttl=3600.0)
        if not apply:
            view = await cache.view()
            return Reading(nodes, view, plan(nodes, view, plan_settings(settings)), None, dry_run)
        assert elector is not None
        executor = Executor(
            cache, concurrency=settings.netmaker_concurrency, may_write=elector.is_leader
        )
        report = await Reconciler(cache, executor, plan_settings(settings), guard).reconcile(nodes)
        return Reading(nodes, report.view, report.plan, report)


async def _hold_lease(settings: Settings, kube: KubeApi, stack: AsyncExitStack) -> LeaderElector:
    """Take the Lease for one guarded sync (released when `stack` closes), or `LeaseHeld`.

    Its identity is the replica's with `/plan` added: run inside a leader's pod, it must not
    pass for that leader."""
    le = settings.leader_election
    try:
        elector = LeaderElector(
            kube,
            LeaseConfig(
                namespace=le.namespace,
                name=le.name,
                identity=f"{le.identity}/plan",
                lease_seconds=le.lease_seconds,
                renew_deadline_seconds=le.renew_deadline_seconds,
                retry_period_seconds=le.retry_period_seconds,
            ),
        )
    except ValueError as exc:
        raise StartupError(str(exc)) from exc
    if not await elector.try_acquire():
        holder = elector.holder or "another writer"
        raise LeaseHeld(
            f"the Lease {le.namespace}/{le.name} is held by {holder}: plan --apply writes only "
            "while no replica leads; scale the controller down, or let it repair this itself"
        )
    renewing = asyncio.create_task(elector.renew_until_lost())

    async def give_back() -> None:
        renewing.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await renewing
        await elector.release()

    stack.push_async_callback(give_back)
    return elector


async def acknowledge(settings: Settings, expires_seconds: float) -> str:
    """Record an acknowledgement of the delete budget's trip, valid `expires_seconds`; return
    what to print: the state, the trip and its cause, and the acknowledgement."""
    async with AsyncExitStack() as stack:
        _client, kube = clients(settings, Metrics(), stack)
        store = state_store(settings, kube, None)
        guard = WriteGuard(budget_settings(settings), cluster=settings.cluster_name, store=store)
        if not await guard.ready(full=True):
            raise StartupError(guard.problem or "the guard state could not be read")
        value = format_ack(guard.now() + expires_seconds)
        await store.annotate({ACK_ANNOTATION: value})
        return (
            f"guard state on {store.where}: {guard.describe()}\n"
            f"acknowledged until {value} (the {ACK_ANNOTATION} annotation): the leader takes "
            "it within 30s while deletes are held, or at its next full pass; the deletes its "
            "budget refuses then go ahead once, and the counts then become the new base"
        )


def rules_by_node(reading: Reading, cluster: str | None) -> dict[str, list[tuple[Egress, int]]]:
    """Our rules per Kubernetes node (found through their routing Netmaker node's host), each
    with its index; rules no node claims under `UNCLAIMED`."""
    hosts = {h.id: h.name for h in reading.view.hosts}
    host_of = {n.id: hosts.get(n.host_id, "") for n in reading.view.nodes}
    kube_of = {k.netmaker_host: k.name for k in reading.nodes}
    found: dict[str, list[tuple[Egress, int]]] = defaultdict(list)
    for egresses in reading.view.egress.values():
        for egress in egresses:
            marker = parse_description(egress.description)
            if marker is None or not owned_by(marker, cluster):
                continue
            names = {kube_of.get(host_of.get(n, ""), "") for n in egress.nodes} - {""}
            for name in names or {UNCLAIMED}:
                found[name].append((egress, marker.index))
    return found


# -- what the commands print ---------------------------------------------------------------------


def plan_document(reading: Reading, cluster: str | None) -> dict[str, object]:
    """`kaput-not plan --output json`: the actions by node and network, and the skipped nodes."""
    owners = {
        e.id: name for name, rules in rules_by_node(reading, cluster).items() for e, _ in rules
    }

    def node_of(action: Action) -> str:
        if action.kube_node:
            return action.kube_node
        return owners.get(action.target.id, UNCLAIMED) if action.target else UNCLAIMED

    def entry(action: Action) -> dict[str, object]:
        return {
            "node": node_of(action),
            "network": action.network,
            "action": action.kind.value,
            "rule": action.subject,
            "egress_id": action.target.id if action.target else None,
            "range": action.spec.range
            if action.spec
            else action.target.range
            if action.target
            else "",
            "reason": action.reason,
        }

    p = reading.plan
    return {
        "in_sync": p.empty and not p.withheld,
        "actions": [entry(a) for a in p.actions],
        "withheld": [entry(a) for a in p.withheld],
        "refusal": p.refusal,
        "skipped": [
            {"node": r.name, "reason": r.reason.value if r.reason else None, "detail": r.detail}
            for r in p.nodes
            if r.reason is not None
        ],
        "warnings": list(p.warnings),
    }


def plan_table(document: dict[str, object]) -> str:
    lines: list[str] = []
    actions = _rows(document["actions"])
    if not actions and not document["withheld"]:
        lines.append("In sync: nothing to do.")
    by_node: dict[str, list[dict[str, object]]] = defaultdict(list)
    for row in actions:
        by_node[str(row["node"])].append(row)
    for node in sorted(by_node):
        lines.append(f"node {node}")
        for row in sorted(by_node[node], key=lambda r: (str(r["network"]), str(r["rule"]))):
            ident = f" {row['egress_id']}" if row["egress_id"] else ""
            lines.append(
                f"  [{row['network']}] {row['action']}{ident} {row['rule']!r} "
                f"{row['range']}: {row['reason']}"
            )
    held = _rows(document["withheld"])
    if held:
        lines.append(f"held back ({len(held)}): {document['refusal']}")
        lines += [f"  [{r['network']}] {r['action']} {r['rule']!r}: {r['reason']}" for r in held]
    skipped = _rows(document["skipped"])
    if skipped:
        lines.append("skipped nodes (no rule written for them):")
        lines += [f"  {r['node']}: {r['reason']}: {r['detail']}" for r in skipped]
    return "\n".join(lines)


def status_document(reading: Reading, cluster: str | None) -> list[dict[str, object]]:
    """`kaput-not status --output json`: every node, its host and networks, and its rules."""
    changing = {a.target.id for a in (*reading.plan.actions, *reading.plan.withheld) if a.target}
    rules = rules_by_node(reading, cluster)
    cidrs = {k.name: list(k.pod_cidrs) for k in reading.nodes}
    out: list[dict[str, object]] = []
    for report in reading.plan.nodes:
        out.append(
            {
                "node": report.name,
                "pod_cidrs": cidrs.get(report.name, []),
                "state": report.state.value,
                "reason": report.reason.value if report.reason else None,
                "detail": report.detail,
                "host": report.host,
                "networks": list(report.networks),
                "rules": [
                    {
                        "network": egress.network,
                        "index": index,
                        "egress_id": egress.id,
                        "range": egress.range,
                        "in_sync": egress.id not in changing,
                    }
                    for egress, index in sorted(rules.get(report.name, []), key=_rule_order)
                ],
            }
        )
    return out


def status_table(document: list[dict[str, object]]) -> str:
    lines = []
    for node in document:
        cidrs = ", ".join(str(c) for c in _items(node["pod_cidrs"])) or "no pod CIDRs"
        if node["reason"]:
            head = f"{node['node']} ({cidrs}): skipped: {node['reason']}: {node['detail']}"
        else:
            networks = ", ".join(str(n) for n in _items(node["networks"]))
            head = f"{node['node']} ({cidrs}): {node['state']}, host {node['host']} in {networks}"
        lines.append(head)
        for rule in _rows(node["rules"]):
            flag = "in sync" if rule["in_sync"] else "to repair"
            lines.append(
                f"  [{rule['network']}] index {rule['index']}: {rule['egress_id']} "
                f"{rule['range']} ({flag})"
            )
    return "\n".join(lines) or "No Kubernetes nodes."


def _rule_order(item: tuple[Egress, int]) -> tuple[str, int, str]:
    return (item[0].network, item[1], item[0].id)


def _rows(value: object) -> list[dict[str, object]]:
    return [row for row in value if isinstance(row, dict)] if isinstance(value, list) else []


def _items(value: object) -> list[object]:
    return list(value) if isinstance(value, list) else []
