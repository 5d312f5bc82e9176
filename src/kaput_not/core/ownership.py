"""Which rules are ours, and how many of them a pass may delete: decided in one place.

The planner builds one `Ownership` and one `DeleteLimit` per pass from its settings and hands
both on in the `Plan`, so the write guard judges the same rules as ours, and spends from the
same limit, as the planner did (docs/design.md section 2 and rule 8).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

from kaput_not.core.egress import Marker, owned_by, parse_description

if TYPE_CHECKING:
    from kaput_not.core.model import Egress, EgressSpec

#: (network, index, Netmaker node id): the identity of one desired rule E(N, M, i), its slot.
RuleKey = tuple[str, int, str]

#: How a message tells the operator to turn the delete budgets off: as they set it.
ALLOW_MASS_DELETE = "ALLOW_MASS_DELETE=true (chart value config.allowMassDelete)"


@dataclass(frozen=True, slots=True)
class Ownership:
    """The one test of "is this rule ours": its whole description parses as our marker and its
    cluster scope is `cluster` (None: single-cluster mode).

    Descriptions are read through `parse_description`'s cache, so a rule the planner read in a
    pass costs the guard a lookup, not a parse."""

    cluster: str | None = None

    def marker(self, description: str) -> Marker | None:
        """The marker of a description of ours, or None (foreign, another cluster's)."""
        marker = parse_description(description)
        return marker if owned_by(marker, self.cluster) else None

    def index(self, egress: Egress) -> int | None:
        """The index of `egress` if it is ours and has an id (one we may write), else None."""
        marker = self.marker(egress.description)
        return None if marker is None or not egress.id else marker.index

    def slots(self, network: str, egress: Egress) -> list[RuleKey]:
        """The slots `egress` holds, listed in `network`: none unless it is ours with an id."""
        index = self.index(egress)
        return [] if index is None else [(network, index, node_id) for node_id in egress.nodes]

    def holds(self, egress: Egress | None, slot: RuleKey) -> bool:
        """Whether `egress`, listed in the slot's network, holds `slot` (as `slots` says)."""
        return egress is not None and slot[2] in egress.nodes and self.index(egress) == slot[1]

    def slot(self, spec: EgressSpec | None) -> RuleKey | None:
        """The one slot a rule written from `spec` holds (None: several nodes, or not ours)."""
        if spec is None or len(spec.nodes) != 1:
            return None
        marker = self.marker(spec.description)
        if marker is None:
            return None
        [node_id] = spec.nodes
        return (spec.network, marker.index, node_id)

    def count(self, egress: Mapping[str, Iterable[Egress]]) -> int:
        """Rules of ours with an id in per-network lists (a scan of every rule listed)."""
        return sum(1 for rules in egress.values() for rule in rules if self.index(rule) is not None)


@dataclass(frozen=True, slots=True)
class DeleteLimit:
    """The mass-delete limit (MAX_DELETE_FRACTION, MAX_DELETE_MIN, ALLOW_MASS_DELETE): up to
    `floor` rules may always go; beyond that at most `fraction` of the count it is taken of,
    unless `unlimited`."""

    fraction: float = 0.5
    floor: int = 5
    unlimited: bool = False

    def of(self, count: int) -> int:
        """How many of `count` rules may go."""
        return max(self.floor, int(count * self.fraction))
