"""Rules 1 and 3: which existing rule of ours stands for each desired slot, which are duplicates,
and what drifted (rule 2 rewrites it)."""

from __future__ import annotations

import itertools
from collections import defaultdict
from collections.abc import Mapping
from typing import cast

from kaput_not.core.desired import Desired, DesiredRules
from kaput_not.core.egress import Marker, parse_description, rule_name, same_range
from kaput_not.core.model import Action, ActionKind, Egress, EgressSpec
from kaput_not.core.ownership import RuleKey


def marker_of(egress: Egress) -> Marker:
    """The marker of one of our rules (the planner kept only rules that have one)."""
    marker = parse_description(egress.description)
    assert marker is not None
    return marker


def repeated_ids(owned: list[Egress]) -> set[str]:
    """Ids listed more than once (none from a sound server: an id is one row of one network).

    A server that ignores `?network=`, say, lists every rule in every network. Such copies are
    matched and kept by id, never as separate rules: a copy left unmatched must not read as
    unwanted and be deleted (by id, taking the live rule with it), nor take a second slot.
    Found by sorting, not with a set of every id (memory per rule).
    """
    ids = sorted(e.id for e in owned)
    return {a for a, b in itertools.pairwise(ids) if a == b}


def routes_its_slot(
    egress: Egress, desired: DesiredRules, matched: Mapping[Desired, Egress]
) -> bool:
    """Whether `egress` is the rule matched to a slot it routes for."""
    index = marker_of(egress).index
    for node_id in egress.nodes:
        want = desired.find(egress.network, index, node_id)
        if want is not None and matched.get(want) is egress:
            return True
    return False


def match(
    owned: list[Egress], desired: DesiredRules, repeated: set[str]
) -> tuple[dict[Desired, Egress], list[Action]]:
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
    candidates: dict[Desired, Egress | list[Egress]] = {}
    for egress in owned:
        index = marker_of(egress).index
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
        free.sort(key=lambda e: (bool(drift(e, spec)), len(e.nodes) != 1, e.id))
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
    return cast(dict[Desired, Egress], candidates), duplicates  # every list is settled


def _slot(want: Desired) -> RuleKey:
    return (want.network, want.index, want.node_id)


def adopt_by_name(
    loose: list[Egress], desired: DesiredRules, matched: dict[Desired, Egress]
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
        spare[(egress.network, marker_of(egress).index, egress.name)].append(egress)
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


def drift(egress: Egress, spec: EgressSpec) -> list[str]:
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
