"""One reconcile pass: read Netmaker (cached), plan against the Kubernetes nodes, apply.

The same pass serves a single node after an event and the whole cluster at start-up and on
resync, so the two can never disagree about what a rule should be.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass

from kaput_not.controller.executor import ApplyResult, Executor
from kaput_not.controller.guard import WriteGuard
from kaput_not.core.model import KubeNode, Plan
from kaput_not.core.planner import NetmakerView, PlanSettings, plan
from kaput_not.netmaker.cache import CachedNetmaker

log = logging.getLogger("kaput_not.reconciler")


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


class Reconciler:
    def __init__(
        self,
        netmaker: CachedNetmaker,
        executor: Executor,
        settings: PlanSettings,
        guard: WriteGuard | None = None,
    ) -> None:
        self._netmaker = netmaker
        self._executor = executor
        self._settings = settings
        self._guard = guard

    async def reconcile(
        self,
        kube_nodes: Iterable[KubeNode],
        *,
        only: str | None = None,
        kube_complete: bool = True,
        cidrless_expired: frozenset[str] = frozenset(),
    ) -> PassReport:
        view = await self._netmaker.view()
        the_plan = plan(
            kube_nodes,
            view,
            self._settings,
            only=only,
            kube_complete=kube_complete,
            cidrless_expired=cidrless_expired,
        )
        guard = self._guard
        if guard is not None:
            # No await between the check and the spend: concurrent node passes cannot both
            # squeeze under the same budget.
            if only is None:
                guard.learn(view, the_plan.owned)
            the_plan = guard.check(the_plan, view, full=only is None)
            guard.spent(the_plan)
        for warning in the_plan.warnings:
            log.warning("%s", warning)
        if the_plan.refusal:
            log.error("%s", the_plan.refusal)
        result = await self._executor.apply(the_plan)
        if guard is not None:
            guard.created(result.made)
        return PassReport(plan=the_plan, result=result, view=view)
