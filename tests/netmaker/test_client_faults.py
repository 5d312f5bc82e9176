"""Bad answers reaching the real client over real HTTP, injected by the Netmaker emulator:
each is a typed error whose message is one line naming the call and the cause, and no secret."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import AsyncIterator
from typing import Any

import pytest

from kaput_not.core.model import EgressSpec
from kaput_not.netmaker import errors
from kaput_not.netmaker.client import NetmakerClient
from kaput_not.netmaker.list_reader import ListReader
from kaput_not.netmaker.progress import Progress
from kaput_not.netmaker.settings import ClientSettings
from kaput_not_standins.netmaker import NetmakerEmulator

USER, PASSWORD = "kaput-not", "fault-test-password-9f2c"


def one_rule(kube_node: str, node_id: str) -> EgressSpec:
    """A rule of one node's first pod CIDR, routed through `node_id`."""
    return EgressSpec(
        network="mesh",
        name=f"{kube_node} pods (1/1)",
        description="d",
        range="10.0.0.0/24",
        nat=False,
        status=True,
        nodes={node_id: 500},
    )


@pytest.fixture
async def emulator() -> AsyncIterator[NetmakerEmulator]:
    async with NetmakerEmulator(username=USER, password=PASSWORD) as emu:
        emu.state.add_network("mesh", "100.64.0.0/16")
        yield emu


def settings(emu: NetmakerEmulator, password: str = PASSWORD) -> ClientSettings:
    return ClientSettings(
        api_url=emu.base_url, username=USER, password=password, timeout_seconds=1.0
    )


def assert_one_clear_line(exc: errors.NetmakerError, call: str, *needles: str) -> None:
    text = str(exc)
    assert "\n" not in text
    assert text.startswith(call + ": "), text
    for needle in needles:
        assert needle in text, text
    assert PASSWORD not in text
    assert PASSWORD not in repr(exc)


async def test_wrong_password_is_rejected_once(emulator: NetmakerEmulator):
    async with NetmakerClient(settings(emulator, "not-the-password")) as client:
        with pytest.raises(errors.CredentialsRejected) as caught:
            await client.list_hosts()
    assert_one_clear_line(caught.value, "POST /api/users/adm/authenticate", "NETMAKER_PASSWORD")
    assert "not-the-password" not in str(caught.value)
    assert emulator.log.counts() == {"POST /api/users/adm/authenticate": 1}


async def test_html_502_from_a_proxy(emulator: NetmakerEmulator):
    emulator.faults.html_502("GET /api/hosts")
    async with NetmakerClient(settings(emulator)) as client:
        with pytest.raises(errors.NotJson) as caught:
            await client.list_hosts()
    assert_one_clear_line(caught.value, "GET /api/hosts", "502", "text/html")
    assert caught.value.retryable


async def test_truncated_json_body(emulator: NetmakerEmulator):
    emulator.faults.truncated_json("GET /api/nodes")
    async with NetmakerClient(settings(emulator)) as client:
        with pytest.raises(errors.BadResponse) as caught:
            await client.list_nodes()
    assert_one_clear_line(caught.value, "GET /api/nodes")


async def test_code_mismatch_inside_a_200(emulator: NetmakerEmulator):
    emulator.faults.code_mismatch("GET /api/v1/egress")
    async with NetmakerClient(settings(emulator)) as client:
        with pytest.raises(errors.ApiError) as caught:
            await client.list_egress("mesh")
    assert_one_clear_line(caught.value, "GET /api/v1/egress?network=mesh", "Code 500")


async def test_connection_reset_after_a_write_is_outcome_unknown(emulator: NetmakerEmulator):
    host = emulator.state.add_host("w1", ["mesh"])
    emulator.faults.reset("POST /api/v1/egress", when="after")
    spec = one_rule("w1", host.node_id("mesh"))
    async with NetmakerClient(settings(emulator)) as client:
        with pytest.raises(errors.OutcomeUnknown) as caught:
            await client.create_egress(spec)
    assert_one_clear_line(caught.value, "POST /api/v1/egress", "may or may not")
    assert len(emulator.state.egresses("mesh")) == 1  # it did happen


async def test_a_server_that_never_answers_times_out(emulator: NetmakerEmulator):
    emulator.faults.timeout("GET /api/hosts")
    async with NetmakerClient(settings(emulator)) as client:
        with pytest.raises(errors.OutcomeUnknown) as caught:
            await client.list_hosts()
    assert_one_clear_line(caught.value, "GET /api/hosts")


async def test_a_stopped_server_is_unreachable():
    emu = NetmakerEmulator(username=USER, password=PASSWORD)
    await emu.start()
    url = emu.base_url
    await emu.stop()
    stopped = ClientSettings(api_url=url, username=USER, password=PASSWORD)
    async with NetmakerClient(stopped) as client:
        with pytest.raises(errors.Unreachable) as caught:
            await client.list_hosts()
    assert_one_clear_line(caught.value, "POST /api/users/adm/authenticate")
    assert caught.value.retryable


