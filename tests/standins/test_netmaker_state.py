"""The emulator's seeding API and domain rules, called directly (no HTTP)."""

from __future__ import annotations

import ipaddress
import time

import pytest

from kaput_not_standins.netmaker import ApiError, NetmakerState

from .helpers import FakeClock


@pytest.fixture
def state() -> NetmakerState:
    return NetmakerState(clock=FakeClock())


def test_networks_get_distinct_default_ranges_and_explicit_ranges_are_normalised(state):
    first, second = state.add_network("alpha"), state.add_network("beta")
    assert first.addressrange != second.addressrange
    assert state.add_network("gamma", "10.99.3.4/16").addressrange == "10.99.0.0/16"
    assert state.add_network("six", addressrange6="fd00:1::7/64").addressrange == ""
    assert [n.netid for n in state.networks()] == ["alpha", "beta", "gamma", "six"]


@pytest.mark.parametrize(
    ("netid", "cidr", "message"),
    [
        ("Bad-Name", "10.1.0.0/16", "invalid network name"),
        ("x" * 33, "10.1.0.0/16", "invalid network name"),
        ("ok", "10.1.0.1", "invalid CIDR address: 10.1.0.1"),
        ("ok", "10.1.0.0/32", "too small"),
        ("ok", "10.1.0.0/31", "too small"),
        ("ok", "", "IPv4 or IPv6 CIDR required"),
    ],
)
def test_invalid_networks_are_rejected_with_400(state, netid, cidr, message):
    with pytest.raises(ApiError) as caught:
        state.add_network(netid, cidr)
    assert caught.value.status == 400
    assert message in caught.value.message


def test_a_range_or_name_cannot_be_used_twice(state):
    state.add_network("one", "10.5.0.0/16")
    with pytest.raises(ApiError, match="network cidr already in use"):
        state.add_network("two", "10.5.1.0/16")
    with pytest.raises(ApiError, match="network already exists"):
        state.add_network("one", "10.6.0.0/16")


def test_creating_a_network_creates_its_unlimited_default_key(state):
    state.add_network("mesh")
    [key] = state.keys.all()
    assert (key.networks, key.tags, key.unlimited, key.default) == (["mesh"], ["mesh"], True, True)


def test_add_host_creates_one_node_per_network_with_addresses_from_the_range(state):
    state.add_network("a", "100.64.0.0/16")
    state.add_network("b", "100.65.0.0/24")
    host = state.add_host("w1", ["a", "b"])
    assert host.node_ids == [host.node_id("a"), host.node_id("b")]
    node_a, node_b = state.node(host.node_id("a")), state.node(host.node_id("b"))
    assert node_a is not None
    assert node_b is not None
    assert (node_a.network, node_a.host_id, node_a.address) == ("a", host.id, "100.64.0.1/16")
    assert node_b.address == "100.65.0.1/24"
    with pytest.raises(KeyError):
        host.node_id("c")


def test_add_host_keeps_a_given_id_and_refuses_a_duplicate(state):
    host = state.add_host("w1", host_id="11111111-2222-4333-8444-555555555555")
    assert host.id == "11111111-2222-4333-8444-555555555555"
    assert not host.joined_once
    with pytest.raises(ApiError, match="host already exists"):
        state.add_host("w2", host_id=host.id)


def test_joining_a_network_twice_is_a_500(state):
    state.add_network("a")
    host = state.add_host("w1", ["a"])
    with pytest.raises(ApiError) as caught:
        state.join_network(host.id, "a")
    assert (caught.value.status, caught.value.message) == (500, "host already part of network a")


def test_a_full_range_refuses_more_nodes(state):
    state.add_network("tiny", "10.9.9.0/30")  # two usable addresses
    state.add_host("w1", ["tiny"])
    state.add_host("w2", ["tiny"])
    with pytest.raises(ApiError) as caught:
        state.add_host("w3", ["tiny"])
    assert caught.value.status == 500


def test_purging_a_node_strips_it_from_its_networks_egresses_and_keeps_them(state):
    state.add_network("a")
    state.add_network("b")
    host = state.add_host("w1", ["a", "b"])
    node = host.node_id("a")
    local = state.add_egress(network="a", cidr="10.42.0.0/24", nodes={node: 500})
    # A node from another network is accepted as router; the purge only visits its own network.
    elsewhere = state.add_egress(network="b", cidr="10.43.0.0/24", nodes={node: 500})
    state.remove_node(node)
    assert state.node(node) is None
    assert host.node_ids == [host.node_id("b")]
    by_id = {e["id"]: e for e in state.egresses()}
    assert by_id[local["id"]]["nodes"] == {}
    assert by_id[local["id"]]["status"] is True
    assert by_id[elsewhere["id"]]["nodes"] == {node: 500}


