"""Fault injection: each kind, before and after processing, counted and consumed as asked."""

from __future__ import annotations

import asyncio
import json

import httpx2
import pytest

from kaput_not_standins.netmaker import FaultKind, FaultRule, NetmakerEmulator

from .helpers import bearer, login

EGRESS = "/api/v1/egress"
CREATE = f"POST {EGRESS}"


@pytest.fixture
def mesh(emulator: NetmakerEmulator) -> str:
    emulator.state.add_network("mesh")
    return emulator.state.add_host("w1", ["mesh"]).node_id("mesh")


def create_body(node_id: str) -> dict[str, object]:
    return {"network": "mesh", "range": "10.244.1.0/24", "nodes": {node_id: 500}}


async def test_status_before_answers_the_envelope_and_changes_nothing(emulator, http, auth, mesh):
    emulator.faults.status(CREATE, 503, "database is locked")
    answer = await http.post(EGRESS, json=create_body(mesh), headers=auth)
    assert answer.status_code == 503
    assert answer.json() == {"Code": 503, "Message": "database is locked", "Response": None}
    assert emulator.state.egresses() == []
    assert (await http.post(EGRESS, json=create_body(mesh), headers=auth)).status_code == 200


async def test_status_after_changes_state_but_reports_failure(emulator, http, auth, mesh):
    emulator.faults.status(CREATE, 500, "lost", when="after")
    answer = await http.post(EGRESS, json=create_body(mesh), headers=auth)
    assert answer.status_code == 500
    assert len(emulator.state.egresses("mesh")) == 1


@pytest.mark.parametrize("when", ["before", "after"])
async def test_reset_aborts_the_connection(emulator, http, auth, mesh, when):
    emulator.faults.reset(CREATE, when=when)
    with pytest.raises((httpx2.ReadError, httpx2.RemoteProtocolError)):
        await http.post(EGRESS, json=create_body(mesh), headers=auth)
    assert len(emulator.state.egresses()) == (1 if when == "after" else 0)
    assert emulator.log.entries[-1].status is None


@pytest.mark.parametrize("when", ["before", "after"])
async def test_timeout_never_answers(emulator, auth, mesh, when):
    emulator.faults.timeout(CREATE, when=when)
    async with httpx2.AsyncClient(base_url=emulator.base_url, timeout=0.2, trust_env=False) as c:
        with pytest.raises(httpx2.ReadTimeout):
            await c.post(EGRESS, json=create_body(mesh), headers=auth)
    assert len(emulator.state.egresses()) == (1 if when == "after" else 0)
    assert emulator.log.entries[-1].status is None


async def test_latency_delays_then_answers_normally(emulator, http, auth):
    emulator.faults.latency("GET /api/hosts", 0.2)
    loop = asyncio.get_running_loop()
    started = loop.time()
    answer = await http.get("/api/hosts", headers=auth)
    assert answer.status_code == 200
    assert loop.time() - started >= 0.2
    started = loop.time()
    await http.get("/api/hosts", headers=auth)
    assert loop.time() - started < 0.2


async def test_html_502_looks_like_a_proxy_page(emulator, http, auth):
    emulator.faults.html_502("GET /api/nodes")
    answer = await http.get("/api/nodes", headers=auth)
    assert answer.status_code == 502
    assert answer.headers["content-type"] == "text/html"
    assert b"<center><h1>502 Bad Gateway</h1></center>" in answer.content


async def test_code_mismatch_is_a_200_carrying_an_error_envelope(emulator, http, auth, mesh):
    emulator.faults.code_mismatch(CREATE, "boom", when="after")
    answer = await http.post(EGRESS, json=create_body(mesh), headers=auth)
    assert answer.status_code == 200
    assert answer.json() == {"Code": 500, "Message": "boom", "Response": None}
    assert len(emulator.state.egresses()) == 1


@pytest.mark.parametrize("when", ["before", "after"])
async def test_truncated_json_cuts_the_body(emulator, http, auth, when):
    emulator.state.add_network("mesh")
    emulator.state.add_host("w1", ["mesh"])
    emulator.faults.truncated_json("GET /api/hosts", when=when)
    answer = await http.get("/api/hosts", headers=auth)
    assert (answer.status_code, answer.headers["content-type"]) == (200, "application/json")
    assert answer.content
    with pytest.raises(json.JSONDecodeError):
        json.loads(answer.content)


async def test_empty_body_is_a_200_without_content(emulator, http, auth):
    emulator.faults.empty_body("GET /api/nodes")
    answer = await http.get("/api/nodes", headers=auth)
    assert (answer.status_code, answer.content) == (200, b"")
    assert answer.headers["content-type"] == "application/json"


async def test_times_counts_requests_and_none_means_forever(emulator, http, auth):
    emulator.faults.status("GET /api/hosts", 500, times=2)
    codes = [(await http.get("/api/hosts", headers=auth)).status_code for _ in range(3)]
    assert codes == [500, 500, 200]
    emulator.faults.status("GET /api/hosts", 500, times=None)
    codes = [(await http.get("/api/hosts", headers=auth)).status_code for _ in range(5)]
    assert codes == [500] * 5
    emulator.faults.clear()
    assert emulator.faults.pending == []
    assert (await http.get("/api/hosts", headers=auth)).status_code == 200


async def test_routes_match_templates_and_wildcards(emulator, http, auth):
    emulator.state.add_network("mesh")
    emulator.faults.status("GET /api/nodes/{network}", 500)
    emulator.faults.status("GET *", 418, times=None)
    assert (await http.get("/api/nodes/mesh", headers=auth)).status_code == 500
    assert (await http.get("/api/nodes/mesh", headers=auth)).status_code == 418
    assert (await http.delete(f"{EGRESS}?id=x", headers=auth)).status_code == 400


async def test_a_star_rule_hits_login_too(emulator, http):
    emulator.faults.status("*", 503)
    answer = await http.post("/api/users/adm/authenticate", json={"username": "x", "password": "y"})
    assert answer.status_code == 503


async def test_rules_must_affect_at_least_one_request(emulator):
    with pytest.raises(ValueError, match="times"):
        emulator.faults.add(FaultRule("*", FaultKind.RESET, times=0))


async def test_revoked_tokens_get_401_and_a_new_login_works(emulator, http):
    token = await login(http)
    emulator.faults.revoke_tokens()
    answer = await http.get("/api/hosts", headers=bearer(token))
    assert answer.status_code == 401
    assert answer.json() == {"Code": 401, "Message": "unauthorized", "Response": None}
    assert (await http.get("/api/hosts", headers=bearer(await login(http)))).status_code == 200
