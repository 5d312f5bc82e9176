"""Prometheus metrics of the controller, on a registry passed in (never the global one).

Besides our `kaput_not_*` series: the process and Python collectors, the work queue series
users know from client-go (`workqueue_*`, label `name`), `leader_election_master_status` as
client-go's leader election exports it, the Kubernetes API requests as client-go counts them
(`rest_client_requests_total{code,method,host}`, `rest_client_request_duration_seconds{verb,
host}`), and `kaput_not_build_info{version,revision}`. Where a conventional series exists,
there is no `kaput_not_*` copy of it (the queue depth, the leader flag, the longest pass
running). HTTP status codes are in a label `code`. No `_created` series: they double every
counter and nobody graphs them.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

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

from kaput_not import __revision__, __version__

_PREFIX = "kaput_not"
_QUEUE_BUCKETS = (0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300)

#: `kaput_not_blocked{reason}`: the Lease cannot be read or written; nodes cannot be listed.
LEASE_FORBIDDEN = "lease-forbidden"
NODES_FORBIDDEN = "nodes-forbidden"
BLOCKED_REASONS = (LEASE_FORBIDDEN, NODES_FORBIDDEN)

disable_created_metrics()  # type: ignore[no-untyped-call]


class Metrics:
    def __init__(self, registry: CollectorRegistry | None = None, *, queue: str = "nodes") -> None:
        self.registry = registry or CollectorRegistry()
        r = self.registry
        for collector in (PROCESS_COLLECTOR, PLATFORM_COLLECTOR, GC_COLLECTOR):
            r.register(collector)
        Gauge(
            f"{_PREFIX}_build_info",
            "The running version and the git commit it was built from (always 1).",
            ["version", "revision"],
            registry=r,
        ).labels(__version__, __revision__).set(1)
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
        self.workqueue_unfinished = Gauge(
            "workqueue_unfinished_work_seconds",
            "Seconds of work in progress not yet observed by work_duration (the sum over the "
            "keys being worked on); large values mean stuck workers.",
            ["name"],
            registry=r,
        )
        self.workqueue_longest = Gauge(
            "workqueue_longest_running_processor_seconds",
            "How long the longest-running key in the queue has been worked on (0 when none).",
            ["name"],
            registry=r,
        )
        self.leader_status = Gauge(
            "leader_election_master_status",
            "1 while this replica leads and may write (or runs without election), else 0.",
            ["name"],
            registry=r,
        )
        self.rest_requests = Counter(
            "rest_client_requests_total",
            "Kubernetes API requests by HTTP status code ('<error>': no answer), method and host.",
            ["code", "method", "host"],
            registry=r,
        )
        self.rest_seconds = Histogram(
            "rest_client_request_duration_seconds",
            "Kubernetes API request latency (to the answer's headers) by verb and host.",
            ["verb", "host"],
            buckets=(0.005, 0.025, 0.1, 0.25, 0.5, 1, 2, 4, 8, 15, 30, 60),
            registry=r,
        )
        self._rest_series: dict[tuple[str, str, str], tuple[Counter, Histogram]] = {}
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
            "Netmaker API requests by method, endpoint and HTTP status code ('none': no answer).",
            ["method", "endpoint", "code"],
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
        self.blocked = Gauge(
            f"{_PREFIX}_blocked",
            "1 while this replica cannot do its job for this reason, else 0: "
            f"{', '.join(BLOCKED_REASONS)} (the API refuses it: RBAC).",
            ["reason"],
            registry=r,
        )

    def on_netmaker_request(
        self, method: str, endpoint: str, status: int | None, seconds: float
    ) -> None:
        """The Netmaker client's `on_request` hook, once per request: the labelled series are
        kept by their labels (a handful: methods, endpoints, statuses), as `labels()` checks
        and locks on every call."""
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

    def on_kube_request(self, method: str, host: str, code: int | None, seconds: float) -> None:
        """The Kubernetes API client's `on_request` hook, once per request (a watch: when its
        answer's headers arrive)."""
        key = (method, host, str(code) if code else "<error>")
        found = self._rest_series.get(key)
        if found is None:
            found = self._rest_series[key] = (
                self.rest_requests.labels(key[2], method, host),
                self.rest_seconds.labels(method, host),
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
        running: Callable[[], list[float]] = list,
        blocked: Mapping[str, Callable[[], bool]] | None = None,
    ) -> None:
        """Gauges read at scrape time from the live objects. `running`: for how many seconds
        each key being worked on has been (the passes in flight)."""
        self.holding.set_function(_as_float(holding))
        self.workqueue_depth.labels(self.queue_name).set_function(queue_depth)
        self.workqueue_unfinished.labels(self.queue_name).set_function(lambda: sum(running()))
        self.workqueue_longest.labels(self.queue_name).set_function(
            lambda: max(running(), default=0.0)
        )
        self.leader_status.labels(lease).set_function(_as_float(leader))  # client-go's name
        self.nodes.set_function(nodes)
        for reason in BLOCKED_REASONS:
            self.blocked.labels(reason).set_function(
                _as_float((blocked or {}).get(reason, lambda: False))
            )

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
