"""The controller: informer events -> work queue -> reconcile(node) -> planner -> executor.

Level based: the queue carries node names only, and each reconcile reads the node from the
informer store and Netmaker (cached) as they are now. An added node, a node whose pod CIDRs
changed and a deleted node all just enqueue the name; a missing node means "delete its rules",
retried with backoff like any other key, so a delete seen while Netmaker is down is not lost.

Besides events:
- the first full pass runs once the first complete node list has arrived (orphans from while
  the controller was down are removed there), retried with backoff until it succeeds;
- a full pass every `resync_period` really reconciles (hand deletes and edits are repaired);
- a cheap watch of Netmaker's host and node lists (cached, so at most once per TTL) enqueues
  nodes whose Netmaker host or networks changed, so a host that joins late gets its rules.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from kaput_not.controller.metrics import Metrics
from kaput_not.controller.queue import WorkQueue
from kaput_not.controller.reconciler import PassReport, Reconciler
from kaput_not.core.model import ActionKind, Host, NmNode
from kaput_not.kube.api import KubeApi
from kaput_not.kube.informer import EventKind, NodeEvent, NodeInformer
from kaput_not.netmaker import errors
from kaput_not.netmaker.cache import CachedNetmaker

log = logging.getLogger("kaput_not.controller")


@dataclass(frozen=True, slots=True)
class ControllerOptions:
    workers: int = 4
    resync_period_seconds: float = 600.0
    netmaker_poll_seconds: float = 30.0
    drain_timeout_seconds: float = 5.0
    first_sync_backoff_max_seconds: float = 60.0
    #: A deleted node's rules wait this long: a rebuild (deleted, then created again under the
    #: same name) arrives as two watch events, and waiting lets the re-create merge with the
    #: delete into one pass that updates the rules in place instead of deleting them.
    delete_grace_seconds: float = 15.0
    #: At most one forced refresh of Netmaker hosts and nodes per this many seconds, for node
    #: events whose host the cached lists do not know yet.
    inventory_refresh_seconds: float = 1.0


class PassFailed(Exception):
    """A pass ran but some writes failed; the key is retried with backoff."""


class Controller:
    def __init__(
        self,
        *,
        kube: KubeApi,
        netmaker: CachedNetmaker,
        reconciler: Reconciler,
        metrics: Metrics,
        options: ControllerOptions,
        queue: WorkQueue[str] | None = None,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        self.informer = NodeInformer(kube, self.on_event)
        self.queue: WorkQueue[str] = queue or WorkQueue(name="nodes")
        self._netmaker = netmaker
        self._reconciler = reconciler
        self._metrics = metrics
        self._options = options
        self._wall_clock = wall_clock
        self.first_sync_done = asyncio.Event()
        #: True from the moment this replica starts leading until `stop()`.
        self.leading = False
        self.fatal: Exception | None = None
        self._fatal_event = asyncio.Event()
        self._host_fingerprints: dict[str, frozenset[_Membership]] | None = None
        # Until the first full pass starts, events are covered by it: queueing them would
        # plan every node a second time, one by one, right after the full pass did.
        self._accepting = False
        self._inventory_refreshed_at = float("-inf")

    # -- events ----------------------------------------------------------------------------

    def on_event(self, event: NodeEvent) -> None:
        """Handlers only enqueue; the reconcile reads the store again."""
        if not self._accepting:
            return
        if event.kind is EventKind.MODIFIED:
            assert event.old is not None
            assert event.new is not None
            if event.old.pod_cidrs == event.new.pod_cidrs:
                return
        if event.kind is EventKind.DELETED:
            self.queue.add_after(event.name, self._options.delete_grace_seconds)
        else:
            self.queue.add(event.name)  # also ends a pending delete grace: a rebuild

    # -- running ---------------------------------------------------------------------------

    async def run_leader(self) -> None:
        """Everything a leader does, until cancelled or a fatal error."""
        self.leading = True
        await self.informer.synced.wait()
        self._accepting = True  # before the first pass reads the store, so nothing falls between
        await self._first_sync()
        self.queue.run_workers(self._reconcile_key, self._options.workers, on_error=self._retry)
        await asyncio.gather(self._resync_loop(), self._netmaker_watch_loop())

    async def wait_fatal(self) -> Exception:
        await self._fatal_event.wait()
        assert self.fatal is not None
        return self.fatal

    async def stop(self) -> None:
        self.leading = False
        await self.queue.shutdown(drain_timeout=self._options.drain_timeout_seconds)

    # -- passes ----------------------------------------------------------------------------

    async def full_sync(self) -> PassReport:
        started = time.perf_counter()
        try:
            report = await self._reconciler.reconcile(
                self.informer.nodes(), kube_complete=self.informer.synced.is_set()
            )
        except errors.NetmakerError:
            self._metrics.reconciles.labels("full", "error").inc()
            raise
        finally:
            seconds = time.perf_counter() - started
            self._metrics.reconcile_seconds.labels("full").observe(seconds)
        self._record(report, "full")
        # Every node was just planned against this snapshot: later host changes are measured
        # from it, so a host that appeared after an event's (cached) read is still noticed.
        self._host_fingerprints = _fingerprints(list(report.view.hosts), list(report.view.nodes))
        result = report.result
        self._metrics.managed_egress.set(report.plan.owned + result.created - result.deleted)
        if result.ok:
            self._metrics.last_full_sync.set(self._wall_clock())
        for failure in result.failures:
            # Retry what failed through the queue, with backoff; orphans wait for the next pass.
            if failure.action.kube_node is not None:
                self.queue.add_rate_limited(failure.action.kube_node)
        log.info(
            "full sync: %d nodes, %d rules owned, %d created, %d updated, %d deleted, "
            "%d failed, %d withheld in %.2fs",
            len(self.informer),
            report.plan.owned,
            result.created,
            result.updated,
            result.deleted,
            len(result.failures),
            len(report.plan.withheld),
            seconds,
        )
        return report

    async def _first_sync(self) -> None:
        delay = 1.0
        while not await self._attempt(self.full_sync, "first full sync"):
            log.info("retrying the first full sync in %.0fs", delay)
            await asyncio.sleep(delay)
            delay = min(delay * 2, self._options.first_sync_backoff_max_seconds)
        self.first_sync_done.set()

    async def _resync_loop(self) -> None:
        while self.fatal is None:
            await asyncio.sleep(self._options.resync_period_seconds)
            await self._attempt(self.full_sync, "periodic full sync")

    async def _netmaker_watch_loop(self) -> None:
        while self.fatal is None:
            await asyncio.sleep(self._options.netmaker_poll_seconds)
            await self._attempt(self.check_netmaker_changes, "watching Netmaker hosts")

    async def _attempt(self, step: Callable[[], Awaitable[object]], what: str) -> bool:
        """Run `step`; a Netmaker error is logged (the caller retries later), a rejected
        password stops the controller. True when the step succeeded."""
        try:
            await step()
        except errors.CredentialsRejected as exc:
            self.fail(exc)
            raise
        except errors.NetmakerError as exc:
            log.warning("%s failed: %s", what, exc)
            return False
        return True

    async def check_netmaker_changes(self) -> list[str]:
        """Enqueue Kubernetes nodes whose Netmaker host or memberships changed; return them."""
        hosts, nodes = await asyncio.gather(self._netmaker.hosts(), self._netmaker.nodes())
        current = _fingerprints(hosts, nodes)
        previous, self._host_fingerprints = self._host_fingerprints, current
        if previous is None:
            return []
        changed = [
            name
            for name in current.keys() | previous.keys()
            if current.get(name) != previous.get(name) and self.informer.get(name) is not None
        ]
        for name in sorted(changed):
            log.info("Netmaker host %s changed; reconciling the node", name)
            self.queue.add(name)
        removed = any(previous[name] - current.get(name, frozenset()) for name in previous)
        if removed:
            # Netmaker strips a removed node from every rule and keeps the rules (`nodes: {}`):
            # no node name can claim them, so only a full pass cleans them up.
            log.info("Netmaker hosts or memberships were removed; running a full pass")
            await self.full_sync()
        return changed

    async def _reconcile_key(self, name: str) -> None:
        node = self.informer.get(name)
        if node is not None:
            await self._know_host(name)
        started = time.perf_counter()
        try:
            report = await self._reconciler.reconcile(
                [node] if node else [], only=name, kube_complete=self.informer.synced.is_set()
            )
        except errors.NetmakerError:
            self._metrics.reconciles.labels("node", "error").inc()
            raise
        finally:
            self._metrics.reconcile_seconds.labels("node").observe(time.perf_counter() - started)
        self._record(report, "node")
        if report.result.failures:
            first = report.result.failures[0]
            raise PassFailed(f"{len(report.result.failures)} write(s) failed, first: {first.error}")
        self.queue.forget(name)

    async def _know_host(self, name: str) -> None:
        """Refresh the cached host and node lists once if they do not know `name` yet.

        Netmaker hosts usually join before their Kubernetes node registers, so the node's event
        would otherwise be planned against lists cached before the host existed, and wait a
        TTL for the host watch. Rate-limited: a burst of unknown names costs one refresh.
        """
        hosts = await self._netmaker.hosts()
        if any(h.name == name for h in hosts):
            return
        now = time.monotonic()
        if now - self._inventory_refreshed_at < self._options.inventory_refresh_seconds:
            return
        self._inventory_refreshed_at = now
        self._netmaker.refresh_inventory()

    def _record(self, report: PassReport, scope: str) -> None:
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
            self._metrics.egress_writes.labels(failure.action.kind.value, "failed").inc()

    async def _retry(self, name: str, exc: Exception) -> None:
        if isinstance(exc, errors.CredentialsRejected):
            self.fail(exc)
            return
        requeues = self.queue.requeues(name)
        log.warning("reconciling node %s failed (retry %d): %s", name, requeues + 1, exc)
        self.queue.add_rate_limited(name)

    def fail(self, exc: BaseException) -> None:
        """Stop the controller because of `exc` (wakes `wait_fatal`); the first cause wins."""
        if self.fatal is None:
            log.error("stopping: %s", exc)
            self.fatal = exc if isinstance(exc, Exception) else RuntimeError(repr(exc))
            self._fatal_event.set()


#: (host id, network, node id, routable): one Netmaker membership of a host name.
_Membership = tuple[str, str, str, bool]


def _fingerprints(hosts: list[Host], nodes: list[NmNode]) -> dict[str, frozenset[_Membership]]:
    """Per host name, every membership of every host of that name. A change means re-plan."""
    by_host: dict[str, list[NmNode]] = {}
    for node in nodes:
        by_host.setdefault(node.host_id, []).append(node)
    prints: dict[str, set[_Membership]] = {}
    for host in hosts:
        entry = prints.setdefault(host.name, set())
        entry.add((host.id, "", "", True))
        for node in by_host.get(host.id, []):
            entry.add((host.id, node.network, node.id, node.routable))
    return {name: frozenset(entry) for name, entry in prints.items()}
