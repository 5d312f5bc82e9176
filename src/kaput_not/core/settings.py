"""The planner's policy, as the configuration sets it (docs/design.md sections 2-4)."""

from __future__ import annotations

import re
from dataclasses import dataclass

from kaput_not.core.ownership import DeleteLimit, Ownership


@dataclass(frozen=True, slots=True)
class PlanSettings:
    """Policy for the planner.

    `max_delete_fraction` and `max_delete_floor` form the mass-delete guard: a pass may always
    delete up to `max_delete_floor` rules; beyond that, it may delete at most that fraction of
    the rules we own, unless `allow_mass_delete` is set.
    """

    cluster: str | None = None
    metric: int = 500
    max_delete_fraction: float = 0.5
    max_delete_floor: int = 5
    allow_mass_delete: bool = False
    #: Whether the host annotation is honoured at all, and the host names it may name (the
    #: whole name must match; None: any). A kubelet may edit its own Node's annotations.
    host_annotation: bool = True
    host_annotation_hosts: re.Pattern[str] | None = None
    #: The cluster's pod ranges: a pod CIDR outside all of them is refused. Empty: no check.
    cluster_pod_cidrs: tuple[str, ...] = ()

    def ownership(self) -> Ownership:
        """Which rules are ours: the one test, built once per pass and carried in the plan."""
        return Ownership(self.cluster)

    def delete_limit(self) -> DeleteLimit:
        """The mass-delete limit: built once per pass and carried in the plan."""
        return DeleteLimit(self.max_delete_fraction, self.max_delete_floor, self.allow_mass_delete)
