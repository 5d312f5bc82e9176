"""Cluster-wide budgets on deletes and re-creates, across every pass within a window.

A broken API does not have to wipe the mesh in one pass: an empty relist becomes one delete
event per node, and each one-node pass deletes a rule or two. A per-pass limit never sees that.
So deletes are counted across all passes within a window (the resync period): once the deletes
of the window would pass the limit (`max_fraction` of our rules, and always allowed up to
`floor`), the budget trips, and every further delete is refused, logged and counted until the
state recovers (a full pass finds nothing to delete) or an operator allows mass deletes
(ALLOW_MASS_DELETE). A tripped budget does not reset with the window: a broken API that keeps
answering wrong must not win by waiting. The same budget guards the other direction: an egress list
that comes back incomplete makes our rules look missing, and re-creating them all would pile
up duplicates. A create for a slot that held one of our rules a moment ago is a re-create, and
re-creates are budgeted the same way; a rule or two deleted by hand is still repaired at once.

The guard works on the plan the pure planner made, before the executor writes it.
"""

from __future__ import annotations

import logging
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

from kaput_not.core.egress import owned_by, parse_description
from kaput_not.core.model import Action, ActionKind, Egress, Plan
from kaput_not.core.planner import NetmakerView
from kaput_not.netmaker import errors

if TYPE_CHECKING:
    from kaput_not.controller.executor import ApplyResult

log = logging.getLogger("kaput_not.guard")

#: (network, index, Netmaker node id): one rule slot of ours.
Slot = tuple[str, int, str]


@dataclass(frozen=True, slots=True)
class BudgetSettings:
    window_seconds: float = 600.0
    max_fraction: float = 0.5
    floor: int = 5
    #: The operator's switch (ALLOW_MASS_DELETE): no budget at all.
    unlimited: bool = False


class WindowBudget:
    """Actions spent within the last `window` seconds, against a limit that scales with the
    number of our rules."""

    def __init__(self, settings: BudgetSettings, clock: Callable[[], float]) -> None:
        self._settings = settings
        self._clock = clock
        self._spent: deque[float] = deque()
        #: Set by a refusal; only `recovered()` clears it.
        self.tripped = False

    def spent(self) -> int:
        self._expire()
        return len(self._spent)

    def limit(self, ours: int) -> int:
        return max(self._settings.floor, int(ours * self._settings.max_fraction))

    def allows(self, count: int, ours: int) -> bool:
        """Whether `count` more fit; a refusal trips the budget."""
        if self._settings.unlimited or count == 0:
            return True
        if not self.tripped and self.spent() + count <= self.limit(ours):
            return True
        self.tripped = True
        return False

    def recovered(self) -> None:
        """A full pass planned none of these actions: the state is sound again."""
        self.tripped = False

    def spend(self, count: int) -> None:
        now = self._clock()
        self._spent.extend([now] * count)

    def refund(self, count: int) -> None:
        """Take back `count` of the latest spends (actions charged but never written)."""
        for _ in range(min(max(count, 0), len(self._spent))):
            self._spent.pop()

    def _expire(self) -> None:
        horizon = self._clock() - self._settings.window_seconds
        while self._spent and self._spent[0] <= horizon:
            self._spent.popleft()


@dataclass(frozen=True, slots=True)
class Charge:
    """What one pass spent: its deletes, and the slots of its re-creates."""

    deletes: int
    recreates: list[Slot]


