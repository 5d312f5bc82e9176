"""The TTL snapshot cache: TTL, one in-flight call per list, write-through, invalidation."""

from __future__ import annotations

import asyncio
import gc
from collections import Counter
from collections.abc import Mapping
from dataclasses import replace

import pytest
from hypothesis import given
from hypothesis import strategies as st

from kaput_not.core.model import Egress, EgressSpec, Host, Network, NmNode
from kaput_not.core.planner import members
from kaput_not.netmaker import errors
from kaput_not.netmaker.cache import CachedNetmaker
from kaput_not.netmaker.rules import Rules, grouped
from kaput_not.ratelimit import ExponentialBackoff
from tests.clock import FakeClock
from tests.core.world import stored


class FakeApi:
    """An in-memory Netmaker that counts list calls; a gate can hold list calls open."""

    def __init__(self) -> None:
        self.hosts = [Host(id="h1", name="w1", node_ids=("n1",))]
        self.nodes = [NmNode(id="n1", host_id="h1", network="a")]
        self.networks = [Network("a"), Network("empty")]
        self.egress: dict[str, list[Egress]] = {"a": [], "empty": []}
        self.calls: Counter[str] = Counter()
        self.gate: asyncio.Event | None = None
        self.fail_next: Exception | None = None
        self._ids = 0
        #: What each list call was given as `held`, by list.
        self.held: dict[str, Mapping[str, object] | None] = {}

    async def _list(self, what: str) -> None:
        self.calls[what] += 1
        if self.gate is not None:
            await self.gate.wait()

    async def list_hosts(self, *, held: Mapping[str, Host] | None = None) -> list[Host]:
        await self._list("hosts")
        self.held["hosts"] = held
        return list(self.hosts)

    async def list_nodes(self, *, held: Mapping[str, NmNode] | None = None) -> list[NmNode]:
        await self._list("nodes")
        self.held["nodes"] = held
        return list(self.nodes)

    async def list_networks(self) -> list[Network]:
        await self._list("networks")
        return list(self.networks)

    async def list_egress(
        self, network: str, *, held: Mapping[str, Egress] | None = None
    ) -> list[Egress]:
        answer = list(self.egress.get(network, []))  # the server reads, then the reply travels
        await self._list(f"egress {network}")
        self.held[f"egress {network}"] = held
        return answer

    def _maybe_fail(self) -> None:
        if self.fail_next is not None:
            exc, self.fail_next = self.fail_next, None
            raise exc

    async def create_egress(self, spec: EgressSpec) -> Egress:
        self._maybe_fail()
        self._ids += 1
        e = stored(f"e{self._ids}", spec.network, spec, status=True)
        self.egress.setdefault(spec.network, []).append(e)
        return e

    async def update_egress(self, egress_id: str, spec: EgressSpec) -> Egress:
        self._maybe_fail()
        for es in self.egress.values():
            for i, e in enumerate(es):
                if e.id == egress_id:
                    es[i] = stored(e.id, e.network, spec)
                    return es[i]
        raise AssertionError("unknown id")

    async def delete_egress(self, egress_id: str) -> None:
        self._maybe_fail()
        for net, es in self.egress.items():
            self.egress[net] = [e for e in es if e.id != egress_id]


SPEC = EgressSpec(
    network="a",
    name="w1 pods (1/1)",
    description="d",
    range="10.0.0.0/24",
    nat=False,
    status=True,
    nodes={"n1": 500},
)


@pytest.fixture
def api() -> FakeApi:
    return FakeApi()


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


async def test_view_lists_each_list_once_within_the_ttl(api, clock):
    cache = CachedNetmaker(api, ttl=30, clock=clock)
    first = await cache.view()
    clock.now += 29
    await cache.view()
    assert api.calls == Counter(
        {"hosts": 1, "nodes": 1, "networks": 1, "egress a": 1, "egress empty": 1}
    )
    assert set(first.egress) == {"a", "empty"}
    clock.now += 2
    await cache.view()
    assert api.calls["hosts"] == 2
    assert api.calls["egress a"] == 2


