"""One test per planner rule (docs/design.md section 3), on hand-built snapshots."""

from __future__ import annotations

from dataclasses import replace

import pytest

from kaput_not.core.egress import build_description
from kaput_not.core.model import (
    Action,
    ActionKind,
    Egress,
    Host,
    KubeNode,
    NmNode,
    NodeState,
    SkipReason,
)
from kaput_not.core.ownership import DeleteLimit, Ownership
from kaput_not.core.planner import PlanSettings, plan
from tests.core.world import apply, egress, kube, view

D0 = build_description(0)
D1 = build_description(1)
S = PlanSettings()


def one_host(name="w1", networks=("net",), host_id="h1"):
    nodes = [NmNode(id=f"{host_id}-{net}", host_id=host_id, network=net) for net in networks]
    return Host(id=host_id, name=name, node_ids=tuple(n.id for n in nodes)), nodes


def good(node_id="h1-net", index=0, cidr="10.1.0.0/24", name="w1", count=1, **kw) -> Egress:
    return egress(
        kw.pop("network", "net"),
        build_description(index, kw.pop("cluster", None)),
        {node_id: 500},
        range=cidr,
        name=f"{name} pods ({index + 1}/{count})",
        **kw,
    )


def kinds(p) -> list[tuple[ActionKind, str]]:
    return [(a.kind, a.reason) for a in p.actions]


def test_creates_one_rule_per_cidr_and_network_with_the_exact_fields():
    host, nodes = one_host(networks=("a", "b"))
    p = plan([kube("w1", "10.1.0.0/24", "fd00:1::/64")], view([host], nodes, []), S)
    assert [a.kind for a in p.actions] == [ActionKind.CREATE] * 4
    spec = next(a.spec for a in p.actions if a.network == "b" and a.spec and ":" in a.spec.range)
    assert spec is not None
    assert spec.name == "w1 pods (2/2)"
    assert spec.description == D1
    assert spec.range == "fd00:1::/64"
    assert spec.nodes == {"h1-b": 500}
    assert (spec.nat, spec.status) == (False, True)


def test_rule_1_matches_by_index_and_node_id_so_a_correct_rule_is_left_alone():
    host, nodes = one_host()
    p = plan([kube("w1", "10.1.0.0/24")], view([host], nodes, [good()]), S)
    assert p.empty


def test_rule_2_rebuilt_node_with_new_cidr_updates_in_place():
    host, nodes = one_host()
    old = good(cidr="10.1.0.0/24")
    p = plan([kube("w1", "10.9.0.0/24")], view([host], nodes, [old]), S)
    assert [a.kind for a in p.actions] == [ActionKind.UPDATE]
    assert p.actions[0].target == old
    assert "range 10.1.0.0/24 -> 10.9.0.0/24" in p.actions[0].reason


@pytest.mark.parametrize(
    ("field", "value", "phrase"),
    [
        ("name", "hand edited", "name"),
        ("nat", True, "nat true -> false"),
        ("status", False, "status false -> true"),
        ("cidr", "10.1.0.0/16", "range"),
    ],
)
def test_rule_2_hand_drift_of_any_owned_field_is_repaired(field, value, phrase):
    host, nodes = one_host()
    drifted = good(**{field: value})
    p = plan([kube("w1", "10.1.0.0/24")], view([host], nodes, [drifted]), S)
    assert [a.kind for a in p.actions] == [ActionKind.UPDATE]
    assert phrase in p.actions[0].reason


def test_rule_2_extra_routing_node_is_removed_from_the_map():
    host, nodes = one_host()
    e = egress("net", D0, {"h1-net": 500, "other": 7}, range="10.1.0.0/24", name="w1 pods (1/1)")
    p = plan([kube("w1", "10.1.0.0/24")], view([host], nodes, [e]), S)
    assert [a.kind for a in p.actions] == [ActionKind.UPDATE]
    assert p.actions[0].spec is not None
    assert p.actions[0].spec.nodes == {"h1-net": 500}


def test_non_canonical_stored_range_is_not_an_endless_update():
    host, nodes = one_host()
    p = plan([kube("w1", "10.1.0.9/24")], view([host], nodes, [good(cidr="10.1.0.0/24")]), S)
    assert p.empty


