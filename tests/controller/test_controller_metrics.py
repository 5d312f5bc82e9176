"""Each failed node pass is counted once, whether writes failed or Netmaker could not be read."""

from __future__ import annotations

import httpx2
import pytest

from kaput_not.controller.controller import Controller, ControllerOptions
from kaput_not.controller.metrics import Metrics
from kaput_not.controller.reconciler import PassReport
from kaput_not.controller.retry_policy import PassFailed
from kaput_not.core.applied import ApplyResult, Failure
from kaput_not.core.model import Action, ActionKind, EgressSpec, Plan
from kaput_not.core.planner import NetmakerView
from kaput_not.kube import wire
from kaput_not.kube.api import KubeApi, KubeError
from kaput_not.netmaker import errors
from kaput_not_standins.kube import KubeApiServer

SPEC = EgressSpec(
    network="a",
    name="w1 pods (1/1)",
    description="d",
    range="10.0.0.0/24",
    nat=False,
    status=True,
    nodes={"n1": 500},
)


class Reconciler:
    """Answers every pass with the outcome the test sets."""

    def __init__(self) -> None:
        self.outcome: PassReport | Exception = PassReport(
            plan=Plan(), result=ApplyResult(), view=NetmakerView()
        )

    async def reconcile(self, kube_nodes: object = (), **kwargs: object) -> PassReport:
        if isinstance(self.outcome, Exception):
            raise self.outcome
        return self.outcome


class Netmaker:
    async def hosts(self) -> list[object]:
        return []

    def refresh_inventory(self) -> None:
        pass


def errors_counted(metrics: Metrics) -> float:
    value = metrics.registry.get_sample_value(
        "kaput_not_reconciles_total", {"scope": "node", "result": "error"}
    )
    return value or 0.0


@pytest.mark.parametrize("failure", ["write-failed", "netmaker-unreadable"])
async def test_a_failed_node_pass_is_counted_once(failure: str):
    metrics = Metrics()
    reconciler = Reconciler()
    controller = Controller(
        kube=KubeApi(httpx2.AsyncClient()),
        netmaker=Netmaker(),  # type: ignore[arg-type]
        reconciler=reconciler,  # type: ignore[arg-type]
        metrics=metrics,
        options=ControllerOptions(),
    )
    if failure == "write-failed":
        action = Action(kind=ActionKind.CREATE, reason="r", network="a", spec=SPEC)
        boom = errors.ApiError("POST /api/v1/egress", status=500, code=500, server_message="x")
        reconciler.outcome = PassReport(
            plan=Plan(actions=(action,)),
            result=ApplyResult(failures=(Failure(action, boom),)),
            view=NetmakerView(),
        )
    else:
        reconciler.outcome = errors.Unreachable("GET /api/hosts", "connection refused")
    expected = PassFailed if failure == "write-failed" else errors.Unreachable
    with pytest.raises(expected) as caught:
        await controller._reconcile_key("w1")
    await controller._retry("w1", caught.value)
    assert errors_counted(metrics) == 1.0
    # Both failures are about the server (issue 19): the key waits for it, not backed off.
    assert controller.circuit.waiting == {"w1"}
    assert controller.queue.requeues("w1") == 0
    await controller.circuit.stop()


async def test_the_standard_series_are_exported_without_created_duplicates():
    from prometheus_client import generate_latest

    from kaput_not import __revision__, __version__
    from kaput_not.controller.queue import WorkQueue

    metrics = Metrics()
    queue: WorkQueue[str] = WorkQueue(name="nodes", observer=metrics)
    metrics.watch(
        queue_depth=lambda: float(len(queue)), leader=lambda: True, nodes=lambda: 2.0, lease="kn"
    )
    queue.add("w1")
    queue.add("w1")  # deduplicated: one add
    async with queue.take() as key:
        queue.add_rate_limited(key)
    text = generate_latest(metrics.registry).decode()
    samples = {
        line.rsplit(" ", 1)[0]: float(line.rsplit(" ", 1)[1])
        for line in text.splitlines()
        if line and not line.startswith("#")
    }
    build = f'kaput_not_build_info{{revision="{__revision__}",version="{__version__}"}}'
    assert samples[build] == 1
    assert samples['leader_election_master_status{name="kn"}'] == 1
    assert samples['workqueue_adds_total{name="nodes"}'] == 1
    assert samples['workqueue_retries_total{name="nodes"}'] == 1
    assert samples['workqueue_queue_duration_seconds_count{name="nodes"}'] == 1
    assert samples['workqueue_work_duration_seconds_count{name="nodes"}'] == 1
    assert samples['workqueue_depth{name="nodes"}'] == 1  # the retry waits
    assert any(name.startswith("process_cpu_seconds_total") for name in samples)
    assert any(name.startswith("python_info") for name in samples)
    assert not [name for name in samples if "_created" in name]
    await queue.shutdown(drain_timeout=0)


