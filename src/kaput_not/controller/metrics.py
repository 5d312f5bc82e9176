"""Prometheus metrics of the controller, on a registry passed in (never the global one).

Besides our `kaput_not_*` series: the process and Python collectors, the work queue series
users know from client-go (`workqueue_*`, label `name`), `leader_election_master_status` as
client-go's leader election exports it, and `kaput_not_build_info{version}`. No `_created`
series: they double every counter and nobody graphs them.
"""

from __future__ import annotations

from collections.abc import Callable

from prometheus_client import (
    GC_COLLECTOR,
    PLATFORM_COLLECTOR,
    PROCESS_COLLECTOR,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    disable_created_metrics,
)

from kaput_not import __version__

_PREFIX = "kaput_not"
_QUEUE_BUCKETS = (0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300)

disable_created_metrics()  # type: ignore[no-untyped-call]


class Metrics:
    def __init__(self, registry: CollectorRegistry | None = None, *, queue: str = "nodes") -> None:
        self.registry = registry or CollectorRegistry()
        r = self.registry
        for collector in (PROCESS_COLLECTOR, PLATFORM_COLLECTOR, GC_COLLECTOR):
            r.register(collector)
        Gauge(
            f"{_PREFIX}_build_info", "The running version (always 1).", ["version"], registry=r
        ).labels(__version__).set(1)
        self.queue_name = queue
        self.workqueue_depth = Gauge(
            "workqueue_depth", "Current depth of the work queue.", ["name"], registry=r
        )
        self.workqueue_adds = Counter(
            "workqueue_adds_total", "Keys added to the work queue.", ["name"], registry=r
        )
        self.workqueue_retries = Counter(
            "workqueue_retries_total", "Retries (rate-limited adds).", ["name"], registry=r
        )
        self.workqueue_wait = Histogram(
            "workqueue_queue_duration_seconds",
            "How long a key waits in the queue before a worker takes it.",
            ["name"],
            buckets=_QUEUE_BUCKETS,
            registry=r,
        )
        self.workqueue_work = Histogram(
            "workqueue_work_duration_seconds",
            "How long a worker takes over one key.",
            ["name"],
            buckets=_QUEUE_BUCKETS,
            registry=r,
        )
        self.leader_status = Gauge(
            "leader_election_master_status",
            "1 while this replica holds the lease (or runs without election), else 0.",
            ["name"],
            registry=r,
        )
        self.last_full_sync_attempt = Gauge(
            f"{_PREFIX}_last_full_sync_attempt_timestamp_seconds",
            "Unix time of the last full pass started, successful or not.",
            registry=r,
        )
        self.reconciles = Counter(
            f"{_PREFIX}_reconciles_total",
            "Reconcile passes by scope (node or full) and result (success, error, held).",
            ["scope", "result"],
            registry=r,
        )
        self.reconcile_seconds = Histogram(
            f"{_PREFIX}_reconcile_duration_seconds",
            "Duration of reconcile passes by scope.",
            ["scope"],
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120),
            registry=r,
        )
        self.netmaker_requests = Counter(
            f"{_PREFIX}_netmaker_requests_total",
            "Netmaker API requests by method, endpoint and HTTP status ('none': no answer).",
            ["method", "endpoint", "status"],
            registry=r,
        )
        self.netmaker_seconds = Histogram(
            f"{_PREFIX}_netmaker_request_duration_seconds",
            "Netmaker API request latency by method and endpoint.",
            ["method", "endpoint"],
            registry=r,
        )
        self._netmaker_series: dict[tuple[str, str, int | None], tuple[Counter, Histogram]] = {}
        self.egress_writes = Counter(
            f"{_PREFIX}_egress_writes_total",
            "Egress writes by action (create, update, delete) and result (ok, failed).",
            ["action", "result"],
            registry=r,
        )
        self.managed_egress = Gauge(
            f"{_PREFIX}_managed_egress_rules",
            "Egress rules owned by this controller, as of the last full pass.",
            registry=r,
        )
        self.deletes_refused = Counter(
            f"{_PREFIX}_deletes_refused_total",
            "Writes held back: deletes and re-creates over the cluster-wide budget, deletes "
            "before the first complete node list.",
            registry=r,
        )
        self.nodes_skipped = Gauge(
            f"{_PREFIX}_nodes_skipped",
            "Kubernetes nodes that get no rule, by reason (no-netmaker-host, ambiguous-host, "
            "no-pod-cidrs, bad-pod-cidr, no-writable-network, writes-held, host-taken, "
            "host-contested, host-annotation-refused).",
            ["reason"],
            registry=r,
        )
        self.host_conflicts = Gauge(
            f"{_PREFIX}_host_conflicts",
            "Kubernetes nodes that keep their Netmaker host (matched by name) while another "
            "node's kaput-not.io/netmaker-host annotation names it (refused as host-taken).",
            registry=r,
        )
        self.events_dropped = Counter(
            f"{_PREFIX}_events_dropped_total",
            "Kubernetes Events not posted because of the rate limit.",
            registry=r,
        )
        self.holding = Gauge(
            f"{_PREFIX}_write_budget_holding",
            "1 while the last pass held writes back (delete or re-create budget), else 0.",
            registry=r,
        )
        self.last_full_sync = Gauge(
            f"{_PREFIX}_last_successful_full_sync_timestamp_seconds",
            "Unix time of the last full pass that wrote everything it planned.",
            registry=r,
        )
        self.queue_depth = Gauge(
            f"{_PREFIX}_queue_depth", "Nodes waiting in the work queue.", registry=r
        )
        self.leader = Gauge(
            f"{_PREFIX}_leader", "1 while this replica leads and may write, else 0.", registry=r
        )
        self.nodes = Gauge(
            f"{_PREFIX}_kubernetes_nodes", "Kubernetes nodes in the informer store.", registry=r
        )
        self.netmaker_unavailable = Gauge(
            f"{_PREFIX}_netmaker_unavailable",
            "1 while Netmaker is unavailable (unreachable, timing out or answering 5xx): its "
            "writes are held and one probe asks on a backoff; else 0.",
            registry=r,
        )
        self.netmaker_outages = Counter(
            f"{_PREFIX}_netmaker_outages_total",
            "Times Netmaker became unavailable (each ends with one full pass).",
            registry=r,
        )
        self.permanent_errors = Counter(
            f"{_PREFIX}_netmaker_permanent_errors_total",
            "Netmaker requests refused with an answer that is the same on every try (a 4xx), "
            "by action (create, update, delete, read): not retried before the next full pass.",
            ["action"],
            registry=r,
        )
        self.pass_running = Gauge(
            f"{_PREFIX}_pass_running_seconds",
            "How long the longest reconcile pass in flight has been running (0 when none).",
            registry=r,
        )

    def on_netmaker_request(
        self, method: str, endpoint: str, status: int | None, seconds: float
    ) -> None:
        """The Netmaker client's `on_request` hook, once per request: the labelled series are
        kept by their labels (a handful: methods, endpoints, statuses), as `labels()` checks
        and locks on every call (3.4 µs a request, a write's 0.7 %)."""
        key = (method, endpoint, status)
        found = self._netmaker_series.get(key)
        if found is None:
            shown = str(status) if status else "none"
            found = self._netmaker_series[key] = (
                self.netmaker_requests.labels(method, endpoint, shown),
                self.netmaker_seconds.labels(method, endpoint),
            )
        count, latency = found
        count.inc()
        latency.observe(seconds)

    def watch(
        self,
        *,
        queue_depth: Callable[[], float],
        leader: Callable[[], bool],
        nodes: Callable[[], float],
        holding: Callable[[], bool] = lambda: False,
        lease: str = "kaput-not",
        pass_running: Callable[[], float] = lambda: 0.0,
    ) -> None:
        """Gauges read at scrape time from the live objects."""
        leading = _as_float(leader)
        self.holding.set_function(_as_float(holding))
        self.queue_depth.set_function(queue_depth)
        self.workqueue_depth.labels(self.queue_name).set_function(queue_depth)
        self.leader.set_function(leading)
        self.leader_status.labels(lease).set_function(leading)  # the name client-go uses
        self.nodes.set_function(nodes)
        self.pass_running.set_function(pass_running)

    # The work queue's observer (controller/queue.py `QueueObserver`).

    def added(self) -> None:
        self.workqueue_adds.labels(self.queue_name).inc()

    def retried(self) -> None:
        self.workqueue_retries.labels(self.queue_name).inc()

    def started(self, waited_seconds: float) -> None:
        self.workqueue_wait.labels(self.queue_name).observe(waited_seconds)

    def finished(self, worked_seconds: float) -> None:
        self.workqueue_work.labels(self.queue_name).observe(worked_seconds)


def _as_float(flag: Callable[[], bool]) -> Callable[[], float]:
    """A yes/no reading as a gauge value: 1 or 0."""
    return lambda: 1.0 if flag() else 0.0