class WriteGuard:
    """Applies the delete and re-create budgets to each plan, and remembers our rules' slots.

    `known` holds, per slot, the id of our rule last seen there (refreshed by every full pass):
    a slot whose rule is missing from a later snapshot, without our own delete, is
    "vanished", and a create for it is a re-create.
    """

    def __init__(
        self,
        settings: BudgetSettings,
        *,
        cluster: str | None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._settings = settings
        self._cluster = cluster
        self._clock = clock
        self.deletes = WindowBudget(settings, clock)
        self.recreates = WindowBudget(settings, clock)
        # No index by id beside it: a delete finds its slots from its target (3 MB less at
        # 20,000 rules), and a slot whose rule was edited meanwhile waits for the next learn.
        self._known: dict[Slot, str] = {}
        self._peak: deque[tuple[float, int]] = deque()  # (time, rules of ours) per full pass
        #: Why the last pass held writes back, or None: for /readyz and the logs.
        self.holding: str | None = None

    def ours(self) -> int:
        """Our rules, as the largest count of the window (deletes do not shrink the base)."""
        horizon = self._clock() - self._settings.window_seconds
        while self._peak and self._peak[0][0] <= horizon:
            self._peak.popleft()
        return max([len(self._known), *(count for _, count in self._peak)])

    def learn(self, view: NetmakerView, owned: int) -> None:
        """After a full pass's read: our rules now, by slot."""
        self._peak.append((self._clock(), owned))
        # Updated in place: the slots of a pass in sync are the ones already known, so their
        # keys stay and each new tuple goes at once (a new dict per pass meant 20,000 new
        # tuples kept, and the old ones freed, on every resync at 10,000 dual-stack nodes).
        # No set of the slots seen, nor of the ids listed: a slot was seen if the rule now
        # recorded for it is listed there and holds it. Those sets took 6 MB a pass at
        # 20,000 rules; the rules by id, per network, take 0.7.
        known, cluster = self._known, self._cluster
        listed: dict[str, dict[str, Egress]] = {}
        for network, egresses in view.egress.items():
            here = listed.setdefault(network, {})
            for egress in egresses:
                here[egress.id] = egress
                for slot in _slots(network, egress, cluster):
                    known[slot] = egress.id
        unseen = [
            slot
            for slot, rule_id in known.items()
            if not _holds(listed.get(slot[0], {}).get(rule_id), slot, cluster)
        ]
        if not unseen:
            return
        routers = {n.id for n in view.nodes}
        # Vanished without our delete: remembered while its routing node exists, so a create
        # for the slot counts as a re-create however long the list stays wrong. A rule still
        # listed that no longer holds the slot (its nodes edited) has left it: forgotten.
        for slot in unseen:
            rule_id = known[slot]
            if slot[2] not in routers or any(rule_id in rules for rules in listed.values()):
                del known[slot]

    def created(self, made: Sequence[Egress]) -> None:
        """Rules we just created hold their slots from now on."""
        for egress in made:
            for slot in _slots(egress.network, egress, self._cluster):
                self._known[slot] = egress.id

    def check(self, plan: Plan, view: NetmakerView, *, full: bool = False) -> Plan:
        """`plan` with the deletes and re-creates over budget moved to `withheld`.

        A full pass that plans no delete (or no re-create) shows the state has recovered, and
        resets that budget's trip.
        """
        ours = max(self.ours(), plan.owned)
        actions = list(plan.actions)
        held: list[Action] = []
        reasons: list[str] = []
        recreates = self._recreates(actions, view)
        if full and not recreates:
            self.recreates.recovered()
        if full and not plan.count(ActionKind.DELETE) and not plan.withheld:
            self.deletes.recovered()
        if recreates and not self.recreates.allows(len(recreates), ours):
            held += recreates
            reasons.append(
                self._refusal("re-create", len(recreates), self.recreates, ours)
                + "; the egress list looks incomplete"
            )
        deletes = [a for a in actions if a.kind is ActionKind.DELETE]
        if deletes and not self.deletes.allows(len(deletes), ours):
            held += deletes
            reasons.append(self._refusal("delete", len(deletes), self.deletes, ours))
        if not held:
            return plan
        ids = {id(a) for a in held}
        refusal = "; ".join([*([plan.refusal] if plan.refusal else []), *reasons])
        return replace(
            plan,
            actions=tuple(a for a in actions if id(a) not in ids),
            withheld=(*plan.withheld, *held),
            refusal=refusal,
        )

    def spent(self, plan: Plan, view: NetmakerView) -> Charge:
        """Count what `plan` (as checked against `view`) is about to write against the budgets;
        `settle` the returned charge with what the executor did."""
        recreates = [_slot(a) for a in self._recreates(list(plan.actions), view)]
        self.recreates.spend(len(recreates))
        for action in plan.actions:
            if action.kind is ActionKind.DELETE and action.target is not None:
                # Ours to delete: its slot is no longer "held", so no later create is a re-create.
                target = action.target
                for slot in _slots(target.network, target, self._cluster):
                    if self._known.get(slot) == target.id:
                        del self._known[slot]
        self.deletes.spend(plan.count(ActionKind.DELETE))
        tripped = self.deletes.tripped or self.recreates.tripped
        # Held until the budget recovers, not just during the passes that were refused.
        self.holding = plan.refusal or (self.holding if tripped else None)
        return Charge(plan.count(ActionKind.DELETE), [s for s in recreates if s is not None])

    def settle(self, charge: Charge, result: ApplyResult) -> None:
        """Give back what was charged and not written: skipped (dry run, not the leader) or
        refused. A write whose outcome is unknown stays charged: it may have happened. Without
        this, deletes retried while they fail would trip the budget and hold them for good."""
        unknown = [f.action for f in result.failures if isinstance(f.error, errors.OutcomeUnknown)]
        unknown_deletes = sum(1 for a in unknown if a.kind is ActionKind.DELETE)
        self.deletes.refund(charge.deletes - result.deleted - unknown_deletes)
        written = {slot for e in result.made for slot in _slots(e.network, e, self._cluster)}
        written.update(s for s in map(_slot, unknown) if s is not None)
        self.recreates.refund(sum(1 for slot in charge.recreates if slot not in written))

    # -- internals -----------------------------------------------------------------------------

    def _refusal(self, what: str, count: int, budget: WindowBudget, ours: int) -> str:
        window = self._settings.window_seconds
        return (
            f"{what} budget: refusing to {what} {count} rule(s) ({budget.spent()} done in the "
            f"last {window:g}s, limit {budget.limit(ours)}: {self._settings.max_fraction:.0%} "
            f"of {ours} rules of ours, at least {self._settings.floor}); holding until a full "
            "pass finds the state sound again; set ALLOW_MASS_DELETE=true if this is intended"
        )

    def _recreates(self, actions: list[Action], view: NetmakerView) -> list[Action]:
        creates = [a for a in actions if a.kind is ActionKind.CREATE]
        if not creates or not self._known:
            return []
        present: dict[str, set[str]] = {}
        found: list[Action] = []
        for action in creates:
            slot = _slot(action)
            known = self._known.get(slot) if slot is not None else None
            if known is None or slot is None:
                continue
            network = slot[0]
            if network not in present:
                present[network] = {e.id for e in view.egress.get(network, ())}
            if known not in present[network]:
                found.append(action)
        return found


def _our_index(egress: Egress, cluster: str | None) -> int | None:
    """The index of `egress` if it is ours and has an id, else None."""
    marker = parse_description(egress.description)
    if marker is None or not owned_by(marker, cluster) or not egress.id:
        return None
    return marker.index


def _slots(network: str, egress: Egress, cluster: str | None) -> list[Slot]:
    """The slots `egress` holds in `network`: none unless it is ours and has an id."""
    index = _our_index(egress, cluster)
    return [] if index is None else [(network, index, node_id) for node_id in egress.nodes]


def _holds(egress: Egress | None, slot: Slot, cluster: str | None) -> bool:
    """Whether `egress`, listed in the slot's network, holds `slot` (as `_slots` would say)."""
    return egress is not None and slot[2] in egress.nodes and _our_index(egress, cluster) == slot[1]


def _slot(action: Action) -> Slot | None:
    spec = action.spec
    if spec is None or len(spec.nodes) != 1:
        return None
    marker = parse_description(spec.description)
    if marker is None:
        return None
    [node_id] = spec.nodes
    return (spec.network, marker.index, node_id)
