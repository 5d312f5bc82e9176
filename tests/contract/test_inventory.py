"""Hosts, nodes, networks and registration (docs/netmaker-api.md sections 4, 6 and 7)."""

from __future__ import annotations

import ipaddress
import random
from typing import Any

from .answers import EITHER, SNIFFED, bare, error, ok
from .seeding import Seeder, enrollment_token, poll, register_body, unique_name


async def test_hosts_are_a_bare_array_sorted_by_id(http, auth, seeder: Seeder, network):
    seeded = [await seeder.host([network]) for _ in range(5)]
    hosts = bare(await http.get("/api/hosts", headers=auth))
    ids = [h["id"] for h in hosts]
    assert ids == sorted(ids)
    by_id = {h["id"]: h for h in hosts}
    for host in seeded:
        assert by_id[host.id]["name"] == host.name
        assert by_id[host.id]["nodes"] == [host.nodes[network]]


async def test_host_nodes_are_null_before_joining_and_empty_after_leaving(
    http, auth, seeder: Seeder, network
):
    host = await seeder.bare_host()

    async def listed() -> dict[str, Any]:
        hosts: list[dict[str, Any]] = bare(await http.get("/api/hosts", headers=auth))
        [found] = [h for h in hosts if h["id"] == host.id]
        return found

    assert (await listed())["nodes"] is None
    node_id = await seeder.join(host.id, network)
    assert (await listed())["nodes"] == [node_id]
    await seeder.leave(host.id, network)
    await poll(listed, lambda h: h["nodes"] == [], what="the host's node list to empty")


async def test_nodes_are_a_bare_array_sorted_by_id_across_networks(http, auth, seeder: Seeder):
    networks = [await seeder.network(), await seeder.network()]
    host = await seeder.host(networks)
    nodes = bare(await http.get("/api/nodes", headers=auth))
    ids = [n["id"] for n in nodes]
    assert ids == sorted(ids)
    ours = {n["id"]: n for n in nodes if n["hostid"] == host.id}
    assert set(ours) == set(host.nodes.values())
    ranges = {
        n["netid"]: n["addressrange"]
        for n in bare(await http.get("/api/networks", headers=auth), SNIFFED)
    }
    for network, node_id in host.nodes.items():
        node = ours[node_id]
        assert node["network"] == network
        assert node["pendingdelete"] is False
        assert node["is_static"] is False
        address = ipaddress.ip_interface(node["address"]).ip
        assert address in ipaddress.ip_network(ranges[network])


async def test_nodes_of_one_network(http, auth, seeder: Seeder):
    first, second = await seeder.network(), await seeder.network()
    host = await seeder.host([first, second])
    nodes = bare(await http.get(f"/api/nodes/{second}", headers=auth))
    assert [n["id"] for n in nodes] == [host.nodes[second]]


async def test_a_new_network_is_returned_bare_normalised_with_a_default_key(http, auth):
    netid = unique_name()
    for _ in range(10):  # a shared server may hold the random range already
        third = random.randint(0, 255)
        body = {"netid": netid, "addressrange": f"100.97.{third}.5/24"}
        answer = await http.post("/api/networks", json=body, headers=auth)
        if not (answer.status_code == 400 and "in use" in answer.text):
            break
    created = bare(answer, EITHER)
    assert created["netid"] == netid
    assert created["addressrange"] == f"100.97.{third}.0/24"
    listed = bare(await http.get("/api/networks", headers=auth), SNIFFED)
    assert netid in [n["netid"] for n in listed]
    keys = bare(await http.get("/api/v1/enrollment-keys", headers=auth), SNIFFED)
    [default] = [k for k in keys if k["networks"] == [netid]]
    assert default["unlimited"] is True
    assert netid in default["tags"]


async def test_invalid_networks_are_400(http, auth, seeder: Seeder, network):
    [taken] = [
        n
        for n in bare(await http.get("/api/networks", headers=auth), SNIFFED)
        if n["netid"] == network
    ]
    for body in (
        {"netid": unique_name(), "addressrange": "100.64.0.1/32"},
        {"netid": unique_name(), "addressrange": "not-a-cidr"},
        {"netid": unique_name(), "addressrange": taken["addressrange"]},
        {"netid": "Not Valid!", "addressrange": "100.64.0.0/24"},
    ):
        assert error(await http.post("/api/networks", json=body, headers=auth))[0] == 400, body


async def test_registering_with_a_network_key_creates_its_node(http, auth, seeder: Seeder, network):
    key = await seeder.key([network])
    body = register_body(unique_name("host"))
    answer = await seeder.register(enrollment_token(key["value"]), body)
    reply = bare(answer, SNIFFED)
    assert set(reply) >= {"server_config", "requested_host"}
    assert reply["requested_host"]["id"] == body["id"]

    async def host() -> dict[str, Any]:
        hosts = bare(await http.get("/api/hosts", headers=auth))
        return next(h for h in hosts if h["id"] == body["id"])

    # The real server creates the node in a goroutine after answering.
    registered = await poll(host, lambda h: bool(h["nodes"]), what="the registered host's node")
    [node_id] = registered["nodes"]
    nodes = bare(await http.get(f"/api/nodes/{network}", headers=auth))
    assert node_id in [n["id"] for n in nodes]


async def test_registration_needs_a_recent_version_and_a_traffic_key(http, seeder: Seeder):
    token = enrollment_token((await seeder.key([]))["value"])
    old = await seeder.register(token, register_body("old", version="v0.16.0"))
    assert error(old) == (400, "bad client version on register: v0.16.0")
    keyless = register_body("keyless")
    del keyless["traffickeypublic"]
    assert error(await seeder.register(token, keyless)) == (400, "missing traffic key")
    # The server checks for a nil slice only: an empty key is not missing.
    empty = await seeder.register(token, register_body("empty-key", traffickeypublic=""))
    assert bare(empty, SNIFFED)["requested_host"]["name"] == "empty-key"


async def test_joining_a_network_twice_is_a_500(http, auth, seeder: Seeder, network):
    host = await seeder.host([network])
    answer = await http.post(f"/api/hosts/{host.id}/networks/{network}", headers=auth)
    assert error(answer) == (500, f"host already part of network {network}")


async def test_a_host_with_nodes_is_deleted_only_with_force(http, auth, seeder: Seeder, network):
    host = await seeder.host([network])
    refused = await http.delete(f"/api/v1/ui/hosts/{host.id}", headers=auth)
    assert error(refused) == (500, "host still has associated nodes")
    answer = await seeder.delete_host(host.id)
    assert ok(answer)["id"] == host.id
    hosts = bare(await http.get("/api/hosts", headers=auth))
    assert host.id not in [h["id"] for h in hosts]


async def test_health_and_status_answer_without_a_token(http):
    health = await http.get("/api/server/health")
    assert health.status_code == 200
    assert health.text == "Server is up and running!!"
    status = bare(await http.get("/api/server/status"))
    assert status["db_connected"] is True