def test_a_purged_nodes_address_is_reused_lowest_first(state):
    state.add_network("a", "10.7.0.0/24")
    hosts = [state.add_host(f"w{i}", ["a"]) for i in range(3)]
    state.remove_node(hosts[1].node_id("a"))
    state.remove_node(hosts[0].node_id("a"))
    node = state.node(state.add_host("w9", ["a"]).node_id("a"))
    assert node is not None
    assert node.address == "10.7.0.1/24"


def test_remove_host_purges_its_nodes_then_deletes_it(state):
    state.add_network("a")
    host = state.add_host("w1", ["a"])
    node = host.node_id("a")
    egress = state.add_egress(network="a", cidr="10.42.0.0/24", nodes={node: 1})
    state.remove_host(host.id)
    assert state.host(host.id) is None
    assert state.nodes() == []
    assert state.egresses("a")[0]["id"] == egress["id"]
    assert state.egresses("a")[0]["nodes"] == {}


def test_pending_delete_keeps_the_node_everywhere(state):
    state.add_network("a")
    host = state.add_host("w1", ["a"])
    state.set_pending_delete(host.node_id("a"))
    node = state.node(host.node_id("a"))
    assert node is not None
    assert node.pending_delete
    assert host.node_ids == [node.id]


def test_static_clients_need_a_gateway_and_vanish_with_it(state):
    state.add_network("a")
    with pytest.raises(ApiError, match="no node to act as ingress gateway"):
        state.add_static_client("a")
    host = state.add_host("gw", ["a"])
    state.add_static_client("a")
    gateway = state.node(host.node_id("a"))
    assert gateway is not None
    assert gateway.is_ingress_gateway
    assert len(state.static_clients("a")) == 1
    state.remove_node(gateway.id)
    assert state.static_clients() == []


def test_add_egress_stores_verbatim_and_egresses_returns_copies(state):
    egress = state.add_egress(network="a", cidr="10.0.0.1/24", nodes={"n": 7}, name="raw")
    assert egress["range"] == "10.0.0.1/24"  # the API would normalise; seeding does not
    copy = state.egresses("a")[0]
    copy["nodes"]["n"] = 1
    assert state.egresses("a")[0]["nodes"] == {"n": 7}
    assert state.egresses("other") == []


def test_update_egress_raw_edits_fields_and_can_move_networks():
    clock = FakeClock()
    state = NetmakerState(clock=clock)
    egress = state.add_egress(network="a", cidr="10.0.0.0/24", name="x")
    clock.advance(60)
    edited = state.update_egress_raw(str(egress["id"]), name="hand edit", network="b")
    assert edited["name"] == "hand edit"
    assert edited["updated_at"] != egress["updated_at"]
    assert state.egresses("a") == []
    assert [e["id"] for e in state.egresses("b")] == [egress["id"]]
    with pytest.raises(ValueError, match="id"):
        state.update_egress_raw(str(egress["id"]), id="other")
    with pytest.raises(ValueError, match="colour"):
        state.update_egress_raw(str(egress["id"]), colour="red")
    with pytest.raises(KeyError):
        state.update_egress_raw("missing", name="y")


def test_delete_egress_raw(state):
    egress = state.add_egress(network="a", cidr="10.0.0.0/24")
    state.delete_egress_raw(str(egress["id"]))
    assert state.egresses() == []
    with pytest.raises(KeyError):
        state.delete_egress_raw(str(egress["id"]))


def test_users_and_superadmin(state):
    assert not state.has_superadmin()
    state.add_user("ops", "pass-word")
    assert not state.has_superadmin()
    state.add_user("root", "pass-word", superadmin=True)
    assert state.has_superadmin()
    user = state.user("ops")
    assert user is not None
    assert user.password_matches("pass-word")
    assert not user.password_matches("wrong")
    with pytest.raises(ApiError):
        state.add_user("ops", "again")


def test_seeding_thousands_of_hosts_is_fast(state):
    state.add_network("a", "100.64.0.0/16")
    state.add_network("b", "100.65.0.0/16")
    started = time.perf_counter()
    hosts = [state.add_host(f"node-{i}", ["a", "b"]) for i in range(5000)]
    elapsed = time.perf_counter() - started
    assert elapsed < 2.0, f"seeding 5000 hosts took {elapsed:.2f}s"
    addresses = {state.node(h.node_id("a")).address for h in hosts}
    assert len(addresses) == 5000
    network = ipaddress.ip_network("100.64.0.0/16")
    assert all(ipaddress.ip_interface(a).ip in network for a in addresses)