def test_rule_3_duplicates_keep_the_correct_one_and_delete_the_rest():
    host, nodes = one_host()
    keep = good(id="e-b")
    dup1 = good(id="e-a", name="stale")
    dup2 = good(id="e-c")
    p = plan([kube("w1", "10.1.0.0/24")], view([host], nodes, [dup1, keep, dup2]), S)
    assert sorted((a.kind, a.target.id) for a in p.actions if a.target) == [
        (ActionKind.DELETE, "e-a"),
        (ActionKind.DELETE, "e-c"),
    ]
    assert all(a.reason == "duplicate of e-b" for a in p.actions)


@pytest.mark.parametrize(
    ("kube_nodes", "hosts_nodes", "e", "reason"),
    [
        ([kube("w1", "10.1.0.0/24")], one_host(), good(index=1), "index 1 is beyond the 1"),
        ([], one_host(), good(), "Kubernetes node w1 is gone"),
        ([kube("w1", "10.1.0.0/24")], (one_host()[0], []), good(), "no longer exists"),
        (
            [kube("w1", "10.1.0.0/24")],
            one_host(),
            good(node_id="ghost", name="w9"),
            "ghost no longer",
        ),
        (
            [kube("w1", "10.1.0.0/24")],
            one_host(),
            egress("net", D0, {}, range="10.1.0.0/24"),
            "nodes is {}",
        ),
    ],
    ids=["stale-index", "kube-node-gone", "nm-node-gone", "dangling-id", "empty-nodes"],
)
def test_rule_4_deletes_ours_that_nothing_desires(kube_nodes, hosts_nodes, e, reason):
    host, nodes = hosts_nodes
    p = plan(kube_nodes, view([host], nodes, [e], networks=["net"]), S)
    deletes = [a for a in p.actions if a.kind is ActionKind.DELETE]
    assert [a.target.id for a in deletes if a.target] == [e.id]
    assert reason in deletes[0].reason


@pytest.mark.parametrize(
    "routed_through",
    [{"ghost": 500}, {"h2-net": 500}, {}],
    ids=["vanished-node", "edited-to-another-host", "emptied"],
)
def test_rule_1_a_slot_without_a_routed_rule_adopts_ours_of_the_same_name(routed_through):
    """A rule whose routing node was edited by hand (or that Netmaker emptied before its host
    joined again) is repaired in place: same id, no delete and create."""
    stale = egress("net", D0, routed_through, range="10.1.0.0/24", name="w1 pods (1/1)", id="e-7")
    host, nodes = one_host()
    other, other_nodes = one_host(name="not-in-kubernetes", host_id="h2")
    p = plan([kube("w1", "10.1.0.0/24")], view([host, other], nodes + other_nodes, [stale]), S)
    [update] = p.actions
    assert update.kind is ActionKind.UPDATE
    assert update.target is not None
    assert update.target.id == "e-7"
    assert update.spec is not None
    assert update.spec.nodes == {"h1-net": 500}


def test_rule_1_adoption_never_takes_a_rule_another_slot_routes_for():
    host, nodes = one_host()
    w2, w2_nodes = one_host(name="w2", host_id="h2")
    # Named like w1's slot, but routed through w2's node with index 0: it is w2's rule.
    borrowed = good(id="e-1", node_id="h2-net")
    p = plan(
        [kube("w1", "10.1.0.0/24"), kube("w2", "10.2.0.0/24")],
        view([host, w2], nodes + w2_nodes, [borrowed]),
        S,
    )
    by_kind = sorted((a.kind, a.target.id if a.target else a.subject) for a in p.actions)
    assert (ActionKind.UPDATE, "e-1") in by_kind  # renamed and re-ranged for w2
    assert [a.kind for a in p.actions].count(ActionKind.CREATE) == 1  # w1 gets a new rule


@pytest.mark.parametrize(
    "suffix", ["index=abc", "index=-1", "index=1 extra", "clusterx=a index=0", "index=0 note"]
)
def test_a_damaged_marker_is_never_touched(suffix):
    """Issue 9, item 6: these were deleted as "damaged"; docs/design.md says they are foreign."""
    host, nodes = one_host()
    damaged = egress(
        "net", f"Managed by kaput-not (DO NOT EDIT): {suffix}", {"h1-net": 500}, range="10.1.0.0/24"
    )
    for kube_nodes in ([kube("w1", "10.1.0.0/24")], []):
        p = plan(kube_nodes, view([host], nodes, [damaged], networks=["net"]), S)
        assert all(a.target is None or a.target.id != damaged.id for a in p.actions)
        assert p.owned == 0


