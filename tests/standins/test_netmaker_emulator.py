"""The emulator over HTTP: docs/netmaker-api.md's behaviour and quirks, as a client sees them."""

from __future__ import annotations

import base64
import json

import httpx2
import pytest

from kaput_not_standins.netmaker import ZERO_UUID, NetmakerEmulator

from .helpers import (
    MASTER_KEY,
    PASSWORD,
    USERNAME,
    bearer,
    envelope,
    error_of,
    jwt_claims,
    login,
    register_body,
)

EGRESS = "/api/v1/egress"

# -- login and tokens (docs/netmaker-api.md 2, 3) -------------------------------------------------


async def test_login_returns_a_capitalised_envelope_with_a_jwt(http: httpx2.AsyncClient, clock):
    answer = await http.post(
        "/api/users/adm/authenticate", json={"username": USERNAME, "password": PASSWORD}
    )
    body = envelope(answer)
    assert answer.status_code == 200
    assert body["Message"] == f"W1R3: Device {USERNAME} Authorized"
    assert body["Response"]["UserName"] == USERNAME
    assert not answer.content.endswith(b"\n")  # json.Marshal + Write, unlike other envelopes
    claims = jwt_claims(body["Response"]["AuthToken"])
    assert claims["UserName"] == USERNAME
    assert claims["Role"] == "super-admin"
    assert claims["TokenType"] == "user_id_token"
    assert (claims["iss"], claims["sub"]) == ("Netmaker", f"user|{USERNAME}")
    assert claims["iat"] == int(clock.now)
    assert claims["exp"] - claims["iat"] == 720 * 60


@pytest.mark.parametrize(
    ("app", "minutes"),
    [(None, 30), ("netclient", 30), ("netmaker-desktop", 30), ("kaput-not", 90)],
)
async def test_token_lifetime_depends_on_the_application_header(emulator, http, app, minutes):
    emulator.state.settings.jwt_validity_minutes_clients = 30
    emulator.state.settings.jwt_validity_minutes = 90
    claims = jwt_claims(await login(http, app=app))
    assert claims["exp"] - claims["iat"] == minutes * 60


@pytest.mark.parametrize(
    ("body", "status", "message"),
    [
        ({"username": USERNAME, "password": "wrong"}, 400, "incorrect credentials"),
        ({"username": "nobody", "password": "x"}, 401, "record not found"),
        ({"username": "", "password": "x"}, 401, "user identifiers not provided"),
        ({"username": USERNAME, "password": ""}, 400, "password can't be empty"),
    ],
)
async def test_login_failures_keep_netmakers_statuses(http, body, status, message):
    answer = await http.post("/api/users/adm/authenticate", json=body)
    assert error_of(answer) == (status, message)


async def test_login_with_a_body_that_is_not_json_is_a_500(http):
    answer = await http.post("/api/users/adm/authenticate", content=b"username=admin")
    assert error_of(answer) == (500, "W1R3: It's not you it's me.")


@pytest.mark.parametrize(
    "authorization",
    [None, "Bearer", "Bearer  two-spaces-make-element-1-empty", "Bearer not.a.jwt"],
)
async def test_missing_or_bad_tokens_get_the_401_envelope(http, authorization):
    headers = {"Authorization": authorization} if authorization is not None else {}
    answer = await http.get("/api/hosts", headers=headers)
    assert answer.content == b'{"Code":401,"Message":"unauthorized","Response":null}'
    assert answer.status_code == 401


async def test_the_word_before_the_token_is_not_checked(http):
    token = await login(http)
    assert (await http.get("/api/hosts", headers={"Authorization": f"Token {token}"})).is_success


async def test_tokens_expire_on_the_injected_clock(http, clock):
    token = await login(http)
    clock.advance(720 * 60 - 1)
    assert (await http.get("/api/hosts", headers=bearer(token))).status_code == 200
    clock.advance(1)
    assert (await http.get("/api/hosts", headers=bearer(token))).status_code == 401


