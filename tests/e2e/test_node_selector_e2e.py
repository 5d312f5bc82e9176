"""Issue 20, "Choosing the nodes", on the real stack: NODE_SELECTOR goes to the real API
server as labelSelector. A control-plane node left out gets no rule and no warning; a node that
leaves the selection (the server sends a watch DELETED) loses its rule after DELETE_GRACE."""

from __future__ import annotations

import asyncio
import json

import pytest

from tests.contract.seeding import poll
from tests.peers import skip_module_without_peers

from .conftest import Controller, Mesh, StartController
from .controlplane import Kube
from .test_controller_e2e import converge, full_syncs, rule, wait_full_syncs
from .test_operator_e2e import events_about

skip_module_without_peers("kube-apiserver", "etcd", "netmaker")
pytestmark = [pytest.mark.e2e, pytest.mark.timeout(300)]

CONTROL_PLANE = {"node-role.kubernetes.io/control-plane": ""}


def warnings_naming(controller: Controller, *names: str) -> list[str]:
    """Log lines at warning or above whose text names one of `names`."""
    found = []
    for line in controller.process.log.read_text(errors="replace").splitlines():
        try:
            entry = json.loads(line)
        except ValueError:
            continue
        if entry.get("level") in ("warning", "error") and any(n in line for n in names):
            found.append(line)
    return found


async def test_a_control_plane_node_left_out_gets_no_rule_and_no_warning(
    kube: Kube, mesh: Mesh, controllers: StartController
):
    net = await mesh.network()
    w1 = await mesh.host("sel-w1", net)
    await mesh.host("sel-cp1", net)  # in Netmaker: without the selector it would get a rule
    await kube.create_node("sel-w1", "10.244.60.0/24")
    await kube.create_node("sel-cp1", "10.244.61.0/24", labels=CONTROL_PLANE)
    await kube.create_node("sel-cp2", "10.244.62.0/24", labels=CONTROL_PLANE)  # no host
    controller = controllers(
        NODE_SELECTOR="!node-role.kubernetes.io/control-plane", RESYNC_PERIOD="2s"
    )
    await controller.ready()
    await converge(mesh, net, [rule("sel-w1", 0, 1, "10.244.60.0/24", net, w1.nodes[net])])
    await wait_full_syncs(controller, await full_syncs(controller) + 1)  # a resync too
    assert [r["name"] for r in await mesh.ours(net)] == ["sel-w1 pods (1/1)"]
    assert warnings_naming(controller, "sel-cp1", "sel-cp2") == []
    samples = await controller.metrics()
    assert samples.get('kaput_not_nodes_skipped{reason="no-netmaker-host"}', 0) == 0
    assert await events_about(kube, "sel-cp1") == []
    assert await events_about(kube, "sel-cp2") == []  # no NoNetmakerHost Warning Event
    # Events do work here: w1's rules written is one.
    await poll(lambda: events_about(kube, "sel-w1"), bool, what="an Event on sel-w1")


async def test_a_node_that_leaves_the_selection_loses_its_rule_after_the_grace(
    kube: Kube, mesh: Mesh, controllers: StartController
):
    net = await mesh.network()
    a, b = await mesh.host("sel-a", net), await mesh.host("sel-b", net)
    await kube.create_node("sel-a", "10.244.63.0/24", labels={"mesh": "yes"})
    await kube.create_node("sel-b", "10.244.64.0/24", labels={"mesh": "yes"})
    controller = controllers(NODE_SELECTOR="mesh=yes", DELETE_GRACE="4s")
    await controller.ready()
    kept = rule("sel-a", 0, 1, "10.244.63.0/24", net, a.nodes[net])
    await converge(mesh, net, [kept, rule("sel-b", 0, 1, "10.244.64.0/24", net, b.nodes[net])])
    await kube.patch_node_metadata("sel-b", labels={"mesh": None})  # kubectl label node sel-b mesh-
    left = asyncio.get_running_loop().time()
    await asyncio.sleep(1.5)
    assert len(await mesh.ours(net)) == 2  # held for the grace, like a real delete
    await converge(mesh, net, [kept])
    assert asyncio.get_running_loop().time() - left >= 4
    assert warnings_naming(controller, "sel-b") == []
    # Labelled again: back in the selection, its rule comes back.
    await kube.patch_node_metadata("sel-b", labels={"mesh": "yes"})
    await poll(
        lambda: mesh.ours(net),
        lambda rules: len(rules) == 2,
        what="sel-b's rule back",
        deadline=20,
    )
