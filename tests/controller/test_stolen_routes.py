"""Issue 17, routes a node can steal: the headline scenarios through the real `run` path on both
stand-ins. A kubelet may edit its own Node's annotations, so any node can write the host
annotation; none of these may cost a live node its route."""

from __future__ import annotations

import asyncio
import socket

import httpx2

from kaput_not.controller.metrics import Metrics
from kaput_not.controller.node_states import NodeStates
from kaput_not.controller.reconciler import PassReport
from kaput_not.core.applied import ApplyResult
from kaput_not.core.model import KubeNode, NodeReport, NodeState, Plan, SkipReason
from kaput_not.core.planner import NetmakerView
from tests.waiting import eventually

from .stack import Stack, ranges

ANNOTATION = "kaput-not.io/netmaker-host"


def writes(s: Stack) -> int:
    counts = s.nm.log.counts()
    return sum(counts.get(f"{verb} /api/v1/egress", 0) for verb in ("PUT", "DELETE"))


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def test_a_node_annotated_onto_another_nodes_host_cannot_take_its_route(stack: Stack):
    stack.node("w1", "10.244.1.0/24")
    stack.node("zz-evil", "10.244.66.0/24")
    port = free_port()
    stack.start(stack.settings(METRICS_ADDRESS=f"127.0.0.1:{port}", RESYNC_PERIOD="1.1s"))
    await eventually(lambda: len(stack.rules()) == 2)
    before = writes(stack)
    # The compromised node re-registers with the annotation naming w1's host.
    stack.kube.state.delete_node("zz-evil")
    stack.kube.state.create_node("zz-evil", ("10.244.66.0/24",), annotations={ANNOTATION: "w1"})
    await asyncio.sleep(2.5)  # its delete grace, its node pass and two full passes
    assert ranges(stack)["w1 pods (1/1)"] == "10.244.1.0/24"
    w1 = [r for r in stack.rules() if r["name"] == "w1 pods (1/1)"]
    assert len(w1) == 1
    # zz-evil's own rule went with its own host (nobody claims it now); w1's was never written.
    assert writes(stack) - before == 1
    async with httpx2.AsyncClient() as client:
        metrics = (await client.get(f"http://127.0.0.1:{port}/metrics")).text
    assert 'kaput_not_nodes_skipped{reason="host-taken"} 1.0' in metrics
    assert "kaput_not_host_conflicts 1.0" in metrics


async def test_deleting_a_stale_node_keeps_the_route_of_the_node_annotated_onto_its_host(
    stack: Stack,
):
    """Following the README: Node w1.example.com is annotated onto host w1. The stale Node w1
    (its old name) is deleted: host w1's rule now serves the live node, and is never deleted."""
    stack.node("w1", "10.244.1.0/24")
    stack.start(stack.settings(RESYNC_PERIOD="1h"))
    await eventually(lambda: len(stack.rules()) == 1)
    stack.kube.state.create_node(
        "w1.example.com", ("10.244.7.0/24",), annotations={ANNOTATION: "w1"}
    )
    await asyncio.sleep(0.5)
    assert ranges(stack) == {"w1 pods (1/1)": "10.244.1.0/24"}  # the stale node still owns it
    [rule] = stack.rules()
    stack.kube.state.delete_node("w1")
    wanted = {"w1.example.com pods (1/1)": "10.244.7.0/24"}
    await eventually(lambda: ranges(stack) == wanted, within=5)
    await asyncio.sleep(0.5)  # and it stays: no delete follows
    [after] = stack.rules()
    assert after["id"] == rule["id"]  # updated in place
    assert stack.nm.log.counts().get("DELETE /api/v1/egress", 0) == 0


async def test_an_annotated_node_deleted_loses_its_rule_through_the_host_it_named(stack: Stack):
    stack.nm.state.add_host("w7.example.com", ["mesh"])
    stack.kube.state.create_node(
        "ip-10-0-0-7", ("10.244.7.0/24",), annotations={ANNOTATION: "w7.example.com"}
    )
    stack.node("w0", "10.244.0.0/24")
    stack.start(stack.settings(RESYNC_PERIOD="1h"))
    await eventually(lambda: len(stack.rules()) == 2)
    stack.kube.state.delete_node("ip-10-0-0-7")
    await eventually(lambda: set(ranges(stack)) == {"w0 pods (1/1)"}, within=5)


def test_the_owner_of_a_host_is_told_once_when_an_annotation_names_it():
    told: list[tuple[str, bool, str]] = []
    metrics = Metrics()

    def emit(node: KubeNode, *, warning: bool, reason: str, note: str) -> None:
        told.append((node.name, warning, reason))

    states = NodeStates(
        emit=emit, on_counts=lambda _: None, on_conflicts=metrics.host_conflicts.set
    )
    reports = (
        NodeReport("w1", NodeState.IN_SYNC, host="w1", claimed_by=("zz-evil",)),
        NodeReport("zz-evil", NodeState.SKIPPED, SkipReason.HOST_TAKEN, "names w1", "w1"),
    )
    report = PassReport(plan=Plan(nodes=reports), result=ApplyResult(), view=NetmakerView())
    nodes = {"w1": KubeNode("w1"), "zz-evil": KubeNode("zz-evil")}
    states.record(report, nodes, only="zz-evil")
    states.record(report, nodes)  # the next pass says nothing new
    assert told == [("w1", True, "HostClaimedByAnnotation"), ("zz-evil", True, "HostTaken")]
    assert metrics.registry.get_sample_value("kaput_not_host_conflicts") == 1.0
    cleared = PassReport(
        plan=Plan(nodes=(NodeReport("w1", NodeState.IN_SYNC, host="w1"),)),
        result=ApplyResult(),
        view=NetmakerView(),
    )
    states.record(cleared, nodes)
    assert metrics.registry.get_sample_value("kaput_not_host_conflicts") == 0.0


async def test_a_pod_cidr_inside_the_mesh_range_is_never_written(stack: Stack):
    stack.node("w0", "10.244.0.0/24")
    stack.node("w9", "100.64.9.0/24")  # the stack's network "mesh" is 100.64.0.0/16
    stack.start(stack.settings())
    await eventually(lambda: len(stack.rules()) == 1)
    await asyncio.sleep(0.5)
    assert set(ranges(stack)) == {"w0 pods (1/1)"}


async def test_an_annotated_node_rebuilt_in_the_delete_grace_keeps_its_rule_through_full_passes(
    stack: Stack,
):
    stack.nm.state.add_host("w7.example.com", ["mesh"])
    annotations = {ANNOTATION: "w7.example.com"}
    stack.kube.state.create_node("ip-10-0-0-7", ("10.244.7.0/24",), annotations=annotations)
    stack.start(stack.settings(DELETE_GRACE="4s", RESYNC_PERIOD="1.1s"))
    await eventually(lambda: len(stack.rules()) == 1)
    [rule] = stack.rules()
    stack.kube.state.delete_node("ip-10-0-0-7")
    await asyncio.sleep(2.5)  # two full passes inside the grace
    assert [r["id"] for r in stack.rules()] == [rule["id"]]
    stack.kube.state.create_node("ip-10-0-0-7", ("10.244.8.0/24",), annotations=annotations)
    await eventually(lambda: ranges(stack) == {"ip-10-0-0-7 pods (1/1)": "10.244.8.0/24"})
    assert [r["id"] for r in stack.rules()] == [rule["id"]]  # updated in place
