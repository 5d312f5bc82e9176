"""The write guard's budget arithmetic: what a window allows, and what one pass spent.

The limits themselves (MAX_DELETE_FRACTION, MAX_DELETE_MIN, ALLOW_MASS_DELETE) are the plan's
`DeleteLimit`, computed once per pass by the planner; only the window is the guard's own.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from typing import TYPE_CHECKING

from kaput_not.core.ownership import DeleteLimit, Ownership, RuleKey
from kaput_not.ratelimit import Clock

if TYPE_CHECKING:
    from kaput_not.controller.guard import WriteGuard


@dataclass(frozen=True, slots=True)
class BudgetSettings:
    #: BUDGET_WINDOW: how long the high-water mark and the deletes spent are remembered.
    window_seconds: float = 86400.0


class WindowBudget:
    """Re-creates spent within the last `window` seconds, against a limit that scales with the
    number of our rules (in-process: a new process checks its first egress list instead)."""

    def __init__(self, settings: BudgetSettings, clock: Clock) -> None:
        self._settings = settings
        self._clock = clock
        self._spent: deque[float] = deque()
        #: Set by a refusal; only `recovered()` clears it.
        self.tripped = False

    def spent(self) -> int:
        self._expire()
        return len(self._spent)

    def allowance(self, count: int, ours: int, limit: DeleteLimit) -> int:
        """How many of `count` more fit (all, some or none); holding any back trips it."""
        if limit.unlimited or count == 0:
            return count
        room = 0 if self.tripped else max(limit.of(ours) - self.spent(), 0)
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
    slots of its re-creates; `ours` is the pass's ownership test, for what it wrote."""

    deletes: int
    recreates: list[RuleKey]
    ours: Ownership
    losing: int = 0
