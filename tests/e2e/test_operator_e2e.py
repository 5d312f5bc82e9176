"""What an operator sees, on the real stack: why a node has no rule, on the Node itself (an
Event), in the metrics, and in the log; and that it gets its rule once the cause is gone."""

from __future__ import annotations

import json
import subprocess
import sys
from typing import Any

import pytest

from tests.contract.seeding import poll
from tests.peers import skip_module_without_peers

from .conftest import Mesh, StartController, controller_environment
from .controlplane import ControlPlane, Kube
from .test_controller_e2e import converge, rule

skip_module_without_peers("kube-apiserver", "etcd", "netmaker")
pytestmark = [pytest.mark.e2e, pytest.mark.timeout(300)]

NAMESPACE = "kube-system"  # where a controller outside a cluster holds its Lease


async def events_about(kube: Kube, node: str) -> list[dict[str, Any]]:
    """Events about `node`, looked for in every namespace, as `kubectl describe node` does."""
    listed = await kube.call("GET", "/apis/events.k8s.io/v1/events")
    return [
        e
        for e in listed["items"]
        if (e["regarding"]["kind"], e["regarding"]["name"]) == ("Node", node)
    ]


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
    assert warning["metadata"]["namespace"] == "default"  # the only place it is taken (or 422)
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


def one_shot(
    control_plane: ControlPlane, mesh: Mesh, *args: str, **settings: str
) -> subprocess.CompletedProcess[str]:
    """`kaput-not <args>` as a process, configured like `run` (plus `settings`), against this
    test's stack."""
    env = controller_environment(
        {
            "NETMAKER_API_URL": mesh.server.url,
            "NETMAKER_USERNAME": mesh.username,
            "NETMAKER_PASSWORD": mesh.password,
            "KUBECONFIG": str(control_plane.admin_kubeconfig),
            "LEADER_ELECTION_ENABLED": "false",
            **settings,
        }
    )
    return subprocess.run(
        [sys.executable, "-m", "kaput_not", *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env=env,
    )


async def test_plan_says_what_a_sync_would_do_and_apply_does_it(
    kube: Kube, mesh: Mesh, control_plane: ControlPlane
):
    net = await mesh.network()
    hosts = {name: await mesh.host(name, net) for name in ("p1", "p2")}
    await kube.create_node("p1", "10.244.96.0/24", "fd00:96::/64")
    await kube.create_node("p2", "10.244.97.0/24")
    await kube.create_node("p3", "10.244.98.0/24")  # no Netmaker host: skipped, with the reason

    pending = one_shot(control_plane, mesh, "plan", "--output", "json")
    assert pending.returncode == 2, pending.stderr
    document = json.loads(pending.stdout)
    assert {(a["node"], a["action"], a["reason"]) for a in document["actions"]} == {
        ("p1", "create", "no rule yet"),
        ("p2", "create", "no rule yet"),
    }
    assert len(document["actions"]) == 3
    assert document["skipped"] == [
        {"node": "p3", "reason": "no-netmaker-host", "detail": "no Netmaker host is named 'p3'"}
    ]

    applied = one_shot(control_plane, mesh, "plan", "--apply")
    assert applied.returncode == 0, applied.stdout + applied.stderr
    expected = [
        rule("p1", 0, 2, "10.244.96.0/24", net, hosts["p1"].nodes[net]),
        rule("p1", 1, 2, "fd00:96::/64", net, hosts["p1"].nodes[net]),
        rule("p2", 0, 1, "10.244.97.0/24", net, hosts["p2"].nodes[net]),
    ]
    rules = {r["name"]: r for r in await converge(mesh, net, expected, within=1)}
    in_sync = one_shot(control_plane, mesh, "plan")
    assert in_sync.returncode == 0, in_sync.stdout
    assert "In sync: nothing to do." in in_sync.stdout

    # Drift made by hand: a range edited, a rule deleted.
    edited = rules["p1 pods (1/2)"]
    await mesh.call(
        "PUT",
        "/api/v1/egress",
        json={
            **{
                k: edited[k]
                for k in ("id", "network", "name", "description", "nat", "status", "nodes")
            },
            "range": "10.244.199.0/24",
        },
    )
    await mesh.call("DELETE", "/api/v1/egress", params={"id": rules["p2 pods (1/1)"]["id"]})
    drifted = one_shot(control_plane, mesh, "plan")
    assert drifted.returncode == 2, drifted.stdout + drifted.stderr
    assert f"update {edited['id']} 'p1 pods (1/2)'" in drifted.stdout
    assert "range 10.244.199.0/24 -> 10.244.96.0/24" in drifted.stdout
    assert "create 'p2 pods (1/1)'" in drifted.stdout
    assert "p3: no-netmaker-host" in drifted.stdout

    status = one_shot(control_plane, mesh, "status", "--output", "json")
    assert status.returncode == 0, status.stderr
    by_node = {n["node"]: n for n in json.loads(status.stdout)["nodes"]}
    assert by_node["p1"]["host"] == "p1"
    assert by_node["p1"]["networks"] == [net]
    assert [r["in_sync"] for r in by_node["p1"]["rules"]] == [False, True]
    assert by_node["p2"]["rules"] == []
    assert by_node["p3"]["reason"] == "no-netmaker-host"

    repaired = one_shot(control_plane, mesh, "plan", "--apply")
    assert repaired.returncode == 0, repaired.stdout + repaired.stderr
    after = {r["name"]: r for r in await converge(mesh, net, expected, within=1)}
    assert after["p1 pods (1/2)"]["id"] == edited["id"]  # repaired in place
    assert one_shot(control_plane, mesh, "plan").returncode == 0
