"""Issue 19: a Netmaker outage is one state (a circuit), not a thousand per-node retries; one
policy decides which retry each failure gets; recovery is one full pass."""

from __future__ import annotations

import asyncio
import logging
import socket

import httpx2
import pytest

from kaput_not.app.readiness import NETMAKER_DOWN_UNREADY_SECONDS, netmaker_down
from kaput_not.controller.circuit import Circuit, Held, Retry, decide
from kaput_not.controller.controller import CLUSTER, Controller, ControllerOptions
from kaput_not.controller.metrics import Metrics
from kaput_not.controller.retry_policy import PassFailed
from kaput_not.kube.api import KubeApi
from kaput_not.netmaker import errors
from tests.clock import FakeClock
from tests.waiting import eventually

from .stack import Stack

POST = "POST /api/v1/egress"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _sample(metrics: Metrics, name: str, labels: dict[str, str] | None = None) -> float:
    return metrics.registry.get_sample_value(name, labels or {}) or 0.0


class _Netmaker:
    """The controller's view of Netmaker in the unit tests: a probe that answers when told."""

    def __init__(self) -> None:
        self.up = asyncio.Event()
        self.probes = 0
        self.invalidated = 0

    async def probe(self) -> None:
        self.probes += 1
        if not self.up.is_set():
            raise errors.Unreachable("GET /api/networks", "connection refused")

    def invalidate(self) -> None:
        self.invalidated += 1


def _controller(netmaker: _Netmaker, metrics: Metrics) -> Controller:
    return Controller(
        kube=KubeApi(httpx2.AsyncClient()),
        netmaker=netmaker,  # type: ignore[arg-type]
        reconciler=object(),  # type: ignore[arg-type]
        metrics=metrics,
        options=ControllerOptions(netmaker_probe_cap_seconds=0.05),
    )


def _write_failed(status: int) -> PassFailed:
    boom = errors.ApiError(POST, status=status, code=status, server_message="no")
    return PassFailed(f"1 write(s) failed, first: {boom}", (boom,))


def test_decide_sorts_failures_by_whose_fault_they_are():
    refused = errors.ApiError(POST, status=400, server_message="invalid range")
    assert decide(errors.Unreachable("GET /api/hosts", "connection refused")) is Retry.SERVER
    assert decide(errors.OutcomeUnknown(POST, "read timed out")) is Retry.SERVER
    assert decide(errors.ApiError(POST, status=502)) is Retry.SERVER
    assert decide(errors.ApiError(POST, status=200, code=500)) is Retry.SERVER
    assert decide(Held("down")) is Retry.SERVER
    assert decide(errors.ApiError(POST, status=409)) is Retry.KEY
    assert decide(errors.BadResponse(POST, "truncated", status=200)) is Retry.KEY
    assert decide(refused) is Retry.PERMANENT
    assert decide(ValueError("update_egress needs an id")) is Retry.PERMANENT
    assert decide(errors.CredentialsRejected("POST /login", "no", status=400)) is Retry.FATAL
    # A pass: its most severe failure decides.
    assert decide(PassFailed("x", (refused, errors.ApiError(POST, status=503)))) is Retry.SERVER
    assert decide(PassFailed("x", (refused,))) is Retry.PERMANENT


async def test_one_nodes_4xx_does_not_open_the_circuit():
    metrics = Metrics()
    controller = _controller(_Netmaker(), metrics)
    await controller._retry("w1", _write_failed(409))  # not now: per-key backoff
    await controller._retry("w2", _write_failed(400))  # never: not retried at all
    assert not controller.circuit.is_open
    assert controller.queue.requeues("w1") == 1
    assert controller.queue.requeues("w2") == 0
    assert _sample(metrics, "kaput_not_netmaker_unavailable") == 0.0
    assert _sample(metrics, "kaput_not_netmaker_outages_total") == 0.0


