"""Each Kubernetes node's state across passes: in sync, pending, or skipped and why.

The planner reports every node of a pass (`NodeReport`); this keeps the last state per node so
that a change is said once, where an operator looks: a log line when a skip starts and when it
ends (never one per pass), a Kubernetes Event on the Node, and the `kaput_not_nodes_skipped`
gauge by reason. Pending means "an action of this pass serves it": once the pass wrote those
actions, the node is in sync, and a Normal Event says what was written.
"""

from __future__ import annotations

import dataclasses
import logging
from collections import Counter
from collections.abc import Callable, Iterable, Mapping

from kaput_not.controller.reconciler import PassReport
from kaput_not.core.model import (
    ActionKind,
    KubeNode,
    NodeReport,
    NodeState,
    SkipReason,
)

log = logging.getLogger("kaput_not.nodes")

#: The Event reason (CamelCase, as Kubernetes writes them) of each skip.
EVENT_REASONS = {
    SkipReason.NO_HOST: "NoNetmakerHost",
    SkipReason.AMBIGUOUS_HOST: "AmbiguousNetmakerHost",
    SkipReason.NO_POD_CIDRS: "NoPodCIDRs",
    SkipReason.BAD_POD_CIDR: "BadPodCIDR",
    SkipReason.NO_NETWORK: "NoWritableNetwork",
    SkipReason.HELD: "WritesHeldBack",
    SkipReason.HOST_TAKEN: "HostTaken",
    SkipReason.HOST_CONTESTED: "HostContested",
    SkipReason.HOST_ANNOTATION_REFUSED: "HostAnnotationRefused",
}
WRITTEN = "EgressRulesWritten"
#: The Warning Event on a node whose host another node's annotation names (refused).
CLAIMED = "HostClaimedByAnnotation"

#: `emit(node, warning=..., reason=..., note=...)`: an Event about a node.
Emit = Callable[..., None]


class NodeStates:
    def __init__(
        self,
        *,
        emit: Emit | None,
        on_counts: Callable[[Mapping[str, int]], None],
        on_conflicts: Callable[[int], None] | None = None,
    ):
        self._emit = emit
        self._on_counts = on_counts
        self._on_conflicts = on_conflicts
        #: Owners of a host that other nodes' annotations name, with those nodes: told once.
        self._claimed: dict[str, tuple[str, ...]] = {}
        # Skipped nodes only, by name: the reason is all a change is told against, and holding
        # every node's last report kept 10,000 of them, replaced on every full pass.
        self._skips: dict[str, SkipReason] = {}

    def record(
        self, report: PassReport, nodes: Mapping[str, KubeNode], *, only: str | None = None
    ) -> None:
        """Take in one pass: the whole cluster (`only` None) or the node named `only`."""
        plan, result = report.plan, report.result
        failed = {f.action.kube_node for f in result.failures}
        held = {a.kube_node for a in plan.withheld if a.kube_node}
        written: Counter[tuple[str, ActionKind]] = Counter(
            (a.kube_node, a.kind) for a in plan.actions if a.kube_node and a.kube_node not in failed
        )
        seen: set[str] = set()
        for node_report in plan.nodes:
            seen.add(node_report.name)
            now = _settled(node_report, failed, held, result.skipped == 0)
            self._change(now, nodes.get(node_report.name))
            self._claim(node_report, nodes.get(node_report.name))
            writes = {
                kind: written[(node_report.name, kind)]
                for kind in (ActionKind.CREATE, ActionKind.UPDATE)
            }
            if now.state is NodeState.IN_SYNC and any(writes.values()):
                self._tell(nodes.get(node_report.name), False, WRITTEN, _written_note(now, writes))
        gone: Iterable[str] = self._skips if only is None else [only]
        for name in [n for n in gone if n not in seen]:
            self._forget(name)
        self._on_counts(Counter(reason.value for reason in self._skips.values()))
        if self._on_conflicts is not None:
            self._on_conflicts(len(self._claimed))

    def _claim(self, now: NodeReport, node: KubeNode | None) -> None:
        """Tell the owner of a host, once, that other nodes' annotations name it (refused)."""
        was = self._claimed.get(now.name, ())
        if now.claimed_by == was:
            return
        if not now.claimed_by:
            del self._claimed[now.name]
            log.info(
                "node %s: no other node's annotation names its host any more",
                now.name,
                extra={"node": now.name, "reason": CLAIMED, "action": "resolved"},
            )
            return
        self._claimed[now.name] = now.claimed_by
        note = (
            f"node(s) {', '.join(now.claimed_by)} name this node's Netmaker host "
            f"{now.host or now.name!r} in their kaput-not.io/netmaker-host annotation; refused "
            "(a host matched by name stays with its node)"
        )
        log.warning(
            "node %s keeps its host: %s",
            now.name,
            note,
            extra={"node": now.name, "reason": CLAIMED, "action": "conflict"},
        )
        self._tell(node, True, CLAIMED, note)

    def _change(self, now: NodeReport, node: KubeNode | None) -> None:
        was = self._skips.get(now.name)
        reason = now.reason if now.state is NodeState.SKIPPED else None
        if reason is None:
            self._skips.pop(now.name, None)
        else:
            self._skips[now.name] = reason
        if reason == was:
            return
        if was is not None:
            log.info(
                "node %s is no longer skipped (%s resolved)",
                now.name,
                was.value,
                extra={"node": now.name, "reason": was.value, "action": "resolved"},
            )
        if reason is not None:
            log.warning(
                "node %s gets no rule: %s",
                now.name,
                now.detail,
                extra={"node": now.name, "reason": reason.value, "action": "skip"},
            )
            self._tell(node, True, EVENT_REASONS[reason], now.detail)

    def _forget(self, name: str) -> None:
        self._skips.pop(name, None)
        self._claimed.pop(name, None)

    def _tell(self, node: KubeNode | None, warning: bool, reason: str, note: str) -> None:
        if self._emit is not None and node is not None:
            self._emit(node, warning=warning, reason=reason, note=note)


def _settled(
    report: NodeReport, failed: set[str | None], held: set[str], all_written: bool
) -> NodeReport:
    """The node's state after the pass wrote: pending becomes in sync, or held back."""
    if report.state is not NodeState.PENDING:
        return report
    if report.name in held:
        return dataclasses.replace(
            report,
            state=NodeState.SKIPPED,
            reason=SkipReason.HELD,
            detail="writes for it are held back by the delete or re-create budget (see /readyz)",
        )
    if report.name in failed or not all_written:
        return report
    return dataclasses.replace(report, state=NodeState.IN_SYNC, reason=None, detail="")


def _written_note(report: NodeReport, writes: Mapping[ActionKind, int]) -> str:
    parts = [f"{n} {kind.value}d" for kind, n in writes.items() if n]
    networks = ", ".join(report.networks) or "no network"
    return f"egress rules {' and '.join(parts)} in {networks} (Netmaker host {report.host})"
