"""What a finished pass leaves for operators: its metrics and, for a full pass, one log line
with its counts (also as structured fields, so log tooling can graph and filter them)."""

from __future__ import annotations

import logging
from collections.abc import Mapping

from kaput_not.controller.circuit import Held, Retry, decide
from kaput_not.controller.metrics import Metrics
from kaput_not.controller.reconciler import PassReport
from kaput_not.core.model import ActionKind, SkipReason

log = logging.getLogger("kaput_not.controller")


class PassResults:
    def __init__(self, metrics: Metrics, *, dry_run: bool) -> None:
        self._metrics = metrics
        self._dry_run = dry_run

    def count(self, report: PassReport, scope: str) -> None:
        """The pass's outcome and its writes, by kind and result (`scope`: full or node)."""
        result = report.result
        withheld = len(report.plan.withheld)
        if withheld:
            self._metrics.deletes_refused.inc(withheld)
        outcome = "error" if result.failures else "held" if withheld else "success"
        self._metrics.reconciles.labels(scope, outcome).inc()
        for kind, count in (
            (ActionKind.CREATE, result.created),
            (ActionKind.UPDATE, result.updated),
            (ActionKind.DELETE, result.deleted),
        ):
            if count:
                self._metrics.egress_writes.labels(kind.value, "ok").inc(count)
        for failure in result.failures:
            if isinstance(failure.error, Held):
                continue  # never sent: not a failed write, the recovery pass writes it
            action = failure.action.kind.value
            self._metrics.egress_writes.labels(action, "failed").inc()
            if decide(failure.error) is Retry.PERMANENT:
                self._metrics.permanent_errors.labels(action).inc()

    def node_pass(self, report: PassReport) -> None:
        # Exact between full passes too: what this pass wrote changes how many rules are ours.
        self._metrics.managed_egress.inc(report.result.created - report.result.deleted)

    def full_pass(self, report: PassReport, *, finished_at: float) -> None:
        """The rules owned after the pass and, when it wrote everything, its Unix time."""
        result = report.result
        self._metrics.managed_egress.set(report.plan.owned + result.created - result.deleted)
        if result.ok:
            self._metrics.last_full_sync.set(finished_at)

    def skipped(self, counts: Mapping[str, int]) -> None:
        """The nodes skipped now, by reason (every reason, so one that ended shows 0)."""
        for reason in SkipReason:
            self._metrics.nodes_skipped.labels(reason.value).set(counts.get(reason.value, 0))

    def log_full_pass(self, report: PassReport, *, nodes: int, seconds: float) -> None:
        plan, result = report.plan, report.result
        if self._dry_run:
            counts = {
                "nodes": nodes,
                "owned": plan.owned,
                "would_create": plan.count(ActionKind.CREATE),
                "would_update": plan.count(ActionKind.UPDATE),
                "would_delete": plan.count(ActionKind.DELETE),
                "withheld": len(plan.withheld),
                "seconds": round(seconds, 3),
            }
            log.info(
                "full sync (dry run, nothing written): %d nodes, %d rules owned, would create "
                "%d, update %d, delete %d; %d withheld in %.2fs",
                *counts.values(),
                extra={"fields": {"dry_run": True, **counts}},
            )
            return
        counts = {
            "nodes": nodes,
            "owned": plan.owned,
            "created": result.created,
            "updated": result.updated,
            "deleted": result.deleted,
            "failed": len(result.failures),
            "withheld": len(plan.withheld),
            "seconds": round(seconds, 3),
        }
        log.info(
            "full sync: %d nodes, %d rules owned, %d created, %d updated, %d deleted, "
            "%d failed, %d withheld in %.2fs",
            *counts.values(),
            extra={"fields": counts},
        )
