"""Issue 20, "Choosing the nodes": NODE_SELECTOR and the kaput-not.io/ignore annotation,
through the real `run` path against both stand-ins. A node left out is a node that is gone:
its rules go after the delete grace and through the delete budget, and it is not warned about."""

from __future__ import annotations

import asyncio
import logging

import pytest

from kaput_not.core.model import IGNORE_ANNOTATION
from tests.waiting import eventually

from .stack import Stack, ranges

CONTROL_PLANE = {"node-role.kubernetes.io/control-plane": ""}
NOT_CONTROL_PLANE = "!node-role.kubernetes.io/control-plane"


def warnings_about(caplog: pytest.LogCaptureFixture, name: str) -> list[str]:
    return [
        r.getMessage()
        for r in caplog.records
        if r.levelno >= logging.WARNING and name in r.getMessage()
    ]


async def test_node_selector_leaves_control_plane_nodes_out_without_a_warning(
    stack: Stack, caplog: pytest.LogCaptureFixture
):
    caplog.set_level(logging.INFO)
    stack.node("w1", "10.244.1.0/24")
    # One control-plane node is in Netmaker (it would get a rule), one is not (a warning).
    stack.nm.state.add_host("cp1", ("mesh",))
    stack.kube.state.create_node("cp1", ("10.244.100.0/24",), labels=CONTROL_PLANE)
    stack.kube.state.create_node("cp2", ("10.244.101.0/24",), labels=CONTROL_PLANE)
    stack.start(stack.settings(NODE_SELECTOR=NOT_CONTROL_PLANE))
    await eventually(lambda: ranges(stack) == {"w1 pods (1/1)": "10.244.1.0/24"})
    await asyncio.sleep(0.5)  # any later pass would have written cp1's rule or warned by now
    assert set(ranges(stack)) == {"w1 pods (1/1)"}
    assert warnings_about(caplog, "cp1") == []
    assert warnings_about(caplog, "cp2") == []


async def test_a_node_leaving_the_selection_loses_its_rules_after_the_grace(stack: Stack):
    mesh = {"pool": "mesh"}
    for name, cidr in (("w1", "10.244.1.0/24"), ("w2", "10.244.2.0/24")):
        stack.nm.state.add_host(name, ("mesh",))
        stack.kube.state.create_node(name, (cidr,), labels=mesh)
    stack.start(stack.settings(NODE_SELECTOR="pool=mesh", DELETE_GRACE="1s"))
    await eventually(lambda: len(stack.rules()) == 2, what="both rules")
    # The server sends this as a watch DELETED: it must wait for the grace like a real delete.
    stack.kube.state.update_node("w2", labels={"pool": "elsewhere"})
    await asyncio.sleep(0.5)
    assert set(ranges(stack)) == {"w1 pods (1/1)", "w2 pods (1/1)"}
    await eventually(lambda: set(ranges(stack)) == {"w1 pods (1/1)"}, what="w2's rule gone")
    # Back in the selection: back in the mesh.
    stack.kube.state.update_node("w2", labels=mesh)
    await eventually(lambda: len(stack.rules()) == 2, what="w2's rule back")


async def test_a_node_annotated_ignore_is_treated_as_gone_and_not_warned_about(
    stack: Stack, caplog: pytest.LogCaptureFixture
):
    caplog.set_level(logging.INFO)
    stack.node("w1", "10.244.1.0/24")
    stack.node("w2", "10.244.2.0/24")
    # No Netmaker host: without the annotation this is a no-netmaker-host warning.
    stack.kube.state.create_node(
        "edge", ("10.244.3.0/24",), annotations={IGNORE_ANNOTATION: "true"}
    )
    stack.start(stack.settings(DELETE_GRACE="1s"))
    await eventually(lambda: len(stack.rules()) == 2, what="w1 and w2's rules")
    stack.kube.state.update_node("w2", annotations={IGNORE_ANNOTATION: "true"})
    await asyncio.sleep(0.5)
    assert len(stack.rules()) == 2  # the grace
    await eventually(lambda: set(ranges(stack)) == {"w1 pods (1/1)"}, what="w2's rule gone")
    assert warnings_about(caplog, "edge") == []
    assert warnings_about(caplog, "w2") == []


async def test_a_selector_change_at_restart_that_drops_most_nodes_is_held_by_the_budget(
    stack: Stack, caplog: pytest.LogCaptureFixture
):
    for i in range(12):
        stack.nm.state.add_host(f"w{i}", ("mesh",))
        labels = {"pool": "mesh" if i < 3 else "other"}
        stack.kube.state.create_node(f"w{i}", (f"10.244.{i}.0/24",), labels=labels)
    stop, task = stack.start(stack.settings(DELETE_GRACE="0s"))
    await eventually(lambda: len(stack.rules()) == 12, what="12 rules")
    stop.set()
    await task
    # A values change that selects 3 of the 12: as alarming as an API that lost 9 nodes.
    stack.start(stack.settings(DELETE_GRACE="0s", NODE_SELECTOR="pool=mesh"))
    await eventually(lambda: _refused(caplog), what="the delete budget refusing")
    await asyncio.sleep(1)
    assert len(stack.rules()) == 12
    assert stack.nm.log.counts().get("DELETE /api/v1/egress", 0) == 0


def _refused(caplog: pytest.LogCaptureFixture) -> bool:
    return any("refusing to delete 9 of 12" in r.getMessage() for r in caplog.records)
