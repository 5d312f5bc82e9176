"""The controller: informer events -> work queue -> reconcile(node) -> planner -> executor.

Level based: the queue carries node names only, and each reconcile reads the node from the
informer store and Netmaker (cached) as they are now. An added node, a node whose pod CIDRs
changed and a deleted node all just enqueue the name; a missing node means "delete its rules",
retried with backoff like any other key, so a delete seen while Netmaker is down is not lost.

Every Netmaker write goes through the one work queue (docs/design.md rule 12). Besides node names
it carries one more key, `CLUSTER`, for a pass over the whole cluster; the queue runs that key
alone (a barrier), so two passes never plan against each other's half-done writes. Whole-cluster
passes are queued:
- once the first complete node list has arrived (orphans from while the controller was down
  are removed there);
- every `resync_period`, so hand deletes and edits are repaired;
- when the cheap watch of Netmaker's host and node lists (cached, so at most once per TTL) sees
  a host or membership removed; changed hosts just enqueue their node, so a host that joins
  late gets its rules.
One handler runs every key and one error policy (`retry_policy`, with `circuit.decide`) decides
for all of them: a rejected password stops the controller; a failure about the server opens the
circuit (one state for the whole server: keys are held, not retried one by one, and one full
pass follows its recovery); a failure of one key's request backs off per key; a permanent one
(a 4xx) is logged once and left to the next full pass.

This module is the loop that wires the informer, the queue and the reconciler; its parts live
beside it: `host_watch` (the Netmaker host poll), `grace` (the delete and rule 11 grace
clocks), `pass_results` (the metrics and log line a pass leaves), `retry_policy` (what a failed
key gets) and `circuit` (Netmaker's health). All of them read the time through the one clock
the controller is given.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass

from kaput_not import ratelimit
from kaput_not.config.tree import Kubernetes, Reconcile, Safety
from kaput_not.controller.circuit import Circuit
from kaput_not.controller.grace import GraceClocks
from kaput_not.controller.host_watch import HostWatch
from kaput_not.controller.metrics import Metrics
from kaput_not.controller.node_states import Emit, NodeStates
from kaput_not.controller.pass_results import PassResults
from kaput_not.controller.queue import WorkQueue
from kaput_not.controller.reconciler import KubeRead, PassReport, Reconciler
from kaput_not.controller.retry_policy import PassFailed, RetryPolicy
from kaput_not.core.claims import KubeClaims
from kaput_not.kube.api import KubeApi
from kaput_not.kube.informer import EventKind, NodeEvent, NodeInformer
from kaput_not.netmaker import errors
from kaput_not.netmaker.cache import CachedNetmaker

log = logging.getLogger("kaput_not.controller")

#: The queue key of a whole-cluster pass: no Kubernetes node can have this name.
CLUSTER = "(whole cluster)"
#: An operator's request for a full pass now (`kaput-not resync` writes it on the Lease, the
#: value a time): the leader, which reads the Lease at every renewal, queues one when it changes.
RESYNC_ANNOTATION = "kaput-not.io/resync-requested"


#: The settings subjects whose defaults ControllerOptions takes (config/tree.py holds them).
_RECONCILE, _SAFETY, _KUBERNETES = Reconcile(), Safety(), Kubernetes()


@dataclass(frozen=True, slots=True)
class ControllerOptions:
    """The loop's knobs; those an operator sets come from the settings tree (kaput_not.app
    builds them from it), with its defaults."""

    workers: int = _RECONCILE.workers
    resync_period_seconds: float = _RECONCILE.resync_period_seconds
    netmaker_poll_seconds: float = 30.0
    drain_timeout_seconds: float = 5.0
    #: A deleted node's rules wait this long: a rebuild (deleted, then created again under the
    #: same name) arrives as two watch events, and waiting lets the re-create merge with the
    #: delete into one pass that updates the rules in place instead of deleting them.
    delete_grace_seconds: float = _RECONCILE.delete_grace_seconds
    #: At most one forced refresh of Netmaker hosts and nodes per this many seconds, for node
    #: events whose host the cached lists do not know yet.
    inventory_refresh_seconds: float = 1.0
    #: DRY_RUN: plans are logged as what they would write; nothing is written.
    dry_run: bool = _SAFETY.dry_run
    #: `freeze_long_lived()` after the first full pass: a process-wide effect, so the process
    #: (`kaput-not run`) asks for it; controllers built by tests leave the collector alone.
    freeze_after_first_sync: bool = False
    #: NODE_SELECTOR: only the nodes it selects are read (the API server filters).
    node_selector: str = _KUBERNETES.node_selector
    #: While Netmaker is unavailable, it is probed at most this many seconds apart: a restart
    #: is noticed within this long of the server answering again.
    netmaker_probe_cap_seconds: float = 1.0


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
        wall_clock: ratelimit.Clock = time.time,
        clock: ratelimit.Clock = time.monotonic,
        emit: Emit | None = None,
    ) -> None:
        self.informer = NodeInformer(kube, self.on_event, label_selector=options.node_selector)
        # `is None`, not `or`: an empty queue has a length of 0, so it is falsy.
        self.queue: WorkQueue[str] = (
            queue
            if queue is not None
            else WorkQueue(name="nodes", exclusive=CLUSTER, observer=metrics, clock=clock)
        )
        self._netmaker = netmaker
        self._reconciler = reconciler
        self._metrics = metrics
        self._options = options
        self._wall_clock = wall_clock
        self._clock = clock
        self._results = PassResults(metrics, dry_run=options.dry_run)
        self.node_states = NodeStates(
            emit=emit, on_counts=self._results.skipped, on_conflicts=metrics.host_conflicts.set
        )
        #: Every node's host claim and pod CIDRs, kept with the informer's store event by event:
        #: a node's pass judges it against all the others without a scan.
        self.claims = KubeClaims()
        self.grace = GraceClocks(
            grace_seconds=options.delete_grace_seconds,
            clock=clock,
            requeue_after=self.queue.add_after,
        )
        self.first_sync_done = asyncio.Event()
        #: True from the moment this replica starts leading until `stop()`.
        self.leading = False
        self.fatal: Exception | None = None
        self._fatal_event = asyncio.Event()
        # Until the first full pass starts, events are covered by it: queueing them would
        # plan every node a second time, one by one, right after the full pass did.
        self._accepting = False
        #: When each pass in flight started, by queue key (at most WORKERS of them): a pass
        #: that overruns shows in readiness and `workqueue_longest_running_processor_seconds`.
        self._passes_started: dict[str, float] = {}
        #: The resync request last seen on the Lease ("" before the first read): a change is
        #: a new request; the value found at the first read was served by the first full pass.
        self._resync_seen: str | None = ""
        #: Netmaker's health, one state for the whole server (docs/design.md, rule 14).
        self.circuit = Circuit(
            probe=lambda: self._netmaker.probe(),
            on_close=self._recovered,
            on_fatal=self.fail,
            on_change=self._circuit_changed,
            probe_cap_seconds=options.netmaker_probe_cap_seconds,
            clock=clock,
            wall_clock=wall_clock,
        )
        self.host_watch = HostWatch(
            netmaker=netmaker,
            queue=self.queue,
            claims=self.claims,
            circuit=self.circuit,
            full_pass_key=CLUSTER,
            poll_seconds=options.netmaker_poll_seconds,
            inventory_refresh_seconds=options.inventory_refresh_seconds,
            clock=clock,
            fail=self.fail,
        )
        #: The error policy of every key, called by the queue's workers.
        self._retry = RetryPolicy(
            queue=self.queue,
            circuit=self.circuit,
            metrics=metrics,
            fail=self.fail,
            full_pass_key=CLUSTER,
        )

    # -- events ----------------------------------------------------------------------------

    def on_event(self, event: NodeEvent) -> None:
        """Handlers only enqueue; the reconcile reads the store again."""
        self.claims.update(event.old, event.new)  # every change, so the index is the store's
        self.grace.on_event(event)
        if not self._accepting:
            return
        if event.kind is EventKind.MODIFIED:
            assert event.old is not None
            assert event.new is not None
            if event.old == event.new:  # pod CIDRs and the host annotation: all a pass reads
                return
        if event.kind is EventKind.DELETED:
            self.queue.add_after(event.name, self.grace.deleted(event.name))
        else:
            self.queue.add(event.name)  # also ends a pending delete grace: a rebuild

    # -- running ---------------------------------------------------------------------------

    async def run_leader(self) -> None:
        """Everything a leader does, until cancelled or a fatal error."""
        self.leading = True
        await self.informer.synced.wait()
        self._accepting = True  # before the first pass reads the store, so nothing falls between
        self.queue.add(CLUSTER)  # the barrier runs it before any node event queued after it
        self.queue.run_workers(self._reconcile_key, self._options.workers, on_error=self._retry)
        await asyncio.gather(self._resync_loop(), self.host_watch.run(lambda: self.fatal is None))

    def request_full_pass(self, why: str) -> bool:
        """An operator asks for a full pass now (SIGHUP, `kaput-not resync`): e.g. the budget's
        trip is resolved and the held state should clear without waiting for RESYNC_PERIOD.
        Queued like every pass (rule 12). False, and nothing queued, on a replica that does not
        lead yet: its first full pass comes anyway."""
        if not self._accepting:
            log.info("a full pass was asked for (%s): not leading, nothing to do", why)
            return False
        log.info("a full pass was asked for (%s); queueing it", why)
        self.queue.add(CLUSTER)
        return True

    def on_lease_annotations(self, annotations: Mapping[str, str]) -> None:
        """The Lease's annotations, at each read by the elector: a new resync request there
        queues a full pass."""
        value = annotations.get(RESYNC_ANNOTATION)
        if value == self._resync_seen:
            return
        first, self._resync_seen = self._resync_seen == "", value
        if not first and value is not None:
            self.request_full_pass(f"{RESYNC_ANNOTATION}={value} on the Lease")

    async def wait_fatal(self) -> Exception:
        await self._fatal_event.wait()
        assert self.fatal is not None
        return self.fatal

    async def stop(self) -> None:
        self.leading = False
        await self.circuit.stop()
        await self.queue.shutdown(drain_timeout=self._options.drain_timeout_seconds)

    # -- passes ----------------------------------------------------------------------------

    async def _reconcile_key(self, key: str) -> None:
        """The one handler of the queue: a whole-cluster pass, or one node's."""
        if self.circuit.is_open:
            # No request while Netmaker is down: the node waits for the recovery pass, which
            # covers it (and the whole cluster: the recovery queues that pass itself).
            if key != CLUSTER:
                self.circuit.hold(key)
            return
        self._passes_started[key] = self._clock()
        try:
            if key == CLUSTER:
                await self._cluster_pass()
            else:
                await self._node_pass(key)
        finally:
            del self._passes_started[key]

    def passes_running(self) -> list[float]:
        """For how many seconds each pass in flight has run (at most WORKERS of them)."""
        now = self._clock()
        return [now - started for started in self._passes_started.values()]

    def longest_pass(self) -> tuple[str, float] | None:
        """The pass in flight the longest: its queue key (`CLUSTER` for a full pass) and for
        how many seconds it has run; None when no pass runs."""
        if not self._passes_started:
            return None
        key = min(self._passes_started, key=self._passes_started.__getitem__)
        return key, self._clock() - self._passes_started[key]

    async def _cluster_pass(self) -> None:
        report = await self._full_pass()
        self.grace.full_pass_done()
        if self._options.freeze_after_first_sync and not self.first_sync_done.is_set():
            freeze_long_lived()
        self.first_sync_done.set()
        if any(f.action.kube_node is None for f in report.result.failures):
            # Orphan writes that failed belong to no node key: the whole pass is retried.
            orphans = tuple(f.error for f in report.result.failures if f.action.kube_node is None)
            raise PassFailed("orphan clean-up writes failed", orphans)
        self.queue.forget(CLUSTER)

    async def _full_pass(self) -> PassReport:
        started = self._clock()
        self._metrics.last_full_sync_attempt.set(self._wall_clock())
        try:
            report = await self._reconciler.reconcile(read_kube=self._read_kube)
        except errors.NetmakerError:
            self._metrics.reconciles.labels("full", "error").inc()
            raise
        finally:
            seconds = self._clock() - started
            self._metrics.reconcile_seconds.labels("full").observe(seconds)
        self._results.count(report, "full")
        self.node_states.record(report, {n.name: n for n in self.informer.nodes()})
        # Every node was just planned against this snapshot: later host changes are measured
        # from it, so a host that appeared after an event's (cached) read is still noticed.
        self.host_watch.remember(report.view.hosts, report.view.nodes)
        self._results.full_pass(report, finished_at=self._wall_clock())
        self._retry.full_pass_failures(report.result.failures)
        self._results.log_full_pass(report, nodes=len(self.informer), seconds=seconds)
        return report

    async def _node_pass(self, name: str) -> None:
        node = self.informer.get(name)
        if node is not None:
            await self.host_watch.know_host(name, node.netmaker_host)
        started = self._clock()
        try:
            report = await self._reconciler.reconcile(
                only=name, read_kube=lambda: self._read_kube(only=name)
            )
        except errors.NetmakerError:
            self._metrics.reconciles.labels("node", "error").inc()
            raise
        finally:
            self._metrics.reconcile_seconds.labels("node").observe(self._clock() - started)
        self._results.count(report, "node")
        self._results.node_pass(report)
        # The pass reports every node claiming the same host: each is told what it learnt.
        nodes = {r.name: k for r in report.plan.nodes if (k := self.informer.get(r.name))}
        self.node_states.record(report, nodes, only=name)
        if report.result.failures:
            first = report.result.failures[0]
            raise PassFailed(
                f"{len(report.result.failures)} write(s) failed, first: {first.error}",
                tuple(f.error for f in report.result.failures),
            )
        self.grace.node_pass_done(name)
        self.queue.forget(name)

    def _read_kube(self, *, only: str | None = None) -> KubeRead:
        """The node store as it is now, with the grace clocks (called after Netmaker's read)."""
        if only is None:
            nodes = self.informer.nodes()
        else:
            node = self.informer.get(only)
            nodes = [node] if node is not None else []
        deleted_recently = self.grace.deleted_recently(self.informer.get)
        return KubeRead(
            nodes,
            # A store that may be stale (a broken watch, until the relist) is no basis for
            # deletes: they wait, and the relist's events bring the keys back.
            complete=self.informer.synced.is_set() and self.informer.fresh,
            cidrless_expired=self.grace.cidrless_expired(nodes, only=only),
            deleted_recently=deleted_recently,
            claims=self.claims,
            resolved=self.grace.resolved(),
        )

    async def _resync_loop(self) -> None:
        while self.fatal is None:
            await asyncio.sleep(self._options.resync_period_seconds)
            self.queue.add(CLUSTER)

    def _recovered(self, waited: set[str]) -> None:
        """Netmaker answers again: the held keys start over, and one full pass (through the
        queue, with the guard) plans and writes everything on lists read anew."""
        for key in waited:
            self.queue.forget(key)
        self.queue.forget(CLUSTER)
        self._netmaker.invalidate()
        self.queue.add(CLUSTER)

    def _circuit_changed(self, is_open: bool) -> None:
        self._metrics.netmaker_unavailable.set(1 if is_open else 0)
        if is_open:
            self._metrics.netmaker_outages.inc()

    def fail(self, exc: BaseException) -> None:
        """Stop the controller because of `exc` (wakes `wait_fatal`); the first cause wins."""
        if self.fatal is None:
            log.error("stopping: %s", exc)
            self.fatal = exc if isinstance(exc, Exception) else RuntimeError(repr(exc))
            self._fatal_event.set()


def freeze_long_lived() -> None:
    """Once per process, after the first full pass: collect, then leave everything alive now
    (modules, the node store, the Netmaker lists) out of later collections (`gc.freeze`).

    At 10,000 nodes about a million objects are alive; each full collection walked them all and
    came as a refresh of the lists allocated their replacements, holding node events back
    (docs/benchmarks.md has the events p99 with and without the freeze). Frozen
    objects are still freed when their last reference goes (the lists replaced on a refresh
    are); only a reference cycle
    frozen here and dropped later is never reclaimed, which is why this happens once, after a
    collection, and not at every pass.
    """
    if gc.get_freeze_count() == 0:
        gc.collect()
        gc.freeze()
