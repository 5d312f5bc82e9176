"""The fault soak's own arithmetic (bench/faults.py): what it measures must be right before
its figures are believed."""

from __future__ import annotations

import random
import signal

import faults

from kaput_not_standins.kube import KubeState
from kaput_not_standins.netmaker import NetmakerState
from kaput_not_standins.netmaker.egress import EgressRequest


def test_most_lost_against_high_water_is_the_deepest_drop_below_the_mark() -> None:
    series = [(0.0, 10), (1.0, 20), (2.0, 12), (3.0, 9), (4.0, 15)]
    loss = faults.loss_against_high_water(series, float("inf"), origin=0.0)
    assert loss["most_lost_against_high_water"] == 11
    assert loss["most_lost_high_water"] == 20
    assert loss["most_lost_fraction"] == 0.55
    assert loss["most_lost_at_seconds"] == 3.0
    # MAX_DELETE_FRACTION 0.5 of 20 is 10: 11 lost is over; 8 lost (at t=2) is not.
    assert loss["loss_budget"] == 10
    assert loss["within_budget"] is False
    assert loss["loss_over_budget_moments"] == 1
    assert loss["rules_high_water"] == 20


def test_loss_window_keeps_a_mark_while_it_was_in_force() -> None:
    series = [(0.0, 10), (1.0, 20), (2.0, 12), (3.0, 9)]
    # 20 held until t=2, inside [1.5, 3]: still the mark at t=3.
    assert faults.loss_against_high_water(series, 1.5, 0.0)["most_lost_against_high_water"] == 11
    # Within [2.5, 3] only 12 was in force: 3 lost at t=3 (8 at t=2 against 20 is the most).
    narrow = faults.loss_against_high_water(series, 0.5, 0.0)
    assert narrow["most_lost_against_high_water"] == 8
    assert narrow["most_lost_at_seconds"] == 2.0


def test_loss_budget_has_the_floor_of_max_delete_min() -> None:
    loss = faults.loss_against_high_water([(0.0, 6), (1.0, 1)], float("inf"), 0.0)
    assert loss["loss_budget"] == 5  # int(0.5 x 6) is 3, the floor is 5
    assert loss["most_lost_against_high_water"] == 5
    assert loss["within_budget"] is True


def test_rule_count_follows_inserts_removals_and_rewrites_of_ours() -> None:
    nm = NetmakerState()
    auditor = faults.Auditor(KubeState())
    table = faults.AuditedEgressTable(
        auditor,
        clock=nm.clock,
        network_exists=lambda netid: nm.network(netid) is not None,
        node_exists=lambda node_id: nm.node(node_id) is not None,
    )
    nm.egress = table
    auditor.nm = nm
    nm.add_network("mesh", "100.64.0.0/16")
    node_id = nm.add_host("w1", ["mesh"]).nodes_by_network["mesh"]
    ours = faults.DESCRIPTION.format(index=0)
    nm.add_egress(network="mesh", cidr="10.9.0.0/24", nodes={}, name="x", description="vpn")
    rule = table.create(
        EgressRequest(
            network="mesh",
            name="w1 pods (1/1)",
            description=ours,
            range="10.0.0.0/24",
            nodes={node_id: 500},
            status=True,
        ),
        caller="t",
    )
    assert auditor.ours == 1
    request = EgressRequest(
        id=rule.id,
        network="mesh",
        name="w1",
        description="hand-edited",
        range="10.0.0.0/24",
        nodes={node_id: 500},
        status=True,
    )
    table.update(request)
    assert auditor.ours == 0
    request.description = ours
    table.update(request)
    assert auditor.ours == 1
    table.delete(rule.id)
    assert [count for _, count in auditor.ours_series] == [1, 0, 1, 0]


def test_leader_changes_count_new_holders_not_releases() -> None:
    assert faults.leader_changes(["a"]) == 0
    assert faults.leader_changes(["a", "", "a"]) == 0  # released and taken back
    assert faults.leader_changes(["a", "", "b", "a", "a-r1"]) == 3


def test_handover_is_timed_to_the_first_other_holder_after_the_restart() -> None:
    history = [(1.0, "a"), (5.0, ""), (5.5, "a"), (9.0, "b"), (12.0, "c")]
    assert faults.handover_seconds(history, 4.0, "a") == 5.0  # "" and "a" again are no handover
    assert faults.handover_seconds(history, 9.5, "b") == 2.5
    assert faults.handover_seconds(history, 12.5, "c") is None


def test_bad_exit_expects_the_signal_of_each_stop() -> None:
    def exit_(how: str, code: int, *, lost: bool = False, late: bool = False) -> bool:
        entry: dict[str, object] = {
            "stopped_by": how,
            "exit_code": code,
            "lost_lease": lost,
            "killed_after_stop_timeout": late,
        }
        return faults.bad_exit(entry)

    assert not exit_("SIGKILL", -signal.SIGKILL)
    assert not exit_("SIGTERM", 0)
    assert not exit_("end", 0)
    assert exit_("SIGTERM", -signal.SIGTERM)
    assert exit_("end", 1)
    assert exit_("end", -signal.SIGKILL, late=True)
    assert not exit_("itself", 1, lost=True)
    assert exit_("itself", 1)


def test_restarts_are_spread_one_in_each_part_of_the_soak() -> None:
    plan = faults.plan_restarts(5, 100.0, 50.0, random.Random(3))
    assert [int((p.at - 100.0) // 10) for p in plan] == [0, 1, 2, 3, 4]
    assert {p.how for p in faults.plan_restarts(40, 0.0, 40.0, random.Random(1))} == {
        "SIGKILL",
        "SIGTERM",
    }
    assert plan == faults.plan_restarts(5, 100.0, 50.0, random.Random(3))
