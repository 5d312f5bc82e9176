"""Cluster-wide budgets on deletes and re-creates, kept in the cluster (docs/design.md rule 8).

A broken API does not have to wipe the mesh in one pass: an empty relist becomes one delete
event per node, and each one-node pass deletes a rule or two; a restart, or one window after
another, must not start the count again either. So the delete budget bounds the *total* of our
rules lost against their high-water mark over a long window (BUDGET_WINDOW): at most
`max_fraction` of that mark (and always up to `floor`). Once a delete would pass it, the budget
trips, and every further delete that takes a route away is refused, logged and counted, until
the counts recover (a full pass plans no such delete, or finds as many rules of ours as the
high-water mark) or an operator acknowledges the trip once (`kaput-not acknowledge`). A
tripped budget does not reset with the window: a broken API that keeps answering wrong must
not win by waiting. The budget's memory (`guard_state.GuardState`) lives on the Lease, is read
before the first write of every process (`run` and `plan --apply`), and what a pass is about
to delete is charged and saved before the deletes are sent: a state that cannot be saved holds
the deletes.

A delete whose (network, range) stays served by another rule of ours that exists and keeps that
range (a node-pool replacement that reused the CIDRs, once the new rules are written; a
duplicate), or whose every slot another rule of ours that exists keeps holding (a node's old
CIDR beside the rule for its new one: an update in two steps), takes no route away: it is no
loss, and is never held. A rule created in the same
plan does not count yet: its write may fail. A full pass counts a slot's copies once in our
rules: counted as rules, the copies a lying egress list made would hide the routes lost.

The re-create budget guards the other direction, within the process: an egress list that comes
back incomplete makes our rules look missing, and re-creating them all would pile up
duplicates. A create for a slot that held one of our rules a moment ago is a re-create; up to
the budget of them are written, and once a full pass lists the rules they made (the list is
honest: a hand delete), they are given back, so repairs are never starved. A new process has
no earlier list: when its first egress list, read twice, still shows fewer rules of ours than
the cluster remembers, its creates for as many slots as are missing count as re-creates too
(`unseen`), so a list that stays incomplete across a restart piles up no more duplicates. That
first list is confirmed by whichever pass reads it first, a node pass too. A re-create does not
raise our rules' high-water mark: the rule it stands for is counted there already.

The guard works on the plan the pure planner made, before the executor writes it.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

from kaput_not.controller.guard_state import (
    Acknowledgement,
    GuardState,
    MemoryStore,
    StateError,
    StateStore,
    Trip,
    format_ack,
    parse_ack,
)
from kaput_not.core.egress import normalize_cidr, owned_by, parse_description
from kaput_not.core.model import Action, ActionKind, Egress, Plan
from kaput_not.core.planner import ALLOW_MASS_DELETE, NetmakerView
from kaput_not.netmaker import errors

if TYPE_CHECKING:
    from kaput_not.core.applied import ApplyResult

log = logging.getLogger("kaput_not.guard")

#: While the delete budget is tripped, node passes look for an acknowledgement this often.
ACK_POLL_SECONDS = 30.0

#: (network, index, Netmaker node id): one rule slot of ours.
Slot = tuple[str, int, str]


@dataclass(frozen=True, slots=True)
class BudgetSettings:
    #: BUDGET_WINDOW: how long the high-water mark and the deletes spent are remembered.
    window_seconds: float = 86400.0
    max_fraction: float = 0.5
    floor: int = 5
    #: The operator's switch (ALLOW_MASS_DELETE): no budget at all.
    unlimited: bool = False


class WindowBudget:
    """Re-creates spent within the last `window` seconds, against a limit that scales with the
    number of our rules (in-process: a new process checks its first egress list instead)."""

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

    def allowance(self, count: int, ours: int) -> int:
        """How many of `count` more fit (all, some or none); holding any back trips it."""
        if self._settings.unlimited or count == 0:
            return count
        room = 0 if self.tripped else max(self.limit(ours) - self.spent(), 0)
        if room < count:
            self.tripped = True
        return min(room, count)

    def recovered(self) -> None:
        """The state is sound again (a full pass planned none, or listed what was written)."""
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


class DeleteBudget:
    """The delete budget, as the state kept in the cluster says it stands."""

    def __init__(self, guard: WriteGuard) -> None:
        self._guard = guard

    @property
    def tripped(self) -> bool:
        return self._guard.state.trip is not None

    def spent(self) -> int:
        """Deletes that took a route away, charged within the window."""
        guard = self._guard
        guard.state.expire(guard.now(), guard.settings.window_seconds)
        return guard.state.spent_total()


@dataclass(frozen=True, slots=True)
class Charge:
    """What one pass spent: its deletes (those that take a route away: `losing`), and the
    slots of its re-creates."""

    deletes: int
    recreates: list[Slot]
    losing: int = 0


class WriteGuard:
    """Applies the delete and re-create budgets to each plan, and remembers our rules' slots.

    `state` is the budget's memory, loaded from `store` (the Lease) by the first pass of the
    process and saved by `save()`. `known` holds, per slot, the id of our rule last seen there
    (refreshed by every full pass): a slot whose rule is missing from a later snapshot, without
    our own delete, is "vanished", and a create for it is a re-create.
    """

    def __init__(
        self,
        settings: BudgetSettings,
        *,
        cluster: str | None,
        clock: Callable[[], float] = time.time,
        store: StateStore | None = None,
    ) -> None:
        self.settings = settings
        self._settings = settings
        self._cluster = cluster
        self._clock = clock
        self._store: StateStore = store if store is not None else MemoryStore()
        self.state = GuardState()
        #: The stored state was read by this process and this guard is its writer now (no
        #: store given: a guard of its own, with nothing to read).
        self._owner = store is None
        #: The first full pass's egress list still has to be compared with the remembered count.
        self.first_view_pending = True
        self._dirty = False
        self._save_lock = asyncio.Lock()
        self._read_at = float("-inf")
        #: Why the state could not be read or saved (None when it could): deletes wait then.
        self.problem: str | None = None
        self.deletes = DeleteBudget(self)
        self.recreates = WindowBudget(settings, clock)
        # No index by id beside it (memory per rule): a delete finds its slots from its
        # target, and a slot whose rule was edited meanwhile waits for the next learn.
        self._known: dict[Slot, str] = {}
        #: Ids of rules re-created and not listed by a full pass yet.
        self._recreated: set[str] = set()
        #: Rules of ours the cluster remembers that this process's first egress list, read
        #: twice, did not show: as many creates count as re-creates (the list may hide them),
        #: until a full pass lists what they wrote (the list is honest then).
        self.unseen = 0
        #: The deletes `check` let through that take a route away (by identity), for `spent`.
        self._losing: set[int] = set()
        #: Why the last pass held writes back, or None: for /readyz and the logs.
        self.holding: str | None = None

    def now(self) -> float:
        return self._clock()

    @property
    def owner(self) -> bool:
        """The stored state has been read by this process (it may write now)."""
        return self._owner

    # -- the state in the cluster ------------------------------------------------------------

    async def peek(self) -> GuardState | None:
        """The stored state, read without adopting it (for the informer's first list)."""
        try:
            return (await self._store.load()).state
        except StateError as exc:
            log.warning("%s", exc)
            return None

    async def ready(self, *, full: bool) -> bool:
        """Before a pass writes: the state is read (the first time, adopted; at each full pass,
        for a new acknowledgement). False when it could not be read by this process yet."""
        # Held back: an operator's acknowledgement is looked for sooner than the next full
        # pass, at most every ACK_POLL_SECONDS (not one read per node event).
        quiet = self.state.trip is None or self.now() - self._read_at < ACK_POLL_SECONDS
        if self._owner and not full and quiet:
            return True
        self._read_at = self.now()
        try:
            stored = await self._store.load()
        except StateError as exc:
            self.problem = f"the guard state could not be read: {exc}"
            return self._owner
        if not self._owner:
            self.state = stored.state or GuardState()
            self._owner = True
            log.info("guard state read: %s", self.describe())
        if self.problem and self.problem.startswith("the guard state could not be read"):
            self.problem = None
        self._take_ack(stored.ack)
        return True

    async def save(self) -> bool:
        """Write the state if it changed; False (and `problem` set) when that failed."""
        if not self._dirty:
            return True
        async with self._save_lock:
            if not self._dirty:
                return True
            self._dirty = False
            try:
                await self._store.save(self.state)
            except StateError as exc:
                self._dirty = True
                self.problem = f"the guard state could not be saved: {exc}"
                return False
        if self.problem and self.problem.startswith("the guard state could not be saved"):
            self.problem = None
        return True

    def describe(self) -> str:
        """The state in one line, for the logs and `kaput-not acknowledge`."""
        state, window = self.state, self._settings.window_seconds
        state.expire(self.now(), window)
        trip = f"tripped: {state.trip.cause}" if state.trip else "not tripped"
        return (
            f"{trip}; rules of ours last seen {_count(state.owned)} (high-water "
            f"{state.high_owned()} within {window:g}s), nodes {_count(state.nodes)} (high-water "
            f"{state.high_nodes()}), {state.spent_total()} delete(s) spent"
        )

    def _take_ack(self, value: str | None) -> None:
        if value is None or (self.state.ack is not None and self.state.ack.id == value):
            return
        try:
            expires = parse_ack(value)
        except StateError as exc:
            log.warning("%s", exc)
            return
        self.state.ack = Acknowledgement(id=value, expires=expires)
        self._dirty = True
        log.info("an acknowledgement of the delete budget arrived, valid until %s", value)

    def _use_ack(self) -> bool:
        """Use the operator's acknowledgement, if one is there, unused and not expired."""
        ack, now = self.state.ack, self.now()
        if ack is None or ack.used_at is not None or ack.expires <= now:
            return False
        cause = self.state.trip.cause if self.state.trip else "no trip"
        self.state.ack = replace_ack(ack, used_at=now)
        self.state.accept(now, self._settings.window_seconds)
        self._dirty = True
        log.warning(
            "acknowledgement %s used (trip was: %s): the counts now are the new base", ack.id, cause
        )
        return True

    # -- passes ------------------------------------------------------------------------------

    def ours(self) -> int:
        """Our rules' high-water mark within the window (deletes do not shrink the base)."""
        self.state.expire(self.now(), self._settings.window_seconds)
        return max(self.state.high_owned(), len(self._known))

    def learn(self, view: NetmakerView, nodes: int | None = None) -> None:
        """After a full pass's read: our rules now, by slot, and the counts for the state.

        Our rules are counted in `view`, every one, those of a node whose rules the planner
        leaves alone too (a refused pod CIDR): counted by the plan, they looked lost. A rule
        whose every slot a rule listed before it holds is a copy (a duplicate a lying egress
        list made the product write) and is not counted: copies counted as rules would raise
        the count back to the high-water mark, hiding routes already lost, and let as many
        more go."""
        # Updated in place: the slots of a pass in sync are the ones already known, so their
        # keys stay and each new tuple goes at once (a new dict per pass meant 20,000 new
        # tuples kept, and the old ones freed, on every resync at 10,000 dual-stack nodes).
        # No set of the slots seen, nor of the ids listed: a slot was seen if the rule now
        # recorded for it is listed there and holds it. Those sets cost several times what
        # the rules by id, per network, do.
        known, cluster = self._known, self._cluster
        listed: dict[str, dict[str, Egress]] = {}
        copies = owned = 0
        for network, egresses in view.egress.items():
            here = listed.setdefault(network, {})
            for egress in egresses:
                repeated = egress.id in here
                here[egress.id] = egress
                index = _our_index(egress, cluster)
                if index is None:
                    continue
                owned += not repeated
                slots = [(network, index, node_id) for node_id in egress.nodes]
                copy = bool(slots) and not repeated
                for slot in slots:
                    # Held already by a rule listed earlier in this pass: this one is a copy.
                    earlier = known.get(slot)
                    copy = copy and earlier != egress.id and earlier in here
                    known[slot] = egress.id
                copies += copy
        self.state.sample(self.now(), self._settings.window_seconds, max(owned - copies, 0), nodes)
        self._dirty = True
        if self._recreated and all(
            any(rule_id in rules for rules in listed.values()) for rule_id in self._recreated
        ):
            # What the re-creates wrote is listed: the list is honest (the rules were deleted
            # by hand), so the repair goes on at the next pass instead of starving.
            self.recreates.refund(len(self._recreated))
            self.recreates.recovered()
            self._recreated.clear()
            self.unseen = 0
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

    def created(self, made: Sequence[Egress], charge: Charge | None = None) -> None:
        """Rules we just created hold their slots from now on."""
        cluster = self._cluster
        # A re-create (of `charge`) stands for a rule of a slot the mark counts already: if the
        # list hid it, the new rule is a copy, and a mark raised by copies would show routes
        # lost that never were (the copies count once in the next full pass's count).
        again = set(charge.recreates) if charge is not None else set()
        new = sum(
            1 for egress in made if not again.intersection(_slots(egress.network, egress, cluster))
        )
        if new:
            # Into the high-water mark at once: a rule we made is a route that can be lost.
            owned = (self.state.owned or 0) + new
            self.state.sample(self.now(), self._settings.window_seconds, owned, None)
            self._dirty = True
        for egress in made:
            for slot in _slots(egress.network, egress, cluster):
                self._known[slot] = egress.id

    def check(self, plan: Plan, view: NetmakerView, *, full: bool = False) -> Plan:
        """`plan` with the deletes and re-creates over budget moved to `withheld`."""
        ours = max(self.ours(), plan.owned)
        actions = list(plan.actions)
        held: list[Action] = []
        reasons: list[str] = []
        recreates = self._recreates(actions, view)
        if full and not recreates:
            self.recreates.recovered()
        allowed = self.recreates.allowance(len(recreates), ours)
        if allowed < len(recreates):
            held += recreates[allowed:]
            reasons.append(
                self._refusal("re-create", len(recreates) - allowed, self.recreates, ours)
                + "; the egress list looks incomplete"
            )
        deletes = [a for a in actions if a.kind is ActionKind.DELETE]
        losing = _losing(deletes, actions, view if full else None, self._cluster)
        state = self.state
        if full and state.trip is not None and (not losing or self._loss() <= 0):
            log.info("the delete budget's trip is over: the counts recovered (%s)", state.trip)
            state.trip = None
            self._dirty = True
        self._losing = {id(a) for a in losing}
        if losing and not self._settings.unlimited:
            if not self._owner:
                held += losing
                reasons.append(
                    f"delete budget: holding {len(losing)} delete(s): "
                    f"{self.problem or 'the guard state has not been read yet'}"
                )
            else:
                room = self._delete_room(len(losing))
                if room < len(losing) and self._use_ack():
                    room = self._delete_room(len(losing))
                if room < len(losing):
                    refused = len(losing) - room
                    held += losing[room:]
                    reason = self._delete_refusal(refused, len(losing))
                    reasons.append(reason)
                    if state.trip is None:
                        state.trip = Trip(since=self.now(), cause=reason)
                        self._dirty = True
        if not held:
            return plan
        ids = {id(a) for a in held}
        self._losing -= ids
        refusal = "; ".join([*([plan.refusal] if plan.refusal else []), *reasons])
        return replace(
            plan,
            actions=tuple(a for a in actions if id(a) not in ids),
            withheld=(*plan.withheld, *held),
            refusal=refusal,
        )

    def spent(self, plan: Plan, view: NetmakerView) -> Charge:
        """Count what `plan` (as checked against `view`) is about to write against the budgets,
        write-ahead (`save()` it before the writes); `settle` the returned charge with what the
        executor did."""
        recreated = self._recreates(list(plan.actions), view)
        recreates = [_slot(a) for a in recreated]
        self.recreates.spend(len(recreates))
        if self.unseen:
            known = self._known
            self.unseen -= sum(1 for slot in recreates if slot is None or slot not in known)
            self.unseen = max(self.unseen, 0)
        losing = 0
        for action in plan.actions:
            if action.kind is ActionKind.DELETE and action.target is not None:
                losing += id(action) in self._losing
                # Ours to delete: its slot is no longer "held", so no later create is a re-create.
                target = action.target
                for slot in _slots(target.network, target, self._cluster):
                    if self._known.get(slot) == target.id:
                        del self._known[slot]
        self._losing = set()
        deletes = plan.count(ActionKind.DELETE)
        state = self.state
        if deletes and state.owned is not None:
            state.owned = max(state.owned - deletes, 0)
        if losing:
            state.charge(self.now(), self._settings.window_seconds, losing)
        if deletes:
            self._dirty = True
        tripped = state.trip is not None or self.recreates.tripped
        # Held until the budget recovers, not just during the passes that were refused.
        self.holding = plan.refusal or (self.holding if tripped else None)
        return Charge(deletes, [s for s in recreates if s is not None], losing)

    def withhold_deletes(self, plan: Plan, charge: Charge) -> Plan:
        """The state could not be saved: the deletes charged are not sent, but held."""
        deletes = tuple(a for a in plan.actions if a.kind is ActionKind.DELETE)
        if not deletes:
            return plan
        self._refund_deletes(charge, charge.deletes)
        reason = f"delete budget: holding {len(deletes)} delete(s): {self.problem}"
        self.holding = reason
        return replace(
            plan,
            actions=tuple(a for a in plan.actions if a.kind is not ActionKind.DELETE),
            withheld=(*plan.withheld, *deletes),
            refusal="; ".join([*([plan.refusal] if plan.refusal else []), reason]),
        )

    def settle(self, charge: Charge, result: ApplyResult) -> None:
        """Give back what was charged and not written: skipped (dry run, not the leader) or
        refused. A write whose outcome is unknown stays charged: it may have happened. Without
        this, deletes retried while they fail would trip the budget and hold them for good."""
        unknown = [f.action for f in result.failures if isinstance(f.error, errors.OutcomeUnknown)]
        unknown_deletes = sum(1 for a in unknown if a.kind is ActionKind.DELETE)
        self._refund_deletes(charge, charge.deletes - result.deleted - unknown_deletes)
        if not charge.recreates:
            return  # the usual pass: no re-create charged, none to refund or to remember
        written = {slot for e in result.made for slot in _slots(e.network, e, self._cluster)}
        for egress in result.made:
            if any(slot in charge.recreates for slot in _slots(egress.network, egress, None)):
                self._recreated.add(egress.id)
        written.update(s for s in map(_slot, unknown) if s is not None)
        self.recreates.refund(sum(1 for slot in charge.recreates if slot not in written))

    # -- internals -----------------------------------------------------------------------------

    def _refund_deletes(self, charge: Charge, count: int) -> None:
        """`count` of the charge's deletes were not written: the losing ones are given back
        first (a refused delete of a duplicate and of a route weigh the same here)."""
        count = max(count, 0)
        if not count:
            return
        state = self.state
        if state.owned is not None:
            state.owned += count
        state.refund(min(count, charge.losing))
        self._dirty = True

    def _loss(self) -> int:
        """Rules of ours lost against the high-water mark, as the state counts them now."""
        state = self.state
        return max(state.high_owned() - (state.owned or 0), 0)

    def _limit(self) -> int:
        return max(self._settings.floor, int(self.state.high_owned() * self._settings.max_fraction))

    def _delete_room(self, count: int) -> int:
        """How many of `count` deletes that take a route away fit the budget now."""
        if self.state.trip is not None:
            return 0
        self.state.expire(self.now(), self._settings.window_seconds)
        return min(max(self._limit() - self._loss(), 0), count)

    def _delete_refusal(self, refused: int, wanted: int) -> str:
        state, window = self.state, self._settings.window_seconds
        if state.trip is not None:
            since = format_ack(state.trip.since)
            return (
                f"delete budget: refusing {refused} delete(s): tripped since {since}; holding "
                "until the counts recover, or `kaput-not acknowledge` once"
            )
        return (
            f"delete budget: refusing {refused} of {wanted} delete(s): {self._loss()} of our "
            f"rules already lost against their high-water mark of {state.high_owned()} "
            f"(within {window:g}s), limit {self._limit()}: {self._settings.max_fraction:.0%} of "
            f"it, at least {self._settings.floor}; holding until the counts recover, or "
            f"`kaput-not acknowledge` once if this is intended (or {ALLOW_MASS_DELETE})"
        )

    def _refusal(self, what: str, count: int, budget: WindowBudget, ours: int) -> str:
        window = self._settings.window_seconds
        return (
            f"{what} budget: refusing to {what} {count} rule(s) ({budget.spent()} done in the "
            f"last {window:g}s, limit {budget.limit(ours)}: {self._settings.max_fraction:.0%} "
            f"of {ours} rules of ours, at least {self._settings.floor}); holding until a full "
            f"pass lists what was written; set {ALLOW_MASS_DELETE} if this is intended"
        )

    def _recreates(self, actions: list[Action], view: NetmakerView) -> list[Action]:
        creates = [a for a in actions if a.kind is ActionKind.CREATE]
        if not creates or not (self._known or self.unseen):
            return []
        present: dict[str, set[str]] = {}
        found: list[Action] = []
        others: list[Action] = []
        for action in creates:
            slot = _slot(action)
            known = self._known.get(slot) if slot is not None else None
            if known is None or slot is None:
                others.append(action)
                continue
            network = slot[0]
            if network not in present:
                present[network] = {e.id for e in view.egress.get(network, ())}
            if known not in present[network]:
                found.append(action)
        # The rules a new process's first list did not show may be there: re-creates too.
        return found + others[: self.unseen]


def owned_in(view: NetmakerView, cluster: str | None) -> int:
    """Rules of ours in `view` (a scan: once per process, for its first egress list)."""
    return sum(
        1
        for egresses in view.egress.values()
        for egress in egresses
        if _our_index(egress, cluster) is not None
    )


def _losing(
    deletes: list[Action], actions: list[Action], view: NetmakerView | None, cluster: str | None
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
    held: set[Slot] = set()
    for action in actions:
        target, spec = action.target, action.spec
        if action.kind is not ActionKind.UPDATE or target is None or spec is None:
            continue
        held.update(_slots(action.network, target, cluster))
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
                slots = _slots(network, egress, cluster)
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
        slots = _slots(network, target, cluster)
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


def _count(value: int | None) -> str:
    return "never" if value is None else str(value)


def replace_ack(ack: Acknowledgement, *, used_at: float) -> Acknowledgement:
    return Acknowledgement(id=ack.id, expires=ack.expires, used_at=used_at)


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
