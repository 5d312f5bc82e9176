"""The node informer against the Kubernetes API stand-in: paging, watch, bookmarks, 410 and
broken streams (relist and diff), backoff while the API server is down, and a slim store."""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
from collections.abc import AsyncIterator, Mapping
from typing import Any

import httpx2
import pytest

from kaput_not.kube.api import KubeApi
from kaput_not.kube.informer import EventKind, NodeEvent, NodeInformer
from kaput_not_standins.kube import LIST_NODES, WATCH_NODES, KubeApiServer
from tests.waiting import eventually


class Run:
    def __init__(self, kube: KubeApiServer, **options: object) -> None:
        self.kube = kube
        self.events: list[NodeEvent] = []
        self.api = KubeApi(httpx2.AsyncClient(base_url=kube.base_url))
        self.informer = NodeInformer(
            self.api,
            self.events.append,
            rand=random.Random(7),
            **options,  # type: ignore[arg-type]
        )
        self.task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self.task = asyncio.create_task(self.informer.run())
        await asyncio.wait_for(self.informer.synced.wait(), 5)

    async def stop(self) -> None:
        assert self.task is not None
        self.task.cancel()
        await asyncio.gather(self.task, return_exceptions=True)
        await self.api.aclose()

    def kinds(self, name: str) -> list[EventKind]:
        return [e.kind for e in self.events if e.name == name]


@pytest.fixture
async def kube() -> AsyncIterator[KubeApiServer]:
    async with KubeApiServer(bookmark_interval=0.1) as server:
        yield server


async def test_lists_in_pages_of_500_then_watches_from_the_lists_version(kube: KubeApiServer):
    for i in range(1234):
        kube.state.create_node(f"n{i:04d}", pod_cidrs=(f"10.{i // 256}.{i % 256}.0/24",))
    run = Run(kube)
    await run.start()
    lists = kube.log.entries_for(LIST_NODES)
    assert [e.limit for e in lists] == [500, 500, 500]
    assert len(run.informer) == 1234
    assert run.informer.get("n0007") is not None
    await eventually(lambda: bool(kube.log.entries_for(WATCH_NODES)))
    watch = kube.log.entries_for(WATCH_NODES)[0]
    assert watch.resource_version == str(kube.state.resource_version)
    assert watch.bookmarks
    await run.stop()


async def test_the_store_keeps_only_name_version_and_cidrs(kube: KubeApiServer):
    kube.state.create_node("w1", pod_cidrs=("10.1.0.0/24", "fd00::/64"))
    run = Run(kube)
    await run.start()
    node = run.informer.get("w1")
    assert node is not None
    assert node.pod_cidrs == ("10.1.0.0/24", "fd00::/64")
    assert set(type(node).__slots__) == {"name", "pod_cidrs", "host_name", "uid"}
    assert node.host_name is None
    await run.stop()


async def test_watch_events_reach_the_handler_in_order(kube: KubeApiServer):
    run = Run(kube)
    await run.start()
    kube.state.create_node("w1")
    kube.state.update_node("w1", pod_cidrs=("10.1.0.0/24",))
    kube.state.delete_node("w1")
    await eventually(lambda: len(run.kinds("w1")) == 3)
    assert run.kinds("w1") == [EventKind.ADDED, EventKind.MODIFIED, EventKind.DELETED]
    modified = next(e for e in run.events if e.kind is EventKind.MODIFIED)
    assert modified.old is not None
    assert modified.new is not None
    assert (modified.old.pod_cidrs, modified.new.pod_cidrs) == ((), ("10.1.0.0/24",))
    await run.stop()


async def test_bookmarks_advance_the_version_without_events(kube: KubeApiServer):
    kube.state.create_node("w1")
    run = Run(kube, watch_timeout_seconds=1)
    await run.start()
    kube.state.put_lease("kube-system", "other")  # moves the global version, not the nodes
    await asyncio.sleep(1.5)  # the first watch ends; the next starts from the bookmark
    watches = kube.log.entries_for(WATCH_NODES)
    assert len(watches) >= 2
    assert watches[-1].resource_version == str(kube.state.resource_version)
    assert run.kinds("w1") == [EventKind.ADDED]
    assert run.informer.lists == 1
    await run.stop()


@pytest.mark.parametrize("answer", ["event", "status"])
async def test_a_410_on_rewatch_relists_and_diffs_deletes_from_the_gap(kube: KubeApiServer, answer):
    kube.state.create_node("w1")
    kube.state.create_node("w2")
    run = Run(kube, watch_timeout_seconds=1)
    await run.start()
    kube.faults.expire_next_watch(answer=answer)
    kube.state.delete_node("w2")
    await eventually(lambda: run.informer.lists == 2, within=5)  # the 410 made it list again
    assert run.kinds("w2") == [EventKind.ADDED, EventKind.DELETED]  # once, not again by the diff
    assert run.informer.get("w2") is None
    await run.stop()


async def test_an_error_event_relists_and_the_missed_delete_becomes_an_event(
    kube: KubeApiServer,
):
    kube.state.create_node("w1")
    kube.state.create_node("w2")
    run = Run(kube)
    await run.start()
    await eventually(lambda: kube.open_watches == 1)
    assert kube.faults.inject_watch_error(410) == 1
    kube.state.delete_node("w2")
    kube.state.compact()
    await eventually(lambda: run.kinds("w2") == [EventKind.ADDED, EventKind.DELETED])
    assert run.informer.lists == 2
    await run.stop()


