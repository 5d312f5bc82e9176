"""What the write guard remembers of our rules within the process: which rule held each slot,
so a create for a slot whose rule vanished without our delete is known as a re-create.

`known` holds, per slot, the id of our rule last seen there (refreshed by every full pass, and
by our own creates and deletes). `recreated` holds the ids of rules re-created and not listed
by a full pass yet; `unseen` the rules of ours the cluster remembers that this process's first
egress list, read twice, did not show (as many creates count as re-creates, until a full pass
lists what they wrote: the list is honest then).
"""

from __future__ import annotations

from collections.abc import Sequence

from kaput_not.core.model import Action, ActionKind, Egress
from kaput_not.core.ownership import Ownership, RuleKey
from kaput_not.core.view import NetmakerView


class SeenRules:
    def __init__(self) -> None:
        # No index by id beside it (memory per rule): a delete finds its slots from its
        # target, and a slot whose rule was edited meanwhile waits for the next learn.
        self.known: dict[RuleKey, str] = {}
        self.recreated: set[str] = set()
        self.unseen = 0

    def learn(self, view: NetmakerView, ours: Ownership) -> tuple[int, int]:
        """After a full pass's read: our rules now, by slot. Returns the count of our rules
        (a slot's copies once) and how many re-creates to give back (their rules are listed).

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
        known = self.known
        listed: dict[str, dict[str, Egress]] = {}
        copies = owned = 0
        for network, egresses in view.egress.items():
            here = listed.setdefault(network, {})
            for egress in egresses:
                repeated = egress.id in here
                here[egress.id] = egress
                index = ours.index(egress)
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
        refund = 0
        if self.recreated and all(
            any(rule_id in rules for rules in listed.values()) for rule_id in self.recreated
        ):
            # What the re-creates wrote is listed: the list is honest (the rules were deleted
            # by hand), so the repair goes on at the next pass instead of starving.
            refund = len(self.recreated)
            self.recreated.clear()
            self.unseen = 0
        unseen = [
            slot
            for slot, rule_id in known.items()
            if not ours.holds(listed.get(slot[0], {}).get(rule_id), slot)
        ]
        if unseen:
            routers = {n.id for n in view.nodes}
            # Vanished without our delete: remembered while its routing node exists, so a
            # create for the slot counts as a re-create however long the list stays wrong. A
            # rule still listed that no longer holds the slot (its nodes edited) has left it:
            # forgotten.
            for slot in unseen:
                rule_id = known[slot]
                if slot[2] not in routers or any(rule_id in rules for rules in listed.values()):
                    del known[slot]
        return max(owned - copies, 0), refund

    def created(self, made: Sequence[Egress], ours: Ownership, again: set[RuleKey]) -> int:
        """Rules we just created hold their slots from now on. Returns how many are new rules,
        not re-creates of a slot in `again`."""
        new = sum(
            1 for egress in made if not again.intersection(ours.slots(egress.network, egress))
        )
        for egress in made:
            for slot in ours.slots(egress.network, egress):
                self.known[slot] = egress.id
        return new

    def deleted(self, target: Egress, ours: Ownership) -> None:
        """Ours to delete: its slots are no longer "held", so no later create is a re-create."""
        for slot in ours.slots(target.network, target):
            if self.known.get(slot) == target.id:
                del self.known[slot]

    def recreates(self, actions: list[Action], view: NetmakerView, ours: Ownership) -> list[Action]:
        """The creates of `actions` for slots a rule of ours held and that `view` lacks, and
        as many others as the first list did not show (`unseen`)."""
        creates = [a for a in actions if a.kind is ActionKind.CREATE]
        if not creates or not (self.known or self.unseen):
            return []
        present: dict[str, set[str]] = {}
        found: list[Action] = []
        others: list[Action] = []
        for action in creates:
            slot = ours.slot(action.spec)
            known = self.known.get(slot) if slot is not None else None
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

    def take_unseen(self, slots: Sequence[RuleKey | None]) -> None:
        """Creates about to be written for `slots`: those for slots not known stand for rules
        the first list did not show."""
        if self.unseen:
            known = self.known
            self.unseen -= sum(1 for slot in slots if slot is None or slot not in known)
            self.unseen = max(self.unseen, 0)