def test_rule_4_dual_stack_node_shrinking_to_one_cidr_loses_index_1():
    host, nodes = one_host()
    rules = [good(index=0, count=2), good(index=1, count=2, cidr="fd00::/64")]
    p = plan([kube("w1", "10.1.0.0/24")], view([host], nodes, rules), S)
    assert sorted(a.kind for a in p.actions) == [ActionKind.DELETE, ActionKind.UPDATE]
    update = next(a for a in p.actions if a.kind is ActionKind.UPDATE)
    assert update.spec is not None
    assert update.spec.name == "w1 pods (1/1)"


def test_rule_9_pending_delete_and_static_nodes_get_no_rules():
    host = Host(id="h1", name="w1", node_ids=("n1", "n2"))
    nodes = [
        NmNode(id="n1", host_id="h1", network="a", pending_delete=True),
        NmNode(id="n2", host_id="h1", network="b"),
        NmNode(
            id="00000000-0000-0000-0000-000000000000",
            host_id="00000000-0000-0000-0000-000000000000",
            network="b",
            is_static=True,
        ),
    ]
    p = plan([kube("w1", "10.1.0.0/24")], view([host], nodes, []), S)
    assert [(a.kind, a.network) for a in p.actions] == [(ActionKind.CREATE, "b")]


def test_rule_9_ambiguous_host_name_is_skipped_and_its_rules_kept():
    h1 = Host(id="h1", name="w1", node_ids=("n1",))
    h2 = Host(id="h2", name="w1", node_ids=("n2",))
    nodes = [
        NmNode(id="n1", host_id="h1", network="net"),
        NmNode(id="n2", host_id="h2", network="net"),
    ]
    existing = good(node_id="n1", cidr="10.7.0.0/24")  # would otherwise be updated
    p = plan([kube("w1", "10.1.0.0/24")], view([h1, h2], nodes, [existing]), S)
    assert p.empty
    assert len(p.warnings) == 1
    assert "2 Netmaker hosts are named 'w1'" in p.warnings[0]


def test_unparseable_pod_cidr_keeps_the_nodes_rules_and_warns():
    host, nodes = one_host()
    existing = good()
    p = plan([kube("w1", "not-a-cidr")], view([host], nodes, [existing]), S)
    assert p.empty
    assert "not-a-cidr" in p.warnings[0]


def test_rule_11_a_node_without_pod_cidrs_yet_keeps_its_rules():
    """Issue 9, item 4: a rebuilt node registers before it has CIDRs; its rule used to go."""
    host, nodes = one_host()
    rule = good()
    p = plan([kube("w1")], view([host], nodes, [rule]), S)
    assert p.empty
    assert p.warnings == ()
    for name in ("w1", None):
        assert plan([kube("w1")], view([host], nodes, [rule]), S, only=name).empty


def test_rule_11_once_the_grace_is_over_the_rules_of_a_cidrless_node_go():
    host, nodes = one_host()
    p = plan([kube("w1")], view([host], nodes, [good()]), S, cidrless_expired=frozenset({"w1"}))
    assert [a.kind for a in p.actions] == [ActionKind.DELETE]


def test_foreign_and_other_cluster_rules_are_never_touched():
    host, nodes = one_host()
    foreign = egress("net", "office VPN", {"h1-net": 500}, range="10.1.0.0/24")
    other = good(cluster="west", cidr="10.99.0.0/24")
    unscoped = good(cidr="10.98.0.0/24")
    settings = PlanSettings(cluster="east")
    p = plan([kube("w1", "10.1.0.0/24")], view([host], nodes, [foreign, other, unscoped]), settings)
    assert [a.kind for a in p.actions] == [ActionKind.CREATE]
    assert p.actions[0].spec is not None
    assert p.actions[0].spec.description == build_description(0, "east")


def test_multi_cluster_mode_manages_its_own_rules():
    host, nodes = one_host()
    mine = good(cluster="east", cidr="10.5.0.0/24")
    p = plan([kube("w1", "10.1.0.0/24")], view([host], nodes, [mine]), PlanSettings(cluster="east"))
    assert [a.kind for a in p.actions] == [ActionKind.UPDATE]


