"""Each failed node pass is counted once, whether writes failed or Netmaker could not be read."""

from __future__ import annotations

import httpx2
import pytest

from kaput_not.controller.controller import Controller, ControllerOptions, PassFailed
from kaput_not.controller.executor import ApplyResult, Failure
from kaput_not.controller.metrics import Metrics
from kaput_not.controller.reconciler import PassReport
from kaput_not.core.model import Action, ActionKind, EgressSpec, Plan
from kaput_not.core.planner import NetmakerView
from kaput_not.kube.api import KubeApi
from kaput_not.netmaker import errors

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

    from kaput_not import __version__
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
    assert samples[f'kaput_not_build_info{{version="{__version__}"}}'] == 1
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


def test_netmaker_requests_are_counted_by_method_endpoint_and_status():
    metrics = Metrics()
    for status, seconds in ((200, 0.01), (200, 0.03), (400, 0.02), (None, 5.0)):
        metrics.on_netmaker_request("POST", "/api/v1/egress", status, seconds)
    metrics.on_netmaker_request("GET", "/api/hosts", 200, 0.5)
    value = metrics.registry.get_sample_value
    counted = "kaput_not_netmaker_requests_total"
    timed = "kaput_not_netmaker_request_duration_seconds"
    post = {"method": "POST", "endpoint": "/api/v1/egress"}
    assert value(counted, {**post, "status": "200"}) == 2
    assert value(counted, {**post, "status": "400"}) == 1
    assert value(counted, {**post, "status": "none"}) == 1  # no answer
    assert value(counted, {"method": "GET", "endpoint": "/api/hosts", "status": "200"}) == 1
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
