"""Issue 17 on the real stack: a node cannot take another node's route by annotating itself onto
its host, and a tripped delete budget holds across a restart of the controller.

The stand-in versions are tests/controller/test_stolen_routes.py and test_guard_restarts.py;
here the same scenarios run against a real kube-apiserver (with etcd), a real Netmaker and
`kaput-not run` processes, and every expectation is read from those peers: the rules from
Netmaker, the Events and the budget's memory (the guard-state annotation on the Lease) from
the API server.
"""

from __future__ import annotations

import pytest

from kaput_not.controller.guard_state import ANNOTATION as GUARD_STATE
from kaput_not.controller.guard_state import GuardState, decode
from tests.contract.seeding import poll
from tests.peers import skip_module_without_peers

from .conftest import Controller, Mesh, StartController
from .controlplane import ControlPlane, Kube
from .test_controller_e2e import WITHIN, converge, rule
from .test_operator_e2e import NAMESPACE, events_about, one_shot

skip_module_without_peers("kube-apiserver", "etcd", "netmaker")
pytestmark = [pytest.mark.e2e, pytest.mark.timeout(120)]

HOST_ANNOTATION = "kaput-not.io/netmaker-host"


async def full_passes(controller: Controller) -> float:
    """Full passes finished, whatever their result (a held pass is "held", not "success")."""
    samples = await controller.metrics()
    prefix = "kaput_not_reconciles_total{"
    return sum(v for k, v in samples.items() if k.startswith(prefix) and 'scope="full"' in k)


async def wait_full_passes(controller: Controller, count: int, within: float = 15) -> None:
    """Wait until `controller` has finished `count` more full passes than now."""
    target = await full_passes(controller) + count
    await poll(
        lambda: full_passes(controller),
        lambda n: n >= target,
        what=f"{controller.name} to finish {count} more full pass(es)",
        deadline=within,
    )


async def writes(controller: Controller, action: str) -> float:
    """Egress writes of `action` (create, update, delete) this process sent, any result."""
    samples = await controller.metrics()
    prefix = f'kaput_not_egress_writes_total{{action="{action}",'
    return sum(v for k, v in samples.items() if k.startswith(prefix))


# ------------------------------------------------------------------ item 1


async def test_a_node_annotated_onto_another_nodes_host_changes_nothing_and_both_are_told(
    kube: Kube, mesh: Mesh, controllers: StartController
):
    net = await mesh.network()
    w1 = await mesh.host("w1", net)
    # The intruder is a mesh member of its own: without its annotation it would get a rule here.
    await mesh.host("zz-evil", net)
    await kube.create_node("w1", "10.244.1.0/24")
    controller = controllers(RESYNC_PERIOD="1.5s")
    await controller.ready()
    [before] = await converge(mesh, net, [rule("w1", 0, 1, "10.244.1.0/24", net, w1.nodes[net])])

    # A kubelet may edit its own Node: zz-evil names w1's host to get w1's traffic.
    evil = await kube.create_node("zz-evil", "10.244.66.0/24", annotations={HOST_ANNOTATION: "w1"})
    taken = await poll(
        lambda: events_about(kube, "zz-evil"),
        lambda found: any(e["reason"] == "HostTaken" for e in found),
        what="a HostTaken Event on node zz-evil",
        deadline=WITHIN,
    )
    [warning] = [e for e in taken if e["reason"] == "HostTaken"]
    assert warning["type"] == "Warning"
    assert warning["regarding"]["uid"] == evil["metadata"]["uid"]
    assert f"{HOST_ANNOTATION}=w1" in warning["note"]
    claimed = await poll(
        lambda: events_about(kube, "w1"),
        lambda found: any(e["reason"] == "HostClaimedByAnnotation" for e in found),
        what="a HostClaimedByAnnotation Event on node w1",
        deadline=WITHIN,
    )
    [told] = [e for e in claimed if e["reason"] == "HostClaimedByAnnotation"]
    assert told["type"] == "Warning"
    assert "zz-evil" in told["note"]

    # Several full passes later w1's rule is the very same (id, range, nodes: never PUT), and
    # nothing routes zz-evil's range: not on w1's host, not on its own.
    await wait_full_passes(controller, 3)
    assert await mesh.ours(net) == [before]
    assert not [e for e in await mesh.egresses(net) if e["range"] == "10.244.66.0/24"]
    assert await writes(controller, "update") == 0
    assert await writes(controller, "delete") == 0
    assert await writes(controller, "create") == 1  # w1's rule, before zz-evil came
    samples = await controller.metrics()
    assert samples['kaput_not_nodes_skipped{reason="host-taken"}'] == 1
    assert samples["kaput_not_host_conflicts"] == 1
    warnings = [e for e in await events_about(kube, "zz-evil") if e["type"] == "Warning"]
    assert [e["reason"] for e in warnings] == ["HostTaken"]  # told once, not once per pass