def test_item_3_the_plan_carries_the_pass_s_ownership_and_delete_limit():
    """The planner decides once per pass which rules are ours and the mass-delete limit, and
    hands both on in the plan: the write guard judges by them instead of by its own copy of
    the settings (issue 21 item 3)."""
    host, nodes = one_host()
    settings = PlanSettings(
        cluster="east", max_delete_fraction=0.25, max_delete_floor=3, allow_mass_delete=True
    )
    theirs = good(node_id="h1-net")  # single-cluster marker: not ours in cluster "east"
    p = plan([kube("w1", "10.1.0.0/24")], view([host], nodes, [theirs]), settings)
    assert p.ownership == Ownership("east")
    assert p.limit == DeleteLimit(fraction=0.25, floor=3, unlimited=True)
    assert p.ownership.index(theirs) is None
    assert p.ownership.index(good(node_id="h1-net", cluster="east")) == 0
    assert p.limit.of(40) == 10
    assert p.limit.of(4) == 3


def test_rule_8_no_delete_before_the_first_complete_node_list():
    host, nodes = one_host()
    p = plan([], view([host], nodes, [good()]), S, kube_complete=False)
    assert p.empty
    assert len(p.withheld) == 1
    assert p.refusal is not None
    assert "first complete list" in p.refusal


def test_rule_8_mass_delete_is_refused_unless_allowed():
    hosts, nodes, rules = [], [], []
    for i in range(10):
        h, ns = one_host(name=f"w{i}", host_id=f"h{i}")
        hosts.append(h)
        nodes += ns
        rules.append(good(node_id=f"h{i}-net", name=f"w{i}"))
    v = view(hosts, nodes, rules)
    refused = plan([], v, S)
    assert refused.empty
    assert len(refused.withheld) == 10
    assert refused.refusal is not None
    assert "refusing to delete 10 of 10" in refused.refusal
    allowed = plan([], v, PlanSettings(allow_mass_delete=True))
    assert allowed.count(ActionKind.DELETE) == 10
    # Half of the rules going is normal churn (a node pool scaled down).
    half = plan([kube(f"w{i}", "10.1.0.0/24") for i in range(5)], v, S)
    assert half.count(ActionKind.DELETE) == 5
    assert half.refusal is None


def test_small_deletes_are_never_refused_by_the_fraction():
    host, nodes = one_host()
    p = plan([], view([host], nodes, [good()]), S)
    assert p.count(ActionKind.DELETE) == 1


def test_node_scope_touches_only_that_nodes_rules():
    h1, n1 = one_host(name="w1", host_id="h1")
    h2, n2 = one_host(name="w2", host_id="h2")
    orphan = egress("net", D0, {})
    w2_rule = good(node_id="h2-net", name="w2", cidr="10.2.0.0/24")
    v = view([h1, h2], n1 + n2, [orphan, w2_rule])
    p = plan([kube("w1", "10.1.0.0/24")], v, S, only="w1")
    assert [(a.kind, a.kube_node) for a in p.actions] == [(ActionKind.CREATE, "w1")]
    gone = plan([], v, S, only="w2")
    assert [(a.kind, a.target.id if a.target else "") for a in gone.actions] == [
        (ActionKind.DELETE, w2_rule.id)
    ]


def test_applying_a_plan_converges():
    host, nodes = one_host(networks=("a", "b"))
    v = view([host], nodes, [good(network="a", node_id="h1-a", cidr="10.9.0.0/24")])
    kn = [kube("w1", "10.1.0.0/24", "fd00::/64")]
    first = plan(kn, v, S)
    assert first.count(ActionKind.CREATE) == 3
    assert first.count(ActionKind.UPDATE) == 1
    assert plan(kn, apply(v, first), S).empty


def test_update_and_delete_actions_without_an_id_cannot_be_built():
    e = Egress(id="", network="net", name="x", description=D0, range="", nat=False, status=True)
    with pytest.raises(ValueError, match="id"):
        Action(kind=ActionKind.DELETE, reason="x", network="net", target=e)


# -- what each node's state is, and why (operator experience) ------------------------------------


def report(p, name):
    [found] = [r for r in p.nodes if r.name == name]
    return found


