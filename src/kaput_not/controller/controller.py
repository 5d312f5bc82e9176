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
One handler runs every key and one error policy (`_retry`, with `circuit.decide`) decides for
all of them: a rejected password stops the controller; a failure about the server opens the
circuit (one state for the whole server: keys are held, not retried one by one, and one full
pass follows its recovery); a failure of one key's request backs off per key; a permanent one
(a 4xx) is logged once and left to the next full pass.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass

from kaput_not import ratelimit
from kaput_not.controller.circuit import Circuit, Held, Retry, decide, server_cause
from kaput_not.controller.metrics import Metrics
from kaput_not.controller.node_states import Emit, NodeStates
from kaput_not.controller.queue import WorkQueue
from kaput_not.controller.reconciler import KubeRead, PassReport, Reconciler
from kaput_not.core.claims import KubeClaims
from kaput_not.core.model import ActionKind, Host, KubeNode, NmNode, SkipReason
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
#: Permanent failures remembered as already logged; past this many the memory starts over.
_TOLD_LIMIT = 10_000


@dataclass(frozen=True, slots=True)
class ControllerOptions:
    workers: int = 4
    resync_period_seconds: float = 600.0
    netmaker_poll_seconds: float = 30.0
    drain_timeout_seconds: float = 5.0
    #: A deleted node's rules wait this long: a rebuild (deleted, then created again under the
    #: same name) arrives as two watch events, and waiting lets the re-create merge with the
    #: delete into one pass that updates the rules in place instead of deleting them.
    delete_grace_seconds: float = 15.0
    #: At most one forced refresh of Netmaker hosts and nodes per this many seconds, for node
    #: events whose host the cached lists do not know yet.
    inventory_refresh_seconds: float = 1.0
    #: DRY_RUN: plans are logged as what they would write; nothing is written.
    dry_run: bool = False
    #: `freeze_long_lived()` after the first full pass: a process-wide effect, so the process
    #: (`kaput-not run`) asks for it; controllers built by tests leave the collector alone.
    freeze_after_first_sync: bool = False
    #: NODE_SELECTOR: only the nodes it selects are read (the API server filters).
    node_selector: str = ""
    #: While Netmaker is unavailable, it is probed at most this many seconds apart: a restart
    #: is noticed within this long of the server answering again.
    netmaker_probe_cap_seconds: float = 1.0