async def test_a_list_read_again_is_given_the_items_of_the_list_it_replaces(api, clock):
    cache = CachedNetmaker(api, ttl=30, clock=clock)
    first = await cache.view()
    assert api.held == {"hosts": None, "nodes": None, "egress a": None, "egress empty": None}
    clock.now += 31
    await cache.view()
    assert api.held["hosts"] == {h.id: h for h in first.hosts}
    assert api.held["nodes"] == {n.id: n for n in first.nodes}
    assert api.held["egress a"] == {e.id: e for e in first.egress["a"]}


async def test_a_views_member_index_finds_what_the_planners_scan_finds(api, clock):
    api.hosts = [
        Host(id="h1", name="w1", node_ids=("n1",)),
        Host(id="h2", name="w2", node_ids=("n2", "n3")),
        Host(id="h3", name="w2", node_ids=()),  # a second host of the same name
        Host(id="h4", name="w4", node_ids=("n9",)),  # lists a node filed under another host
    ]
    api.nodes = [
        NmNode(id="n1", host_id="h1", network="a"),
        NmNode(id="n2", host_id="h2", network="a"),
        NmNode(id="n3", host_id="h2", network="empty"),
        NmNode(id="n4", host_id="h3", network="a"),  # not in its host's list
        NmNode(id="n9", host_id="h1", network="empty"),
    ]
    cache = CachedNetmaker(api, ttl=30, clock=clock)
    view = await cache.view(stale_ok=True)
    assert view.members is not None
    for name in ("w1", "w2", "w4", "nobody"):
        hosts, nodes = view.members(name)
        want_hosts, want_nodes = members(view.hosts, view.nodes, name)
        assert list(hosts) == list(want_hosts)
        assert sorted(n.id for n in nodes) == sorted(n.id for n in want_nodes)
    assert (await cache.view(stale_ok=True)).members is view.members  # built once per lists


async def test_concurrent_readers_share_one_in_flight_call(api, clock):
    cache = CachedNetmaker(api, ttl=30, clock=clock)
    api.gate = asyncio.Event()
    readers = [asyncio.create_task(cache.hosts()) for _ in range(20)]
    await asyncio.sleep(0)
    api.gate.set()
    results = await asyncio.gather(*readers)
    assert api.calls["hosts"] == 1
    assert all(r == api.hosts for r in results)


async def test_a_cancelled_reader_does_not_cancel_the_shared_call(api, clock):
    cache = CachedNetmaker(api, ttl=30, clock=clock)
    api.gate = asyncio.Event()
    first = asyncio.create_task(cache.hosts())
    second = asyncio.create_task(cache.hosts())
    await asyncio.sleep(0)
    first.cancel()
    api.gate.set()
    assert await second == api.hosts
    assert api.calls["hosts"] == 1


async def test_own_writes_patch_the_snapshot_without_listing_again(api, clock):
    cache = CachedNetmaker(api, ttl=30, clock=clock)
    await cache.view()
    created = await cache.create_egress(SPEC)
    updated = await cache.update_egress(created, replace(SPEC, range="10.9.0.0/24"))
    view = await cache.view()
    assert view.egress["a"] == [updated]
    await cache.delete_egress(updated)
    assert (await cache.view()).egress["a"] == []
    assert api.calls["egress a"] == 1


async def test_a_write_during_an_in_flight_list_is_replayed_onto_its_result(api, clock):
    cache = CachedNetmaker(api, ttl=30, clock=clock)
    api.gate = asyncio.Event()
    listing = asyncio.create_task(cache.egress("a"))
    while not api.calls["egress a"]:
        await asyncio.sleep(0)
    # The server read the list before our create landed; the reply arrives after it.
    created = await cache.create_egress(SPEC)
    api.gate.set()
    seen = await listing
    assert [e.id for e in seen] == [created.id]
    assert [e.id for e in await cache.egress("a")] == [created.id]


@pytest.mark.parametrize(
    "failure",
    [
        errors.OutcomeUnknown("POST /api/v1/egress", "read timed out"),
        errors.ApiError("POST /api/v1/egress", status=502, code=None, server_message="bad gw"),
        errors.ApiError(
            "POST /api/v1/egress",
            status=400,
            code=400,
            server_message="invalid routing node no result found",
        ),
    ],
    ids=["outcome-unknown", "5xx", "refused-as-stale"],
)
async def test_a_failed_write_drops_the_snapshot(api, clock, failure):
    cache = CachedNetmaker(api, ttl=30, clock=clock)
    await cache.view()
    api.fail_next = failure
    with pytest.raises(type(failure)):
        await cache.create_egress(SPEC)
    await cache.view()
    assert api.calls["hosts"] == 2
    assert api.calls["egress a"] == 2


