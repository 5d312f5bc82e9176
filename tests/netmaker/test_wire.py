"""Wire structs: decode what Netmaker v1.5.1 sends (docs/netmaker-api.md), encode what it wants."""

from __future__ import annotations

import json

import msgspec
import pytest
from hypothesis import given
from hypothesis import strategies as st

from kaput_not.core.model import Egress, EgressSpec, Host, NmNode
from kaput_not.netmaker import wire

HOST_ID = "5b9a2c41-0f6e-4a55-9a7e-1c2d3e4f5a6b"
NODE_ID = "0c1d2e3f-1111-4222-8333-444455556666"
EGRESS_ID = "9f0e8d7c-aaaa-4bbb-8ccc-ddddeeeeffff"

HOST = {
    "id": HOST_ID,
    "name": "k8s-worker-1",
    "nodes": ["0c1d2e3f-1111-4222-8333-444455556666"],
    "os": "linux",
    "version": "v1.5.1",
    "publickey": "bW9jay1rZXk=",
    "listenport": 51821,
    "isdefault": False,
    "interfaces": [{"name": "eth0", "addressString": "10.0.0.4/24"}],
}

NODE = {
    "id": NODE_ID,
    "hostid": HOST_ID,
    "network": "kaput",
    "address": "100.64.0.2/16",
    "address6": "",
    "pendingdelete": False,
    "connected": True,
    "lastcheckin": 1780000000,
    "is_static": False,
    "tags": {},
}

EGRESS = {
    "id": EGRESS_ID,
    "name": "kaput-not/k8s-worker-1",
    "network": "kaput",
    "description": "managed by kaput-not",
    "nodes": {"0c1d2e3f-1111-4222-8333-444455556666": 500},
    "tags": {},
    "range": "10.42.1.0/24",
    "mode": "direct_nat",
    "virtual_range": "",
    "domain": "",
    "domain_ans": [],
    "nat": False,
    "status": True,
    "created_by": "kaput",
    "created_at": "2026-06-01T10:00:00Z",
    "updated_at": "2026-06-01T10:00:00Z",
}


def encode(value: object) -> bytes:
    return json.dumps(value).encode()


def test_host_decodes_ignoring_fields_we_do_not_use() -> None:
    host = wire.HOSTS.item.decode(encode(HOST))
    assert wire.host_from_wire(host) == Host(id=HOST_ID, name="k8s-worker-1", node_ids=(NODE_ID,))


@pytest.mark.parametrize("nodes", [None, []], ids=["null", "empty"])
def test_host_without_networks_has_no_node_ids(nodes: list[str] | None) -> None:
    host = wire.HOSTS.item.decode(encode({**HOST, "nodes": nodes}))
    assert wire.host_from_wire(host).node_ids == ()


def test_node_decodes_to_core_node() -> None:
    node = wire.NODES.item.decode(encode({**NODE, "pendingdelete": True}))
    assert wire.node_from_wire(node) == NmNode(
        id=NODE_ID, host_id=HOST_ID, network="kaput", pending_delete=True
    )


def test_static_pseudo_node_keeps_its_flag() -> None:
    zero = "00000000-0000-0000-0000-000000000000"
    static = {"id": zero, "hostid": zero, "network": "kaput", "pendingdelete": False}
    static["is_static"] = True
    node = wire.NODES.item.decode(encode(static))
    assert wire.node_from_wire(node).is_static
    assert not wire.node_from_wire(node).routable


@pytest.mark.parametrize("field", ["network", "nodes", "description", "range", "nat", "status"])
def test_an_egress_missing_a_field_we_use_is_refused_not_filled(field: str) -> None:
    """Issue 9, item 5: defaults made such rules look like orphans beside empty slots, and
    every pass created duplicates (8 rules became 32 in 4 passes)."""
    egress = {
        "id": "e-1",
        "network": "kaput",
        "name": "w1 pods (1/1)",
        "description": "Managed by kaput-not (DO NOT EDIT): index=0",
        "nodes": {"n1": 500},
        "range": "10.244.1.0/24",
        "nat": False,
        "status": True,
    }
    del egress[field]
    with pytest.raises(msgspec.ValidationError, match=field):
        wire.EGRESS_LIST.item.decode(encode(egress))


def test_node_without_host_id_is_the_wrong_shape() -> None:
    broken = {k: v for k, v in NODE.items() if k != "hostid"}
    with pytest.raises(msgspec.ValidationError, match="hostid"):
        wire.NODES.item.decode(encode(broken))


def test_network_list_reads_netid() -> None:
    networks = wire.NETWORKS.decoder.decode(b'[{"id":"1","netid":"kaput","addressrange":"x"}]')
    assert [n.netid for n in networks] == ["kaput"]