async def test_a_validity_under_a_minute_gives_tokens_born_expired():
    nm = NetmakerEmulator(password="pw-12345", jwt_validity_seconds=59)
    async with nm, httpx2.AsyncClient(base_url=nm.base_url, trust_env=False) as http:
        token = await login(http, password="pw-12345")
        assert (await http.get("/api/hosts", headers=bearer(token))).status_code == 401


async def test_a_token_of_another_server_is_rejected(http):
    other = NetmakerEmulator(username=USERNAME, password=PASSWORD)
    async with other, httpx2.AsyncClient(base_url=other.base_url, trust_env=False) as elsewhere:
        foreign = await login(elsewhere)
    assert (await http.get("/api/hosts", headers=bearer(foreign))).status_code == 401


async def test_the_master_key_is_accepted_and_acts_as_masteradministrator(emulator, http):
    emulator.state.add_network("mesh")
    answer = await http.post(
        EGRESS,
        json={"network": "mesh", "range": "10.0.0.0/8", "nodes": {}},
        headers=bearer(MASTER_KEY),
    )
    assert envelope(answer)["Response"]["created_by"] == "masteradministrator"


async def test_without_a_master_key_configured_nothing_matches_it():
    nm = NetmakerEmulator(master_key="")
    async with nm, httpx2.AsyncClient(base_url=nm.base_url, trust_env=False) as http:
        # Two spaces make element [1] the empty string, which must not match an unset key.
        answer = await http.get("/api/hosts", headers={"Authorization": "Bearer  x"})
        assert answer.status_code == 401


# -- hosts, nodes, networks (docs/netmaker-api.md 4, 7) -------------------------------------------


async def test_hosts_are_a_bare_array_sorted_by_id(emulator, http, auth):
    emulator.state.add_network("mesh")
    for name in ("c", "a", "b"):
        emulator.state.add_host(name, ["mesh"])
    answer = await http.get("/api/hosts", headers=auth)
    assert answer.headers["content-type"] == "application/json"
    assert answer.content.endswith(b"]\n")
    hosts = answer.json()
    assert [h["id"] for h in hosts] == sorted(h["id"] for h in hosts)
    assert {h["name"] for h in hosts} == {"a", "b", "c"}


async def test_host_nodes_are_null_before_joining_and_empty_after_leaving(emulator, http, auth):
    emulator.state.add_network("mesh")
    never = emulator.state.add_host("never")
    left = emulator.state.add_host("left", ["mesh"])
    emulator.state.remove_node(left.node_id("mesh"))
    by_name = {h["name"]: h for h in (await http.get("/api/hosts", headers=auth)).json()}
    assert by_name["never"]["nodes"] is None
    assert by_name["left"]["nodes"] == []
    assert by_name["never"]["id"] == never.id


async def test_nodes_cover_all_networks_sorted_with_pending_and_static_pseudo_nodes(
    emulator, http, auth
):
    state = emulator.state
    state.add_network("a", "100.64.0.0/16")
    state.add_network("b", "100.65.0.0/16")
    hosts = [state.add_host(f"w{i}", ["a", "b"]) for i in range(3)]
    state.set_pending_delete(hosts[0].node_id("b"))
    state.add_static_client("a")
    nodes = (await http.get("/api/nodes", headers=auth)).json()
    assert [n["id"] for n in nodes] == sorted(n["id"] for n in nodes)
    static = [n for n in nodes if n["is_static"]]
    assert [(n["id"], n["hostid"], n["network"]) for n in static] == [(ZERO_UUID, ZERO_UUID, "a")]
    real = {n["id"]: n for n in nodes if not n["is_static"]}
    assert set(real) == {h.node_id(net) for h in hosts for net in ("a", "b")}
    pending = real[hosts[0].node_id("b")]
    assert pending["pendingdelete"] is True
    assert pending["hostid"] == hosts[0].id
    assert real[hosts[1].node_id("a")]["address"].endswith("/16")


async def test_nodes_of_one_network(emulator, http, auth):
    emulator.state.add_network("a")
    emulator.state.add_network("b")
    host = emulator.state.add_host("w", ["a", "b"])
    nodes = (await http.get("/api/nodes/b", headers=auth)).json()
    assert [n["id"] for n in nodes] == [host.node_id("b")]
    assert (await http.get("/api/nodes/unknown", headers=auth)).json() == []


