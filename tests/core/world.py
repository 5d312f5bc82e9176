"""Helpers for planner tests: build snapshots and apply a plan the way Netmaker would."""

from __future__ import annotations

import itertools
from collections.abc import Iterable

from kaput_not.core.egress import normalize_cidr
from kaput_not.core.model import ActionKind, Egress, EgressSpec, Host, KubeNode, NmNode, Plan
from kaput_not.core.planner import NetmakerView

_ids = itertools.count(1)


def new_id(prefix: str = "e") -> str:
    return f"{prefix}-{next(_ids):06d}"


def egress(
    network: str,
    description: str,
    nodes: dict[str, int] | None = None,
    *,
    range: str = "10.0.0.0/24",
    name: str = "x",
    nat: bool = False,
    status: bool = True,
    id: str | None = None,
) -> Egress:
    return Egress(
        id=id or new_id(),
        network=network,
        name=name,
        description=description,
        range=range,
        nat=nat,
        status=status,
        nodes=dict(nodes or {}),
    )


def view(
    hosts: Iterable[Host], nodes: Iterable[NmNode], egresses: Iterable[Egress], networks=()
) -> NetmakerView:
    by_net: dict[str, list[Egress]] = {n: [] for n in networks}
    nodes = list(nodes)
    for n in nodes:
        by_net.setdefault(n.network, [])
    for e in egresses:
        by_net.setdefault(e.network, []).append(e)
    return NetmakerView(hosts=tuple(hosts), nodes=tuple(nodes), egress=by_net)


def apply(v: NetmakerView, p: Plan) -> NetmakerView:
    """The snapshot after Netmaker executed every action of the plan (as the server stores it)."""
    by_id = {e.id: e for es in v.egress.values() for e in es}
    order = [e.id for es in v.egress.values() for e in es]
    for action in p.actions:
        if action.kind is ActionKind.CREATE:
            assert action.spec is not None
            # Netmaker gives a new id and forces status true on create.
            created = stored(new_id("new"), action.spec.network, action.spec, status=True)
            by_id[created.id] = created
            order.append(created.id)
        elif action.kind is ActionKind.UPDATE:
            assert action.target is not None
            assert action.spec is not None
            assert action.target.id in by_id, "update of an egress that does not exist"
            # A PUT replaces every field but the id and the network (an egress never moves).
            by_id[action.target.id] = stored(action.target.id, action.target.network, action.spec)
        else:
            assert action.target is not None
            assert action.target.id in by_id, "delete of an egress that does not exist"
            del by_id[action.target.id]
    out: dict[str, list[Egress]] = {n: [] for n in v.egress}
    for eid in order:
        if eid in by_id:
            e = by_id[eid]
            out.setdefault(e.network, []).append(e)
    return NetmakerView(hosts=v.hosts, nodes=v.nodes, egress=out)


def stored(eid: str, network: str, spec: EgressSpec, *, status: bool | None = None) -> Egress:
    """The egress Netmaker stores for `spec`: range normalised, `nodes` replaced."""
    return Egress(
        id=eid,
        network=network,
        name=spec.name,
        description=spec.description,
        range=normalize_cidr(spec.range),
        nat=spec.nat,
        status=spec.status if status is None else status,
        nodes=dict(spec.nodes),
    )


def kube(name: str, *cidrs: str) -> KubeNode:
    return KubeNode(name=name, pod_cidrs=tuple(cidrs))
