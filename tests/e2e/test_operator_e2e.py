"""What an operator sees, on the real stack: why a node has no rule, on the Node itself (an
Event), in the metrics, and in the log; and that it gets its rule once the cause is gone."""

from __future__ import annotations

from typing import Any

import pytest

from tests.contract.seeding import poll
from tests.peers import skip_module_without_peers

from .conftest import Mesh, StartController
from .controlplane import Kube
from .test_controller_e2e import converge, rule

skip_module_without_peers("kube-apiserver", "etcd", "netmaker")
pytestmark = [pytest.mark.e2e, pytest.mark.timeout(300)]

NAMESPACE = "kube-system"  # where a controller outside a cluster posts its Events


async def events_about(kube: Kube, node: str) -> list[dict[str, Any]]:
    listed = await kube.call("GET", f"/apis/events.k8s.io/v1/namespaces/{NAMESPACE}/events")
    return [e for e in listed["items"] if e["regarding"]["name"] == node]


async def test_a_node_without_a_netmaker_host_is_explained_then_served(
    kube: Kube, mesh: Mesh, controllers: StartController
):
    net = await mesh.network()
    made = await kube.create_node("lonely", "10.244.95.0/24")
    controller = controllers(LOG_FORMAT="json")
    await controller.ready()

    warnings = await poll(
        lambda: events_about(kube, "lonely"),
        lambda found: any(e["type"] == "Warning" for e in found),
        what="a Warning Event on node lonely",
    )
    [warning] = [e for e in warnings if e["type"] == "Warning"]
    assert warning["reason"] == "NoNetmakerHost"
    assert "no Netmaker host is named 'lonely'" in warning["note"]
    assert warning["regarding"]["kind"] == "Node"
    assert warning["regarding"]["uid"] == made["metadata"]["uid"]  # kubectl describe finds it
    assert warning["reportingController"] == "kaput-not.io/kaput-not"
    samples = await controller.metrics()
    assert samples['kaput_not_nodes_skipped{reason="no-netmaker-host"}'] == 1
    skipped_lines = [
        line
        for line in controller.process.log.read_text().splitlines()
        if '"reason": "no-netmaker-host"' in line
    ]
    assert len(skipped_lines) == 1  # said once, not once per pass

    host = await mesh.host("lonely", net)  # netclient joins: the host appears in Netmaker
    await converge(mesh, net, [rule("lonely", 0, 1, "10.244.95.0/24", net, host.nodes[net])])
    normal = await poll(
        lambda: events_about(kube, "lonely"),
        lambda found: any(e["type"] == "Normal" for e in found),
        what="a Normal Event on node lonely",
    )
    [written] = [e for e in normal if e["type"] == "Normal"]
    assert written["reason"] == "EgressRulesWritten"
    assert "1 created" in written["note"]
    assert net in written["note"]
    samples = await controller.metrics()
    assert samples['kaput_not_nodes_skipped{reason="no-netmaker-host"}'] == 0