async def test_networks_list_and_create(http, auth):
    assert (await http.get("/api/networks", headers=auth)).json() == []
    answer = await http.post(
        "/api/networks", json={"netid": "kaput", "addressrange": "100.64.0.9/16"}, headers=auth
    )
    created = answer.json()
    assert (created["netid"], created["addressrange"]) == ("kaput", "100.64.0.0/16")
    listed = (await http.get("/api/networks", headers=auth)).json()
    assert [(n["netid"], n["addressrange"]) for n in listed] == [("kaput", "100.64.0.0/16")]


@pytest.mark.parametrize(
    "body",
    [
        {"netid": "UPPER", "addressrange": "10.1.0.0/16"},
        {"netid": "ok", "addressrange": "10.1.0.0/32"},
        {"netid": "ok", "addressrange": "nonsense"},
        {"netid": "ok"},
        {"netid": "taken", "addressrange": "10.2.0.0/16"},
        {"netid": "ok", "addressrange": "10.9.0.0/16"},
    ],
)
async def test_invalid_networks_are_400(emulator, http, auth, body):
    emulator.state.add_network("taken", "10.9.0.0/16")
    assert error_of(await http.post("/api/networks", json=body, headers=auth))[0] == 400


# -- egress (4) ------------------------------------------------------------------------------


@pytest.fixture
def mesh(emulator) -> list[str]:
    """Network "mesh" with two hosts; returns their node ids."""
    emulator.state.add_network("mesh", "100.64.0.0/16")
    emulator.state.add_network("other", "100.65.0.0/16")
    return [emulator.state.add_host(f"w{i}", ["mesh", "other"]).node_id("mesh") for i in (1, 2)]


def egress_body(**fields: object) -> dict[str, object]:
    body: dict[str, object] = {
        "name": "w1 pods (1/1)",
        "network": "mesh",
        "description": "Managed by kaput-not (DO NOT EDIT): index=0",
        "range": "10.244.1.0/24",
        "nat": False,
        "status": True,
        "nodes": {},
    }
    body.update(fields)
    return body


async def test_egress_list_needs_a_network_and_an_unknown_one_is_empty(http, auth):
    assert error_of(await http.get(EGRESS, headers=auth)) == (400, "network is required")
    assert error_of(await http.get(f"{EGRESS}?network=", headers=auth)) == (
        400,
        "network is required",
    )
    answer = await http.get(f"{EGRESS}?network=nowhere", headers=auth)
    assert envelope(answer) == {
        "Code": 200,
        "Message": "fetched egress resource list",
        "Response": [],
    }
    assert answer.content.endswith(b"}\n")


@pytest.mark.parametrize(
    ("given", "stored"),
    [
        ("10.244.1.7/24", "10.244.1.0/24"),
        ("10.244.1.0/24", "10.244.1.0/24"),
        ("fd00:10:244:1::5/64", "fd00:10:244:1::/64"),
        ("FD00:0010:0244:0001:0000:0000:0000:0000/64", "fd00:10:244:1::/64"),
    ],
)
async def test_create_normalises_the_range(http, auth, mesh, given, stored):
    answer = await http.post(EGRESS, json=egress_body(range=given), headers=auth)
    assert envelope(answer)["Response"]["range"] == stored


