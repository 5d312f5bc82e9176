"""One reconcile pass: read Netmaker (cached), plan against the Kubernetes nodes, apply.

The same pass serves a single node after an event and the whole cluster at start-up and on
resync, so the two can never disagree about what a rule should be.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from kaput_not.controller.guard import WriteGuard
from kaput_not.core.applied import ApplyResult
from kaput_not.core.claims import KubeClaims
from kaput_not.core.model import KubeNode, Plan
from kaput_not.core.planner import NetmakerView, PlanSettings, plan
from kaput_not.core.suspect import suspect_first
from kaput_not.netmaker.cache import CachedNetmaker

log = logging.getLogger("kaput_not.reconciler")


@dataclass(frozen=True, slots=True)
class KubeRead:
    """What a pass knows of Kubernetes, read at the moment it plans.

    `complete` is False until the first complete node list, and while the node store may be
    stale (a broken watch, until the relist): deletes wait then. `cidrless_expired` (rule 11)
    and `deleted_recently` (nodes deleted less than DELETE_GRACE ago, whose rules wait in full
    passes too, so a rebuild arriving late still updates them in place) come from the
    controller's clocks. `claims` indexes every node's host claim and pod CIDRs, so a node's
    pass judges it against all the others; `resolved` is the host a deleted or re-annotated
    node resolved to before.
    """

    nodes: Sequence[KubeNode]
    complete: bool = True
    cidrless_expired: frozenset[str] = frozenset()
    deleted_recently: frozenset[str] = frozenset()
    claims: KubeClaims | None = None
    resolved: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class PassReport:
    plan: Plan
    result: ApplyResult
    #: The Netmaker snapshot the plan was made from.
    view: NetmakerView

    @property
    def ok(self) -> bool:
        """Everything planned was written and nothing was held back."""
        return self.result.ok and not self.plan.withheld


class Applies(Protocol):
    """The executor as the reconciler sees it: only the wiring (kaput_not.app) builds one."""

    async def apply(self, plan: Plan) -> ApplyResult: ...


class Reconciler:
    def __init__(
        self,
        netmaker: CachedNetmaker,
        executor: Applies,
        settings: PlanSettings,
        guard: WriteGuard,
    ) -> None:
        self._netmaker = netmaker
        self._executor = executor
        self._settings = settings
        self._guard = guard
        # Node passes run side by side: one confirms the first egress list, the others wait
        # for it and plan on the list it confirmed.
        self._first_view = asyncio.Lock()

    async def reconcile(
        self,
        kube_nodes: Iterable[KubeNode] = (),
        *,
        only: str | None = None,
        kube_complete: bool = True,
        read_kube: Callable[[], KubeRead] | None = None,
    ) -> PassReport:
        """One pass. `read_kube`, when given, is called after Netmaker has been read: the
        Kubernetes side then is the newer of the two snapshots, so a node that changed while a
        slow Netmaker read ran is planned as it is now, not as it was."""
        guard = self._guard
        # Read before the first write of the process, and at each full pass (an operator's
        # acknowledgement arrives there); a state that cannot be read holds the deletes.
        await guard.ready(full=only is None)
        # A node pass may plan on lists whose refresh is running; a full pass waits for it.
        view = await self._netmaker.view(stale_ok=only is not None)
        if guard.first_view_pending:
            # Whichever pass comes first, a node's after a failed full pass too: a node pass
            # that believed a short first list would write duplicates of the rules it hides.
            async with self._first_view:
                if guard.first_view_pending:
                    view = await self._confirm_first(guard, view)
                else:
                    view = await self._netmaker.view(stale_ok=only is not None)
        kube = read_kube() if read_kube is not None else KubeRead(list(kube_nodes), kube_complete)
        the_plan = plan(
            kube.nodes,
            view,
            self._settings,
            only=only,
            kube_complete=kube.complete,
            cidrless_expired=kube.cidrless_expired,
            keep=kube.deleted_recently,
            claims=kube.claims,
            resolved=kube.resolved,
        )
        holding_before = guard.holding
        # No await between the check and the spend: concurrent node passes cannot both
        # squeeze under the same budget.
        if only is None:
            guard.learn(the_plan, view, len(kube.nodes) if kube.complete else None)
        the_plan = guard.check(the_plan, view, full=only is None)
        charge = guard.spent(the_plan, view)
        # Write-ahead: what is about to be deleted is in the cluster before it is sent
        # (and a full pass's counts, once per pass). Unsaved, the deletes wait.
        # A trip is saved when it happens (a pass that held deletes back).
        needs_save = charge.deletes or only is None or the_plan.withheld
        if needs_save and not await guard.save():
            the_plan = guard.withhold_deletes(the_plan, charge)
        for warning in the_plan.warnings:
            # Each is a node's skip reason too, which the controller logs once when it starts
            # and once when it ends (node_states.py), not on every pass.
            log.debug("%s", warning)
        if the_plan.refusal and not holding_before:
            log.error("%s", the_plan.refusal)  # once when it starts; /readyz shows it meanwhile
        elif the_plan.refusal:
            log.debug("%s", the_plan.refusal)
        elif holding_before and not guard.holding:
            log.info("writes are no longer held back: the state is sound again")
        result = await self._executor.apply(the_plan)
        guard.created(result.made, charge)
        guard.settle(charge, result)
        if only is None:
            # What the full pass wrote, for the next process (node passes' creates are
            # saved with the next delete or full pass: not one Lease write per node event).
            await guard.save()
        return PassReport(plan=the_plan, result=result, view=view)

    async def _confirm_first(self, guard: WriteGuard, view: NetmakerView) -> NetmakerView:
        """The first egress list of a process, against the count the cluster remembers: one
        that shows fewer rules of ours is read again, uncached, before anything is planned on
        it (a new process has no earlier list of its own to suspect it against). Against the
        high-water mark, not only the count last seen: a list that lied to the last process
        lowered the count it saved."""
        if not guard.owner:
            return view  # nothing remembered to compare with yet: deletes wait meanwhile
        state = guard.state
        remembered = None if state.owned is None else state.high_owned()
        ours = self._settings.ownership()
        seen = ours.count(view.egress)
        if remembered is None or not suspect_first(remembered, seen):
            guard.first_view_pending = False
            return view
        log.warning(
            "the first egress list shows %d rules of ours where the cluster remembers %d "
            "(last seen %d); reading it again before believing it",
            seen,
            remembered,
            state.owned,
        )
        self._netmaker.invalidate()
        again = await self._netmaker.view()
        # Still short: the missing rules may be there and the list may keep hiding them, so
        # creates for as many slots are re-creates, within the re-create budget.
        guard.unseen = max(remembered - ours.count(again.egress), 0)
        # Only now: the passes waiting on the lock must not plan on the first list meanwhile.
        guard.first_view_pending = False
        return again
