"""kaput-not's own Netmaker client against the target: every call the controller makes.

The other contract tests pin the server's answers byte by byte; these prove that the client
reads them, on both targets. A server answer the client cannot read (the real server's
`text/plain` JSON once made every sync fail) fails here first.
"""

from __future__ import annotations

import ipaddress
from collections.abc import AsyncIterator

import msgspec
import pytest

from kaput_not.core.model import Egress, EgressSpec
from kaput_not.netmaker import ClientSettings, NetmakerClient, errors
from kaput_not.netmaker.item_splitter import ItemSplitter

from .conftest import Target
from .seeding import Seeder, poll


def spec(network: str, node_id: str, cidr: str = "10.244.9.0/24", **changes: object) -> EgressSpec:
    fields: dict[str, object] = {
        "network": network,
        "name": "client pods (1/1)",
        "description": "Managed by kaput-not (DO NOT EDIT): cluster=contract index=0",
        "range": cidr,
        "nat": False,
        "status": True,
        "nodes": {node_id: 500},
    }
    fields.update(changes)
    return EgressSpec(**fields)  # type: ignore[arg-type]


def client_for(target: Target, *, password: str | None = None, username: str | None = None):
    settings = ClientSettings(
        api_url=target.base_url,
        username=target.username if username is None else username,
        password=target.password if password is None else password,
        timeout_seconds=30,
    )
    return NetmakerClient(settings)


@pytest.fixture
async def client(target: Target, seeder: Seeder) -> AsyncIterator[NetmakerClient]:
    del seeder  # the super-admin exists once the seeder is up
    async with client_for(target) as client:
        yield client


async def test_the_client_lists_networks_hosts_and_nodes(client: NetmakerClient, seeder: Seeder):
    first, second = await seeder.network(), await seeder.network()
    host = await seeder.host([first, second], name="client-w1")
    bare = await seeder.bare_host("client-bare")
    listed = {n.name: n for n in await client.list_networks()}
    assert {first, second} <= set(listed)
    for name in (first, second):  # the range rule 13 refuses overlapping pod CIDRs against
        [cidr] = listed[name].ranges
        assert ipaddress.ip_network(cidr).prefixlen == 24, cidr
    hosts = {h.id: h for h in await client.list_hosts()}
    assert hosts[host.id].name == "client-w1"
    assert set(hosts[host.id].node_ids) == set(host.nodes.values())
    assert hosts[bare.id].node_ids == ()  # `nodes: null` before any join
    nodes = {n.id: n for n in await client.list_nodes()}
    for network, node_id in host.nodes.items():
        node = nodes[node_id]
        assert (node.host_id, node.network) == (host.id, network)
        assert not node.pending_delete
        assert not node.is_static


async def test_the_client_creates_lists_updates_and_deletes_an_egress(
    client: NetmakerClient, seeder: Seeder, network: str
):
    router = await seeder.host([network])
    node_id = router.nodes[network]
    created = await client.create_egress(spec(network, node_id, "10.244.9.7/24"))
    assert created.range == "10.244.9.0/24"  # normalised by the server
    assert (created.nat, created.status, dict(created.nodes)) == (False, True, {node_id: 500})
    assert await client.list_egress(network) == [created]

    v6 = spec(network, node_id, "fd00:0:0:9:0::5/64", name="client pods (2/2)")
    dual = await client.create_egress(v6)
    assert dual.range == "fd00:0:0:9::/64"

    other = (await seeder.host([network])).nodes[network]
    wanted = spec(network, other, "10.244.10.0/24", name="renamed", nat=True, status=False)
    updated = await client.update_egress(created.id, wanted)
    assert updated.id == created.id
    assert (updated.name, updated.range, updated.nat, updated.status) == (
        "renamed",
        "10.244.10.0/24",
        True,
        False,
    )
    assert dict(updated.nodes) == {other: 500}  # replaced, not merged
    listed = {e.id: e for e in await client.list_egress(network)}
    assert listed == {created.id: updated, dual.id: dual}

    await client.delete_egress(created.id)
    await client.delete_egress(created.id)  # already gone: 400 `record not found` is success
    assert await client.list_egress(network) == [dual]


async def test_the_client_sees_the_orphan_a_deleted_host_leaves(
    client: NetmakerClient, seeder: Seeder, network: str
):
    router = await seeder.host([network])
    created = await client.create_egress(spec(network, router.nodes[network]))
    await seeder.delete_host(router.id)

    async def after() -> list[Egress]:
        return await client.list_egress(network)

    # The server strips the node in a goroutine and keeps the egress.
    [orphan] = await poll(after, lambda found: not found[0].nodes, what="the stripped egress")
    assert (orphan.id, orphan.description, orphan.range) == (
        created.id,
        created.description,
        created.range,
    )
    assert router.id not in {h.id for h in await client.list_hosts()}
    assert router.nodes[network] not in {n.id for n in await client.list_nodes()}