async def test_create_mints_an_id_forces_status_and_shows_direct_nat(emulator, http, auth, mesh):
    body = egress_body(id="my-own-id", status=False, nodes={mesh[0]: 500})
    answer = await http.post(EGRESS, json=body, headers=auth)
    created = envelope(answer)
    assert created["Message"] == "created egress resource"
    egress = created["Response"]
    assert egress["id"] != "my-own-id"
    assert (egress["status"], egress["nat"], egress["mode"]) == (True, False, "direct_nat")
    assert egress["nodes"] == {mesh[0]: 500}
    assert (egress["tags"], egress["created_by"]) == ({}, USERNAME)
    assert egress["created_at"] == egress["updated_at"]
    assert emulator.state.egresses("mesh") == [egress]


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"range": "10.0.0.1"}, "invalid CIDR address: 10.0.0.1"),
        ({"range": "10.0.0.0/255.0.0.0"}, "invalid CIDR address: 10.0.0.0/255.0.0.0"),
        ({"network": "nowhere"}, "record not found"),
        ({"network": ""}, "network identifiers not provided"),
        ({"nodes": {"a": 1, "b": 2}}, "can only set one routing node on CE"),
        ({"nodes": {"no-such-node": 500}}, "invalid routing node no result found"),
        ({"domain": "not a domain"}, "bad domain name"),
    ],
)
async def test_create_rejections(http, auth, mesh, fields, message):
    answer = await http.post(EGRESS, json=egress_body(**fields), headers=auth)
    assert error_of(answer) == (400, message)


async def test_a_fractional_metric_fails_to_decode(http, auth, mesh):
    raw = json.dumps(egress_body()).replace('"nodes": {}', f'"nodes": {{"{mesh[0]}": 500.0}}')
    answer = await http.post(EGRESS, content=raw.encode(), headers=auth)
    status, message = error_of(answer)
    assert status == 400
    assert "cannot unmarshal number 500.0" in message


async def test_a_router_from_another_network_is_accepted(emulator, http, auth, mesh):
    other_node = emulator.state.hosts()[0].node_id("other")
    answer = await http.post(EGRESS, json=egress_body(nodes={other_node: 9}), headers=auth)
    assert answer.status_code == 200


async def test_domain_and_internet_gateway_ranges(http, auth, mesh):
    domain = await http.post(EGRESS, json=egress_body(domain="example.com"), headers=auth)
    assert envelope(domain)["Response"]["range"] == ""
    gateway = await http.post(EGRESS, json=egress_body(is_internet_gateway=True), headers=auth)
    assert envelope(gateway)["Response"]["range"] == "*"


async def test_put_replaces_every_field_but_never_moves_the_egress(http, auth, mesh, clock):
    created = envelope(
        await http.post(EGRESS, json=egress_body(nodes={mesh[0]: 500}), headers=auth)
    )["Response"]
    clock.advance(5)
    update = egress_body(
        id=created["id"], network="other", name="renamed", range="10.9.9.9/16", status=False
    )
    update["nodes"] = {mesh[1]: 7}
    answer = await http.put(EGRESS, json=update, headers=auth)
    body = envelope(answer)
    assert body["Message"] == "updated egress resource"
    updated = body["Response"]
    assert updated["id"] == created["id"]
    assert updated["network"] == "mesh"
    assert (updated["name"], updated["range"], updated["status"]) == (
        "renamed",
        "10.9.0.0/16",
        False,
    )
    assert updated["nodes"] == {mesh[1]: 7}
    assert updated["mode"] == ""  # nat false after a PUT
    assert updated["created_at"] == created["created_at"] != updated["updated_at"]
    listed = envelope(await http.get(f"{EGRESS}?network=mesh", headers=auth))["Response"]
    assert listed == [updated]


async def test_put_with_nat_keeps_a_nat_mode(http, auth, mesh):
    created = envelope(await http.post(EGRESS, json=egress_body(), headers=auth))["Response"]
    answer = await http.put(EGRESS, json=egress_body(id=created["id"], nat=True), headers=auth)
    assert envelope(answer)["Response"]["mode"] == "direct_nat"


async def test_put_without_an_id_overwrites_the_lowest_id_in_any_network(
    emulator, http, auth, mesh
):
    low = emulator.state.add_egress(
        network="other", cidr="192.168.0.0/16", egress_id="00000000-0000-4000-8000-000000000001"
    )
    emulator.state.add_egress(
        network="mesh", cidr="10.1.0.0/16", egress_id="ffffffff-0000-4000-8000-000000000000"
    )
    answer = await http.put(EGRESS, json=egress_body(name="clobbered"), headers=auth)
    overwritten = envelope(answer)["Response"]
    assert overwritten["id"] == low["id"]
    assert overwritten["network"] == "other"
    assert emulator.state.egresses("other")[0]["name"] == "clobbered"


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"id": "unknown"}, "record not found"),
        ({"network": "nowhere"}, "record not found"),
        ({"nodes": {"a": 1, "b": 2}}, "can only set one routing node on CE"),
    ],
)
async def test_put_rejections_leave_the_egress_unchanged(
    emulator, http, auth, mesh, fields, message
):
    created = envelope(await http.post(EGRESS, json=egress_body(), headers=auth))["Response"]
    update = egress_body(id=created["id"], name="changed")
    update.update(fields)
    assert error_of(await http.put(EGRESS, json=update, headers=auth)) == (400, message)
    assert emulator.state.egresses("mesh") == [created]


