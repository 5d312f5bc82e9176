"""The real `kaput-not run` process against a real kube-apiserver (with etcd) and the Netmaker
emulator in a process of its own, configured only by environment variables.

Kubernetes nodes are created and deleted through the real API (no kubelet needed); Netmaker
hosts are registered through the Netmaker HTTP API as a netclient would. Every expectation
about egress rules is written out here from docs/design.md section 2, not taken from the code.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest

from tests.contract.seeding import poll
from tests.peers import skip_module_without_peers

from .conftest import Controller, Mesh, StartController, leader_flag
from .controlplane import Kube

skip_module_without_peers("kube-apiserver", "etcd", "netmaker")
pytestmark = [pytest.mark.e2e, pytest.mark.timeout(300)]

WITHIN = 20.0  # seconds for the controller to converge after a change
OWNED = ("network", "description", "name", "range", "nat", "status", "nodes")


def rule(
    node: str, index: int, count: int, cidr: str, network: str, nm_node: str, cluster: str = ""
) -> dict[str, Any]:
    """The owned fields of E(node, Netmaker node, index), as docs/design.md section 2 has them."""
    scope = f"cluster={cluster} " if cluster else ""
    return {
        "network": network,
        "description": f"Managed by kaput-not (DO NOT EDIT): {scope}index={index}",
        "name": f"{node} pods ({index + 1}/{count})",
        "range": cidr,
        "nat": False,
        "status": True,
        "nodes": {nm_node: 500},
    }


def owned(rules: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return sorted(({k: r[k] for k in OWNED} for r in rules), key=lambda r: r["name"])


async def converge(
    mesh: Mesh, network: str, expected: list[dict[str, Any]], *, within: float = WITHIN
) -> list[dict[str, Any]]:
    """Wait until our rules in `network` are exactly `expected`; return them in full."""
    want = owned(expected)
    return await poll(
        lambda: mesh.ours(network),
        lambda rules: owned(rules) == want,
        what=f"our rules in {network} to be {want}",
        deadline=within,
    )


def by_name(rules: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {r["name"]: r for r in rules}


async def full_syncs(controller: Controller) -> float:
    samples = await controller.metrics()
    return samples.get('kaput_not_reconciles_total{result="success",scope="full"}', 0.0)


async def wait_full_syncs(controller: Controller, more_than: float, within: float = 15) -> None:
    await poll(
        lambda: full_syncs(controller),
        lambda n: n > more_than,
        what=f"{controller.name} to finish another full sync",
        deadline=within,
    )


# ------------------------------------------------------------------ the contract


async def test_nodes_with_pod_cidrs_get_the_contract_rules(
    kube: Kube, mesh: Mesh, controllers: StartController
):
    net = await mesh.network()
    w1, w2 = await mesh.host("w1", net), await mesh.host("w2", net)
    await kube.create_node("w1", "10.244.1.0/24")
    await kube.create_node("w2", "10.244.2.0/24")
    await controllers().ready()
    await converge(
        mesh,
        net,
        [
            rule("w1", 0, 1, "10.244.1.0/24", net, w1.nodes[net]),
            rule("w2", 0, 1, "10.244.2.0/24", net, w2.nodes[net]),
        ],
    )
    # A node created while the controller runs gets its rule from the watch.
    w3 = await mesh.host("w3", net)
    await kube.create_node("w3", "10.244.3.0/24")
    await converge(
        mesh,
        net,
        [
            rule("w1", 0, 1, "10.244.1.0/24", net, w1.nodes[net]),
            rule("w2", 0, 1, "10.244.2.0/24", net, w2.nodes[net]),
            rule("w3", 0, 1, "10.244.3.0/24", net, w3.nodes[net]),
        ],
    )


async def test_a_dual_stack_node_gets_one_rule_per_cidr_normalised_and_stable(
    kube: Kube, mesh: Mesh, controllers: StartController
):
    net = await mesh.network()
    host = await mesh.host("ds1", net)
    # The API server keeps the IPv6 text as written; Netmaker stores the compressed form.
    await kube.create_node("ds1", "10.244.7.0/24", "fd00:0:0:7:0::/64")
    controller = controllers(RESYNC_PERIOD="2s")
    await controller.ready()
    node = host.nodes[net]
    rules = await converge(
        mesh,
        net,
        [
            rule("ds1", 0, 2, "10.244.7.0/24", net, node),
            rule("ds1", 1, 2, "fd00:0:0:7::/64", net, node),
        ],
    )
    # Comparing as networks, later passes find nothing to change.
    await wait_full_syncs(controller, await full_syncs(controller) + 1)
    assert await mesh.ours(net) == rules
    samples = await controller.metrics()
    assert samples.get('kaput_not_egress_writes_total{action="update",result="ok"}', 0) == 0


async def test_a_host_in_two_networks_gets_rules_in_each(
    kube: Kube, mesh: Mesh, controllers: StartController
):
    blue, green = await mesh.network(), await mesh.network()
    host = await mesh.host("multi", blue, green)
    await kube.create_node("multi", "10.244.8.0/24")
    await controllers().ready()
    await converge(mesh, blue, [rule("multi", 0, 1, "10.244.8.0/24", blue, host.nodes[blue])])
    await converge(mesh, green, [rule("multi", 0, 1, "10.244.8.0/24", green, host.nodes[green])])


# ------------------------------------------------------------------ deletes and rebuilds


async def test_a_deleted_node_loses_its_rules(kube: Kube, mesh: Mesh, controllers: StartController):
    net = await mesh.network()
    keep, gone = await mesh.host("keep", net), await mesh.host("gone", net)
    await kube.create_node("keep", "10.244.10.0/24")
    await kube.create_node("gone", "10.244.11.0/24", "fd00:11::/64")
    await controllers().ready()
    kept = rule("keep", 0, 1, "10.244.10.0/24", net, keep.nodes[net])
    await converge(
        mesh,
        net,
        [
            kept,
            rule("gone", 0, 2, "10.244.11.0/24", net, gone.nodes[net]),
            rule("gone", 1, 2, "fd00:11::/64", net, gone.nodes[net]),
        ],
    )
    await kube.delete_node("gone")
    await converge(mesh, net, [kept])


async def test_a_node_rebuilt_with_a_new_cidr_keeps_its_rule_id(
    kube: Kube, mesh: Mesh, controllers: StartController
):
    net = await mesh.network()
    host = await mesh.host("rebuilt", net)
    await kube.create_node("rebuilt", "10.244.20.0/24")
    # The real API server sends DELETED and ADDED as two watch events; DELETE_GRACE merges them.
    await controllers(DELETE_GRACE="3s").ready()
    [before] = await converge(
        mesh, net, [rule("rebuilt", 0, 1, "10.244.20.0/24", net, host.nodes[net])]
    )
    # spec.podCIDRs is immutable: a new CIDR means delete and create under the same name.
    await kube.delete_node("rebuilt")
    await kube.create_node("rebuilt", "10.244.21.0/24")
    [after] = await converge(
        mesh, net, [rule("rebuilt", 0, 1, "10.244.21.0/24", net, host.nodes[net])]
    )
    assert after["id"] == before["id"]


async def test_a_node_rebuilt_while_the_controller_was_down_keeps_its_rule_id(
    kube: Kube, mesh: Mesh, controllers: StartController
):
    net = await mesh.network()
    host = await mesh.host("rebuilt", net)
    await kube.create_node("rebuilt", "10.244.22.0/24", "fd00:22::/64")
    first = controllers()
    await first.ready()
    node = host.nodes[net]
    rules = by_name(
        await converge(
            mesh,
            net,
            [
                rule("rebuilt", 0, 2, "10.244.22.0/24", net, node),
                rule("rebuilt", 1, 2, "fd00:22::/64", net, node),
            ],
        )
    )
    first.process.terminate()
    assert first.process.wait(10) == 0
    # Rebuilt single-stack with a new CIDR: index 0 is updated in place, index 1 goes.
    await kube.delete_node("rebuilt")
    await kube.create_node("rebuilt", "10.244.23.0/24")
    await controllers().ready()
    [after] = await converge(mesh, net, [rule("rebuilt", 0, 1, "10.244.23.0/24", net, node)])
    assert after["id"] == rules["rebuilt pods (1/2)"]["id"]


async def test_a_netmaker_host_removed_leaves_an_orphan_that_the_resync_deletes(
    kube: Kube, mesh: Mesh, controllers: StartController
):
    net = await mesh.network()
    stays, leaves = await mesh.host("stays", net), await mesh.host("leaves", net)
    await kube.create_node("stays", "10.244.30.0/24")
    await kube.create_node("leaves", "10.244.31.0/24")
    await controllers(RESYNC_PERIOD="2s").ready()
    kept = rule("stays", 0, 1, "10.244.30.0/24", net, stays.nodes[net])
    rules = await converge(
        mesh, net, [kept, rule("leaves", 0, 1, "10.244.31.0/24", net, leaves.nodes[net])]
    )
    # A forced host delete strips its node from every egress's `nodes` and keeps the egress.
    await mesh.seeder.delete_host(leaves.id)
    [left] = await converge(mesh, net, [kept])
    assert left["id"] == by_name(rules)["stays pods (1/1)"]["id"]


async def test_nodes_deleted_while_the_controller_was_down_are_cleaned_at_start_up(
    kube: Kube, mesh: Mesh, controllers: StartController
):
    net = await mesh.network()
    hosts = {name: await mesh.host(name, net) for name in ("d1", "d2", "d3")}
    for i, name in enumerate(hosts, start=1):
        await kube.create_node(name, f"10.244.4{i}.0/24")
    first = controllers()  # the default resync (10 min) never runs in this test
    await first.ready()
    expected = {
        name: rule(name, 0, 1, f"10.244.4{i}.0/24", net, hosts[name].nodes[net])
        for i, name in enumerate(hosts, start=1)
    }
    rules = by_name(await converge(mesh, net, list(expected.values())))
    first.process.terminate()
    assert first.process.wait(10) == 0
    await kube.delete_node("d2")
    second = controllers()
    await second.ready()  # ready means the start-up full sync is done
    left = await converge(mesh, net, [expected["d1"], expected["d3"]], within=1)
    assert {r["id"] for r in left} == {rules["d1 pods (1/1)"]["id"], rules["d3 pods (1/1)"]["id"]}


# ------------------------------------------------------------------ what is not ours


@pytest.mark.parametrize("cluster", ["", "blue"], ids=["single-cluster", "cluster-blue"])
async def test_foreign_and_other_cluster_rules_are_never_touched(
    kube: Kube, mesh: Mesh, controllers: StartController, cluster: str
):
    net = await mesh.network()
    host = await mesh.host("w1", net)
    node = host.nodes[net]
    others = [
        await mesh.seeder.egress(
            network=net,
            name="office vpn",
            description="made by hand",
            range="192.168.50.0/24",
            nat=True,
            status=True,
            nodes={node: 100},
        ),
        # The same slot as ours, but another cluster's (or, in multi-cluster mode, unscoped).
        await mesh.seeder.egress(
            network=net,
            name="w1 pods (1/1)",
            description=f"Managed by kaput-not (DO NOT EDIT): {'' if cluster else 'cluster=red '}"
            "index=0",
            range="10.99.1.0/24",
            nat=False,
            status=True,
            nodes={node: 500},
        ),
        await mesh.seeder.egress(
            network=net,
            name="gone pods (1/1)",
            description="Managed by kaput-not (DO NOT EDIT): cluster=red index=0",
            range="10.99.2.0/24",
            nat=False,
            status=True,
            nodes={},
        ),
    ]
    await kube.create_node("w1", "10.244.50.0/24")
    settings = {"K8S_CLUSTER_NAME": cluster} if cluster else {}
    controller = controllers(RESYNC_PERIOD="2s", **settings)
    await controller.ready()
    ours = rule("w1", 0, 1, "10.244.50.0/24", net, node, cluster)
    await poll(
        lambda: mesh.egresses(net),
        lambda rules: ours in owned(rules),
        what="our rule next to the others",
        deadline=WITHIN,
    )
    await wait_full_syncs(controller, await full_syncs(controller) + 1)
    rules = await mesh.egresses(net)
    assert len(rules) == 4
    for other in others:
        assert other in rules, f"{other['name']!r} ({other['description']!r}) was changed"


# ------------------------------------------------------------------ hand edits in Netmaker


async def test_rules_edited_or_deleted_by_hand_are_repaired_by_the_resync(
    kube: Kube, mesh: Mesh, controllers: StartController
):
    net = await mesh.network()
    host = await mesh.host("w1", net)
    node = host.nodes[net]
    await kube.create_node("w1", "10.244.60.0/24", "fd00:60::/64")
    await controllers(RESYNC_PERIOD="2s").ready()
    expected = [
        rule("w1", 0, 2, "10.244.60.0/24", net, node),
        rule("w1", 1, 2, "fd00:60::/64", net, node),
    ]
    rules = by_name(await converge(mesh, net, expected))
    edited, deleted = rules["w1 pods (1/2)"], rules["w1 pods (2/2)"]
    await mesh.call(
        "PUT",
        "/api/v1/egress",
        json={
            **{k: edited[k] for k in ("id", "network", "description")},
            "name": "renamed by hand",
            "range": "10.244.99.0/24",
            "nat": True,
            "status": False,
            "nodes": {node: 7},
        },
    )
    await mesh.call("DELETE", "/api/v1/egress", params={"id": deleted["id"]})
    repaired = by_name(await converge(mesh, net, expected))
    assert repaired["w1 pods (1/2)"]["id"] == edited["id"]  # updated in place
    assert repaired["w1 pods (2/2)"]["id"] != deleted["id"]  # created again


# ------------------------------------------------------------------ operating it


async def test_health_readiness_and_metrics_answer_on_the_metrics_port(
    kube: Kube, mesh: Mesh, controllers: StartController
):
    net = await mesh.network()
    host = await mesh.host("m1", net)
    await kube.create_node("m1", "10.244.70.0/24")
    await kube.create_node("no-host", "10.244.71.0/24")  # no Netmaker host: no rule
    controller = controllers()
    await controller.ready()
    await converge(mesh, net, [rule("m1", 0, 1, "10.244.70.0/24", net, host.nodes[net])])
    health = await controller.fetch("/healthz")
    assert (health.status_code, health.text) == (200, "ok: running\n")
    ready = await controller.fetch("/readyz")
    assert (ready.status_code, ready.text) == (200, "ok: running\n")
    answer = await controller.fetch("/metrics")
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("text/plain")
    samples = await controller.metrics()
    assert samples["kaput_not_kubernetes_nodes"] == 2
    assert samples["kaput_not_managed_egress_rules"] == 1
    assert leader_flag(samples) == 1
    assert samples['kaput_not_egress_writes_total{action="create",result="ok"}'] == 1
    assert samples['kaput_not_reconciles_total{result="success",scope="full"}'] >= 1
    assert samples["kaput_not_last_successful_full_sync_timestamp_seconds"] > time.time() - 60
    assert (await controller.fetch("/nope")).status_code == 404


async def test_two_replicas_one_leads_a_killed_leader_is_replaced_and_sigterm_releases(
    kube: Kube, mesh: Mesh, controllers: StartController, lease_name: str
):
    lease_seconds, retry_seconds = 4.0, 1.0
    election = {
        "LEADER_ELECTION_ENABLED": "true",
        "LEADER_ELECTION_NAMESPACE": "kube-system",
        "LEADER_ELECTION_ID": lease_name,
        "LEADER_ELECTION_LEASE_DURATION": "4s",
        "LEADER_ELECTION_RENEW_DEADLINE": "3s",
        "LEADER_ELECTION_RETRY_PERIOD": "1s",
    }
    net = await mesh.network()
    hosts = {name: await mesh.host(name, net) for name in ("l1", "l2")}
    await kube.create_node("l1", "10.244.80.0/24")
    replicas = {
        c.name: c
        for c in (controllers("replica-a", **election), controllers("replica-b", **election))
    }
    holder = await poll(
        lambda: kube.holder("kube-system", lease_name),
        lambda h: h in replicas,
        what="one replica to hold the Lease",
        deadline=WITHIN,
    )
    leader = replicas[str(holder)]
    [standby] = [c for c in replicas.values() if c is not leader]
    await asyncio.gather(leader.ready(), standby.ready())  # the standby is ready once synced
    await converge(mesh, net, [rule("l1", 0, 1, "10.244.80.0/24", net, hosts["l1"].nodes[net])])
    await asyncio.sleep(2 * retry_seconds)  # the standby tries a few times and stays standby
    assert await kube.holder("kube-system", lease_name) == leader.name
    assert leader_flag(await leader.metrics()) == 1
    standby_samples = await standby.metrics()
    assert leader_flag(standby_samples) == 0
    assert not [k for k in standby_samples if k.startswith("kaput_not_egress_writes_total{")]

    killed = time.monotonic()
    assert leader.process.kill() == -9
    await poll(
        lambda: kube.holder("kube-system", lease_name),
        lambda h: h == standby.name,
        what=f"{standby.name} to take the Lease over",
        deadline=WITHIN,
    )
    takeover = time.monotonic() - killed
    # The standby waits one lease duration from when it last saw a renewal, then tries at its
    # next (jittered) retry.
    assert takeover < lease_seconds + 2 * 1.2 * retry_seconds + 1.0, f"took {takeover:.1f}s"
    await kube.create_node("l2", "10.244.81.0/24")
    await converge(
        mesh,
        net,
        [
            rule("l1", 0, 1, "10.244.80.0/24", net, hosts["l1"].nodes[net]),
            rule("l2", 0, 1, "10.244.81.0/24", net, hosts["l2"].nodes[net]),
        ],
    )
    assert leader_flag(await standby.metrics()) == 1

    stopped = time.monotonic()
    standby.process.terminate()
    assert standby.process.wait(10) == 0
    exit_seconds = time.monotonic() - stopped
    assert exit_seconds < 5, f"SIGTERM took {exit_seconds:.1f}s"
    assert await kube.holder("kube-system", lease_name) == ""
    print(f"takeover {takeover:.2f}s after kill -9, exit {exit_seconds:.2f}s after SIGTERM")
