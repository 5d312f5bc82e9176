"""Every reconciliation rule of docs/design.md section 3, end to end against the Netmaker emulator:
the real client, cache, planner and executor over HTTP on loopback."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from kaput_not.controller.executor import Executor
from kaput_not.controller.guard import BudgetSettings, WriteGuard
from kaput_not.controller.reconciler import PassReport, Reconciler
from kaput_not.core.egress import build_description, owned_by, parse_description
from kaput_not.core.model import ActionKind, KubeNode
from kaput_not.core.planner import PlanSettings
from kaput_not.netmaker import errors
from kaput_not.netmaker.cache import CachedNetmaker
from kaput_not.netmaker.client import NetmakerClient
from kaput_not.netmaker.settings import ClientSettings
from kaput_not_standins.netmaker import NetmakerEmulator
from tests.clock import FakeClock

USER, PASSWORD = "kaput-not", "scenario-password"


class World:
    """An emulator, a client and cache on a hand-driven clock, and a Kubernetes node list."""

    def __init__(self, emulator: NetmakerEmulator, client: NetmakerClient) -> None:
        self.nm = emulator
        self.clock = FakeClock()
        self.cache = CachedNetmaker(client, ttl=30, clock=self.clock)
        self.kube: dict[str, KubeNode] = {}
        self.settings = PlanSettings()

    def node(self, name: str, *cidrs: str) -> None:
        self.kube[name] = KubeNode(name=name, pod_cidrs=cidrs)

    def later(self) -> None:
        """Let the cache TTL pass, so changes made by others are seen."""
        self.clock.advance(31)

    async def sync(self, *, only: str | None = None, complete: bool = True) -> PassReport:
        s = self.settings
        # The guard `run` puts in front of every write; it spends from the limits the planner
        # hands on in each plan. Fresh each pass like the Reconciler (the guard's memory across
        # passes is tested in test_guard*).
        guard = WriteGuard(BudgetSettings())
        reconciler = Reconciler(self.cache, Executor(self.cache), s, guard)
        return await reconciler.reconcile(self.kube.values(), only=only, kube_complete=complete)

    def ours(self, cluster: str | None = None) -> list[dict[str, object]]:
        return [
            e
            for e in self.nm.state.egresses()
            if owned_by(parse_description(str(e["description"])), cluster)
        ]


@pytest.fixture
async def world() -> AsyncIterator[World]:
    async with NetmakerEmulator(username=USER, password=PASSWORD) as emulator:
        emulator.state.add_network("mesh", "100.64.0.0/16")
        emulator.state.add_network("backup", "100.65.0.0/16")
        settings = ClientSettings(
            api_url=emulator.base_url, username=USER, password=PASSWORD, identity="test"
        )
        async with NetmakerClient(settings) as client:
            yield World(emulator, client)


def by_name(rules: list[dict[str, object]]) -> dict[tuple[object, object], dict[str, object]]:
    return {(r["name"], r["network"]): r for r in rules}


async def test_contract_fields_for_a_dual_stack_node_in_two_networks(world: World):
    host = world.nm.state.add_host("w1", ["mesh", "backup"])
    world.node("w1", "10.244.1.7/24", "fd00:10:244:1::/64")
    report = await world.sync()
    assert report.ok
    rules = by_name(world.ours())
    assert set(rules) == {
        ("w1 pods (1/2)", "mesh"),
        ("w1 pods (2/2)", "mesh"),
        ("w1 pods (1/2)", "backup"),
        ("w1 pods (2/2)", "backup"),
    }
    v6 = rules[("w1 pods (2/2)", "backup")]
    assert v6["description"] == "Managed by kaput-not (DO NOT EDIT): index=1"
    assert v6["range"] == "fd00:10:244:1::/64"
    assert v6["nodes"] == {host.node_id("backup"): 500}
    assert (v6["nat"], v6["status"]) == (False, True)
    assert rules[("w1 pods (1/2)", "mesh")]["range"] == "10.244.1.0/24"


async def test_rule_1_a_second_pass_writes_nothing(world: World):
    world.nm.state.add_host("w1", ["mesh"])
    world.node("w1", "10.244.1.0/24")
    await world.sync()
    world.later()
    world.nm.log.reset()
    report = await world.sync()
    assert report.plan.empty
    assert world.nm.log.writes() == 0


async def test_rule_2_rebuilt_node_with_new_cidr_updates_egress_in_place(world: World):
    world.nm.state.add_host("w1", ["mesh"])
    world.node("w1", "10.244.1.0/24")
    await world.sync()
    [before] = world.ours()
    del world.kube["w1"]  # Kubernetes: deleted, then created again under the same name
    world.node("w1", "10.244.9.0/24")
    report = await world.sync(only="w1")
    assert report.plan.count(ActionKind.UPDATE) == 1
    [after] = world.ours()
    assert after["id"] == before["id"]
    assert after["range"] == "10.244.9.0/24"


@pytest.mark.parametrize(
    "edit",
    [
        {"name": "renamed by hand"},
        {"nat": True},
        {"status": False},
        {"range": "10.9.9.0/24"},
        {"metric": 7},
        {"extra_router": 500},
    ],
    ids=["name", "nat", "status", "range", "metric", "extra-router"],
)
async def test_rule_2_drift_made_by_hand_is_repaired_by_the_next_full_pass(world: World, edit):
    host = world.nm.state.add_host("w1", ["mesh"])
    other = world.nm.state.add_host("w2", ["mesh"])
    world.node("w1", "10.244.1.0/24")
    await world.sync()
    [good] = world.ours()
    if "metric" in edit:
        edit = {"nodes": {host.node_id("mesh"): edit["metric"]}}
    elif "extra_router" in edit:
        edit = {"nodes": {host.node_id("mesh"): 500, other.node_id("mesh"): 500}}
    world.nm.state.update_egress_raw(str(good["id"]), **edit)
    world.later()
    report = await world.sync()
    assert report.ok
    [repaired] = world.ours()
    assert repaired == {**good, "updated_at": repaired["updated_at"], "mode": repaired["mode"]}


async def test_rule_3_duplicates_are_reduced_to_one(world: World):
    host = world.nm.state.add_host("w1", ["mesh"])
    for _ in range(3):
        world.nm.state.add_egress(
            network="mesh",
            cidr="10.244.1.0/24",
            name="w1 pods (1/1)",
            description=build_description(0),
            nodes={host.node_id("mesh"): 500},
        )
    world.node("w1", "10.244.1.0/24")
    report = await world.sync()
    assert report.plan.count(ActionKind.DELETE) == 2
    assert len(world.ours()) == 1


async def test_rule_3_a_create_whose_answer_was_lost_is_not_duplicated(world: World):
    world.nm.state.add_host("w1", ["mesh"])
    world.node("w1", "10.244.1.0/24")
    world.nm.faults.reset("POST /api/v1/egress", when="after")  # stored, answer lost
    first = await world.sync()
    assert len(first.result.failures) == 1
    assert len(world.ours()) == 1
    second = await world.sync()  # the unknown outcome dropped the cache: no TTL wait needed
    assert second.plan.empty
    assert len(world.ours()) == 1


async def test_rule_4_dual_stack_shrinking_to_one_cidr_deletes_index_1(world: World):
    world.nm.state.add_host("w1", ["mesh"])
    world.node("w1", "10.244.1.0/24", "fd00::/64")
    await world.sync()
    world.node("w1", "10.244.1.0/24")
    await world.sync()
    [left] = world.ours()
    assert (left["name"], left["range"]) == ("w1 pods (1/1)", "10.244.1.0/24")


async def test_rule_4_kubernetes_node_gone_deletes_its_rules(world: World):
    for name in ("w1", "w2", "w3"):
        world.nm.state.add_host(name, ["mesh", "backup"])
        world.node(name, f"10.244.{name[1]}.0/24")
    await world.sync()
    del world.kube["w2"]
    report = await world.sync(only="w2")
    assert report.plan.count(ActionKind.DELETE) == 2
    assert {r["name"] for r in world.ours()} == {"w1 pods (1/1)", "w3 pods (1/1)"}


async def test_rule_4_netmaker_host_removed_leaves_orphans_that_the_full_pass_cleans(
    world: World,
):
    for name in ("w1", "w2", "w3"):
        world.nm.state.add_host(name, ["mesh"])
        world.node(name, f"10.244.{name[1]}.0/24")
    gone = world.nm.state.add_host("w9", ["mesh"])
    world.node("w9", "10.244.9.0/24")
    await world.sync()
    world.nm.state.remove_host(gone.id)
    orphan = next(r for r in world.ours() if r["name"] == "w9 pods (1/1)")
    assert orphan["nodes"] == {}  # Netmaker strips the node and keeps the rule
    world.later()
    report = await world.sync()
    assert any("nodes is {}" in a.reason for a in report.plan.actions)
    assert "w9 pods (1/1)" not in {r["name"] for r in world.ours()}


async def test_rule_4_rule_naming_a_vanished_node_id_is_deleted(world: World):
    world.nm.state.add_host("w1", ["mesh"])
    world.node("w1", "10.244.1.0/24")
    stale = world.nm.state.add_egress(
        network="mesh",
        cidr="10.244.7.0/24",
        description=build_description(0),
        nodes={"2b7e1516-28ae-4d2a-a6f7-15880f3c1a11": 500},
    )
    report = await world.sync()
    assert any("no longer exists" in a.reason for a in report.plan.actions)
    assert stale["id"] not in {r["id"] for r in world.ours()}


async def test_rule_5_a_rule_deleted_by_hand_comes_back_on_resync(world: World):
    world.nm.state.add_host("w1", ["mesh"])
    world.node("w1", "10.244.1.0/24")
    await world.sync()
    [rule] = world.ours()
    world.nm.state.delete_egress_raw(str(rule["id"]))
    world.later()
    await world.sync()
    [back] = world.ours()
    assert back["range"] == rule["range"]


async def test_rule_6_a_host_that_joins_later_gets_its_rules(world: World):
    world.node("w1", "10.244.1.0/24")
    first = await world.sync()
    assert first.plan.empty
    world.nm.state.add_host("w1", ["mesh"])
    world.later()
    await world.sync()
    assert [r["name"] for r in world.ours()] == ["w1 pods (1/1)"]


async def test_rule_7_a_delete_seen_while_netmaker_is_down_is_done_once_it_is_back(world: World):
    world.nm.state.add_host("w1", ["mesh"])
    world.node("w1", "10.244.1.0/24")
    await world.sync()
    del world.kube["w1"]
    world.clock.advance(61)  # lists too old to plan on while they are read again
    world.nm.faults.status("*", 503, "database is locked", times=None)
    with pytest.raises(errors.ApiError, match="HTTP 503"):
        await world.sync(only="w1")
    assert len(world.ours()) == 1
    world.nm.faults.clear()
    await world.sync(only="w1")
    assert world.ours() == []


async def test_rule_7_a_delete_planned_on_refreshing_lists_fails_visibly_and_is_done_later(
    world: World,
):
    world.nm.state.add_host("w1", ["mesh"])
    world.node("w1", "10.244.1.0/24")
    await world.sync()
    del world.kube["w1"]
    world.later()  # past the TTL: a node pass plans on the lists while they are read again
    world.nm.faults.status("*", 503, "database is locked", times=None)
    report = await world.sync(only="w1")
    assert [f.action.kind for f in report.result.failures] == ["delete"]
    assert len(world.ours()) == 1
    world.nm.faults.clear()
    await world.sync(only="w1")
    assert world.ours() == []


async def test_rule_8_no_delete_before_the_first_complete_node_list(world: World):
    world.nm.state.add_host("w1", ["mesh"])
    world.node("w1", "10.244.1.0/24")
    await world.sync()
    world.kube.clear()
    report = await world.sync(complete=False)
    assert report.plan.withheld
    assert len(world.ours()) == 1


async def test_rule_8_an_empty_node_list_does_not_wipe_the_mesh(world: World):
    for i in range(10):
        world.nm.state.add_host(f"w{i}", ["mesh"])
        world.node(f"w{i}", f"10.244.{i}.0/24")
    await world.sync()
    world.kube.clear()  # a broken API answering an empty list
    report = await world.sync()
    assert report.plan.refusal is not None
    assert "refusing to delete 10 of 10" in report.plan.refusal
    assert len(world.ours()) == 10
    assert world.nm.log.counts().get("DELETE /api/v1/egress", 0) == 0


async def test_rule_9_pending_delete_and_static_nodes_get_no_rules(world: World):
    host = world.nm.state.add_host("w1", ["mesh", "backup"])
    world.nm.state.set_pending_delete(host.node_id("backup"))
    world.nm.state.add_static_client("mesh")
    world.node("w1", "10.244.1.0/24")
    await world.sync()
    assert [r["network"] for r in world.ours()] == ["mesh"]


async def test_rule_9_ambiguous_host_names_are_skipped_and_reported(world: World):
    a = world.nm.state.add_host("w1", ["mesh"])
    world.node("w1", "10.244.1.0/24")
    await world.sync()
    world.nm.state.add_host("w1", ["backup"])
    world.node("w1", "10.244.2.0/24")  # would otherwise update the rule
    world.later()
    report = await world.sync()
    assert report.plan.empty
    assert "2 Netmaker hosts are named 'w1'" in report.plan.warnings[0]
    [kept] = world.ours()
    assert kept["nodes"] == {a.node_id("mesh"): 500}
    assert kept["range"] == "10.244.1.0/24"


async def test_rule_10_updates_never_overwrite_the_first_egress_in_the_table(world: World):
    first = world.nm.state.add_egress(
        network="backup",
        cidr="192.168.0.0/16",
        name="office",
        description="office VPN",
        egress_id="00000000-0000-4000-8000-000000000001",
    )
    world.nm.state.add_host("w1", ["mesh"])
    world.node("w1", "10.244.1.0/24")
    await world.sync()
    world.node("w1", "10.244.2.0/24")
    await world.sync()
    assert first in world.nm.state.egresses("backup")
    assert world.nm.log.counts()["PUT /api/v1/egress"] == 1


async def test_foreign_and_other_cluster_rules_are_untouched_in_multi_cluster_mode(world: World):
    host = world.nm.state.add_host("w1", ["mesh"])
    node_id = host.node_id("mesh")
    foreign = world.nm.state.add_egress(
        network="mesh", cidr="192.168.0.0/16", description="office VPN", nodes={node_id: 1}
    )
    west = world.nm.state.add_egress(
        network="mesh",
        cidr="10.99.0.0/24",
        description=build_description(0, "west"),
        nodes={node_id: 500},
    )
    unscoped = world.nm.state.add_egress(
        network="mesh", cidr="10.98.0.0/24", description=build_description(0), nodes={node_id: 500}
    )
    world.settings = PlanSettings(cluster="east")
    world.node("w1", "10.244.1.0/24")
    await world.sync()
    stored = {e["id"]: e for e in world.nm.state.egresses()}
    for untouched in (foreign, west, unscoped):
        assert stored[untouched["id"]] == untouched
    [east] = world.ours("east")
    assert east["description"] == "Managed by kaput-not (DO NOT EDIT): cluster=east index=0"


async def test_a_revoked_token_is_replaced_by_one_new_login(world: World):
    world.nm.state.add_host("w1", ["mesh"])
    world.node("w1", "10.244.1.0/24")
    await world.sync()
    world.nm.faults.revoke_tokens()
    world.nm.log.reset()
    world.node("w1", "10.244.2.0/24")
    world.later()
    report = await world.sync()
    assert report.ok
    assert world.nm.log.counts()["POST /api/users/adm/authenticate"] == 1


async def test_a_full_pass_reads_each_list_once(world: World):
    for i in range(50):
        world.nm.state.add_host(f"w{i}", ["mesh", "backup"])
        world.node(f"w{i}", f"10.244.{i}.0/24", f"fd00:{i:x}::/64")
    world.nm.log.reset()
    report = await world.sync()
    assert report.result.created == 200
    assert world.nm.log.reads() == 3 + 2  # hosts, nodes, networks + one egress list per network
