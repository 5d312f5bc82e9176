"""The write guard: cluster-wide delete and re-create budgets across passes, on a fake clock."""

from __future__ import annotations

import dataclasses

from kaput_not.controller.guard import BudgetSettings, WriteGuard
from kaput_not.core.egress import build_description
from kaput_not.core.model import Action, ActionKind, Egress, EgressSpec, NmNode, Plan
from kaput_not.core.planner import NetmakerView
from tests.clock import FakeClock

SETTINGS = BudgetSettings(window_seconds=600, max_fraction=0.5, floor=2)


def rule(i: int) -> Egress:
    return Egress(
        id=f"e{i}",
        network="mesh",
        name=f"w{i} pods (1/1)",
        description=build_description(0),
        range=f"10.244.{i}.0/24",
        nat=False,
        status=True,
        nodes={f"n{i}": 500},
    )


def view(rules: list[Egress], routers: int = 10) -> NetmakerView:
    nodes = tuple(NmNode(id=f"n{i}", host_id=f"h{i}", network="mesh") for i in range(routers))
    return NetmakerView(nodes=nodes, egress={"mesh": rules})


def delete(i: int) -> Action:
    return Action(ActionKind.DELETE, "gone", "mesh", target=rule(i))


def create(i: int) -> Action:
    r = rule(i)
    spec = EgressSpec(r.network, r.name, r.description, r.range, r.nat, r.status, dict(r.nodes))
    return Action(ActionKind.CREATE, "no rule yet", "mesh", spec=spec, kube_node=f"w{i}")


def test_deletes_split_into_many_passes_spend_one_budget_and_it_trips():
    clock = FakeClock()
    guard = WriteGuard(SETTINGS, cluster=None, clock=clock)
    everything = view([rule(i) for i in range(10)])
    guard.learn(everything, 10)
    allowed = 0
    for i in range(10):  # one delete per node pass, as an empty relist would make them
        checked = guard.check(Plan(actions=(delete(i),), owned=1), everything)
        guard.spent(checked, everything)
        allowed += checked.count(ActionKind.DELETE)
    assert allowed == 5  # half of the 10 rules of ours, whatever the split
    assert guard.deletes.tripped
    assert guard.holding is not None
    # A new window does not reset a tripped budget (the high-water mark is kept per 1/24 of a
    # window, so the one of 10 rules has left it once a window and a bucket have passed).
    clock.advance(600 + 600 / 24 + 1)
    checked = guard.check(Plan(actions=(delete(7),), owned=1), everything)
    assert checked.count(ActionKind.DELETE) == 0
    assert len(checked.withheld) == 1
    # A full pass that finds nothing to delete: the state recovered.
    guard.spent(guard.check(Plan(owned=5), everything, full=True), everything)
    assert not guard.deletes.tripped
    assert guard.check(Plan(actions=(delete(7),), owned=1), everything).count(ActionKind.DELETE)


def test_one_rule_deleted_by_hand_is_re_created_but_a_vanished_list_is_not():
    guard = WriteGuard(SETTINGS, cluster=None, clock=FakeClock())
    rules = [rule(i) for i in range(10)]
    guard.learn(view(rules), 10)
    one_gone = view(rules[1:])
    checked = guard.check(Plan(actions=(create(0),), owned=9), one_gone, full=True)
    assert checked.count(ActionKind.CREATE) == 1  # a hand delete is repaired at once
    guard.spent(checked, one_gone)
    empty = view([])
    plan = Plan(actions=tuple(create(i) for i in range(1, 10)), owned=0)
    checked = guard.check(plan, empty, full=True)
    # The list looks incomplete: no more than the budget (5, one spent) may become duplicates;
    # the rest wait until a full pass lists what those wrote.
    assert checked.count(ActionKind.CREATE) == 4
    assert len(checked.withheld) == 5
    assert "re-create budget" in (checked.refusal or "")
    assert guard.recreates.tripped


def test_a_slot_we_deleted_ourselves_is_free_and_its_next_create_is_not_a_re_create():
    guard = WriteGuard(SETTINGS, cluster=None, clock=FakeClock())
    rules = [rule(i) for i in range(10)]
    guard.learn(view(rules), 10)
    held = view(rules[3:])  # rules 0-2 gone: ours (deleted below) or by hand
    guard.spent(guard.check(Plan(actions=(delete(0), delete(1)), owned=10), view(rules)), held)
    checked = guard.check(Plan(actions=(create(0), create(1), create(2)), owned=7), held)
    assert guard._recreates(list(checked.actions), held) == [checked.actions[2]]  # only rule 2