async def test_the_client_reads_an_unknown_id_update_as_an_api_error(
    client: NetmakerClient, network: str
):
    with pytest.raises(errors.ApiError) as caught:
        await client.update_egress("6d1d4f6e-0000-4000-8000-000000000000", spec(network, "x"))
    assert (caught.value.status, caught.value.server_message) == (400, "record not found")


@pytest.mark.parametrize(
    ("username", "password"),
    [(None, "definitely-wrong"), ("no-such-user-kc", None)],
    ids=["wrong-password", "unknown-user"],
)
async def test_rejected_credentials_are_a_configuration_error(
    target: Target, seeder: Seeder, username: str | None, password: str | None
):
    del seeder
    async with client_for(target, username=username, password=password) as client:
        with pytest.raises(errors.CredentialsRejected) as caught:
            await client.list_hosts()
    text = str(caught.value)
    assert "\n" not in text
    assert (password or target.password) not in text  # the password sent, whichever it was
    assert not caught.value.retryable


async def test_the_fields_the_client_decodes_have_these_names_and_json_types(
    http, auth, seeder: Seeder, network: str
):
    """Every key `netmaker/wire.py` reads, with its JSON type, as each target sends it."""
    host = await seeder.host([network], name="typed-w1")
    node_id = host.nodes[network]
    created = await seeder.egress(
        network=network,
        name="typed pods (1/1)",
        description="typed",
        range="10.244.3.0/24",
        nat=False,
        status=True,
        nodes={node_id: 500},
    )
    [listed_host] = [
        h for h in (await http.get("/api/hosts", headers=auth)).json() if h["id"] == host.id
    ]
    assert (type(listed_host["id"]), type(listed_host["name"]), type(listed_host["nodes"])) == (
        str,
        str,
        list,
    )
    [node] = [n for n in (await http.get("/api/nodes", headers=auth)).json() if n["id"] == node_id]
    assert {
        k: type(node[k]) for k in ("id", "hostid", "network", "pendingdelete", "is_static")
    } == {
        "id": str,
        "hostid": str,
        "network": str,
        "pendingdelete": bool,
        "is_static": bool,
    }
    networks = (await http.get("/api/networks", headers=auth)).json()
    assert all(isinstance(n["netid"], str) for n in networks)
    [egress] = await seeder.egresses(network)
    assert egress == created
    types = {k: type(egress[k]) for k in EGRESS_FIELDS}
    assert types == EGRESS_FIELDS
    assert all(type(metric) is int for metric in egress["nodes"].values())  # not 500.0


EGRESS_FIELDS = {
    "id": str,
    "network": str,
    "name": str,
    "description": str,
    "nodes": dict,
    "range": str,
    "nat": bool,
    "status": bool,
}


async def test_the_lists_come_in_the_layout_the_client_cuts_as_they_arrive(
    http, auth, seeder: Seeder, network: str
):
    """The client frees a list's body as it reads (`netmaker/item_splitter.py`), cutting at
    `},` plus the items' first key, after an envelope written Code, Message, Response. A body in
    any other layout is still read, but whole: this pins that the target's three big lists are
    cut, fed in small pieces, and that the items cut out and those left add up to the list."""
    hosts = [await seeder.host([network], name=f"cut-w{i}") for i in range(2)]
    for i, host in enumerate(hosts):
        await seeder.egress(
            network=network,
            name=f"cut pods ({i + 1}/2)",
            description="cut",
            range=f"10.244.{40 + i}.0/24",
            nat=False,
            status=True,
            nodes={host.nodes[network]: 500},
        )
    for path, enveloped in (
        ("/api/hosts", False),
        ("/api/nodes", False),
        (f"/api/v1/egress?network={network}", True),
    ):
        body = (await http.get(path, headers=auth)).content
        whole = msgspec.json.decode(body)
        # In one piece (a small answer arrives so), then in 7-byte pieces: a small list may then
        # go uncut (looks wait for the bytes held to double), but never reads differently.
        for size, must_cut in ((len(body), True), (7, False)):
            splitter = ItemSplitter(enveloped=enveloped)
            cut: list[object] = []
            for start in range(0, len(body), size):
                piece = body[start : start + size]
                cut += [msgspec.json.decode(raw) for raw in splitter.feed(piece)]
            assert splitter.cut or not must_cut, f"{path}: never cut"
            rest = msgspec.json.decode(splitter.skeleton())
            items = whole
            if enveloped:
                assert {**rest, "Response": None} == {**whole, "Response": None}
                rest, items = rest["Response"], whole["Response"]
            assert cut + rest == items, path