class PassFailed(Exception):
    """A pass ran but some writes failed; their errors decide the key's retry."""

    def __init__(self, message: str, causes: tuple[Exception, ...] = ()) -> None:
        super().__init__(message)
        self.errors = causes


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
        clock: Callable[[], float] = time.monotonic,
        emit: Emit | None = None,
    ) -> None:
        self.informer = NodeInformer(kube, self.on_event, label_selector=options.node_selector)
        # `is None`, not `or`: an empty queue has a length of 0, so it is falsy.
        self.queue: WorkQueue[str] = (
            queue
            if queue is not None
            else WorkQueue(name="nodes", exclusive=CLUSTER, observer=metrics)
        )
        self._netmaker = netmaker
        self._reconciler = reconciler
        self._metrics = metrics
        self._options = options
        self._wall_clock = wall_clock
        self._clock = clock
        self.node_states = NodeStates(
            emit=emit, on_counts=self._count_skipped, on_conflicts=metrics.host_conflicts.set
        )
        #: Every node's host claim and pod CIDRs, kept with the informer's store event by event:
        #: a node's pass judges it against all the others without a scan.
        self.claims = KubeClaims()
        #: The host a deleted or re-annotated node resolved to before, until its pass ran: its
        #: rules are found (and, in the delete grace, kept) through that host.
        self._resolved: dict[str, str] = {}
        #: When each node was first seen without pod CIDRs (rule 11's grace starts there).
        self._cidrless_since: dict[str, float] = {}
        #: When each node was deleted: full passes leave its rules for DELETE_GRACE too.
        self._deleted_at: dict[str, float] = {}
        self.first_sync_done = asyncio.Event()
        #: True from the moment this replica starts leading until `stop()`.
        self.leading = False
        self.fatal: Exception | None = None
        self._fatal_event = asyncio.Event()
        # The host fingerprints later changes are measured from, and the lists they were taken
        # from: the same lists again (within the TTL, and on every resync) give the same
        # fingerprints without computing them again.
        self._fingerprinted: (
            tuple[Sequence[Host], Sequence[NmNode], dict[str, _Fingerprint]] | None
        ) = None
        self._host_names_memo: tuple[list[Host], frozenset[str]] | None = None
        # Until the first full pass starts, events are covered by it: queueing them would
        # plan every node a second time, one by one, right after the full pass did.
        self._accepting = False
        self._inventory_refreshed_at = float("-inf")
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
        #: Texts of permanent failures already logged: each is logged once.
        self._told_permanent: set[str] = set()

    # -- events ----------------------------------------------------------------------------

    def on_event(self, event: NodeEvent) -> None:
        """Handlers only enqueue; the reconcile reads the store again."""
        self.claims.update(event.old, event.new)  # every change, so the index is the store's
        if event.old is not None and (
            event.new is None or event.new.netmaker_host != event.old.netmaker_host
        ):
            self._resolved[event.name] = event.old.netmaker_host
        if not self._accepting:
            return
        if event.kind is EventKind.MODIFIED:
            assert event.old is not None
            assert event.new is not None
            if event.old == event.new:  # pod CIDRs and the host annotation: all a pass reads
                return
        if event.kind is EventKind.DELETED:
            self._deleted_at[event.name] = self._clock()
            self.queue.add_after(event.name, self._options.delete_grace_seconds)
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
        await asyncio.gather(self._resync_loop(), self._netmaker_watch_loop())

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
        self._record(report, "full")
        self.node_states.record(report, {n.name: n for n in self.informer.nodes()})
        # Every node was just planned against this snapshot: later host changes are measured
        # from it, so a host that appeared after an event's (cached) read is still noticed.
        self._fingerprints(report.view.hosts, report.view.nodes)
        result = report.result
        self._metrics.managed_egress.set(report.plan.owned + result.created - result.deleted)
        if result.ok:
            self._metrics.last_full_sync.set(self._wall_clock())
        for failure in result.failures:
            # Retry what failed through the queue as `decide` says; orphans: the pass's retry.
            node = failure.action.kube_node
            if node is None:
                continue
            kind = decide(failure.error)
            if kind is Retry.SERVER:
                self.circuit.hold(node)
            elif kind is Retry.KEY:
                self.queue.add_rate_limited(node)
        if self._options.dry_run:
            plan = report.plan
            counts = {
                "nodes": len(self.informer),
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
            return report
        counts = {
            "nodes": len(self.informer),
            "owned": report.plan.owned,
            "created": result.created,
            "updated": result.updated,
            "deleted": result.deleted,
            "failed": len(result.failures),
            "withheld": len(report.plan.withheld),
            "seconds": round(seconds, 3),
        }
        # The counts as fields too, so log tooling can graph and filter them.
        log.info(
            "full sync: %d nodes, %d rules owned, %d created, %d updated, %d deleted, "
            "%d failed, %d withheld in %.2fs",
            *counts.values(),
            extra={"fields": counts},
        )
        return report

    async def _resync_loop(self) -> None:
        while self.fatal is None:
            await asyncio.sleep(self._options.resync_period_seconds)
            self.queue.add(CLUSTER)

    async def _netmaker_watch_loop(self) -> None:
        # While Netmaker fails, the poll backs off (to 5 min) instead of asking every TTL.
        backoff: ratelimit.ExponentialBackoff[str] = ratelimit.ExponentialBackoff(
            base=self._options.netmaker_poll_seconds, cap=300.0, jitter=0.2
        )
        wait = self._options.netmaker_poll_seconds
        while self.fatal is None:
            await asyncio.sleep(wait)
            if self.circuit.is_open:
                wait = self._options.netmaker_poll_seconds  # the probe asks; the recovery re-plans
                continue
            if await self._attempt(self.check_netmaker_changes, "watching Netmaker hosts"):
                backoff.forget(CLUSTER)
                wait = self._options.netmaker_poll_seconds
            else:
                wait = backoff.when(CLUSTER)

    async def _attempt(self, step: Callable[[], Awaitable[object]], what: str) -> bool:
        """Run a read-only `step`; a Netmaker error is logged (the caller tries again later), a
        rejected password stops the controller. True when the step succeeded."""
        try:
            await step()
        except errors.CredentialsRejected as exc:
            self.fail(exc)
            raise
        except errors.NetmakerError as exc:
            if decide(exc) is Retry.SERVER:
                self.circuit.trip(exc)
            else:
                log.warning("%s failed: %s", what, exc)
            return False
        return True

    async def check_netmaker_changes(self) -> list[str]:
        """Enqueue Kubernetes nodes whose Netmaker host or memberships changed; return them."""
        hosts = await self._netmaker.hosts()  # one at a time, as in the cache's view()
        nodes = await self._netmaker.nodes()
        previous = self._fingerprinted[2] if self._fingerprinted is not None else None
        current = self._fingerprints(hosts, nodes)
        if previous is None:
            return []
        hosts_changed = {
            host
            for host in current.keys() | previous.keys()
            if current.get(host) != previous.get(host)
        }
        # The Kubernetes nodes matched to those hosts: by name, or by the host annotation.
        changed = sorted({k.name for host in hosts_changed for k in self.claims.claimants(host)})
        for name in changed:
            log.info("Netmaker host of node %s changed; reconciling the node", name)
            self.queue.add(name)
        removed = _lost_membership(previous, current)
        if removed:
            # Netmaker strips a removed node from every rule and keeps the rules (`nodes: {}`):
            # no node name can claim them, so only a full pass cleans them up.
            log.info("Netmaker hosts or memberships were removed; queueing a full pass")
            self.queue.add(CLUSTER)
        return changed

    def _fingerprints(
        self, hosts: Sequence[Host], nodes: Sequence[NmNode]
    ) -> dict[str, _Fingerprint]:
        """The fingerprints of these lists, kept as the ones the next changes are measured from."""
        memo = self._fingerprinted
        if memo is not None and memo[0] is hosts and memo[1] is nodes:
            return memo[2]
        prints = _fingerprints(hosts, nodes)
        self._fingerprinted = (hosts, nodes, prints)
        return prints

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
        # The pass planned every host: earlier hosts matter only to deletes still in their grace.
        self._resolved = {n: h for n, h in self._resolved.items() if n in self._deleted_at}
        if self._options.freeze_after_first_sync and not self.first_sync_done.is_set():
            freeze_long_lived()
        self.first_sync_done.set()
        if any(f.action.kube_node is None for f in report.result.failures):
            # Orphan writes that failed belong to no node key: the whole pass is retried.
            orphans = tuple(f.error for f in report.result.failures if f.action.kube_node is None)
            raise PassFailed("orphan clean-up writes failed", orphans)
        self.queue.forget(CLUSTER)

    async def _node_pass(self, name: str) -> None:
        node = self.informer.get(name)
        if node is not None:
            await self._know_host(name, node.netmaker_host)
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
        self._record(report, "node")
        # Exact between full passes too: what this pass wrote changes how many rules are ours.
        self._metrics.managed_egress.inc(report.result.created - report.result.deleted)
        # The pass reports every node claiming the same host: each is told what it learnt.
        nodes = {r.name: k for r in report.plan.nodes if (k := self.informer.get(r.name))}
        self.node_states.record(report, nodes, only=name)
        if report.result.failures:
            first = report.result.failures[0]
            raise PassFailed(
                f"{len(report.result.failures)} write(s) failed, first: {first.error}",
                tuple(f.error for f in report.result.failures),
            )
        if name not in self._deleted_at:  # in the grace, full passes still need its host
            self._resolved.pop(name, None)
        self.queue.forget(name)

    def _read_kube(self, *, only: str | None = None) -> KubeRead:
        """The node store as it is now, with the grace clocks (called after Netmaker's read)."""
        if only is None:
            nodes = self.informer.nodes()
        else:
            node = self.informer.get(only)
            nodes = [node] if node is not None else []
        now = self._clock()
        grace = self._options.delete_grace_seconds
        for name, when in list(self._deleted_at.items()):
            if now - when >= grace or self.informer.get(name) is not None:
                del self._deleted_at[name]
        return KubeRead(
            nodes,
            # A store that may be stale (a broken watch, until the relist) is no basis for
            # deletes: they wait, and the relist's events bring the keys back.
            complete=self.informer.synced.is_set() and self.informer.fresh,
            cidrless_expired=self._cidrless_expired(nodes, only=only),
            deleted_recently=frozenset(self._deleted_at),
            claims=self.claims,
            resolved=dict(self._resolved),
        )

    def _cidrless_expired(
        self, nodes: list[KubeNode], *, only: str | None = None
    ) -> frozenset[str]:
        """Rule 11: the nodes without pod CIDRs for longer than the grace (DELETE_GRACE).

        The grace starts when a node is first seen without CIDRs; its key is queued again for
        when the grace ends, so its rules go then if it still has none.
        """
        now = self._clock()
        grace = self._options.delete_grace_seconds
        present = {n.name for n in nodes}
        for name in [only] if only is not None else list(self._cidrless_since):
            if name not in present:
                self._cidrless_since.pop(name, None)  # deleted: DELETE_GRACE covers it
        expired: set[str] = set()
        for node in nodes:
            if node.pod_cidrs:
                self._cidrless_since.pop(node.name, None)
                continue
            since = self._cidrless_since.setdefault(node.name, now)
            left = since + grace - now
            if left <= 0:
                expired.add(node.name)
            else:
                self.queue.add_after(node.name, left)
        return frozenset(expired)

    async def _know_host(self, name: str, host: str) -> None:
        """Refresh the cached host and node lists once if they do not know node `name`'s
        Netmaker `host` yet.

        Netmaker hosts usually join before their Kubernetes node registers, so the node's event
        would otherwise be planned against lists cached before the host existed, and wait a
        TTL for the host watch. Rate-limited: a burst of unknown names costs one refresh.
        """
        # The lists a node pass plans on: known there is known enough (even while they refresh).
        hosts = await self._netmaker.hosts(stale_ok=True)
        if host in self._host_names(hosts):
            return
        now = self._clock()
        wait = self._inventory_refreshed_at + self._options.inventory_refresh_seconds - now
        if wait > 0:
            # Refreshed a moment ago, maybe just before this host joined: look again once the
            # rate limit allows, instead of waiting for the next host poll.
            self.queue.add_after(name, wait)
            return
        self._inventory_refreshed_at = now
        self._netmaker.refresh_inventory()

    def _host_names(self, hosts: list[Host]) -> frozenset[str]:
        """The names in `hosts`, computed once per list (node events come by the hundred)."""
        memo = self._host_names_memo
        if memo is None or memo[0] is not hosts:
            memo = self._host_names_memo = (hosts, frozenset(h.name for h in hosts))
        return memo[1]

    def _count_skipped(self, counts: Mapping[str, int]) -> None:
        for reason in SkipReason:
            self._metrics.nodes_skipped.labels(reason.value).set(counts.get(reason.value, 0))

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
            if isinstance(failure.error, Held):
                continue  # never sent: not a failed write, the recovery pass writes it
            action = failure.action.kind.value
            self._metrics.egress_writes.labels(action, "failed").inc()
            if decide(failure.error) is Retry.PERMANENT:
                self._metrics.permanent_errors.labels(action).inc()

    async def _retry(self, key: str, exc: Exception) -> None:
        """The one error policy of every key (controller-runtime's reconcileHandler switch):
        `decide` sorts the failure, this does what its kind asks."""
        kind = decide(exc)
        if kind is Retry.FATAL:
            self.fail(exc)
            return
        what = "the full pass" if key == CLUSTER else f"reconciling node {key}"
        if kind is Retry.SERVER:
            self.circuit.trip(server_cause(exc))  # one line when it opens, none per key
            if key != CLUSTER:
                self.circuit.hold(key)
            return
        if kind is Retry.PERMANENT:
            # Not retried: the same answer would come back. The next full pass tries again.
            self.queue.forget(key)
            if not isinstance(exc, PassFailed):  # a failed write was counted and logged once
                self._metrics.permanent_errors.labels("read").inc()
                text = str(exc)
                if text not in self._told_permanent:
                    if len(self._told_permanent) >= _TOLD_LIMIT:
                        self._told_permanent.clear()
                    self._told_permanent.add(text)
                    log.warning("%s failed: %s (not retried before the next full pass)", what, exc)
            return
        requeues = self.queue.requeues(key) + 1
        if isinstance(exc, errors.NetmakerError | PassFailed):
            log.warning("%s failed (retry %d): %s", what, requeues, exc)
        else:  # a bug: say so loudly, and still retry rather than lose the key
            log.error("%s failed unexpectedly (retry %d): %r", what, requeues, exc, exc_info=exc)
        self.queue.add_rate_limited(key)

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


#: (host id, network, node id, routable): one Netmaker membership of a host name.
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


_Membership = tuple[str, str, str, bool]
#: A host name's memberships, sorted. A tuple, not a set: a set per host costs far more.
_Fingerprint = tuple[_Membership, ...]


def _fingerprints(hosts: Sequence[Host], nodes: Sequence[NmNode]) -> dict[str, _Fingerprint]:
    """Per host name, every membership of every host of that name. A change means re-plan.

    A host without nodes counts as one membership of its own, so its appearing is a change.
    """
    by_host: dict[str, list[NmNode]] = {}
    for node in nodes:
        by_host.setdefault(node.host_id, []).append(node)
    prints: dict[str, list[_Membership]] = {}
    for host in hosts:
        entry = prints.setdefault(host.name, [])
        members = by_host.get(host.id)
        if not members:
            entry.append((host.id, "", "", True))
        for node in members or ():
            entry.append((host.id, node.network, node.id, node.routable))
    return {
        name: (entry[0],) if len(entry) == 1 else tuple(sorted(set(entry)))
        for name, entry in prints.items()
    }


def _lost_membership(previous: dict[str, _Fingerprint], current: dict[str, _Fingerprint]) -> bool:
    """Whether a membership of `previous` is missing from `current`. A host's placeholder for
    "no nodes yet" is no membership: its going (the host joined a network) loses nothing."""
    return any(
        member[2] and member not in current.get(name, ())
        for name, members in previous.items()
        if current.get(name) != members
        for member in members
    )