async def test_an_undelivered_write_keeps_the_snapshot(api, clock):
    cache = CachedNetmaker(api, ttl=30, clock=clock)
    await cache.view()
    api.fail_next = errors.Unreachable("POST /api/v1/egress", "connection refused")
    with pytest.raises(errors.Unreachable):
        await cache.create_egress(SPEC)
    await cache.view()
    assert api.calls["hosts"] == 1


async def test_a_failed_list_is_not_cached(api, clock):
    cache = CachedNetmaker(api, ttl=30, clock=clock)

    async def broken(held: object = None) -> list[Host]:
        api.calls["hosts"] += 1
        raise errors.Unreachable("GET /api/hosts", "connection refused")

    api.list_hosts = broken
    for _ in range(2):
        with pytest.raises(errors.Unreachable):
            await cache.hosts()
    assert api.calls["hosts"] == 2


def test_negative_ttl_is_refused():
    with pytest.raises(ValueError, match="TTL"):
        CachedNetmaker(FakeApi(), ttl=-1)


async def test_the_routing_index_follows_our_writes(api, clock):
    cache = CachedNetmaker(api, ttl=30, clock=clock)
    api.nodes.append(NmNode(id="n2", host_id="h2", network="a"))
    view = await cache.view()
    assert view.routed is not None
    assert view.routed(["n1"]) == []
    first = await cache.create_egress(SPEC)
    second = await cache.create_egress(replace(SPEC, name="w1 pods (2/2)", range="fd00::/64"))
    view = await cache.view()
    assert view.routed is not None
    assert {e.id for e in view.routed(["n1"])} == {first.id, second.id}
    moved = await cache.update_egress(first, replace(SPEC, nodes={"n2": 500}))
    await cache.delete_egress(second)
    view = await cache.view()
    assert view.routed is not None
    assert view.routed(["n1"]) == []
    assert [e.id for e in view.routed(["n2", "n1"])] == [moved.id]
    assert [e.id for e in view.egress["a"]] == [moved.id]


def _decoded(egress: Egress) -> Egress:
    """`egress` with fresh copies of its strings and node map, as a JSON decoder returns them."""
    return Egress(
        id=egress.id,
        network="".join(egress.network),
        name="".join(egress.name),
        description="".join(egress.description),
        range="".join(egress.range),
        nat=egress.nat,
        status=egress.status,
        nodes=dict(egress.nodes),
    )


async def test_a_written_rule_shares_the_specs_values_and_keeps_what_the_server_changed(api, clock):
    cache = CachedNetmaker(api, ttl=30, clock=clock)
    await cache.view()
    original = api.create_egress
    answers: list[Egress] = []

    async def decoded(sent: EgressSpec) -> Egress:
        answers.append(_decoded(await original(sent)))
        return answers[-1]

    api.create_egress = decoded
    # The server stores what was sent: the cache keeps the spec's own objects, one copy each.
    created = await cache.create_egress(SPEC)
    assert created == answers[0]
    assert answers[0].description is not SPEC.description
    assert created.description is SPEC.description
    assert created.name is SPEC.name
    assert created.nodes is SPEC.nodes
    # The server normalised the range: its answer is the truth, kept whole as it came.
    other = await cache.create_egress(replace(SPEC, range="10.1.0.1/24"))
    assert other.range == "10.1.0.0/24"
    assert other is answers[1]
    assert (await cache.view()).egress["a"] == [created, other]


async def test_a_node_pass_plans_on_lists_being_refreshed_and_a_full_pass_waits(api, clock):
    cache = CachedNetmaker(api, ttl=30, clock=clock)
    await cache.view()
    created = await cache.create_egress(SPEC)
    clock.now += 31
    api.hosts = [*api.hosts, Host(id="h2", name="w2", node_ids=())]
    api.gate = asyncio.Event()  # the refresh is slow
    # A node pass gets the lists at once, our write in them, while they are read again.
    stale = await asyncio.wait_for(cache.view(stale_ok=True), 1)
    assert [h.name for h in stale.hosts] == ["w1"]
    assert stale.egress["a"] == [created]
    assert api.calls["hosts"] == 2  # the refresh started
    # A full pass waits for the refresh, and so sees the new host.
    full = asyncio.create_task(cache.view())
    await asyncio.sleep(0)
    assert not full.done()
    api.gate.set()
    fresh = await full
    assert [h.name for h in fresh.hosts] == ["w1", "w2"]
    assert fresh.egress["a"] == [created]
    assert api.calls["hosts"] == 2


