"""The egress API as the controller uses it (docs/netmaker-api.md sections 5 and 6)."""

from __future__ import annotations

import json
import uuid
from typing import Any

import pytest

from .answers import error, ok
from .conftest import Target
from .seeding import SeededHost, Seeder, poll

EGRESS = "/api/v1/egress"


def rule(network: str, **fields: object) -> dict[str, object]:
    """An egress body shaped like the controller's (docs/design.md section 2)."""
    body: dict[str, object] = {
        "name": "contract pods (1/1)",
        "network": network,
        "description": "Managed by kaput-not (DO NOT EDIT): cluster=contract index=0",
        "range": "10.244.1.0/24",
        "nat": False,
        "status": True,
        "nodes": {},
    }
    body.update(fields)
    return body


@pytest.fixture
async def router(seeder: Seeder, network: str) -> SeededHost:
    """A host joined to ``network``, to route egresses."""
    return await seeder.host([network])


async def test_listing_needs_a_network_and_an_unknown_one_is_empty(http, auth):
    assert error(await http.get(EGRESS, headers=auth)) == (400, "network is required")
    answer = await http.get(
        f"{EGRESS}?network=kc-never-created-{uuid.uuid4().hex[:8]}", headers=auth
    )
    assert ok(answer) == []


async def test_create_list_update_delete_round_trip(http, auth, seeder: Seeder, network, router):
    node_id = router.nodes[network]
    body = rule(network, id="ignored-by-the-server", status=False, nodes={node_id: 500})
    answer = await http.post(EGRESS, json=body, headers=auth)
    created = ok(answer)
    uuid.UUID(created["id"])  # a server-minted UUID
    assert created["id"] != "ignored-by-the-server"
    assert created["status"] is True  # forced on create
    assert created["nodes"] == {node_id: 500}
    assert created["tags"] == {}
    assert (created["name"], created["description"]) == (body["name"], body["description"])
    assert [e["id"] for e in await seeder.egresses(network)] == [created["id"]]

    second = await seeder.host([network])
    update = rule(network, id=created["id"], name="renamed", status=True)
    update["nodes"] = {second.nodes[network]: 7}
    updated = ok(await http.put(EGRESS, json=update, headers=auth))
    assert updated["id"] == created["id"]
    assert updated["name"] == "renamed"
    assert updated["nodes"] == {second.nodes[network]: 7}  # replaced, not merged
    [listed] = await seeder.egresses(network)
    assert (listed["name"], listed["nodes"]) == ("renamed", {second.nodes[network]: 7})

    deleted = await http.delete(f"{EGRESS}?id={created['id']}", headers=auth)
    assert ok(deleted) is None
    assert await seeder.egresses(network) == []


@pytest.mark.parametrize(
    ("given", "stored"),
    [("10.244.1.7/24", "10.244.1.0/24"), ("fd00:10:244:1::5/64", "fd00:10:244:1::/64")],
    ids=["ipv4", "ipv6"],
)
async def test_ranges_are_stored_normalised(seeder: Seeder, network, given, stored):
    assert (await seeder.egress(**rule(network, range=given)))["range"] == stored


async def test_put_can_turn_status_off_and_never_moves_networks(
    http, auth, seeder: Seeder, network
):
    other = await seeder.network()
    created = await seeder.egress(**rule(network))
    update = rule(other, id=created["id"], status=False)
    updated = ok(await http.put(EGRESS, json=update, headers=auth))
    assert (updated["network"], updated["status"]) == (network, False)
    assert await seeder.egresses(other) == []


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        ({"range": "10.0.0.1"}, "invalid CIDR address: 10.0.0.1"),
        ({"nodes": {"00000000-0000-4000-8000-00000000beef": 500}}, "invalid routing node"),
    ],
    ids=["bare-ip", "unknown-node"],
)
async def test_create_rejections(http, auth, network, fields, expected):
    answer = await http.post(EGRESS, json=rule(network, **fields), headers=auth)
    status, message = error(answer)
    assert status == 400
    assert message.startswith(expected)


