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
from collections.abc import Sequence
from dataclasses import replace
from typing import TYPE_CHECKING

from kaput_not.controller.guard_budget import BudgetSettings, Charge, DeleteBudget, WindowBudget
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
from kaput_not.controller.route_loss import losing as route_losing
from kaput_not.controller.seen_rules import SeenRules
from kaput_not.core.model import Action, ActionKind, Egress, Plan
from kaput_not.core.ownership import ALLOW_MASS_DELETE, DeleteLimit
from kaput_not.core.view import NetmakerView
from kaput_not.netmaker import errors
from kaput_not.ratelimit import Clock

if TYPE_CHECKING:
    from kaput_not.core.applied import ApplyResult

__all__ = ["ACK_POLL_SECONDS", "BudgetSettings", "Charge", "WriteGuard"]

log = logging.getLogger("kaput_not.guard")

#: While the delete budget is tripped, node passes look for an acknowledgement this often.
ACK_POLL_SECONDS = 30.0


class WriteGuard:
    """Applies the delete and re-create budgets to each plan, and remembers our rules' slots.

    `state` is the budget's memory, loaded from `store` (the Lease) by the first pass of the
    process and saved by `save()`. What it remembers of our rules' slots is `SeenRules`: a slot
    whose rule is missing from a later snapshot, without our own delete, is "vanished", and a
    create for it is a re-create. Which rules are ours, and the limits, come with each plan
    (`Plan.ownership`, `Plan.limit`): the planner's, computed once per pass.
    """

    def __init__(
        self,
        settings: BudgetSettings,
        *,
        clock: Clock = time.time,
        store: StateStore | None = None,
    ) -> None:
        self.settings = settings
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
        self._seen = SeenRules()
        #: The deletes `check` let through that take a route away (by identity), for `spent`.
        self._losing: set[int] = set()
        #: Why the last pass held writes back, or None: for /readyz and the logs.
        self.holding: str | None = None

    def now(self) -> float:
        return self._clock()

    @property
    def unseen(self) -> int:
        """Rules of ours the cluster remembers that this process's first egress list, read
        twice, did not show: as many creates count as re-creates (the list may hide them)."""
        return self._seen.unseen

    @unseen.setter
    def unseen(self, count: int) -> None:
        self._seen.unseen = count

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
        state, window = self.state, self.settings.window_seconds
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
        self.state.accept(now, self.settings.window_seconds)
        self._dirty = True
        log.warning(
            "acknowledgement %s used (trip was: %s): the counts now are the new base", ack.id, cause
        )
        return True

    # -- passes ------------------------------------------------------------------------------

    def ours(self) -> int:
        """Our rules' high-water mark within the window (deletes do not shrink the base)."""
        self.state.expire(self.now(), self.settings.window_seconds)
        return max(self.state.high_owned(), len(self._seen.known))

    def learn(self, plan: Plan, view: NetmakerView, nodes: int | None = None) -> None:
        """After a full pass's read: our rules now (by `plan`'s ownership), by slot, and the
        counts for the state (see `SeenRules.learn`)."""
        owned, refund = self._seen.learn(view, plan.ownership)
        self.state.sample(self.now(), self.settings.window_seconds, owned, nodes)
        self._dirty = True
        if refund:
            self.recreates.refund(refund)
            self.recreates.recovered()

    def created(self, made: Sequence[Egress], charge: Charge) -> None:
        """Rules we just created (by the pass `charge` is of) hold their slots from now on."""
        # A re-create (of `charge`) stands for a rule of a slot the mark counts already: if the
        # list hid it, the new rule is a copy, and a mark raised by copies would show routes
        # lost that never were (the copies count once in the next full pass's count).
        new = self._seen.created(made, charge.ours, set(charge.recreates))
        if new:
            # Into the high-water mark at once: a rule we made is a route that can be lost.
            owned = (self.state.owned or 0) + new
            self.state.sample(self.now(), self.settings.window_seconds, owned, None)
            self._dirty = True

    def check(self, plan: Plan, view: NetmakerView, *, full: bool = False) -> Plan:
        """`plan` with the deletes and re-creates over budget moved to `withheld`."""
        ours, limit = max(self.ours(), plan.owned), plan.limit
        actions = list(plan.actions)
        held: list[Action] = []
        reasons: list[str] = []
        recreates = self._seen.recreates(actions, view, plan.ownership)
        if full and not recreates:
            self.recreates.recovered()
        allowed = self.recreates.allowance(len(recreates), ours, limit)
        if allowed < len(recreates):
            held += recreates[allowed:]
            reasons.append(
                self._refusal("re-create", len(recreates) - allowed, ours, limit)
                + "; the egress list looks incomplete"
            )
        deletes = [a for a in actions if a.kind is ActionKind.DELETE]
        losing = route_losing(deletes, actions, view if full else None, plan.ownership)
        state = self.state
        if full and state.trip is not None and (not losing or self._loss() <= 0):
            log.info("the delete budget's trip is over: the counts recovered (%s)", state.trip)
            state.trip = None
            self._dirty = True
        self._losing = {id(a) for a in losing}
        if losing and not limit.unlimited:
            if not self._owner:
                held += losing
                reasons.append(
                    f"delete budget: holding {len(losing)} delete(s): "
                    f"{self.problem or 'the guard state has not been read yet'}"
                )
            else:
                room = self._delete_room(len(losing), limit)
                if room < len(losing) and self._use_ack():
                    room = self._delete_room(len(losing), limit)
                if room < len(losing):
                    refused = len(losing) - room
                    held += losing[room:]
                    reason = self._delete_refusal(refused, len(losing), limit)
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
        ours = plan.ownership
        recreated = self._seen.recreates(list(plan.actions), view, ours)
        recreates = [ours.slot(a.spec) for a in recreated]
        self.recreates.spend(len(recreates))
        self._seen.take_unseen(recreates)
        losing = 0
        for action in plan.actions:
            if action.kind is ActionKind.DELETE and action.target is not None:
                losing += id(action) in self._losing
                self._seen.deleted(action.target, ours)
        self._losing = set()
        deletes = plan.count(ActionKind.DELETE)
        state = self.state
        if deletes and state.owned is not None:
            state.owned = max(state.owned - deletes, 0)
        if losing:
            state.charge(self.now(), self.settings.window_seconds, losing)
        if deletes:
            self._dirty = True
        tripped = state.trip is not None or self.recreates.tripped
        # Held until the budget recovers, not just during the passes that were refused.
        self.holding = plan.refusal or (self.holding if tripped else None)
        return Charge(deletes, [s for s in recreates if s is not None], ours, losing)

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
        ours = charge.ours
        written = {slot for e in result.made for slot in ours.slots(e.network, e)}
        for egress in result.made:
            if any(slot in charge.recreates for slot in ours.slots(egress.network, egress)):
                self._seen.recreated.add(egress.id)
        written.update(s for a in unknown if (s := ours.slot(a.spec)) is not None)
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

    def _delete_room(self, count: int, limit: DeleteLimit) -> int:
        """How many of `count` deletes that take a route away fit the budget now."""
        if self.state.trip is not None:
            return 0
        self.state.expire(self.now(), self.settings.window_seconds)
        return min(max(limit.of(self.state.high_owned()) - self._loss(), 0), count)

    def _delete_refusal(self, refused: int, wanted: int, limit: DeleteLimit) -> str:
        state, window = self.state, self.settings.window_seconds
        if state.trip is not None:
            since = format_ack(state.trip.since)
            return (
                f"delete budget: refusing {refused} delete(s): tripped since {since}; holding "
                "until the counts recover, or `kaput-not acknowledge` once"
            )
        return (
            f"delete budget: refusing {refused} of {wanted} delete(s): {self._loss()} of our "
            f"rules already lost against their high-water mark of {state.high_owned()} "
            f"(within {window:g}s), limit {limit.of(state.high_owned())}: {limit.fraction:.0%} "
            f"of it, at least {limit.floor}; holding until the counts recover, or "
            f"`kaput-not acknowledge` once if this is intended (or {ALLOW_MASS_DELETE})"
        )

    def _refusal(self, what: str, count: int, ours: int, limit: DeleteLimit) -> str:
        window, budget = self.settings.window_seconds, self.recreates
        return (
            f"{what} budget: refusing to {what} {count} rule(s) ({budget.spent()} done in the "
            f"last {window:g}s, limit {limit.of(ours)}: {limit.fraction:.0%} "
            f"of {ours} rules of ours, at least {limit.floor}); holding until a full "
            f"pass lists what was written; set {ALLOW_MASS_DELETE} if this is intended"
        )


def _count(value: int | None) -> str:
    return "never" if value is None else str(value)


def replace_ack(ack: Acknowledgement, *, used_at: float) -> Acknowledgement:
    return Acknowledgement(id=ack.id, expires=ack.expires, used_at=used_at)