async def test_lists_older_than_twice_the_ttl_are_never_planned_on(api, clock):
    cache = CachedNetmaker(api, ttl=30, clock=clock)
    await cache.view()
    clock.now += 61
    api.hosts = []
    api.gate = asyncio.Event()
    reader = asyncio.create_task(cache.view(stale_ok=True))
    await asyncio.sleep(0)
    assert not reader.done()
    api.gate.set()
    assert (await reader).hosts == []


async def test_a_failed_refresh_nobody_waited_for_is_reported_and_not_retried_per_event(
    api, clock, caplog: pytest.LogCaptureFixture
):
    cache = CachedNetmaker(api, ttl=30, clock=clock)
    await cache.view()
    clock.now += 31
    original = api.list_hosts
    failures = 0

    async def failing(held: object = None) -> list[Host]:
        nonlocal failures
        failures += 1
        raise errors.Unreachable("GET /api/hosts", "connection refused")

    api.list_hosts = failing
    assert (await cache.view(stale_ok=True)).hosts == api.hosts
    for _ in range(3):
        await asyncio.sleep(0)
    gc.collect()
    assert not [r for r in caplog.records if "never retrieved" in r.getMessage()]
    assert [r.getMessage() for r in caplog.records if r.levelname == "WARNING"] == [
        "reading a Netmaker list failed: GET /api/hosts: connection refused"
    ]
    # Node events right after the failure plan on the stale lists without reading again.
    for _ in range(5):
        assert (await cache.view(stale_ok=True)).hosts == api.hosts
    assert failures == 1
    clock.now += 1
    api.list_hosts = original
    assert (await cache.hosts()) == api.hosts  # a second later the next reader reads again
    assert failures == 1
    assert api.calls["hosts"] == 2


def test_network_names_are_never_taken_from_lists_that_were_freed(api, clock):
    cache = CachedNetmaker(api, ttl=30, clock=clock)
    for network in ("old", "new", "newer"):
        # Fresh lists each time, freed after the call in the order that lets CPython hand the
        # same two addresses to the next pair.
        nodes = [NmNode(id="n", host_id="h", network=network)]
        networks = [Network("a")]
        assert cache._network_names(networks, nodes) == sorted({"a", network})
        del networks, nodes


async def test_our_own_deletes_do_not_make_the_next_read_suspect(api, clock, caplog):
    cache = CachedNetmaker(api, ttl=30, clock=clock)
    await cache.view()
    made = [await cache.create_egress(replace(SPEC, range=f"10.{i}.0.0/24")) for i in range(10)]
    clock.now += 31
    await cache.view()  # the list is read with its 10 rules
    for egress in made:
        await cache.delete_egress(egress)
    clock.now += 31
    assert (await cache.view()).egress["a"] == []
    assert api.calls["egress a"] == 3  # read once per TTL, never twice
    assert not [r for r in caplog.records if "shrank" in r.getMessage()]


async def test_a_full_pass_view_is_a_snapshot_that_later_writes_do_not_change(api, clock):
    cache = CachedNetmaker(api, ttl=30, clock=clock)
    view = await cache.view()
    await cache.create_egress(SPEC)
    assert view.egress["a"] == []  # as read, not as written since
    assert len((await cache.view()).egress["a"]) == 1


def test_a_rule_put_in_place_of_another_under_an_id_already_held_is_routed_once():
    first, second = stored("e1", "a", SPEC), stored("e2", "a", SPEC)
    rules = Rules([first, second])
    rules.put(stored("e2", "a", SPEC, status=False), replacing="e1")
    assert [e.id for e in rules.values()] == ["e2"]
    assert [e.status for e in rules._by_node["n1"]] == [False]  # the old e2 is not kept beside