async def test_an_unknown_network_is_rejected(http, auth, seeder):
    missing = f"kc-missing-{uuid.uuid4().hex[:8]}"
    assert error(await http.post(EGRESS, json=rule(missing), headers=auth))[0] == 400


async def test_ce_allows_one_routing_node(http, auth, seeder: Seeder, network, router):
    second = await seeder.host([network])
    nodes = {router.nodes[network]: 500, second.nodes[network]: 500}
    answer = await http.post(EGRESS, json=rule(network, nodes=nodes), headers=auth)
    assert error(answer) == (400, "can only set one routing node on CE")


async def test_a_fractional_metric_is_rejected(http, auth, network, router):
    raw = json.dumps(rule(network))
    raw = raw.replace('"nodes": {}', f'"nodes": {{"{router.nodes[network]}": 500.0}}')
    answer = await http.post(EGRESS, content=raw, headers=auth)
    assert error(answer)[0] == 400


async def test_update_of_an_unknown_id_is_400_record_not_found(http, auth, network):
    update = rule(network, id=str(uuid.uuid4()))
    assert error(await http.put(EGRESS, json=update, headers=auth)) == (400, "record not found")


async def test_delete_needs_an_id_and_an_unknown_one_is_400_record_not_found(http, auth):
    assert error(await http.delete(EGRESS, headers=auth)) == (400, "id is required")
    unknown = await http.delete(f"{EGRESS}?id={uuid.uuid4()}", headers=auth)
    assert error(unknown) == (400, "record not found")


async def wait_until_routerless(seeder: Seeder, created: dict[str, Any]) -> dict[str, Any]:
    """Poll until the egress has ``nodes: {}``; it must stay listed all along (docs/netmaker-api.md
    section 6)."""

    async def stored() -> dict[str, Any]:
        egresses = await seeder.egresses(created["network"])
        [egress] = [e for e in egresses if e["id"] == created["id"]]
        return egress

    # Netmaker strips the node id in a goroutine after the delete has answered.
    return await poll(stored, lambda e: e["nodes"] == {}, what="the egress to lose its router")


async def test_removing_a_node_keeps_its_egress_with_no_router(seeder: Seeder, network, router):
    created = await seeder.egress(**rule(network, nodes={router.nodes[network]: 500}))
    await seeder.leave(router.id, network)
    kept = await wait_until_routerless(seeder, created)
    assert (kept["range"], kept["name"], kept["status"]) == (
        created["range"],
        created["name"],
        True,
    )


async def test_deleting_a_host_keeps_its_egresses_with_no_router(seeder: Seeder, network, router):
    created = await seeder.egress(**rule(network, nodes={router.nodes[network]: 500}))
    await seeder.delete_host(router.id)
    kept = await wait_until_routerless(seeder, created)
    assert (kept["range"], kept["description"]) == (created["range"], created["description"])


async def test_put_without_an_id_overwrites_an_existing_egress(
    http, auth, seeder: Seeder, target: Target, network
):
    if not target.destructive:
        pytest.skip("overwrites an arbitrary egress; set KAPUT_NOT_CONTRACT_DESTRUCTIVE=1")
    created = await seeder.egress(**rule(network))
    marker = f"overwritten-{uuid.uuid4().hex[:8]}"
    overwritten = ok(await http.put(EGRESS, json=rule(network, name=marker), headers=auth))
    assert overwritten["created_at"] != overwritten["updated_at"]  # an old record, rewritten
    if overwritten["network"] == network:  # on a fresh server it must be the only one we made
        assert overwritten["id"] == created["id"]
    assert len(await seeder.egresses(network)) == 1
    stored = await seeder.egresses(overwritten["network"])
    assert marker in [e["name"] for e in stored if e["id"] == overwritten["id"]]
