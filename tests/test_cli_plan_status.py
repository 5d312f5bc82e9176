"""Issue 20: `kaput-not plan` and `kaput-not status` on the command line: narrowed to the nodes
named, the output forms with their help, against both stand-ins."""

from __future__ import annotations

from tests.test_cli import _with_stand_ins, kaput_not


def _three_nodes(kube, nm) -> None:
    for i in (10, 2, 1):
        nm.state.add_host(f"big-{i}", ("mesh",))
        kube.state.create_node(f"big-{i}", pod_cidrs=(f"10.244.{i}.0/24",))


def test_status_and_plan_output_forms_have_help_text():
    status = kaput_not("status", "--help")
    assert status.returncode == 0
    assert "{table,wide,json}" in status.stdout
    assert "wide: each node's rules too" in status.stdout
    assert "only these Kubernetes nodes" in status.stdout
    plan = kaput_not("plan", "--help")
    assert plan.returncode == 0
    assert "{table,json}" in plan.stdout
    assert "a closing count" in plan.stdout


def test_status_narrowed_to_named_nodes_in_natural_order(tmp_path):
    done, _, _ = _with_stand_ins(
        tmp_path, ["status", "-o", "wide", "big-10", "big-2"], seed=_three_nodes
    )
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0].startswith("2 nodes: 0 in sync, 2 pending, 0 skipped; 0 rules of ours")
    assert [line.split()[0] for line in lines[1:]] == ["NODE", "big-2", "big-10"]


def test_plan_of_an_unknown_node_is_one_line_and_exit_1(tmp_path):
    done, _, _ = _with_stand_ins(tmp_path, ["plan", "big-1", "big-3"], seed=_three_nodes)
    assert done.returncode == 1, done.stdout
    assert done.stderr.strip().splitlines() == [
        "kaput-not plan: no Kubernetes node, nor rule of ours, is named big-3"
    ]