def test_every_node_is_reported_in_sync_pending_or_skipped_with_a_reason():
    host, nodes = one_host()
    caps, caps_nodes = one_host(name="Worker-Caps", host_id="h2")
    twin_a, twin_a_nodes = one_host(name="twin", host_id="h3")
    twin_b, twin_b_nodes = one_host(name="twin", host_id="h4")
    lonely = Host(id="h5", name="lonely", node_ids=())
    fresh, fresh_nodes = one_host(name="fresh", host_id="h6")
    broken, broken_nodes = one_host(name="broken", host_id="h7")
    kube_nodes = [
        kube("w1", "10.1.0.0/24"),
        kube("worker-caps", "10.2.0.0/24"),
        kube("twin", "10.3.0.0/24"),
        kube("fresh"),
        kube("broken", "10.4.0.0"),
        kube("lonely", "10.5.0.0/24"),
        kube("nobody", "10.6.0.0/24"),
    ]
    hosts = [host, caps, twin_a, twin_b, lonely, fresh, broken]
    all_nodes = nodes + caps_nodes + twin_a_nodes + twin_b_nodes + fresh_nodes + broken_nodes
    p = plan(kube_nodes, view(hosts, all_nodes, [good()]), S)
    assert report(p, "w1").state is NodeState.IN_SYNC
    assert report(p, "w1").networks == ("net",)
    caps_report = report(p, "worker-caps")
    assert caps_report.reason is SkipReason.NO_HOST
    assert "did you mean 'Worker-Caps'" in caps_report.detail
    assert "kaput-not.io/netmaker-host=Worker-Caps" in caps_report.detail
    assert report(p, "twin").reason is SkipReason.AMBIGUOUS_HOST
    assert report(p, "fresh").reason is SkipReason.NO_POD_CIDRS
    assert report(p, "broken").reason is SkipReason.BAD_POD_CIDR
    assert report(p, "lonely").reason is SkipReason.NO_NETWORK
    assert report(p, "nobody").reason is SkipReason.NO_HOST
    assert "did you mean" not in report(p, "nobody").detail
    pending = plan([kube("w1", "10.1.0.0/24")], view([host], nodes, []), S)
    assert report(pending, "w1").state is NodeState.PENDING
    # The near miss is found in a single-node pass too.
    single = plan(kube_nodes, view(hosts, all_nodes, [good()]), S, only="worker-caps")
    assert "did you mean 'Worker-Caps'" in report(single, "worker-caps").detail


def test_the_host_annotation_matches_a_node_to_a_host_of_another_name():
    host, nodes = one_host(name="w1.example.com")
    node = KubeNode(name="w1", pod_cidrs=("10.1.0.0/24",), host_name="w1.example.com")
    p = plan([node], view([host], nodes, []), S)
    [create] = p.actions
    assert create.spec is not None
    assert create.spec.name == "w1 pods (1/1)"  # named for the Kubernetes node
    assert create.spec.nodes == {"h1-net": 500}
    assert report(p, "w1").host == "w1.example.com"
    after = apply(view([host], nodes, []), p)
    assert plan([node], after, S).empty  # and its rule is recognised as its own afterwards
    assert plan([node], after, S, only="w1").empty


def test_a_rule_listed_again_in_another_networks_list_is_kept_and_matched_once():
    """A server that ignores `?network=` lists each rule in every network's list. The copies
    are one rule (one id): neither is deleted as unwanted (a delete by id removes the live
    rule), and a copy never takes a second slot in place of a create."""
    host, nodes = one_host()
    w1 = good()  # in sync: network net, node h1-net
    for copy in (replace(w1), replace(w1, nodes={}), replace(w1, network="b")):
        listed = replace(view([host], nodes, []), egress={"net": [w1], "b": [copy]})
        assert plan([kube("w1", "10.1.0.0/24")], listed, S).empty, copy
    # In two networks, each slot needs a rule: a copy of net's rule routed through the node in
    # b is the same rule, so it serves one slot (the first in slot order), the other slot gets
    # a rule of its own, and nothing is updated or deleted.
    host, nodes = one_host(networks=("net", "b"))
    routed_in_b = replace(w1, network="b", nodes={"h1-b": 500})
    listed = replace(view([host], nodes, []), egress={"net": [w1], "b": [routed_in_b]})
    p = plan([kube("w1", "10.1.0.0/24")], listed, S)
    assert [(a.kind, a.target) for a in p.actions] == [(ActionKind.CREATE, None)]


