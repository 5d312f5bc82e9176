"""Rule 13: a pod CIDR that would make a harmful mesh route is refused (`bad-pod-cidr`), never
written, and the node's existing rules are left as they are."""

from __future__ import annotations

import ipaddress
from dataclasses import replace

import pytest
from hypothesis import given
from hypothesis import strategies as st

from kaput_not.core.claims import KubeClaims, parse_cidr
from kaput_not.core.model import KubeNode, SkipReason
from kaput_not.core.planner import PlanSettings, plan
from tests.core.test_planner_rules import good, one_host
from tests.core.world import view

S = PlanSettings()


def report(p, name):
    return next(r for r in p.nodes if r.name == name)


def refused(p, name: str, phrase: str) -> None:
    r = report(p, name)
    assert r.reason is SkipReason.BAD_POD_CIDR, r
    assert phrase in r.detail, r.detail


@pytest.mark.parametrize("cidr", ["0.0.0.0/0", "::/0"])
def test_a_default_route_is_refused_and_the_nodes_rule_kept(cidr):
    host, nodes = one_host()
    kept = good()  # the rule from before the node was rebuilt with the bad CIDR
    world = view([host], nodes, [kept])
    for p in (
        plan([KubeNode("w1", (cidr,))], world, S),
        plan([KubeNode("w1", (cidr,))], world, S, only="w1"),
    ):
        assert p.empty, [a.describe() for a in p.actions]
        assert not p.withheld
        refused(p, "w1", "default route")
    fresh = plan([KubeNode("w1", (cidr,))], view([host], nodes, []), S)
    assert fresh.empty  # nothing written


def test_a_cidr_overlapping_the_mesh_networks_own_range_is_refused():
    host, nodes = one_host()
    world = replace(view([host], nodes, []), address_ranges={"net": ("100.64.0.0/16",)})
    p = plan([KubeNode("w1", ("100.64.3.0/24",))], world, S)
    assert p.empty
    refused(p, "w1", "address range 100.64.0.0/16 of Netmaker network net")
    # A CIDR outside it is fine; a range of another version is no overlap.
    ok = plan([KubeNode("w1", ("10.1.0.0/24", "fd00:1::/64"))], world, S)
    assert len(ok.actions) == 2


def test_two_nodes_with_overlapping_cidrs_are_both_refused_whatever_the_order():
    h1, n1 = one_host()
    h2, n2 = one_host(name="w2", host_id="h2")
    kept = good()  # w1's rule, written before w2 came with an overlapping CIDR
    world = view([h1, h2], [*n1, *n2], [kept])
    w1 = KubeNode("w1", ("10.1.0.0/24",))
    w2 = KubeNode("w2", ("10.1.0.128/25",))
    claims = KubeClaims([w1, w2])
    for p in (
        plan([w1, w2], world, S),
        plan([w2, w1], world, S),
        plan([w1], world, S, only="w1", claims=claims),
        plan([w2], world, S, only="w2", claims=claims),
    ):
        assert p.empty, [a.describe() for a in p.actions]
        assert not p.withheld
        for r in p.nodes:
            assert r.reason is SkipReason.BAD_POD_CIDR
            assert "overlap" in r.detail


def test_a_cidr_outside_the_cluster_pod_ranges_is_refused_when_configured():
    host, nodes = one_host()
    world = view([host], nodes, [])
    pods = PlanSettings(cluster_pod_cidrs=("10.244.0.0/16", "fd00:10:244::/56"))
    p = plan([KubeNode("w1", ("10.0.0.0/8",))], world, pods)
    assert p.empty
    refused(p, "w1", "outside the cluster's pod ranges")
    inside = plan([KubeNode("w1", ("10.244.3.0/24", "fd00:10:244:3::/64"))], world, pods)
    assert len(inside.actions) == 2
    assert len(plan([KubeNode("w1", ("10.0.0.0/8",))], world, S).actions) == 1  # no check


