"""The controller reads the time only through the clock it is given (issue 21, item 2): a test
that moves a fake clock moves every grace, rate limit and duration the controller measures."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable

import httpx2
import pytest

from kaput_not.controller.controller import Controller, ControllerOptions
from kaput_not.controller.metrics import Metrics
from kaput_not.controller.queue import WorkQueue
from kaput_not.controller.reconciler import KubeRead, PassReport
from kaput_not.core.applied import ApplyResult
from kaput_not.core.model import Host, Plan
from kaput_not.core.planner import NetmakerView
from kaput_not.kube.api import KubeApi
from kaput_not_standins.kube import KubeApiServer
from tests.clock import FakeClock


class Netmaker:
    """Knows no host; counts the forced refreshes of its host and node lists."""

    def __init__(self) -> None:
        self.refreshes = 0

    async def hosts(self, stale_ok: bool = False) -> list[Host]:
        return []

    def refresh_inventory(self) -> None:
        self.refreshes += 1


class Reconciler:
    """A pass that reads the node store, takes `seconds` on the fake clock and changes
    nothing."""

    def __init__(self, clock: FakeClock, seconds: float) -> None:
        self._clock = clock
        self._seconds = seconds
        self.reads: list[KubeRead] = []

    async def reconcile(self, *, read_kube: Callable[[], KubeRead], **kwargs: object) -> PassReport:
        self.reads.append(read_kube())
        self._clock.advance(self._seconds)
        return PassReport(plan=Plan(), result=ApplyResult(), view=NetmakerView())


@pytest.fixture
async def kube() -> AsyncIterator[KubeApi]:
    async with KubeApiServer() as server:
        server.state.create_node("w1", pod_cidrs=("10.1.0.0/24",))
        server.state.create_node("w2")  # no pod CIDRs yet
        api = KubeApi(httpx2.AsyncClient(base_url=server.base_url))
        yield api
        await api.aclose()


async def _controller(
    kube: KubeApi,
    netmaker: Netmaker,
    clock: FakeClock,
    *,
    pass_seconds: float = 0.0,
    own_queue: bool = True,
) -> tuple[Controller, Metrics]:
    metrics = Metrics()
    queue = WorkQueue[str](name="nodes", observer=metrics, clock=clock) if own_queue else None
    controller = Controller(
        kube=kube,
        netmaker=netmaker,  # type: ignore[arg-type]
        reconciler=Reconciler(clock, pass_seconds),  # type: ignore[arg-type]
        metrics=metrics,
        options=ControllerOptions(inventory_refresh_seconds=1.0, delete_grace_seconds=15.0),
        queue=queue,
        clock=clock,
    )
    await controller.informer.sync_once()
    return controller, metrics


async def test_the_inventory_refresh_limit_runs_on_the_injected_clock(kube: KubeApi):
    """`_know_host` read `time.monotonic()` beside the injected clock: once the fake clock had
    passed the refresh limit, a node whose host is unknown still waited for real time."""
    clock, netmaker = FakeClock(), Netmaker()
    controller, _ = await _controller(kube, netmaker, clock)
    await controller._reconcile_key("w1")
    assert netmaker.refreshes == 1  # w1's host is unknown: the lists are read again
    await controller._reconcile_key("w1")
    assert netmaker.refreshes == 1  # within the limit: w1 looks again later instead
    clock.advance(1.0)
    await controller._reconcile_key("w1")
    assert netmaker.refreshes == 2  # the limit has passed on the controller's clock
    await controller.stop()


async def test_pass_durations_are_measured_on_the_injected_clock(kube: KubeApi):
    """The pass durations (`kaput_not_reconcile_duration_seconds`) were read from
    `time.perf_counter()`, beside the injected clock."""
    clock, netmaker = FakeClock(), Netmaker()
    controller, metrics = await _controller(kube, netmaker, clock, pass_seconds=2.0)
    await controller._reconcile_key("w1")
    seconds = metrics.registry.get_sample_value(
        "kaput_not_reconcile_duration_seconds_sum", {"scope": "node"}
    )
    assert seconds == 2.0
    await controller.stop()


async def test_the_queue_the_controller_builds_runs_on_the_injected_clock(kube: KubeApi):
    """Built without a queue, the controller built one on `time.monotonic`: a node without pod
    CIDRs was queued again for the end of its grace (rule 11) in real time, so a fake clock
    moved past the grace released nothing."""
    clock, netmaker = FakeClock(), Netmaker()
    controller, _ = await _controller(kube, netmaker, clock, own_queue=False)
    await controller._reconcile_key("w2")  # its grace starts; its key is queued for the end
    clock.advance(15.0)
    controller.queue.wake()
    assert await asyncio.wait_for(controller.queue.get(), 0.5) == "w2"
    controller.queue.done("w2")
    await controller._reconcile_key("w2")
    reconciler = controller._reconciler
    assert isinstance(reconciler, Reconciler)
    assert reconciler.reads[-1].cidrless_expired == frozenset({"w2"})  # its grace is over
    await controller.stop()
