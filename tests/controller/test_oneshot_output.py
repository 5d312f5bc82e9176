"""Issue 20, "plan and status that read well at 1,000 nodes": what `kaput-not plan` and
`kaput-not status` print, on hand-built readings (the planner's real plans)."""

from __future__ import annotations

from kaput_not.app.oneshot import Reading
from kaput_not.app.report import (
    natural,
    plan_document,
    plan_table,
    status_document,
    status_table,
    unknown_names,
)
from kaput_not.core.egress import build_description
from kaput_not.core.model import Egress, Host, KubeNode, NmNode
from kaput_not.core.planner import PlanSettings, plan
from tests.core.world import egress, kube, view

D0 = build_description(0)


def world(*, complete: bool = True) -> Reading:
    """big-1 in sync, big-2 drifted (nat), big-10 without its rule yet, lonely without a host,
    and the rule of w5.example.com (gone; it owned host node-5 through the annotation)."""
    hosts, nm_nodes = [], []
    for host in ("big-1", "big-2", "big-10", "node-5"):
        hosts.append(Host(id=f"h-{host}", name=host, node_ids=(f"n-{host}",)))
        nm_nodes.append(NmNode(id=f"n-{host}", host_id=f"h-{host}", network="mesh"))

    def rule(name: str, host: str, cidr: str, **kw: bool) -> Egress:
        return egress(
            "mesh",
            D0,
            {f"n-{host}": 500},
            range=cidr,
            name=f"{name} pods (1/1)",
            id=f"e-{name}",
            **kw,
        )

    rules = [
        rule("big-1", "big-1", "10.1.1.0/24"),
        rule("big-2", "big-2", "10.1.2.0/24", nat=True),
        rule("w5.example.com", "node-5", "10.1.5.0/24"),
    ]
    nodes = [
        kube("big-10", "10.1.10.0/24"),
        kube("big-2", "10.1.2.0/24"),
        kube("big-1", "10.1.1.0/24"),
        KubeNode(name="lonely", pod_cidrs=("10.1.9.0/24",)),
    ]
    v = view(hosts, nm_nodes, rules)
    return Reading(nodes, v, plan(nodes, v, PlanSettings(), kube_complete=complete))


def rows(value: object) -> list[dict[str, object]]:
    assert isinstance(value, list)
    return value


def test_plan_ends_with_one_line_of_counts():
    assert plan_table(plan_document(world(), None)).splitlines()[-1] == (
        "1 to create, 1 to update, 1 to delete, 0 held back"
    )
    assert plan_table(plan_document(world(complete=False), None)).splitlines()[-1] == (
        "1 to create, 1 to update, 0 to delete, 1 held back"
    )


def test_plan_apply_in_table_mode_says_what_was_applied():
    document = plan_document(world(), None)
    document["applied"] = {"created": 1, "updated": 1, "deleted": 1, "failed": 0}
    assert plan_table(document).splitlines()[-2:] == [
        "1 to create, 1 to update, 1 to delete, 0 held back",
        "applied: 1 created, 1 updated, 1 deleted, 0 failed",
    ]


def test_status_shows_every_rule_of_ours_with_totals_first_orphans_and_held_included():
    for complete, flag in ((True, "to delete"), (False, "to delete, held back")):
        status = status_document(world(complete=complete), None)
        table = status_table(status).splitlines()
        assert table[0] == (
            "4 nodes: 1 in sync, 2 pending, 1 skipped; 3 rules of ours: 1 in sync, 1 to update, "
            f"1 to delete, {0 if complete else 1} held back, 1 claimed by no node"
        )
        assert table[-2] == "rules of ours no Kubernetes node claims (1):"
        assert table[-1].startswith("    [mesh] 'w5.example.com pods (1/1)' e-w5.example.com")
        assert f"({flag}: Kubernetes node w5.example.com is gone" in table[-1]
        [orphan] = rows(status["unclaimed"])
        assert orphan["named_for"] == "w5.example.com"
        assert orphan["held_back"] is not complete


def test_status_and_plan_sort_nodes_naturally():
    table = status_table(status_document(world(), None)).splitlines()
    assert [line.split()[0] for line in table[2:6]] == ["big-1", "big-2", "big-10", "lonely"]
    assert sorted(["big-10", "big-1", "big-100", "big-2"], key=natural) == [
        "big-1",
        "big-2",
        "big-10",
        "big-100",
    ]
    planned = plan_table(plan_document(world(), None)).splitlines()
    nodes = [line.split()[1] for line in planned if line.startswith("node ")]
    assert nodes.index("big-2") < nodes.index("big-10")


def test_status_and_plan_narrow_to_the_nodes_named():
    reading = world()
    status = status_document(reading, None, ["big-10", "w5.example.com"])
    assert [n["node"] for n in rows(status["nodes"])] == ["big-10"]
    assert len(rows(status["unclaimed"])) == 1
    document = plan_document(reading, None, ["big-2"])
    assert [a["node"] for a in rows(document["actions"])] == ["big-2"]
    assert plan_table(document).splitlines()[-1] == (
        "0 to create, 1 to update, 0 to delete, 0 held back"
    )
    gone = plan_document(reading, None, ["w5.example.com"])  # a gone node's rule is its own
    assert [a["action"] for a in rows(gone["actions"])] == ["delete"]
    assert unknown_names(reading, None, ["big-1", "w5.example.com", "big-3"]) == ["big-3"]


def test_status_table_is_one_line_per_node_and_wide_adds_each_rule():
    status = status_document(world(), None)
    table = status_table(status).splitlines()
    assert table[1].split() == ["NODE", "STATE", "HOST", "NETWORKS", "RULES", "POD", "CIDRS"]
    assert table[3].split()[:5] == ["big-2", "pending", "big-2", "mesh", "1"]
    assert "(1 to repair)" in table[3]
    assert table[5].split()[:2] == ["lonely", "skipped:"]
    wide = status_table(status, wide=True).splitlines()
    assert "    [mesh] index 0: e-big-2 10.1.2.0/24 (to update: drifted: nat true -> false)" in wide
    assert any("no Netmaker host is named 'lonely'" in line for line in wide)
    assert len(wide) > len(table)


def test_status_totals_count_one_node_and_one_rule_in_the_singular():
    status = status_document(world(), None, ["big-1"])
    assert (
        status_table(status)
        .splitlines()[0]
        .startswith("1 node: 1 in sync, 0 pending, 0 skipped; 1 rule of ours: 1 in sync")
    )
