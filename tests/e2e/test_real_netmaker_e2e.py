"""What only the real Netmaker can show: its own clean-up, hand edits through its API, its
login answers, and the controller starting before it.

Same stack as test_controller_e2e.py: `kaput-not run` as a process, a real kube-apiserver with
etcd, and a real Netmaker v1.5.1 of the test's own.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from tests.contract.seeding import poll
from tests.peers import skip_module_without_peers

from .conftest import Mesh, StartController
from .controlplane import Kube
from .test_controller_e2e import WITHIN, by_name, converge, rule

skip_module_without_peers("kube-apiserver", "etcd", "netmaker")
pytestmark = [pytest.mark.e2e, pytest.mark.timeout(300)]


async def test_a_host_leaving_one_of_three_networks_loses_only_that_rule(
    kube: Kube, mesh: Mesh, controllers: StartController
):
    nets = [await mesh.network() for _ in range(3)]
    host = await mesh.host("tri", *nets)
    await kube.create_node("tri", "10.244.90.0/24")
    await controllers().ready()
    before = {
        net: await converge(mesh, net, [rule("tri", 0, 1, "10.244.90.0/24", net, host.nodes[net])])
        for net in nets
    }
    # A forced leave purges the node: Netmaker strips it from the rule and keeps the rule.
    await mesh.seeder.leave(host.id, nets[1])
    await converge(mesh, nets[1], [])
    for net in (nets[0], nets[2]):
        after = await converge(
            mesh, net, [rule("tri", 0, 1, "10.244.90.0/24", net, host.nodes[net])]
        )
        assert after == before[net]  # untouched: same id, same fields


def _edit(field: str, stored: dict[str, Any], other_node: str) -> dict[str, Any]:
    node = next(iter(stored["nodes"]))
    edits: dict[str, dict[str, Any]] = {
        "range": {"range": "10.244.199.0/24"},
        "nat": {"nat": True},
        "status": {"status": False},
        "metric": {"nodes": {node: 7}},
        "nodes": {"nodes": {other_node: 500}},
    }
    keep = ("id", "network", "name", "description", "range", "nat", "status", "nodes")
    return {**{k: stored[k] for k in keep}, **edits[field]}


@pytest.mark.parametrize("field", ["range", "nat", "status", "metric", "nodes"])
async def test_a_field_edited_by_hand_is_repaired_in_place(
    kube: Kube, mesh: Mesh, controllers: StartController, field: str
):
    net = await mesh.network()
    host = await mesh.host("hand", net)
    bystander = await mesh.host("not-a-kubernetes-node", net)
    await kube.create_node("hand", "10.244.91.0/24")
    await controllers(RESYNC_PERIOD="2s").ready()
    expected = [rule("hand", 0, 1, "10.244.91.0/24", net, host.nodes[net])]
    [stored] = await converge(mesh, net, expected)
    edited = _edit(field, stored, bystander.nodes[net])
    await mesh.call("PUT", "/api/v1/egress", json=edited)
    [changed] = await mesh.ours(net)
    assert changed["id"] == stored["id"]
    assert {k: changed[k] for k in edited} != {k: stored[k] for k in edited}, "the edit took"
    [repaired] = await converge(mesh, net, expected)
    assert repaired["id"] == stored["id"]


async def test_a_wrong_password_is_one_line_and_exit_2(mesh: Mesh, controllers: StartController):
    wrong = "wrong-" + mesh.password[:8]
    controller = controllers(NETMAKER_PASSWORD=wrong, LOG_FORMAT="text")
    code = await asyncio.to_thread(controller.process.wait, 30)
    assert code == 2
    lines = controller.process.log.read_text().strip().splitlines()
    assert len(lines) == 1, lines
    assert "POST /api/users/adm/authenticate" in lines[0]
    assert "credentials rejected: HTTP 400 incorrect credentials" in lines[0]
    assert wrong not in controller.process.log.read_text()


async def test_netmaker_down_at_start_up_the_controller_waits_alive_and_converges(
    kube: Kube, mesh: Mesh, controllers: StartController
):
    net = await mesh.network()
    host = await mesh.host("late", net)
    await kube.create_node("late", "10.244.92.0/24")
    mesh.server.process.stop()
    controller = controllers()

    async def waiting() -> tuple[int, str] | None:
        answer = await controller.get("/readyz")
        return None if answer is None else (answer.status_code, answer.text)

    status = await poll(waiting, lambda r: r is not None, what="/readyz to answer", deadline=10)
    assert status is not None
    assert status[0] == 503
    assert "waiting for Netmaker" in status[1]
    health = await controller.fetch("/healthz")
    assert health.status_code == 200  # liveness holds: no restart while Netmaker is away
    await asyncio.sleep(3)  # a few login retries
    assert controller.process.running()
    mesh.server.restart()
    await controller.ready(within=WITHIN + 30)  # the login backoff may be at its next step
    [made] = await converge(mesh, net, [rule("late", 0, 1, "10.244.92.0/24", net, host.nodes[net])])
    assert by_name([made])["late pods (1/1)"]["id"]
