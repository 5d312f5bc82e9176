"""Which deletes of a plan take a route away: those alone spend the delete budget (docs/design.md
section 5). A delete whose range another rule of ours keeps serving, or whose every slot another
rule of ours keeps holding, loses nothing, and a route's copies count once."""

from __future__ import annotations

from kaput_not.core.egress import normalize_cidr
from kaput_not.core.model import Action, ActionKind
from kaput_not.core.ownership import Ownership, RuleKey
from kaput_not.core.view import NetmakerView


def losing(
    deletes: list[Action], actions: list[Action], view: NetmakerView | None, ours: Ownership
) -> list[Action]:
    """The deletes that take a route away: all but those whose (network, range) stays served by
    another rule of ours that exists now and keeps that range through the plan, those whose
    every slot another such rule keeps holding (a node's old CIDR, once a rule for its new one
    is there: as an update would, the node keeps its route), and one per route (range and
    routing nodes) of the others (the rest are its duplicates). A rule this plan creates, or
    updates onto the range, does not count: its write may fail, and the delete would then have
    taken the route away unbudgeted (the next pass sees the new rule and lets the delete go). A
    full pass passes its `view` (every rule kept counts); a node pass only its own plan's
    updates (no scan per event)."""
    if not deletes:
        return []
    gone = {a.target.id for a in deletes if a.target is not None}
    moved: set[str] = set()
    kept: set[tuple[str, str]] = set()
    held: set[RuleKey] = set()
    for action in actions:
        target, spec = action.target, action.spec
        if action.kind is not ActionKind.UPDATE or target is None or spec is None:
            continue
        held.update(ours.slots(action.network, target))
        if _range(spec.range) == _range(target.range):
            kept.add((action.network, _range(target.range)))
        else:
            moved.add(target.id)
    served = set(kept)
    if view is not None:
        networks = {a.network for a in deletes}
        for network in networks:
            for egress in view.egress.get(network, ()):
                if egress.id in gone or not egress.nodes:
                    continue
                slots = ours.slots(network, egress)
                held.update(slots)
                if slots and egress.id not in moved:
                    served.add((network, _range(egress.range)))
    # Of the deletes of one route (range and routing nodes) that nothing kept serves, one takes
    # the route away; the others are its duplicates: were that one held, it would keep serving
    # the route. Two gone nodes' rules on one range through different hosts are two routes: if
    # the node list lied, each host's pods lose theirs.
    losing: list[Action] = []
    lost: set[tuple[str, str, frozenset[str]]] = set()
    for action in deletes:
        target = action.target
        if target is None:
            losing.append(action)
            continue
        network, cidr = action.network, _range(target.range)
        route = (network, cidr, frozenset(target.nodes))
        slots = ours.slots(network, target)
        if slots and all(slot in held for slot in slots):
            continue
        if (network, cidr) not in served and route not in lost:
            losing.append(action)
            lost.add(route)
    return losing


def _range(cidr: str) -> str:
    try:
        return normalize_cidr(cidr)
    except ValueError:
        return cidr
