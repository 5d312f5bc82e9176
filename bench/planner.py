"""Planner speed: one full pass and single-node passes over a converged mesh of N nodes.

Prints one JSON object. Usage: .venv/bin/python bench/planner.py [NODES]   (default 10000)
Each node is dual-stack in one network, so the mesh holds 2 x NODES rules.
"""

from __future__ import annotations

import json
import sys
import time

from kaput_not.core.egress import build_description, rule_name
from kaput_not.core.model import Egress, Host, KubeNode, NmNode
from kaput_not.core.planner import NetmakerView, PlanSettings, plan


def mesh(count: int) -> tuple[list[KubeNode], NetmakerView]:
    kube = [
        KubeNode(name=f"n{i}", pod_cidrs=(f"10.{i // 256}.{i % 256}.0/24", f"fd00:{i:x}::/64"))
        for i in range(count)
    ]
    rules = [
        Egress(
            id=f"e{i}-{j}",
            network="mesh",
            name=rule_name(k.name, j, 2),
            description=build_description(j),
            range=cidr,
            nat=False,
            status=True,
            nodes={f"m{i}": 500},
        )
        for i, k in enumerate(kube)
        for j, cidr in enumerate(k.pod_cidrs)
    ]
    view = NetmakerView(
        hosts=tuple(Host(id=f"h{i}", name=f"n{i}", node_ids=(f"m{i}",)) for i in range(count)),
        nodes=tuple(NmNode(id=f"m{i}", host_id=f"h{i}", network="mesh") for i in range(count)),
        egress={"mesh": rules},
    )
    return kube, view


def main(count: int) -> dict[str, object]:
    kube, view = mesh(count)
    settings = PlanSettings()
    started = time.perf_counter()
    full = plan(kube, view, settings)
    full_seconds = time.perf_counter() - started
    samples = min(count, 200)
    started = time.perf_counter()
    for k in kube[:samples]:
        one = plan([k], view, settings, only=k.name)
        assert one.empty
    per_node = (time.perf_counter() - started) / samples
    assert full.empty
    return {
        "nodes": count,
        "rules": 2 * count,
        "full_pass_seconds": round(full_seconds, 3),
        "node_pass_ms": round(per_node * 1000, 2),
    }


if __name__ == "__main__":
    print(json.dumps(main(int(sys.argv[1]) if len(sys.argv) > 1 else 10_000)))