def test_egress_decodes_from_the_enveloped_answer() -> None:
    body = encode({"Code": 200, "Message": "fetched egress resource list", "Response": [EGRESS]})
    envelope = wire.ENVELOPE.decode(body)
    assert (envelope.code, envelope.message) == (200, "fetched egress resource list")
    [raw] = wire.EGRESS_LIST.items.decoder.decode(envelope.response)
    egress = wire.EGRESS_LIST.item.decode(raw)
    assert wire.egress_from_wire(egress) == Egress(
        id=EGRESS_ID,
        network="kaput",
        name="kaput-not/k8s-worker-1",
        description="managed by kaput-not",
        range="10.42.1.0/24",
        nat=False,
        status=True,
        nodes={"0c1d2e3f-1111-4222-8333-444455556666": 500},
    )


def test_ids_and_names_read_from_different_lists_are_one_object() -> None:
    """A node id appears in its host, its node and each of its rules: decoded separately, the
    three are kept as one string (memory at 10,000 hosts), and equal values stay equal."""
    host = wire.HOSTS.item.decode(encode(HOST))
    node = wire.NODES.item.decode(encode(NODE))
    envelope = wire.ENVELOPE.decode(encode({"Code": 200, "Message": "", "Response": [EGRESS]}))
    [raw] = wire.EGRESS_LIST.items.decoder.decode(envelope.response)
    egress = wire.EGRESS_LIST.item.decode(raw)
    core_host, core_node = wire.host_from_wire(host), wire.node_from_wire(node)
    core_egress = wire.egress_from_wire(egress)
    [rule_node] = core_egress.nodes
    assert core_host.node_ids[0] is core_node.id is rule_node
    assert core_host.id is core_node.host_id
    assert core_node.network is core_egress.network


def test_egress_with_null_nodes_has_no_nodes() -> None:
    egress = wire.EGRESS.decoder.decode(encode({**EGRESS, "nodes": None}))
    assert wire.egress_from_wire(egress).nodes == {}


def test_egress_metric_must_be_an_integer() -> None:
    with pytest.raises(msgspec.ValidationError):
        wire.EGRESS.decoder.decode(encode({**EGRESS, "nodes": {"n": 500.5}}))


def test_envelope_keys_are_capitalised_not_as_in_swagger() -> None:
    with pytest.raises(msgspec.ValidationError, match="Response"):
        wire.ENVELOPE.decode(b'{"code":200,"message":"ok","response":[]}')


def test_login_answer_carries_the_token() -> None:
    login = {"UserName": "kaput", "AuthToken": "a.b.c"}
    body = encode({"Code": 200, "Message": "W1R3: Device kaput Authorized", "Response": login})
    answer = wire.LOGIN.decoder.decode(wire.ENVELOPE.decode(body).response)
    assert (answer.user_name, answer.auth_token) == ("kaput", "a.b.c")
    assert "a.b.c" not in repr(answer)


def test_mfa_login_answer_has_no_token() -> None:
    response = encode({"user_name": "kaput", "pre_auth_token": "p.q.r"})
    assert wire.LOGIN.decoder.decode(response).auth_token is None


def test_login_request_repr_hides_the_password() -> None:
    request = wire.LoginRequest("kaput", "hunter2-secret")
    assert "hunter2-secret" not in repr(request)
    assert json.loads(msgspec.json.encode(request)) == {
        "username": "kaput",
        "password": "hunter2-secret",
    }


def test_egress_request_has_the_full_shape_netmaker_expects() -> None:
    spec = EgressSpec(
        network="kaput",
        name="kaput-not/w1",
        description="managed",
        range="10.42.1.0/24",
        nat=False,
        status=True,
        nodes={"n1": 500},
    )
    body = msgspec.json.encode(wire.egress_request(spec, "e-1"))
    assert json.loads(body) == {
        "id": "e-1",
        "name": "kaput-not/w1",
        "network": "kaput",
        "description": "managed",
        "nodes": {"n1": 500},
        "tags": {},
        "range": "10.42.1.0/24",
        "domain": "",
        "nat": False,
        "mode": "",
        "status": True,
        "is_internet_gateway": False,
    }
    assert b'"n1":500,' in body or b'"n1":500}' in body


def test_egress_request_for_create_has_an_empty_id() -> None:
    spec = EgressSpec("k", "n", "d", "10.0.0.0/8", nat=False, status=True)
    assert wire.egress_request(spec).id == ""


_text = st.text(alphabet=st.characters(codec="utf-8"), max_size=40)


@given(
    network=_text,
    name=_text,
    description=_text,
    cidr=_text,
    nat=st.booleans(),
    status=st.booleans(),
    nodes=st.dictionaries(_text, st.integers(min_value=-(2**63), max_value=2**63 - 1)),
)
def test_what_we_send_reads_back_as_the_same_egress(
    network: str,
    name: str,
    description: str,
    cidr: str,
    nat: bool,
    status: bool,
    nodes: dict[str, int],
) -> None:
    spec = EgressSpec(network, name, description, cidr, nat, status, nodes)
    body = msgspec.json.encode(wire.egress_request(spec, "e-1"))
    egress = wire.egress_from_wire(wire.EGRESS.decoder.decode(body))
    assert egress == Egress("e-1", network, name, description, cidr, nat, status, nodes)