async def test_our_deletes_during_a_refresh_do_not_make_the_next_read_look_shrunk(api, clock):
    api.egress["a"] = [stored(f"e{i}", "a", SPEC) for i in range(40)]
    cache = CachedNetmaker(api, ttl=30, clock=clock)
    rules = await cache.egress("a")
    clock.now += 31
    api.gate = asyncio.Event()
    refresh = asyncio.create_task(cache.egress("a"))
    while api.calls["egress a"] < 2:
        await asyncio.sleep(0)
    for egress in rules[:30]:  # the server listed the 40 before our 30 deletes landed
        await cache.delete_egress(egress)
    api.gate.set()
    assert len(await refresh) == 10
    api.gate = None
    clock.now += 31
    assert len(await cache.egress("a")) == 10
    assert api.calls["egress a"] == 3  # read once: 40 -> 10 was our doing, not a suspect shrink


@given(st.lists(st.tuples(st.sampled_from("abcde"), st.integers()), max_size=60))
def test_grouping_keeps_every_item_in_order_whatever_the_group_sizes(
    pairs: list[tuple[str, int]],
) -> None:
    """`grouped` grows small groups as tuples and big ones as lists: either way, each key's
    items in the order they came."""
    expected: dict[str, list[int]] = {}
    for key, item in pairs:
        expected.setdefault(key, []).append(item)
    groups = grouped(pairs)
    assert {k: list(v) for k, v in groups.items()} == expected
    assert all(type(v) is tuple for v in groups.values())


def test_a_gateway_node_routing_thousands_of_rules_is_indexed_with_all_of_them() -> None:
    rules = [
        Egress(
            id=f"e{i:05d}",
            network="mesh",
            name=f"r{i}",
            description="foreign",
            range=f"10.{i // 256}.{i % 256}.0/24",
            nat=False,
            status=True,
            nodes={"gateway": 1, f"n{i}": 1} if i % 2 else {"gateway": 1},
        )
        for i in range(5000)
    ]
    indexed = Rules(rules)
    assert indexed.routed_through("gateway") == tuple(rules)
    assert indexed.routed_through("n7") == (rules[7],)


def _failing_hosts(api: FakeApi) -> list[int]:
    """Make every host list fail from now on; the list holds the count of tries."""
    tries = [0]

    async def failing(held: object = None) -> list[Host]:
        tries[0] += 1
        raise errors.Unreachable("GET /api/hosts", "connection refused")

    api.list_hosts = failing  # type: ignore[method-assign]
    return tries


async def _node_pass(cache: CachedNetmaker) -> None:
    """A node pass's view, then a few turns of the loop so a background refresh runs."""
    await cache.view(stale_ok=True)
    for _ in range(3):
        await asyncio.sleep(0)


async def test_a_failed_refresh_waits_as_long_as_the_read_backoff_says(api, clock):
    """Issue 21 (one backoff type): the wait between background reads of a list that failed is
    the injected `ExponentialBackoff`'s, by list, starting over after a read that worked."""
    backoff: ExponentialBackoff[str] = ExponentialBackoff(base=2, factor=2, cap=8)
    cache = CachedNetmaker(api, ttl=60, clock=clock, read_backoff=backoff)
    await cache.view()
    clock.now += 61  # stale, and stays young enough to plan on (under 120 s) to the end
    original = api.list_hosts
    tries = _failing_hosts(api)
    await _node_pass(cache)
    assert tries == [1]
    for wait, expected in ((2, 2), (4, 3), (8, 4), (8, 5)):  # doubling up to the cap
        clock.now += wait - 0.1
        await _node_pass(cache)
        assert tries == [expected - 1], wait
        clock.now += 0.1
        await _node_pass(cache)
        assert tries == [expected], wait
    assert backoff.requeues("hosts") == 5
    api.list_hosts = original
    clock.now += 8
    await _node_pass(cache)
    assert backoff.requeues("hosts") == 0  # the read worked: the next failure waits 2 s again


async def test_by_default_a_failed_refresh_is_read_again_after_one_second(api, clock):
    """The default wait is the fixed second it always was (an `ExponentialBackoff` with
    factor 1)."""
    cache = CachedNetmaker(api, ttl=30, clock=clock)
    await cache.view()
    clock.now += 31
    tries = _failing_hosts(api)
    await _node_pass(cache)
    clock.now += 0.99
    await _node_pass(cache)
    assert tries == [1]
    clock.now += 0.01
    await _node_pass(cache)
    assert tries == [2]
