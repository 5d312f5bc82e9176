"""The desired rules E(N, M, i) of a pass (docs/design.md section 2), stored compactly."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from kaput_not.core.egress import build_description, rule_name
from kaput_not.core.model import EgressSpec, RoutedBy
from kaput_not.core.pass_index import PassIndex
from kaput_not.core.settings import PlanSettings


@dataclass(frozen=True, slots=True, eq=False)
class Desired:
    """E(N, M, i) before it is spelled out: its spec is built where it is compared or written,
    so a full pass over every rule in sync never holds a spec per rule at once.

    Compared and hashed by identity: the pass's one `Desired` per slot is the slot's key in
    the matching, where a `RuleKey` tuple per slot cost memory per rule.
    """

    kube_node: str
    network: str
    index: int
    count: int
    range: str
    node_id: str
    description: str
    metric: int

    @property
    def spec(self) -> EgressSpec:
        return EgressSpec(
            network=self.network,
            name=rule_name(self.kube_node, self.index, self.count),
            description=self.description,
            range=self.range,
            nat=False,
            status=True,
            nodes=RoutedBy(self.node_id, self.metric),
        )


class DesiredRules:
    """The desired rules, stored by Netmaker node id: a node has one rule per pod CIDR, so one
    small tuple per node replaces a `RuleKey` tuple and a dict entry per rule. Found by slot,
    or all in turn."""

    __slots__ = ("_by_node",)

    def __init__(self) -> None:
        self._by_node: dict[str, tuple[Desired, ...]] = {}

    def add(self, want: Desired) -> None:
        """Add `want`, replacing a rule of the same slot (two Kubernetes nodes naming one host:
        the last one wins)."""
        kept = tuple(
            d
            for d in self._by_node.get(want.node_id, ())
            if (d.network, d.index) != (want.network, want.index)
        )
        self._by_node[want.node_id] = (*kept, want)

    def find(self, network: str, index: int, node_id: str) -> Desired | None:
        """The rule of this slot, if desired (no key tuple built)."""
        for want in self._by_node.get(node_id, ()):
            if want.index == index and want.network == network:
                return want
        return None

    def wants(self) -> Iterator[Desired]:
        """Every desired rule, without building its key."""
        for wants in self._by_node.values():
            yield from wants


def desired_rules(index: PassIndex, settings: PlanSettings, protected: set[str]) -> DesiredRules:
    """E(N, M, i) for every Kubernetes node N that owns its host, routable Netmaker node M of
    that host, and index i."""
    desired = DesiredRules()
    for name, kube in index.kube.items():
        if not kube.pod_cidrs or name in index.skips:
            continue
        hosts = index.hosts_by_name.get(kube.netmaker_host, [])
        if len(hosts) != 1:
            continue
        ranges = index.pod_ranges(kube)
        if isinstance(ranges, str):
            continue  # unusable CIDRs: its node ids are protected
        count = len(ranges)
        for node_id in index.node_ids_by_host.get(hosts[0].id, ()):  # sorted by `build_index`
            node = index.nodes.get(node_id)
            if node is None or node_id in protected or not node.routable:
                continue
            if node.host_id != hosts[0].id:
                continue
            for i, cidr in enumerate(ranges):
                desired.add(
                    Desired(
                        kube_node=name,
                        network=node.network,
                        index=i,
                        count=count,
                        range=cidr,
                        node_id=node.id,
                        description=build_description(i, settings.cluster),
                        metric=settings.metric,
                    )
                )
    return desired