def test_the_claims_index_finds_overlaps_inside_around_and_equal():
    a = KubeNode("a", ("10.1.0.0/16",))
    b = KubeNode("b", ("10.1.2.0/24",))
    c = KubeNode("c", ("10.2.0.0/24", "fd00::/64"))
    d = KubeNode("d", ("fd00::/64",))
    claims = KubeClaims([a, b, c])
    assert claims.overlapping(a) == ["b"]
    assert claims.overlapping(b) == ["a"]
    assert claims.overlapping(c) == []
    claims.update(None, d)
    assert claims.overlapping(c) == ["d"]
    claims.update(b, replace(b, pod_cidrs=("10.3.0.0/24",)))
    assert claims.overlapping(a) == []
    claims.update(d, None)
    assert claims.overlapping(c) == []


POOL = ["10.0.0.0/8", "10.1.0.0/16", "10.1.2.0/24", "10.1.2.128/25", "10.2.0.0/24", "fd00::/48"]
POOL += ["fd00:0:0:1::/64", "fd01::/64", "0.0.0.0/0", "::/0", "bad"]


PODS = [(), ("10.1.0.0/16",), ("10.1.2.0/24", "fd00::/48"), ("10.0.0.0/8", "fd00::/64")]


def _writable(
    cidr: str, bounds: list[ipaddress.IPv4Network | ipaddress.IPv6Network]
) -> ipaddress.IPv4Network | ipaddress.IPv6Network | None:
    try:
        net = ipaddress.ip_network(cidr, strict=False)
    except ValueError:
        return None
    if not net.prefixlen:
        return None
    if bounds and not any(net.network_address in b and net.broadcast_address in b for b in bounds):
        return None
    return net


@given(
    st.lists(st.lists(st.sampled_from(POOL), max_size=2, unique=True), max_size=6),
    st.sampled_from(PODS),
)
def test_the_full_pass_sweep_finds_what_each_node_query_finds(cidrs, pods):
    nodes = [KubeNode(f"n{i}", tuple(c)) for i, c in enumerate(cidrs)]
    claims = KubeClaims(nodes)
    within = [span for p in pods if (span := parse_cidr(p)) is not None]
    swept = claims.overlaps(within)
    for node in nodes:
        assert swept.get(node.name, []) == claims.overlapping(node, within)
    # Only a CIDR that could be written (no default route, inside the ranges) overlaps: an
    # ipaddress reading of the rule, independent of the index.
    bounds = [ipaddress.ip_network(p) for p in pods]
    writable = {n.name: [w for c in n.pod_cidrs if (w := _writable(c, bounds))] for n in nodes}
    for node in nodes:
        expected = sorted(
            other
            for other, nets in writable.items()
            if other != node.name and any(a.overlaps(b) for a in writable[node.name] for b in nets)
        )
        assert swept.get(node.name, []) == expected


def _ipaddress_reads(text: str) -> tuple[int, int, int] | None:
    try:
        net = ipaddress.ip_network(text, strict=False)
    except ValueError:
        return None
    return net.version, int(net.network_address), net.prefixlen


SPELLINGS = ["10.1.2.0/24", "10.1.2.3/24", "fd00:1::/64", "::ffff:1.2.3.4/120", "::/0", "1.2.3.4"]
SPELLINGS += ["FD00:0:0:1::/64", "010.1.2.0/24", "10.1.2.0/024", "10.1.2.0/33", "fe80::1%eth0/64"]
SPELLINGS += ["10.1.2.0/255.255.255.0", "1:2:3:4:5:6:7:8:9/64", "::1.2.3.4/127", " 10.0.0.0/8"]
# What inet_pton raises ValueError (not OSError) for: a NUL byte, a character it cannot encode.
SPELLINGS += ["10.0.0.0\x00/24", "fd00::\x00/64", "10.0.0.\u0663/24", "fd00::\ud800/64"]


@given(
    st.one_of(
        st.sampled_from(SPELLINGS),
        st.text(alphabet="0123456789abcdefABCDEF:./% \u0663", max_size=24),
        st.tuples(st.sampled_from(SPELLINGS), st.integers(0, 20), st.sampled_from(":./0a%")).map(
            lambda t: t[0][: t[1]] + t[2] + t[0][t[1] :]
        ),
    )
)
def test_the_fast_cidr_reader_reads_what_ipaddress_reads(text):
    """Issue 21 (CPU): the claims index and rule 13 read every pod CIDR through `parse_cidr`
    (inet_pton for the usual form), not ipaddress; it must accept, refuse and clear host bits
    exactly as `ipaddress.ip_network(strict=False)` does, whatever the spelling."""
    assert parse_cidr(text) == _ipaddress_reads(text)


