"""EventRecorder: Events posted in the background, a storm cut without holding later Events
back, Events about Nodes posted in `default` (the only namespace but kube-system where the API
server takes an Event about a cluster-scoped object), and answers that will be the same for
every Event (403, 404, any other 4xx but 408, 409, 429) said once."""

from __future__ import annotations

import asyncio
import datetime
import logging
from typing import Any

import msgspec
import pytest

from kaput_not.core.model import KubeNode
from kaput_not.kube.api import KubeError
from kaput_not.kube.events import EventRecorder
from tests.clock import FakeClock

NOW = datetime.datetime(2026, 11, 30, 12, 0, tzinfo=datetime.UTC)


class FakeApi:
    """Records posted Events; answers every post with `status` (201 = stored)."""

    def __init__(self, status: int = 201) -> None:
        self.status = status
        self.posted: list[dict[str, Any]] = []
        self.paths: set[str] = set()
        self.attempts = 0

    async def send(self, method: str, path: str, body: bytes, decoder: Any) -> Any:
        assert method == "POST"
        self.paths.add(path)
        self.attempts += 1
        if self.status >= 300:
            raise KubeError(f"{method} {path}", f"HTTP {self.status}", status=self.status)
        self.posted.append(msgspec.json.decode(body))
        return None


def recorder(api: FakeApi, clock: FakeClock, dropped: list[int]) -> EventRecorder:
    # As the controller makes it: no namespace given, whatever namespace the controller runs in.
    return EventRecorder(
        api,  # type: ignore[arg-type]
        instance="pod-1",
        rate=5.0,
        burst=10,
        now=lambda: NOW,
        clock=clock,
        on_dropped=lambda: dropped.append(1),
    )


async def settle(events: EventRecorder) -> None:
    await events.aclose()
    await asyncio.sleep(0)


async def test_an_event_names_its_node_and_says_what_happened() -> None:
    api, dropped = FakeApi(), list[int]()
    events = recorder(api, FakeClock(), dropped)
    node = KubeNode("w1", ("10.0.0.0/24",), uid="uid-1")
    events.emit(node, warning=True, reason="NoNetmakerHost", note="no Netmaker host named w1")
    await settle(events)
    [posted] = api.posted
    assert posted["regarding"] == {"apiVersion": "v1", "kind": "Node", "name": "w1", "uid": "uid-1"}
    assert (posted["type"], posted["reason"]) == ("Warning", "NoNetmakerHost")
    assert posted["eventTime"] == "2026-11-30T12:00:00.000000Z"
    assert posted["note"] == "no Netmaker host named w1"


async def test_node_events_are_posted_in_default_where_the_api_server_takes_them() -> None:
    api, dropped = FakeApi(), list[int]()
    events = recorder(api, FakeClock(), dropped)
    events.emit(KubeNode("w1", uid="uid-1"), warning=False, reason="EgressWritten", note="")
    await settle(events)
    [posted] = api.posted
    assert posted["metadata"] == {"generateName": "w1-", "namespace": "default"}
    assert api.paths == {"/apis/events.k8s.io/v1/namespaces/default/events"}


async def test_a_storm_is_cut_and_does_not_hold_later_events_back() -> None:
    api, clock, dropped = FakeApi(), FakeClock(), list[int]()
    events = recorder(api, clock, dropped)
    for i in range(10_000):  # a first sync of 10,000 nodes
        events.emit(KubeNode(f"n{i}"), warning=False, reason="EgressWritten", note="")
    await settle(events)
    assert (len(api.posted), len(dropped)) == (10, 9_990)
    clock.advance(1.0)  # five tokens grow back in a second, whatever was dropped before
    for i in range(7):
        events.emit(KubeNode(f"later{i}"), warning=True, reason="NoNetmakerHost", note="")
    await settle(events)
    assert len(api.posted) == 15


@pytest.mark.parametrize("status", [403, 404, 400, 422])
async def test_an_answer_every_event_would_get_turns_events_off_with_one_warning(
    status: int, caplog: pytest.LogCaptureFixture
) -> None:
    api, dropped = FakeApi(status), list[int]()
    events = recorder(api, FakeClock(), dropped)
    caplog.set_level(logging.WARNING, "kaput_not.events")
    for i in range(5):  # all in flight together: each gets the same answer
        events.emit(KubeNode(f"n{i}"), warning=False, reason="EgressWritten", note="")
    await settle(events)
    assert api.attempts == 5
    events.emit(KubeNode("after"), warning=False, reason="EgressWritten", note="")
    await settle(events)
    assert api.attempts == 5  # off: the Event after is not even tried
    warnings = [r.getMessage() for r in caplog.records]
    assert len(warnings) == 1, warnings
    assert "Events are off" in warnings[0]


@pytest.mark.parametrize("status", [408, 409, 429])
async def test_a_passing_refusal_costs_one_event_and_events_stay_on(
    status: int, caplog: pytest.LogCaptureFixture
) -> None:
    api, dropped = FakeApi(status), list[int]()
    events = recorder(api, FakeClock(), dropped)
    caplog.set_level(logging.WARNING, "kaput_not.events")
    events.emit(KubeNode("w1"), warning=False, reason="EgressWritten", note="")
    await settle(events)
    api.status = 201
    events.emit(KubeNode("w2"), warning=False, reason="EgressWritten", note="")
    await settle(events)
    assert [p["regarding"]["name"] for p in api.posted] == ["w2"]
    assert "refused an Event about node w1" in caplog.records[0].getMessage()