def test_rule_8_the_copies_of_one_gone_rule_are_no_mass_delete():
    """A gone node's rule and three duplicates (a lying egress list wrote them) are one rule's
    worth of loss: the mass-delete guard counts a slot's copies once (fails where it counted
    four deletes of eight rules, past the limit of two, and held all four)."""
    hosts, nodes, rules = [], [], []
    for i in range(5):
        h, ns = one_host(name=f"w{i}", host_id=f"h{i}")
        hosts.append(h)
        nodes += ns
        rules.append(good(node_id=f"h{i}-net", name=f"w{i}", cidr=f"10.{i}.0.0/24"))
    rules += [replace(rules[4], id=f"copy-{k}") for k in range(3)]
    tight = PlanSettings(max_delete_fraction=0.25, max_delete_floor=2)
    p = plan([kube(f"w{i}", f"10.{i}.0.0/24") for i in range(4)], view(hosts, nodes, rules), tight)
    assert p.count(ActionKind.DELETE) == 4
    assert p.refusal is None


def test_rule_8_a_refused_mass_delete_still_deletes_the_copies_of_its_slots():
    """Three gone nodes' rules, one with a duplicate (a lying egress list wrote it): the mass
    delete is refused, but one copy of a slot keeps serving its range, so the other is no loss
    and is deleted (the long run found 2 rules for one slot after an honest pass, where the
    refusal held all four deletes)."""
    hosts, nodes, rules = [], [], []
    for i in range(5):
        h, ns = one_host(name=f"w{i}", host_id=f"h{i}")
        hosts.append(h)
        nodes += ns
        rules.append(good(node_id=f"h{i}-net", name=f"w{i}", cidr=f"10.{i}.0.0/24"))
    rules.append(replace(rules[4], id="copy-4"))
    tight = PlanSettings(max_delete_fraction=0.25, max_delete_floor=2)
    p = plan([kube(f"w{i}", f"10.{i}.0.0/24") for i in range(2)], view(hosts, nodes, rules), tight)
    deleted = [a.target.id for a in p.actions if a.kind is ActionKind.DELETE and a.target]
    assert len(deleted) == 1
    assert deleted[0] in {rules[4].id, "copy-4"}
    held = sorted(a.target.name for a in p.withheld if a.target)
    assert held == ["w2 pods (1/1)", "w3 pods (1/1)", "w4 pods (1/1)"]
    assert p.refusal is not None
    assert "refusing to delete 3 of 6" in p.refusal
    # The next pass sees one rule for the slot: nothing more is deleted while it is refused.
    after = apply(view(hosts, nodes, rules), p)
    again = plan([kube(f"w{i}", f"10.{i}.0.0/24") for i in range(2)], after, tight)
    assert again.count(ActionKind.DELETE) == 0
    assert len(again.withheld) == 3


def test_drift_reasons_are_in_netmakers_terms_not_pythons():
    host, nodes = one_host()
    drifted = good(nat=True, status=False)
    [update] = plan([kube("w1", "10.1.0.0/24")], view([host], nodes, [drifted]), S).actions
    assert "nat true -> false" in update.reason
    assert "status false -> true" in update.reason
    assert "True" not in update.reason
    assert "False" not in update.reason


def test_a_delete_reason_names_the_kubernetes_node_not_the_netmaker_host():
    """w5.example.com owned host node-5 through the host annotation; it is gone."""
    host, nodes = one_host(name="node-5", host_id="h5")
    rule = good(node_id="h5-net", name="w5.example.com")
    v = view([host], nodes, [rule])
    for scoped in (
        plan([], v, S, resolved={"w5.example.com": "node-5"}, only="w5.example.com"),
        plan([], v, S),  # a full pass after a restart: the rule's name still says whose it was
    ):
        [delete] = scoped.actions
        assert delete.kind is ActionKind.DELETE
        assert "Kubernetes node w5.example.com is gone" in delete.reason
        assert "node-5" in delete.reason  # the host it resolved to, said as the host


def test_a_mass_delete_refusal_names_the_variable_and_the_chart_value():
    hosts, nodes, rules = [], [], []
    for i in range(10):
        h, ns = one_host(name=f"w{i}", host_id=f"h{i}")
        hosts.append(h)
        nodes += ns
        rules.append(good(node_id=f"h{i}-net", name=f"w{i}"))
    refused = plan([], view(hosts, nodes, rules), S)
    assert refused.refusal is not None
    assert "ALLOW_MASS_DELETE=true" in refused.refusal
    assert "config.allowMassDelete" in refused.refusal
