"""What `kaput-not plan` and `kaput-not status` print: the documents (JSON) and the tables,
from one reading of the cluster and Netmaker (oneshot.py)."""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Sequence

from kaput_not.app.oneshot import Reading
from kaput_not.core.egress import named_for
from kaput_not.core.model import Action, ActionKind, Egress, NodeState
from kaput_not.core.ownership import Ownership

#: Where rules no Kubernetes node claims are listed.
UNCLAIMED = "(no node)"


def rules_by_node(reading: Reading, cluster: str | None) -> dict[str, list[tuple[Egress, int]]]:
    """Our rules per Kubernetes node (found through their routing Netmaker node's host), each
    with its index; rules no node claims under `UNCLAIMED`."""
    hosts = {h.id: h.name for h in reading.view.hosts}
    host_of = {n.id: hosts.get(n.host_id, "") for n in reading.view.nodes}
    kube_of = {k.netmaker_host: k.name for k in reading.nodes}
    ours = Ownership(cluster)
    found: dict[str, list[tuple[Egress, int]]] = defaultdict(list)
    for egresses in reading.view.egress.values():
        for egress in egresses:
            marker = ours.marker(egress.description)
            if marker is None:
                continue
            names = {kube_of.get(host_of.get(n, ""), "") for n in egress.nodes} - {""}
            for name in names or {UNCLAIMED}:
                found[name].append((egress, marker.index))
    return found


# -- what the commands print ---------------------------------------------------------------------


def natural(name: str) -> tuple[tuple[int, int | str], ...]:
    """A sort key that orders names as people count: big-1, big-2, big-10 (not big-1, big-10)."""
    return tuple((0, int(part)) if part.isdigit() else (1, part) for part in _DIGITS.split(name))


_DIGITS = re.compile(r"(\d+)")


class UnknownNames(Exception):
    """`plan NODE...` or `status NODE...` named what is neither a node nor a rule of ours."""