@pytest.mark.parametrize(
    "text", ["10.0.0.0\x00/24", "fd00::\x00/64", "10.0.0.\u0663/24", "fd00::\ud800/64"]
)
def test_a_cidr_inet_pton_cannot_take_is_read_as_ipaddress_reads_it(text):
    """Found by the decoder fuzz test: inet_pton raises ValueError for a NUL byte (and
    UnicodeEncodeError for a lone surrogate), which escaped the planner as an exception."""
    assert parse_cidr(text) == _ipaddress_reads(text)


@pytest.mark.parametrize(
    ("cidr", "inside"),
    [
        ("100.63.255.0/24", False),  # ends just below the range
        ("100.64.0.0/24", True),
        ("100.65.255.0/24", True),
        ("100.66.0.0/24", False),  # starts just past it
        ("100.0.0.0/8", True),  # around it
        ("fd00::/64", False),
    ],
)
def test_a_mesh_range_overlap_is_decided_at_its_edges(cidr, inside):
    host, nodes = one_host()
    world = replace(view([host], nodes, []), address_ranges={"net": ("100.64.0.0/15", "bad")})
    p = plan([KubeNode("w1", (cidr,))], world, S)
    if inside:
        refused(p, "w1", "address range 100.64.0.0/15 of Netmaker network net")
    else:
        assert len(p.actions) == 1, p.actions


def _writes(p) -> list[tuple[str, str, str | None]]:
    return [(a.kind, a.spec.range if a.spec else "", a.kube_node) for a in p.actions]


def _evil_and_w2():
    h1, n1 = one_host(name="evil", host_id="h1")
    h2, n2 = one_host(name="w2", host_id="h2")
    return view([h1, h2], [*n1, *n2], [])


@pytest.mark.parametrize(
    ("default", "cidr"), [("0.0.0.0/0", "10.2.0.0/24"), ("::/0", "fd00:2::/64")]
)
def test_a_default_route_on_one_node_does_not_refuse_the_others(default, cidr):
    """Rule 13: a CIDR refused on its own is never written, so it makes no other node overlap:
    one hostile or broken node must not block every other node's new routes."""
    world = _evil_and_w2()
    evil = KubeNode("evil", (default,))
    w2 = KubeNode("w2", (cidr,))
    claims = KubeClaims([evil, w2])
    for p in (plan([evil, w2], world, S), plan([w2, evil], world, S)):
        assert _writes(p) == [("create", cidr, "w2")]
        refused(p, "evil", "default route")
    mine = plan([evil, w2], world, S, only="w2", claims=claims)
    assert _writes(mine) == [("create", cidr, "w2")]
    alone = plan([evil, w2], world, S, only="evil", claims=claims)
    assert alone.empty
    refused(alone, "evil", "default route")


def test_a_cidr_outside_the_cluster_pod_ranges_does_not_refuse_the_nodes_inside():
    """Rule 13: with CLUSTER_POD_CIDRS set, a broad CIDR outside them is refused on its own and
    refuses no node inside them; unset, it overlaps them and both are refused."""
    world = _evil_and_w2()
    evil = KubeNode("evil", ("10.0.0.0/8",))
    w2 = KubeNode("w2", ("10.244.2.0/24",))
    claims = KubeClaims([evil, w2])
    pods = PlanSettings(cluster_pod_cidrs=("10.244.0.0/16",))
    for p in (plan([evil, w2], world, pods), plan([w2, evil], world, pods)):
        assert _writes(p) == [("create", "10.244.2.0/24", "w2")]
        refused(p, "evil", "outside the cluster's pod ranges")
    mine = plan([evil, w2], world, pods, only="w2", claims=claims)
    assert _writes(mine) == [("create", "10.244.2.0/24", "w2")]
    alone = plan([evil, w2], world, pods, only="evil", claims=claims)
    assert alone.empty
    refused(alone, "evil", "outside the cluster's pod ranges")
    for p in (
        plan([evil, w2], world, S),
        plan([evil, w2], world, S, only="w2", claims=claims),
    ):
        assert p.empty
        refused(p, "w2", "overlap those of node(s) evil")