async def test_a_broken_stream_relists_after_a_short_backoff(kube: KubeApiServer):
    kube.state.create_node("w1")
    run = Run(kube, backoff_initial=0.05)
    await run.start()
    await eventually(lambda: kube.open_watches == 1)
    kube.faults.drop_watches()
    kube.state.create_node("w2")
    await eventually(lambda: run.informer.get("w2") is not None)
    await eventually(lambda: kube.open_watches == 1)
    await run.stop()


async def test_an_unreachable_api_server_is_retried_with_backoff_not_a_hot_loop(
    kube: KubeApiServer,
):
    kube.state.create_node("w1")
    run = Run(kube, backoff_initial=0.2, backoff_max=0.8)
    await run.start()
    kube.faults.set_reachable(False, how="refuse")
    await asyncio.sleep(2.0)
    attempts = run.informer.lists + run.informer.watches
    # 0.2, 0.4, 0.8, 0.8 ... with jitter halving at most: a handful, not hundreds.
    assert attempts < 12
    kube.faults.set_reachable(True)
    kube.state.create_node("w2")
    await eventually(lambda: run.informer.get("w2") is not None, within=5)
    await run.stop()


async def test_a_410_on_a_list_page_starts_the_list_again(kube: KubeApiServer):
    for i in range(1200):
        kube.state.create_node(f"n{i:04d}")
    kube.faults.fail("GET /api/v1/nodes", 410, times=1)
    run = Run(kube, backoff_initial=0.01)
    await run.start()
    assert len(run.informer) == 1200
    assert len(kube.log.entries_for(LIST_NODES)) == 4  # the refused page, then three pages
    await run.stop()


def test_the_netmaker_host_annotation_is_the_one_annotation_kept():
    from kaput_not.kube import wire
    from kaput_not.kube.informer import _stored

    raw = (
        b'{"metadata":{"name":"w1","resourceVersion":"7","annotations":{'
        b'"kaput-not.io/netmaker-host":" w1.example.com ","node.alpha.kubernetes.io/ttl":"0"}},'
        b'"spec":{"podCIDRs":["10.1.0.0/24"]}}'
    )
    stored = _stored(wire.node_decoder.decode(raw))
    assert stored.node.host_name == "w1.example.com"
    assert stored.node.netmaker_host == "w1.example.com"
    bare = _stored(wire.node_decoder.decode(b'{"metadata":{"name":"w2"}}'))
    assert (bare.node.host_name, bare.node.netmaker_host) == (None, "w2")


def _node(name: str, version: str, cidr: str, uid: str) -> dict[str, object]:
    meta = {"name": name, "uid": uid, "resourceVersion": version}
    return {"metadata": meta, "spec": {"podCIDRs": [cidr]}}


class ReplayingApi(KubeApi):
    """Lists `listed` at resourceVersion 20, then one watch stream of `events`, then a watch
    that never ends (the test stops it)."""

    def __init__(self, listed: list[dict[str, object]], events: list[dict[str, object]]) -> None:
        super().__init__(httpx2.AsyncClient())
        self.listed, self.events, self.watched = listed, events, asyncio.Event()

    async def get(self, path: str, decoder: Any, params: Mapping[str, str] | None = None) -> Any:
        body = {"metadata": {"resourceVersion": "20"}, "items": self.listed}
        return decoder.decode(json.dumps(body).encode())

    @contextlib.asynccontextmanager
    async def stream(
        self, path: str, params: Mapping[str, str], *, read_timeout: float
    ) -> AsyncIterator[AsyncIterator[bytes]]:
        lines, self.events = [json.dumps(e).encode() for e in self.events], []

        async def replay() -> AsyncIterator[bytes]:
            for line in lines:
                yield line
            if not lines:
                self.watched.set()
                await asyncio.Event().wait()

        yield replay()


async def test_a_watch_event_older_than_the_stored_object_is_ignored():
    """Issue 17: a watch event with an older resourceVersion than the store's was applied. w1
    was recreated (uid u2, version 15): the old incarnation's DELETED (version 12) must not
    delete it, nor its old MODIFIED bring back the old CIDR; w2's newer event still applies,
    and so does one whose versions are not integers (opaque: applied as before)."""
    listed = [
        _node("w1", "15", "10.1.0.0/24", "u2"),
        _node("w2", "16", "10.2.0.0/24", "v1"),
        _node("w3", "abc", "10.3.0.0/24", "x1"),
    ]
    events: list[dict[str, object]] = [
        {"type": "MODIFIED", "object": _node("w1", "11", "10.9.0.0/24", "u1")},
        {"type": "DELETED", "object": _node("w1", "12", "10.9.0.0/24", "u1")},
        {"type": "MODIFIED", "object": _node("w2", "21", "10.22.0.0/24", "v1")},
        {"type": "MODIFIED", "object": _node("w3", "abd", "10.33.0.0/24", "x1")},
    ]
    api = ReplayingApi(listed, events)
    seen: list[NodeEvent] = []
    informer = NodeInformer(api, seen.append)
    task = asyncio.create_task(informer.run())
    await asyncio.wait_for(api.watched.wait(), 5)
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    await api.aclose()
    w1 = informer.get("w1")
    assert w1 is not None
    assert (w1.uid, w1.pod_cidrs) == ("u2", ("10.1.0.0/24",))
    assert [(e.kind, e.name) for e in seen if e.name == "w1"] == [(EventKind.ADDED, "w1")]
    w2, w3 = informer.get("w2"), informer.get("w3")
    assert w2 is not None
    assert w2.pod_cidrs == ("10.22.0.0/24",)
    assert w3 is not None
    assert w3.pod_cidrs == ("10.33.0.0/24",)