async def test_recovery_resets_the_backoffs_and_runs_one_full_pass(
    caplog: pytest.LogCaptureFixture,
):
    netmaker = _Netmaker()
    metrics = Metrics()
    controller = _controller(netmaker, metrics)
    controller.queue.add_rate_limited("w1")  # w1 had failed on its own before the outage
    async with controller.queue.take() as key:  # and its retry comes due in it
        assert key == "w1"
    unreachable = errors.Unreachable("GET /api/hosts", "connection refused")
    with caplog.at_level(logging.INFO):
        await controller._retry("w1", unreachable)
        await controller._retry("w2", _write_failed(503))
        await controller._retry(CLUSTER, unreachable)
        assert controller.circuit.is_open
        assert controller.circuit.waiting == {"w1", "w2"}
        assert _sample(metrics, "kaput_not_netmaker_unavailable") == 1.0
        await eventually(lambda: netmaker.probes >= 3)
        netmaker.up.set()
        await eventually(lambda: not controller.circuit.is_open, within=2)
    assert controller.queue.requeues("w1") == 0
    assert controller.queue.requeues("w2") == 0
    assert netmaker.invalidated == 1  # the recovery plans on lists read anew
    # One full pass queued, and the held nodes are not queued one by one beside it.
    assert len(controller.queue) == 1
    async with controller.queue.take() as key:
        assert key == CLUSTER
    assert _sample(metrics, "kaput_not_netmaker_unavailable") == 0.0
    assert _sample(metrics, "kaput_not_netmaker_outages_total") == 1.0
    warnings = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert [r.getMessage().split(" (")[0] for r in warnings] == ["Netmaker is unavailable"]
    [back] = [r.getMessage() for r in caplog.records if "answers again" in r.getMessage()]
    assert "2 nodes waited: running one full pass" in back
    await controller.stop()


async def test_a_pass_while_the_circuit_is_open_sends_nothing():
    netmaker = _Netmaker()
    controller = _controller(netmaker, Metrics())
    await controller._retry("w1", errors.Unreachable("GET /api/hosts", "refused"))
    # The reconciler is a bare object: a pass that tried anything would raise.
    await controller._reconcile_key("w2")
    await controller._reconcile_key(CLUSTER)
    assert controller.circuit.waiting == {"w1", "w2"}
    await controller.stop()


async def test_a_probe_answered_with_a_rejected_password_stops_the_controller():
    controller = _controller(_Netmaker(), Metrics())
    rejected = errors.CredentialsRejected("POST /api/users/adm/authenticate", "no", status=400)

    async def probe() -> None:
        raise rejected

    controller.circuit._probe = probe
    controller.circuit.trip(errors.Unreachable("GET /api/hosts", "refused"))
    assert await asyncio.wait_for(controller.wait_fatal(), 2) is rejected
    await controller.stop()


async def test_readiness_fails_only_after_netmaker_has_been_down_for_a_while():
    clock = FakeClock()

    async def never() -> None:
        raise errors.Unreachable("GET /api/networks", "refused")

    circuit = Circuit(
        probe=never,
        on_close=lambda _keys: None,
        on_fatal=lambda _exc: None,
        probe_base_seconds=60,
        probe_cap_seconds=60,
        clock=clock,
        wall_clock=lambda: 1_800_000_000.0,
    )
    assert netmaker_down(circuit) is None
    circuit.trip(errors.Unreachable("GET /api/hosts", "connection refused"))
    circuit.hold("w1")
    clock.advance(5)
    assert netmaker_down(circuit) == (
        False,
        "Netmaker unavailable since 2027-01-15T08:00:00Z (5s): GET /api/hosts: connection "
        "refused; 1 nodes waiting",
    )
    clock.advance(NETMAKER_DOWN_UNREADY_SECONDS)
    down = netmaker_down(circuit)
    assert down is not None
    assert down[0]
    await circuit.stop()


# -- through `kaput-not run`, against the emulator ----------------------------------------------


async def test_a_permanent_4xx_on_a_write_is_not_retried_forever(
    stack: Stack, caplog: pytest.LogCaptureFixture
):
    stack.node("w1", "10.244.1.0/24")
    stack.nm.faults.status(POST, 400, "egress range is invalid", times=None)
    with caplog.at_level(logging.WARNING):
        stack.start(stack.settings())
        await eventually(lambda: stack.nm.log.counts().get(POST, 0) >= 1)
        await asyncio.sleep(3)  # the old per-key backoff tried again at 0.5, 1.5 and 3.5 s
    assert stack.nm.log.counts().get(POST, 0) == 1
    said = [r for r in caplog.records if "egress range is invalid" in r.getMessage()]
    assert len(said) == 1, [r.getMessage() for r in said]
    assert "not retried before the next full pass" in said[0].getMessage()