async def test_put_on_an_empty_table_is_record_not_found(http, auth, mesh):
    assert error_of(await http.put(EGRESS, json=egress_body(), headers=auth)) == (
        400,
        "record not found",
    )


async def test_delete(emulator, http, auth, mesh):
    created = envelope(await http.post(EGRESS, json=egress_body(), headers=auth))["Response"]
    assert error_of(await http.delete(EGRESS, headers=auth)) == (400, "id is required")
    assert error_of(await http.delete(f"{EGRESS}?id=nope", headers=auth)) == (
        400,
        "record not found",
    )
    answer = await http.delete(f"{EGRESS}?id={created['id']}", headers=auth)
    assert envelope(answer) == {
        "Code": 200,
        "Message": "deleted egress resource",
        "Response": None,
    }
    assert emulator.state.egresses() == []


async def test_json_is_escaped_like_go(http, auth, mesh):
    answer = await http.post(EGRESS, json=egress_body(name="<a & b>"), headers=auth)
    assert b'"name":"\\u003ca \\u0026 b\\u003e"' in answer.content
    assert envelope(answer)["Response"]["name"] == "<a & b>"


# -- enrollment and registration (docs/netmaker-api.md 7) -----------------------------------------


def token_for(value: str, server: str = "anything") -> str:
    document = json.dumps({"server": server, "value": value}, separators=(",", ":"))
    return base64.b64encode(document.encode()).decode()


async def new_key(http, auth, **fields: object) -> dict[str, object]:
    answer = await http.post("/api/v1/enrollment-keys", json=fields, headers=auth)
    assert answer.status_code == 200, answer.text
    key = answer.json()
    assert isinstance(key, dict)
    return key


async def test_registering_with_a_network_key_creates_the_nodes(emulator, http, auth):
    emulator.state.add_network("mesh")
    [key] = (await http.get("/api/v1/enrollment-keys", headers=auth)).json()
    body = register_body("k8s-worker-1")
    answer = await http.post(f"/api/v1/host/register/{token_for(key['value'])}", json=body)
    assert answer.status_code == 200
    reply = answer.json()
    assert set(reply) == {"server_config", "requested_host"}
    assert reply["requested_host"]["id"] == body["id"]
    host = emulator.state.host(str(body["id"]))
    assert host is not None
    assert host.name == "k8s-worker-1"
    assert list(host.nodes_by_network) == ["mesh"]
    assert host.macaddress == base64.b64decode(str(body["macaddress"]))


async def test_the_token_the_server_prints_works_too(emulator, http, auth):
    emulator.state.add_network("mesh")
    key = await new_key(http, auth, tags=["seed"], networks=["mesh"], unlimited=True)
    token = str(key["token"])
    assert json.loads(base64.b64decode(token))["value"] == key["value"]
    answer = await http.post(f"/api/v1/host/register/{token}", json=register_body())
    assert answer.status_code == 200


async def test_a_key_without_networks_registers_a_host_that_never_joined(emulator, http, auth):
    key = await new_key(http, auth, tags=["bare"], networks=[], unlimited=True)
    body = register_body()
    token = token_for(str(key["value"]))
    assert (await http.post(f"/api/v1/host/register/{token}", json=body)).status_code == 200
    [host] = (await http.get("/api/hosts", headers=auth)).json()
    assert host["nodes"] is None
    again = await http.post(f"/api/v1/host/register/{token}", json=body)
    assert error_of(again) == (400, "host already exists")


