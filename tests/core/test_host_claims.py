"""Rule 9: who owns a Netmaker host when Kubernetes nodes claim it by name and by annotation.

A kubelet may edit its own Node's annotations, so the host annotation is untrusted input: it
can never take a host that a node matches by name, several annotations on one host leave its
rules as they are, and a node's delete is judged by the host it resolved to."""

from __future__ import annotations

import re

from kaput_not.core.claims import KubeClaims
from kaput_not.core.model import ActionKind, KubeNode, NodeState, SkipReason
from kaput_not.core.planner import PlanSettings, plan
from tests.core.test_planner_rules import good, one_host
from tests.core.world import apply, view

S = PlanSettings()


def annotated(name: str, host: str, cidr: str) -> KubeNode:
    return KubeNode(name=name, pod_cidrs=(cidr,), host_name=host)


def report(p, name):
    return next(r for r in p.nodes if r.name == name)


def test_annotation_cannot_take_a_host_owned_by_name():
    host, nodes = one_host()  # host w1
    w1 = KubeNode(name="w1", pod_cidrs=("10.1.0.0/24",))
    evil = annotated("zz-evil", "w1", "10.66.0.0/24")
    world = view([host], nodes, [good()])  # w1's rule, in sync
    kube = [w1, evil]
    for p in (
        plan(kube, world, S),
        plan(kube, world, S, only="zz-evil"),
        plan(kube, world, S, only="w1"),
        plan(list(reversed(kube)), world, S),  # the order of the list decides nothing
    ):
        assert p.empty, [a.describe() for a in p.actions]
        assert report(p, "zz-evil").reason is SkipReason.HOST_TAKEN
        owner = report(p, "w1")
        assert owner.state is NodeState.IN_SYNC
        assert owner.claimed_by == ("zz-evil",)  # the owner is told


def test_an_annotated_node_alone_on_a_host_gets_it():
    host, nodes = one_host(name="w1.example.com")
    node = annotated("w1", "w1.example.com", "10.1.0.0/24")
    p = plan([node], view([host], nodes, []), S, only="w1")
    assert [a.kind for a in p.actions] == [ActionKind.CREATE]
    assert report(p, "w1").claimed_by == ()


def test_a_host_claimed_only_by_several_annotations_is_contested_and_kept():
    host, nodes = one_host(name="gw")
    kept = good(name="a", cidr="10.1.0.0/24")  # a's rule, written before b's claim came
    a = annotated("a", "gw", "10.1.0.0/24")
    b = annotated("b", "gw", "10.2.0.0/24")
    world = view([host], nodes, [kept])
    for p in (
        plan([a, b], world, S),
        plan([a, b], world, S, only="a"),
        plan([a, b], world, S, only="b"),
    ):
        assert p.empty, [x.describe() for x in p.actions]
        assert not p.withheld
        assert report(p, "a").reason is SkipReason.HOST_CONTESTED
        assert report(p, "b").reason is SkipReason.HOST_CONTESTED
        assert "a, b" in report(p, "b").detail


def test_deleting_a_stale_node_keeps_the_rule_of_the_node_annotated_onto_its_host():
    """Node w1.example.com is annotated onto host w1; the stale Node w1 is deleted. The rule on
    host w1 now serves w1.example.com: updated in place, never deleted."""
    host, nodes = one_host()
    live = annotated("w1.example.com", "w1", "10.7.0.0/24")
    stale = KubeNode(name="w1", pod_cidrs=("10.1.0.0/24",))
    rule = good()
    world = view([host], nodes, [rule])
    while_both = plan([stale, live], world, S)
    assert while_both.empty  # the stale node owns the host by name while it exists
    assert report(while_both, "w1.example.com").reason is SkipReason.HOST_TAKEN
    gone = plan([live], world, S, only="w1", resolved={"w1": "w1"})
    assert [a.kind for a in gone.actions] == [ActionKind.UPDATE]
    update = gone.actions[0]
    assert update.target == rule
    assert update.spec is not None
    assert update.spec.range == "10.7.0.0/24"
    assert update.kube_node == "w1.example.com"
    assert plan([live], apply(world, gone), S).empty


def test_a_deleted_annotated_nodes_rules_go_through_the_host_it_resolved_to():
    host, nodes = one_host(name="w7.example.com")
    rule = good(name="ip-7")
    world = view([host], nodes, [rule])
    p = plan([], world, S, only="ip-7", resolved={"ip-7": "w7.example.com"})
    assert [(a.kind, a.target) for a in p.actions] == [(ActionKind.DELETE, rule)]


def test_an_annotated_node_rebuilt_in_the_delete_grace_keeps_its_rule_through_a_full_pass():
    host, nodes = one_host(name="w7.example.com")
    rule = good(name="ip-7")
    other_host, other_nodes = one_host(name="w8", host_id="h8")
    world = view([host, other_host], [*nodes, *other_nodes], [rule])
    w8 = KubeNode(name="w8", pod_cidrs=("10.8.0.0/24",))
    p = plan([w8], world, S, keep=frozenset({"ip-7"}), resolved={"ip-7": "w7.example.com"})
    assert all(a.kind is ActionKind.CREATE for a in p.actions), [a.describe() for a in p.actions]
    assert not p.withheld


def test_a_single_node_pass_with_a_claims_index_sees_the_owner_it_was_not_given():
    """The controller hands a node pass its one node and the index of every node's claim."""
    host, nodes = one_host()
    w1 = KubeNode(name="w1", pod_cidrs=("10.1.0.0/24",))
    evil = annotated("zz-evil", "w1", "10.66.0.0/24")
    claims = KubeClaims([w1, evil])
    p = plan([evil], view([host], nodes, [good()]), S, only="zz-evil", claims=claims)
    assert p.empty
    assert report(p, "zz-evil").reason is SkipReason.HOST_TAKEN


def test_the_host_annotation_can_be_turned_off_and_narrowed():
    host, nodes = one_host(name="gw-1")
    node = annotated("w1", "gw-1", "10.1.0.0/24")
    world = view([host], nodes, [])
    off = plan([node], world, PlanSettings(host_annotation=False))
    assert off.empty
    assert report(off, "w1").reason is SkipReason.HOST_ANNOTATION_REFUSED
    assert "HOST_ANNOTATION_ENABLED=false" in report(off, "w1").detail
    narrow = PlanSettings(host_annotation_hosts=re.compile(r"w[0-9]+\.example\.com"))
    refused = plan([node], world, narrow, only="w1")
    assert refused.empty
    assert report(refused, "w1").reason is SkipReason.HOST_ANNOTATION_REFUSED
    assert "HOST_ANNOTATION_HOSTS" in report(refused, "w1").detail
    host, nodes = one_host(name="w1.example.com")
    allowed = plan(
        [annotated("w1", "w1.example.com", "10.1.0.0/24")], view([host], nodes, []), narrow
    )
    assert [a.kind for a in allowed.actions] == [ActionKind.CREATE]