def test_netmaker_requests_are_counted_by_method_endpoint_and_code():
    metrics = Metrics()
    for status, seconds in ((200, 0.01), (200, 0.03), (400, 0.02), (None, 5.0)):
        metrics.on_netmaker_request("POST", "/api/v1/egress", status, seconds)
    metrics.on_netmaker_request("GET", "/api/hosts", 200, 0.5)
    value = metrics.registry.get_sample_value
    counted = "kaput_not_netmaker_requests_total"
    timed = "kaput_not_netmaker_request_duration_seconds"
    post = {"method": "POST", "endpoint": "/api/v1/egress"}
    # Issue 20: the status code's label is `code`, as in every Prometheus HTTP metric.
    assert value(counted, {**post, "code": "200"}) == 2
    assert value(counted, {**post, "code": "400"}) == 1
    assert value(counted, {**post, "code": "none"}) == 1  # no answer
    assert value(counted, {"method": "GET", "endpoint": "/api/hosts", "code": "200"}) == 1
    assert value(f"{timed}_count", post) == 4
    assert value(f"{timed}_sum", post) == pytest.approx(5.06)
    assert value(f"{timed}_count", {"method": "GET", "endpoint": "/api/hosts"}) == 1


async def test_an_injected_empty_queue_is_the_queue_the_controller_uses():
    # An empty WorkQueue has a length of 0, so it is falsy: `queue or WorkQueue(...)` replaced
    # it silently, and a caller's queue (its clock, its observer) was never the one used.
    from kaput_not.controller.queue import WorkQueue

    metrics = Metrics()
    queue: WorkQueue[str] = WorkQueue(name="nodes", observer=metrics)
    assert len(queue) == 0
    controller = Controller(
        kube=KubeApi(httpx2.AsyncClient()),
        netmaker=Netmaker(),  # type: ignore[arg-type]
        reconciler=Reconciler(),  # type: ignore[arg-type]
        metrics=metrics,
        options=ControllerOptions(),
        queue=queue,
    )
    assert controller.queue is queue


def test_metrics_keep_the_conventional_series_and_no_copies_of_them():
    """Issue 20: `kaput_not_queue_depth` always equalled `workqueue_depth`, `kaput_not_leader`
    always equalled `leader_election_master_status` (and `kaput_not_pass_running_seconds` is
    client-go's `workqueue_longest_running_processor_seconds`): the conventional ones stay,
    and the two workqueue gauges client-go has were missing."""
    metrics = Metrics()
    running = [3.0, 1.5]
    metrics.watch(
        queue_depth=lambda: 4.0,
        leader=lambda: True,
        nodes=lambda: 2.0,
        lease="kn",
        running=lambda: running,
    )
    names = {family.name for family in metrics.registry.collect()}
    assert not {"kaput_not_queue_depth", "kaput_not_leader", "kaput_not_pass_running_seconds"} & (
        names
    )
    value = metrics.registry.get_sample_value
    queue = {"name": "nodes"}
    assert value("workqueue_depth", queue) == 4
    assert value("leader_election_master_status", {"name": "kn"}) == 1
    assert value("workqueue_unfinished_work_seconds", queue) == 4.5  # the sum in flight
    assert value("workqueue_longest_running_processor_seconds", queue) == 3.0
    running.clear()
    assert value("workqueue_longest_running_processor_seconds", queue) == 0
    assert value("workqueue_unfinished_work_seconds", queue) == 0


async def test_kubernetes_api_requests_are_counted_as_client_go_does():
    """Issue 20: no metric showed the Kubernetes API calls (a 403 on every Lease read was only
    a log line). `rest_client_requests_total{code,method,host}` and the latency by verb."""
    metrics = Metrics()
    async with KubeApiServer() as server:
        host = server.base_url.split("//", 1)[1]
        async with httpx2.AsyncClient(base_url=server.base_url) as http:
            api = KubeApi(http, on_request=metrics.on_kube_request)
            await api.get("/api/v1/nodes", wire.node_list_decoder)
            with pytest.raises(KubeError):
                await api.get("/api/v1/nodes/missing", wire.node_decoder)
    async with httpx2.AsyncClient(base_url="http://127.0.0.1:9") as http:
        api = KubeApi(http, on_request=metrics.on_kube_request)
        with pytest.raises(KubeError):
            await api.get("/api/v1/nodes", wire.node_list_decoder)
    value = metrics.registry.get_sample_value
    counted = "rest_client_requests_total"
    assert value(counted, {"code": "200", "method": "GET", "host": host}) == 1
    assert value(counted, {"code": "404", "method": "GET", "host": host}) == 1
    assert value(counted, {"code": "<error>", "method": "GET", "host": "127.0.0.1:9"}) == 1
    assert value("rest_client_request_duration_seconds_count", {"verb": "GET", "host": host}) == 2