@pytest.mark.parametrize(
    ("overrides", "status", "message"),
    [
        ({"version": "v0.16.9"}, 400, "bad client version on register"),
        ({"version": ""}, 400, "bad client version on register"),
        ({"traffickeypublic": None}, 400, "missing traffic key"),
        ({"publickey": "base64-is-not-accepted"}, 500, "of type wgtypes.Key"),
        ({"id": "not-a-uuid"}, 500, "invalid UUID length"),
    ],
)
async def test_registration_rejections(emulator, http, overrides, status, message):
    emulator.state.add_network("mesh")
    value = emulator.state.keys.all()[0].value
    answer = await http.post(
        f"/api/v1/host/register/{token_for(value)}", json=register_body(**overrides)
    )
    got_status, got_message = error_of(answer)
    assert got_status == status
    assert message in got_message
    assert emulator.state.hosts() == []


async def test_registration_accepts_dev_versions_and_iot_without_a_traffic_key(emulator, http):
    emulator.state.add_network("mesh")
    token = token_for(emulator.state.keys.all()[0].value)
    for body in (register_body(version="dev"), register_body(os="iot", traffickeypublic="")):
        assert (await http.post(f"/api/v1/host/register/{token}", json=body)).status_code == 200
    assert len(emulator.state.hosts()) == 2


async def test_a_bad_token_is_400(http):
    for token in ("%%%", token_for("no-such-key")):
        status, _ = error_of(await http.post(f"/api/v1/host/register/{token}", json={}))
        assert status == 400


async def test_a_limited_key_is_spent_by_registrations(emulator, http, auth):
    emulator.state.add_network("mesh")
    key = await new_key(http, auth, tags=["once"], networks=["mesh"], uses_remaining=1)
    token = token_for(str(key["value"]))
    assert (await http.post(f"/api/v1/host/register/{token}", json=register_body())).is_success
    answer = await http.post(f"/api/v1/host/register/{token}", json=register_body())
    assert error_of(answer) == (400, "invalid enrollment key")


@pytest.mark.parametrize(
    ("fields", "status"),
    [
        ({"tags": ["ab"], "unlimited": True}, 400),
        ({"tags": ["mesh"], "unlimited": True}, 400),  # the network's default key has it
        ({"tags": ["fine"]}, 500),  # no uses, no expiry, not unlimited
    ],
)
async def test_enrollment_key_rejections(emulator, http, auth, fields, status):
    emulator.state.add_network("mesh")
    answer = await http.post("/api/v1/enrollment-keys", json=fields, headers=auth)
    assert error_of(answer)[0] == status


# -- joining, leaving, deleting (docs/netmaker-api.md 6, 7) ---------------------------------------


async def test_join_and_leave_answer_200_with_an_empty_body(emulator, http, auth):
    emulator.state.add_network("mesh")
    host = emulator.state.add_host("w")
    path = f"/api/hosts/{host.id}/networks/mesh"
    joined = await http.post(path, headers=auth)
    assert (joined.status_code, joined.content) == (200, b"")
    assert joined.headers["content-type"] == "application/json"
    node_id = host.node_id("mesh")
    assert error_of(await http.post(path, headers=auth)) == (
        500,
        "host already part of network mesh",
    )
    left = await http.delete(path, headers=auth)
    assert (left.status_code, left.content) == (200, b"")
    node = emulator.state.node(node_id)
    assert node is not None
    assert node.pending_delete
    assert (await http.delete(f"{path}?force=true", headers=auth)).status_code == 200
    assert emulator.state.node(node_id) is None


async def test_join_checks_the_host_id_and_the_records(emulator, http, auth):
    emulator.state.add_network("mesh")
    assert error_of(await http.post("/api/hosts/xyz/networks/mesh", headers=auth))[0] == 400
    missing = "/api/hosts/11111111-2222-4333-8444-555555555555/networks/mesh"
    assert error_of(await http.post(missing, headers=auth)) == (500, "record not found")