def test_a_rule_whose_nodes_were_edited_leaves_its_old_slot_at_the_next_learn():
    guard = WriteGuard(SETTINGS, cluster=None, clock=FakeClock())
    rules = [rule(i) for i in range(10)]
    guard.learn(view(rules), 10)
    moved = [*rules[1:], dataclasses.replace(rules[0], nodes={"n9": 500})]  # edited by hand
    guard.learn(view(moved), 10)
    ours = Action(ActionKind.DELETE, "gone", "mesh", target=moved[-1])
    guard.spent(guard.check(Plan(actions=(ours,), owned=10), view(moved)), view(moved))
    after = view(moved[:-1])
    checked = guard.check(Plan(actions=(create(0),), owned=9), after)
    assert guard._recreates(list(checked.actions), after) == []  # slot n0 is free, not held


def test_creates_for_slots_never_held_are_not_re_creates():
    guard = WriteGuard(SETTINGS, cluster=None, clock=FakeClock())
    guard.learn(view([]), 0)
    plan = Plan(actions=tuple(create(i) for i in range(10)), owned=0)
    assert guard.check(plan, view([]), full=True).count(ActionKind.CREATE) == 10


def test_allow_mass_delete_turns_the_budgets_off():
    guard = WriteGuard(
        BudgetSettings(window_seconds=600, max_fraction=0.5, floor=2, unlimited=True),
        cluster=None,
        clock=FakeClock(),
    )
    everything = view([rule(i) for i in range(10)])
    guard.learn(everything, 10)
    plan = Plan(actions=tuple(delete(i) for i in range(10)), owned=10)
    assert guard.check(plan, everything, full=True).count(ActionKind.DELETE) == 10


def test_deletes_that_were_not_written_are_given_back_and_never_trip_the_budget():
    from kaput_not.controller.executor import ApplyResult, Failure
    from kaput_not.netmaker import errors

    guard = WriteGuard(SETTINGS, cluster=None, clock=FakeClock())
    everything = view([rule(i) for i in range(10)])
    guard.learn(everything, 10)
    refused = errors.ApiError("DELETE /api/v1/egress", status=500, server_message="db locked")
    for _ in range(20):  # the same 3 deletes, retried while Netmaker refuses them
        checked = guard.check(Plan(actions=(delete(0), delete(1), delete(2)), owned=10), everything)
        assert checked.count(ActionKind.DELETE) == 3
        charge = guard.spent(checked, everything)
        failures = tuple(Failure(a, refused) for a in checked.actions)
        guard.settle(charge, ApplyResult(failures=failures))
    assert not guard.deletes.tripped
    assert guard.deletes.spent() == 0
    # A delete whose outcome is unknown may have happened: it stays charged.
    checked = guard.check(Plan(actions=(delete(3),), owned=10), everything)
    unknown = errors.OutcomeUnknown("DELETE /api/v1/egress", "no complete answer")
    guard.settle(
        guard.spent(checked, everything),
        ApplyResult(failures=(Failure(checked.actions[0], unknown),)),
    )
    assert guard.deletes.spent() == 1


def test_a_re_create_that_was_refused_is_given_back():
    from kaput_not.controller.executor import ApplyResult, Failure
    from kaput_not.netmaker import errors

    guard = WriteGuard(SETTINGS, cluster=None, clock=FakeClock())
    rules = [rule(i) for i in range(10)]
    guard.learn(view(rules), 10)
    one_gone = view(rules[1:])
    refused = errors.ApiError("POST /api/v1/egress", status=500, server_message="db locked")
    for _ in range(10):  # the hand-deleted rule's re-create, retried while it is refused
        checked = guard.check(Plan(actions=(create(0),), owned=9), one_gone)
        assert checked.count(ActionKind.CREATE) == 1
        charge = guard.spent(checked, one_gone)
        guard.settle(charge, ApplyResult(failures=(Failure(checked.actions[0], refused),)))
    assert guard.recreates.spent() == 0
    assert not guard.recreates.tripped