# ------------------------------------------------------------------ item 2


async def guard_state(kube: Kube, lease: str) -> GuardState | None:
    found = await kube.lease(NAMESPACE, lease)
    text = ((found or {}).get("metadata", {}).get("annotations") or {}).get(GUARD_STATE)
    return decode(text) if text else None


async def our_ids(mesh: Mesh, network: str) -> set[str]:
    return {r["id"] for r in await mesh.ours(network)}


@pytest.mark.parametrize("stop", ["sigterm", "sigkill"])
async def test_a_controller_restarted_with_a_tripped_budget_deletes_nothing_more(
    kube: Kube,
    mesh: Mesh,
    controllers: StartController,
    control_plane: ControlPlane,
    lease_name: str,
    stop: str,
):
    # Leader election off: the Lease named here (kube-system) still holds the guard's memory.
    settings = {
        "LEADER_ELECTION_ID": lease_name,
        "RESYNC_PERIOD": "1.5s",
        "MAX_DELETE_FRACTION": "0.5",
        "MAX_DELETE_MIN": "5",
    }
    net = await mesh.network()
    names = [f"n{i:02}" for i in range(12)]
    hosts = {name: await mesh.host(name, net) for name in names}
    expected = {
        name: rule(name, 0, 1, f"10.244.{100 + i}.0/24", net, hosts[name].nodes[net])
        for i, name in enumerate(names)
    }
    for i, name in enumerate(names):
        await kube.create_node(name, f"10.244.{100 + i}.0/24")
    first = controllers(**settings)
    await first.ready()
    await converge(mesh, net, list(expected.values()))

    # 10 of the 12 nodes go: 6 rules may be lost (half the high-water mark of 12), not 10.
    kept, gone = names[:2], names[2:]
    for name in gone:
        await kube.delete_node(name)
    await poll(
        lambda: first.fetch("/readyz"),
        lambda r: "holding writes back: delete budget" in r.text,
        what=f"{first.name} /readyz to say the delete budget holds",
        deadline=WITHIN,
    )
    tripped = await poll(
        lambda: guard_state(kube, lease_name),
        lambda state: state is not None and state.trip is not None,
        what=f"the trip recorded on Lease {NAMESPACE}/{lease_name}",
        deadline=WITHIN,
    )
    assert tripped is not None
    assert tripped.trip is not None
    await wait_full_passes(first, 2)
    held = await our_ids(mesh, net)
    assert len(held) == 6
    assert await writes(first, "delete") == 6

    if stop == "sigkill":
        assert first.process.kill() == -9
    else:
        first.process.terminate()
        assert first.process.wait(10) == 0
    second = controllers(**settings)
    await second.ready()
    await wait_full_passes(second, 3)
    assert await our_ids(mesh, net) == held
    assert await writes(second, "delete") == 0
    samples = await second.metrics()
    assert samples["kaput_not_deletes_refused_total"] > 0
    assert samples["kaput_not_write_budget_holding"] == 1
    assert "holding writes back: delete budget" in (await second.fetch("/readyz")).text
    after = await guard_state(kube, lease_name)
    assert after is not None
    assert after.trip == tripped.trip  # the same trip, not a new one

    # The operator says it was intended: the held deletes go, once.
    acknowledged = one_shot(control_plane, mesh, "acknowledge", LEADER_ELECTION_ID=lease_name)
    assert acknowledged.returncode == 0, acknowledged.stdout + acknowledged.stderr
    await converge(mesh, net, [expected[name] for name in kept])
    await poll(
        lambda: writes(second, "delete"),
        lambda n: n == 4,
        what=f"{second.name} to count the 4 deletes the acknowledgement let go",
    )
    released = await guard_state(kube, lease_name)
    assert released is not None
    assert released.trip is None