async def test_forced_leave_strips_the_node_from_egresses_and_keeps_them(emulator, http, auth):
    emulator.state.add_network("mesh")
    host = emulator.state.add_host("w", ["mesh"])
    node_id = host.node_id("mesh")
    body = egress_body(nodes={node_id: 500})
    created = envelope(await http.post(EGRESS, json=body, headers=auth))["Response"]
    await http.delete(f"/api/hosts/{host.id}/networks/mesh?force=true", headers=auth)
    [kept] = envelope(await http.get(f"{EGRESS}?network=mesh", headers=auth))["Response"]
    assert kept["id"] == created["id"]
    assert kept["nodes"] == {}
    assert kept["range"] == created["range"]


async def test_host_delete_needs_force_while_nodes_remain(emulator, http, auth):
    emulator.state.add_network("mesh")
    host = emulator.state.add_host("w", ["mesh"])
    path = f"/api/v1/ui/hosts/{host.id}"
    assert error_of(await http.delete(path, headers=auth)) == (
        500,
        "host still has associated nodes",
    )
    answer = await http.delete(f"{path}?force=true", headers=auth)
    body = envelope(answer)
    assert body["Message"] == "deleted host w"
    assert body["Response"]["id"] == host.id
    assert (await http.get("/api/hosts", headers=auth)).json() == []
    assert emulator.state.nodes() == []
    assert error_of(await http.delete(path, headers=auth)) == (500, "record not found")


async def test_a_host_without_nodes_is_deleted_without_force(emulator, http, auth):
    host = emulator.state.add_host("lonely")
    assert (await http.delete(f"/api/v1/ui/hosts/{host.id}", headers=auth)).status_code == 200


async def test_node_delete_takes_the_master_key_only(emulator, http, auth):
    emulator.state.add_network("mesh")
    node_id = emulator.state.add_host("w", ["mesh"]).node_id("mesh")
    path = f"/api/nodes/mesh/{node_id}?force=true"
    assert error_of(await http.delete(path, headers=auth))[0] == 401
    assert (await http.delete(path, headers=bearer(MASTER_KEY))).status_code == 200
    assert emulator.state.node(node_id) is None


# -- first super-admin, health, router defaults (docs/netmaker-api.md 1, 7) -----------------------


async def test_a_fresh_server_accepts_one_superadmin():
    nm = NetmakerEmulator(username=None)
    async with nm, httpx2.AsyncClient(base_url=nm.base_url, trust_env=False) as http:
        assert (await http.get("/api/users/adm/hassuperadmin")).content == b"false\n"
        bad = await http.post(
            "/api/users/adm/createsuperadmin", json={"username": "ab", "password": "1"}
        )
        assert error_of(bad)[0] == 400
        answer = await http.post(
            "/api/users/adm/createsuperadmin",
            json={"username": "admin", "password": "secret123"},
        )
        user = answer.json()
        assert (user["username"], user["issuperadmin"]) == ("admin", True)
        assert user["platform_role_id"] == "super-admin"
        assert (await http.get("/api/users/adm/hassuperadmin")).json() is True
        again = await http.post(
            "/api/users/adm/createsuperadmin",
            json={"username": "other", "password": "secret123"},
        )
        assert error_of(again) == (400, "superadmin user already exists")
        assert await login(http, username="admin", password="secret123")


async def test_health_and_status_need_no_token(http):
    health = await http.get("/api/server/health")
    assert (health.status_code, health.text) == (200, "Server is up and running!!")
    assert health.headers["content-type"].startswith("text/plain")
    status = (await http.get("/api/server/status")).json()
    assert status["db_connected"] is True
    assert status["is_pro"] is False


async def test_unknown_paths_are_404_text_and_wrong_methods_405_empty(http, auth):
    missing = await http.get("/api/nothing-here", headers=auth)
    assert (missing.status_code, missing.text) == (404, "404 page not found\n")
    assert missing.headers["content-type"] == "text/plain; charset=utf-8"
    assert (await http.get("/api/hosts/", headers=auth)).status_code == 404
    wrong = await http.patch(EGRESS, headers=auth)
    assert (wrong.status_code, wrong.content) == (405, b"")
    assert "content-type" not in wrong.headers