def plan_document(
    reading: Reading, cluster: str | None, only: Sequence[str] = ()
) -> dict[str, object]:
    """`kaput-not plan --output json`: the actions by node and network, the skipped nodes, and
    the counts; with `only`, just what concerns those Kubernetes nodes."""
    owners = {
        e.id: name for name, rules in rules_by_node(reading, cluster).items() for e, _ in rules
    }

    def node_of(action: Action) -> str:
        if action.kube_node:
            return action.kube_node
        return owners.get(action.target.id, UNCLAIMED) if action.target else UNCLAIMED

    def wanted(action: Action) -> bool:
        if not only:
            return True
        node = node_of(action)
        if node == UNCLAIMED and action.target is not None:
            node = named_for(action.target.name) or node  # a gone node's rules are still its
        return node in only

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
    actions = [entry(a) for a in p.actions if wanted(a)]
    withheld = [entry(a) for a in p.withheld if wanted(a)]
    counts = {
        kind.value: sum(1 for a in actions if a["action"] == kind.value) for kind in ActionKind
    }
    return {
        "in_sync": not actions and not withheld,
        "summary": {**counts, "held_back": len(withheld)},
        "actions": actions,
        "withheld": withheld,
        "refusal": p.refusal,
        "skipped": [
            {"node": r.name, "reason": r.reason.value if r.reason else None, "detail": r.detail}
            for r in sorted(p.nodes, key=lambda r: natural(r.name))
            if r.reason is not None and (not only or r.name in only)
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
    for node in sorted(by_node, key=natural):
        lines.append(f"node {node}")
        for row in sorted(
            by_node[node], key=lambda r: (str(r["network"]), natural(str(r["rule"])))
        ):
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
    summary = document["summary"]
    assert isinstance(summary, dict)
    lines.append(
        f"{summary['create']} to create, {summary['update']} to update, "
        f"{summary['delete']} to delete, {summary['held_back']} held back"
    )
    applied = document.get("applied")
    if isinstance(applied, dict):
        lines.append(
            f"applied: {applied['created']} created, {applied['updated']} updated, "
            f"{applied['deleted']} deleted, {applied['failed']} failed"
        )
    return "\n".join(lines)


def status_document(
    reading: Reading, cluster: str | None, only: Sequence[str] = ()
) -> dict[str, object]:
    """`kaput-not status --output json`: the totals, every node (its host, networks and rules),
    and the rules of ours no node claims (orphans, and rules the budgets hold back); with
    `only`, just those Kubernetes nodes and the rules named for them."""
    planned = {a.target.id: (a, False) for a in reading.plan.actions if a.target}
    planned.update({a.target.id: (a, True) for a in reading.plan.withheld if a.target})
    rules = rules_by_node(reading, cluster)
    cidrs = {k.name: list(k.pod_cidrs) for k in reading.nodes}

    def rule(egress: Egress, index: int) -> dict[str, object]:
        action, held = planned.get(egress.id, (None, False))
        return {
            "network": egress.network,
            "index": index,
            "egress_id": egress.id,
            "name": egress.name,
            "range": egress.range,
            "in_sync": action is None,
            "action": action.kind.value if action is not None else None,
            "held_back": held,
            "reason": action.reason if action is not None else None,
        }

    nodes: list[dict[str, object]] = []
    for report in sorted(reading.plan.nodes, key=lambda r: natural(r.name)):
        if only and report.name not in only:
            continue
        nodes.append(
            {
                "node": report.name,
                "pod_cidrs": cidrs.get(report.name, []),
                "state": report.state.value,
                "reason": report.reason.value if report.reason else None,
                "detail": report.detail,
                "host": report.host,
                "networks": list(report.networks),
                "rules": [
                    rule(e, i) for e, i in sorted(rules.get(report.name, []), key=_rule_order)
                ],
            }
        )
    unclaimed = [
        {**rule(e, i), "named_for": named_for(e.name)}
        for e, i in sorted(rules.get(UNCLAIMED, []), key=lambda r: (natural(r[0].name), r[0].id))
        if not only or named_for(e.name) in only
    ]
    shown = [r for n in nodes for r in _rows(n["rules"])] + unclaimed
    states = [str(n["state"]) for n in nodes]
    totals = {
        "nodes": len(nodes),
        **{state.value: states.count(state.value) for state in NodeState},
        "rules": len(shown),
        "rules_in_sync": sum(1 for r in shown if r["in_sync"]),
        **{
            f"rules_to_{kind.value}": sum(1 for r in shown if r["action"] == kind.value)
            for kind in (ActionKind.UPDATE, ActionKind.DELETE)
        },
        "rules_held_back": sum(1 for r in shown if r["held_back"]),
        "rules_unclaimed": len(unclaimed),
    }
    return {"totals": totals, "nodes": nodes, "unclaimed": unclaimed}


def unknown_names(reading: Reading, cluster: str | None, names: Sequence[str]) -> list[str]:
    """Of `names`, those that are neither a Kubernetes node nor named by a rule of ours."""
    known = {k.name for k in reading.nodes}
    known.update(
        found
        for egress, _ in rules_by_node(reading, cluster).get(UNCLAIMED, [])
        if (found := named_for(egress.name))
    )
    return [name for name in names if name not in known]


def status_table(document: dict[str, object], *, wide: bool = False) -> str:
    totals = document["totals"]
    assert isinstance(totals, dict)
    lines = [
        f"{_count(totals['nodes'], 'node')}: {totals['in-sync']} in sync, "
        f"{totals['pending']} pending, {totals['skipped']} skipped; "
        f"{_count(totals['rules'], 'rule')} of ours: "
        f"{totals['rules_in_sync']} in sync, {totals['rules_to_update']} to update, "
        f"{totals['rules_to_delete']} to delete, {totals['rules_held_back']} held back, "
        f"{totals['rules_unclaimed']} claimed by no node"
    ]
    rows = [("NODE", "STATE", "HOST", "NETWORKS", "RULES", "POD CIDRS")]
    details: list[list[str]] = [[]]
    for node in _rows(document["nodes"]):
        rules = _rows(node["rules"])
        repair = sum(1 for r in rules if not r["in_sync"])
        state = f"skipped: {node['reason']}" if node["reason"] else str(node["state"])
        rows.append(
            (
                str(node["node"]),
                state,
                str(node["host"] or "-"),
                ",".join(str(n) for n in _items(node["networks"])) or "-",
                f"{len(rules)}" + (f" ({repair} to repair)" if repair else ""),
                ", ".join(str(c) for c in _items(node["pod_cidrs"])) or "none",
            )
        )
        extra = [f"    {node['detail']}"] if node["reason"] and node["detail"] else []
        details.append(extra + [_rule_line(r) for r in rules])
    if len(rows) > 1:
        widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]) - 1)]
        for row, more in zip(rows, details, strict=True):
            cells = [cell.ljust(width) for cell, width in zip(row, widths, strict=False)]
            lines.append("  ".join([*cells, row[-1]]).rstrip())
            if wide:
                lines += more
    else:
        lines.append("No Kubernetes nodes.")
    unclaimed = _rows(document["unclaimed"])
    if unclaimed:
        lines.append(f"rules of ours no Kubernetes node claims ({len(unclaimed)}):")
        lines += [_rule_line(r, named=True) for r in unclaimed]
    return "\n".join(lines)


def _count(number: object, noun: str) -> str:
    return f"{number} {noun}" + ("" if number == 1 else "s")


def _rule_line(rule: dict[str, object], *, named: bool = False) -> str:
    if rule["in_sync"]:
        flag = "in sync"
    else:
        flag = f"to {rule['action']}" + (", held back" if rule["held_back"] else "")
        flag += f": {rule['reason']}"
    name = f" {rule['name']!r}" if named else f" index {rule['index']}:"
    return f"    [{rule['network']}]{name} {rule['egress_id']} {rule['range']} ({flag})"


def _rule_order(item: tuple[Egress, int]) -> tuple[str, int, str]:
    return (item[0].network, item[1], item[0].id)


def _rows(value: object) -> list[dict[str, object]]:
    return [row for row in value if isinstance(row, dict)] if isinstance(value, list) else []


def _items(value: object) -> list[object]:
    return list(value) if isinstance(value, list) else []