async def test_a_server_wide_failure_opens_the_circuit_and_only_the_probe_asks(
    stack: Stack, caplog: pytest.LogCaptureFixture
):
    for i in range(2):
        stack.node(f"w{i}", f"10.244.{i}.0/24")
    stack.start(stack.settings())
    await eventually(lambda: len(stack.rules()) == 2)
    before = len(caplog.records)  # the outage's lines only (not the start's, e.g. no election)
    stack.nm.faults.status("*", 503, "database is locked", times=None)
    with caplog.at_level(logging.WARNING):
        for i in range(2, 12):
            stack.node(f"w{i}", f"10.244.{i}.0/24")
        await eventually(lambda: "Netmaker is unavailable" in caplog.text)
        await asyncio.sleep(0.3)  # passes in flight when it opened end
        stack.nm.log.reset()
        await asyncio.sleep(3)
    asked = stack.nm.log.counts()
    assert set(asked) == {"GET /api/networks"}, asked  # the probe, nothing else
    assert 2 <= asked["GET /api/networks"] <= 6  # on a backoff, at most a second apart
    outage = caplog.records[before:]
    warnings = [r.getMessage() for r in outage if r.levelno >= logging.WARNING]
    assert sum("Netmaker is unavailable" in w for w in warnings) == 1
    assert len(warnings) <= 3, warnings  # not one per node or per write


async def test_after_an_outage_every_held_node_is_written_within_seconds(
    stack: Stack, caplog: pytest.LogCaptureFixture
):
    caplog.set_level(logging.INFO)
    stack.node("w0", "10.244.0.0/24")
    stack.start(stack.settings())
    await eventually(lambda: len(stack.rules()) == 1)
    stack.nm.faults.status("*", 503, "database is locked", times=None)
    for i in range(1, 11):
        stack.node(f"w{i}", f"10.244.{i}.0/24")
    await asyncio.sleep(5)  # long enough for per-key backoffs to have grown past 4 s
    stack.nm.faults.clear()
    took = await eventually(lambda: len(stack.rules()) == 11, within=10)
    await eventually(lambda: caplog.text.count("full sync:") == 2)
    assert took < 2.5
    back = [r.getMessage() for r in caplog.records if "answers again" in r.getMessage()]
    assert len(back) == 1
    assert "10 nodes waited" in back[0]
    full = [r.getMessage() for r in caplog.records if r.getMessage().startswith("full sync:")]
    assert len(full) == 2, full  # the start-up pass and the one recovery pass


async def test_readyz_says_when_netmaker_goes_away_after_start_up(stack: Stack):
    """Issue 20: after Netmaker went away after start-up, /readyz stayed `ok: running` while
    every pass failed. Now it says so at once, and fails only after a while (not on one error,
    not for a restart of a few seconds); liveness never fails; a gauge says it too."""
    port = _free_port()
    stack.node("w1", "10.244.1.0/24")
    stack.start(stack.settings(METRICS_ADDRESS=f"127.0.0.1:{port}"))
    await eventually(lambda: len(stack.rules()) == 1)
    async with httpx2.AsyncClient(base_url=f"http://127.0.0.1:{port}") as http:
        assert (await http.get("/readyz")).text == "ok: running\n"
        stack.nm.faults.status("*", 503, "database is locked", times=None)
        stack.node("w2", "10.244.2.0/24")
        seen: list[str] = []

        async def says_so() -> bool:
            seen.append((await http.get("/readyz")).text)
            return "Netmaker unavailable since" in seen[-1]

        while not await says_so():
            assert len(seen) < 200, seen[-3:]
            await asyncio.sleep(0.05)
        assert seen[-1].startswith("ok: running; Netmaker unavailable since")
        assert "HTTP 503: database is locked; 1 nodes waiting" in seen[-1]
        assert (await http.get("/healthz")).text == "ok: running\n"
        metrics = (await http.get("/metrics")).text
        assert "kaput_not_netmaker_unavailable 1.0" in metrics
        assert "kaput_not_netmaker_outages_total 1.0" in metrics
        stack.nm.faults.clear()
        await eventually(lambda: len(stack.rules()) == 2, within=5)
        assert (await http.get("/readyz")).text == "ok: running\n"
        assert "kaput_not_netmaker_unavailable 0.0" in (await http.get("/metrics")).text