async def test_long_lists_are_read_as_they_arrive_and_never_held_whole(
    emulator: NetmakerEmulator, monkeypatch: pytest.MonkeyPatch
):
    """Over `LIST_SLICE` records the emulator answers chunked, as Go does for a big body: the
    client cuts the items out as they come, so what it holds of a body after any chunk is a
    few items, not the list. A client that joined the body first holds it all."""
    for i in range(600):
        emulator.state.add_host(f"w{i}", ["mesh"])
        emulator.state.add_egress(
            network="mesh",
            cidr=f"10.{i // 256}.{i % 256}.0/24",
            nodes={emulator.state.nodes("mesh")[-1].id: 500},
            name=f"pods w{i}",
            description="Managed by kaput-not (DO NOT EDIT): cluster=c index=0",
        )
    # Per reader (kept alive here, so no two share a key): the body's size, and the most it
    # held after a chunk.
    sizes: dict[ListReader[object, Any], int] = {}
    held: dict[ListReader[object, Any], int] = {}
    feed = ListReader.feed

    def measured(self: ListReader[object, Any], chunk: bytes | bytearray) -> None:
        feed(self, chunk)
        sizes[self] = sizes.get(self, 0) + len(chunk)
        held[self] = max(held.get(self, 0), len(self.skeleton()))

    monkeypatch.setattr(ListReader, "feed", measured)
    async with NetmakerClient(settings(emulator)) as client:
        hosts = await client.list_hosts()
        nodes = await client.list_nodes()
        rules = await client.list_egress("mesh")
    assert [h.id for h in hosts] == [h.id for h in emulator.state.hosts()]
    assert [n.id for n in nodes] == sorted(n.id for n in emulator.state.nodes())  # as listed
    assert [r.id for r in rules] == [e["id"] for e in emulator.state.egresses("mesh")]
    assert len(sizes) == 3
    assert min(sizes.values()) > 100 * 1024, list(sizes.values())
    assert max(held.values()) < 64 * 1024, list(held.values())


@pytest.mark.parametrize(
    ("route", "failure"),
    [
        pytest.param("GET /api/hosts", "", id="small-list"),
        pytest.param("GET /api/v1/egress", "", id="streamed-list-through-the-splitter"),
        pytest.param("POST /api/v1/egress", "may or may not", id="write"),
    ],
)
async def test_a_trickling_body_fails_at_the_whole_request_deadline(
    emulator: NetmakerEmulator, route: str, failure: str
):
    """Issue 17: a body trickling a byte at a time was still open long past NETMAKER_TIMEOUT
    (each read's timeout restarted at every byte), and wedged the controller. Now the whole
    request, body included, has NETMAKER_TIMEOUT (1 s here)."""
    host = emulator.state.add_host("w0", ["mesh"])
    node = host.node_id("mesh")
    for i in range(150):  # over the emulator's LIST_SLICE: the list goes out in pieces
        emulator.state.add_egress(network="mesh", cidr=f"10.1.{i}.0/24", nodes={node: 500})
    spec = one_rule("w0", node)
    async with NetmakerClient(settings(emulator)) as client:
        await client.login()
        emulator.faults.trickle(route, 0.2)
        call: Any = {
            "GET /api/hosts": client.list_hosts,
            "GET /api/v1/egress": lambda: client.list_egress("mesh"),
            "POST /api/v1/egress": lambda: client.create_egress(spec),
        }[route]
        started = asyncio.get_running_loop().time()
        with pytest.raises(errors.OutcomeUnknown) as caught:
            await asyncio.wait_for(call(), 5.0)
        took = asyncio.get_running_loop().time() - started
    assert took < 2.0, took
    name = route + ("?network=mesh" if "egress" in route and route.startswith("GET") else "")
    assert_one_clear_line(caught.value, name, "within 1 s", "reading the answer's body", failure)


async def test_a_write_is_traced_only_until_its_answer_is_awaited(
    emulator: NetmakerEmulator, monkeypatch: pytest.MonkeyPatch
):
    """Issue 21 (CPU a write): the deadline's progress tracking ran a trace callback for all
    ten of httpcore2's events a request, the answer's body and close included, where none can
    change what a deadline error says (`reading()` marks the body). It stops at the answer."""
    seen: list[str] = []
    trace = Progress.trace

    async def recording(progress: Any, event: str, info: Any) -> None:
        seen.append(event)
        await trace(progress, event, info)

    monkeypatch.setattr(Progress, "trace", recording)
    host = emulator.state.add_host("w0", ["mesh"])
    spec = one_rule("w0", host.node_id("mesh"))
    async with NetmakerClient(settings(emulator)) as client:
        await client.login()
        seen.clear()
        await client.create_egress(spec)
        await client.create_egress(dataclasses.replace(spec, range="10.0.1.0/24"))
    steps = [
        "http11.send_request_headers.started",
        "http11.send_request_headers.complete",
        "http11.send_request_body.started",
        "http11.send_request_body.complete",
        "http11.receive_response_headers.started",
        "http11.receive_response_headers.complete",
    ]
    assert seen == steps + steps  # on one kept-alive connection: no connect
    assert len(emulator.state.egresses("mesh")) == 2
