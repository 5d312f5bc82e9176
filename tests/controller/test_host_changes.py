"""What counts as a change of a Netmaker host between two reads of the host and node lists."""

from __future__ import annotations

from kaput_not.controller.host_watch import fingerprints, lost_membership
from kaput_not.core.model import Host, NmNode

ALONE = [Host(id="h1", name="w1")]
JOINED = [Host(id="h1", name="w1", node_ids=("n1",))]
NODE = [NmNode(id="n1", host_id="h1", network="mesh")]


def test_a_host_joining_its_first_network_loses_no_membership():
    before, after = fingerprints(ALONE, []), fingerprints(JOINED, NODE)
    assert before != after  # a change: the node is planned again
    assert not lost_membership(before, after)  # but no full pass for orphans


def test_a_host_leaving_its_network_loses_a_membership():
    assert lost_membership(fingerprints(JOINED, NODE), fingerprints(ALONE, []))


def test_a_host_gone_with_its_node_loses_a_membership():
    assert lost_membership(fingerprints(JOINED, NODE), fingerprints([], []))
