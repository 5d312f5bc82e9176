"""The controller's grace clocks on a fake clock: a deleted node's grace, rule 11's grace for a
node without pod CIDRs, and the host a node resolved to before."""

from __future__ import annotations

from kaput_not.controller.grace import GraceClocks
from kaput_not.core.model import KubeNode
from kaput_not.kube.informer import EventKind, NodeEvent
from tests.clock import FakeClock

GRACE = 15.0


def _clocks(clock: FakeClock) -> tuple[GraceClocks, list[tuple[str, float]]]:
    requeued: list[tuple[str, float]] = []
    clocks = GraceClocks(
        grace_seconds=GRACE, clock=clock, requeue_after=lambda k, s: requeued.append((k, s))
    )
    return clocks, requeued


def _absent(_: str) -> KubeNode | None:
    return None


def test_a_delete_grace_ends_after_the_grace_or_when_the_node_comes_back():
    clock = FakeClock()
    clocks, _ = _clocks(clock)
    assert clocks.deleted("w1") == GRACE  # the delete's pass waits the grace
    assert clocks.deleted("w2") == GRACE
    clock.advance(GRACE - 0.1)
    assert clocks.deleted_recently(_absent) == {"w1", "w2"}
    back = KubeNode("w2", ("10.0.2.0/24",))
    assert clocks.deleted_recently(lambda n: back if n == "w2" else None) == {"w1"}  # a rebuild
    clock.advance(0.1)
    assert clocks.deleted_recently(_absent) == frozenset()


def test_a_node_without_pod_cidrs_is_requeued_for_the_end_of_its_grace_and_expires_there():
    clock = FakeClock()
    clocks, requeued = _clocks(clock)
    bare = KubeNode("w1")
    assert clocks.cidrless_expired([bare]) == frozenset()
    assert requeued == [("w1", GRACE)]
    clock.advance(GRACE)
    assert clocks.cidrless_expired([bare]) == {"w1"}
    assert clocks.cidrless_expired([KubeNode("w1", ("10.0.1.0/24",))]) == frozenset()
    clock.advance(1.0)
    assert clocks.cidrless_expired([bare]) == frozenset()  # CIDRs seen in between: starts over


def test_a_deleted_nodes_host_is_kept_until_its_grace_and_pass_are_over():
    clock = FakeClock()
    clocks, _ = _clocks(clock)
    old = KubeNode("w1", ("10.0.1.0/24",), host_name="h1")
    clocks.on_event(NodeEvent(EventKind.DELETED, "w1", old, None))
    clocks.deleted("w1")
    clocks.node_pass_done("w1")
    clocks.full_pass_done()
    assert clocks.resolved() == {"w1": "h1"}  # full passes still need it in the grace
    clock.advance(GRACE)
    clocks.deleted_recently(_absent)
    clocks.full_pass_done()
    assert clocks.resolved() == {}
