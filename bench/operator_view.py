"""What an operator reads at scale: `kaput-not plan` and `kaput-not status` on N nodes.

Runs on the in-process stand-ins (the Kubernetes API and the Netmaker emulator): applies once,
then drifts the cluster (three Kubernetes nodes gone, a rule's NAT edited by hand, a rule
deleted by hand, two nodes without a Netmaker host) and prints the head and the summary of
each command, as the installed program prints them.

    .venv/bin/python bench/operator_view.py --nodes 1000
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from kaput_not_standins.kube import KubeApiServer, kubeconfig_text
from kaput_not_standins.netmaker import NetmakerEmulator

PASSWORD = "operator-view"  # the emulator's, for this run only


def _run(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(  # noqa: S603 - the installed program, with our interpreter
        [sys.executable, "-m", "kaput_not", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
        check=False,
    )


def _show(env: dict[str, str], *args: str, head: int = 8, tail: int = 6) -> None:
    done = _run(env, *args)
    lines = done.stdout.splitlines()
    print(f"\n$ kaput-not {' '.join(args)}   (exit {done.returncode}, {len(lines)} lines)")
    if len(lines) > head + tail + 2:
        print("\n".join([*lines[:head], "  ...", *lines[-tail:]]))
    else:
        print("\n".join(lines))
    if done.stderr.strip():
        print("stderr:", done.stderr.strip())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nodes", type=int, default=1000)
    nodes = parser.parse_args().nodes
    with (
        KubeApiServer().run_in_thread() as kube,
        NetmakerEmulator(username="kaput-not", password=PASSWORD).run_in_thread() as nm,
    ):
        nm.state.add_network("mesh", "100.64.0.0/16")
        for i in range(1, nodes + 1):
            nm.state.add_host(f"big-{i}", ("mesh",))
            kube.state.create_node(f"big-{i}", pod_cidrs=(f"10.{i // 256}.{i % 256}.0/24",))
        config = Path(tempfile.mkdtemp()) / "kubeconfig"
        config.write_text(kubeconfig_text(kube.base_url))
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "PYTHONPATH": os.environ.get("PYTHONPATH", ""),
            "NETMAKER_API_URL": nm.base_url,
            "NETMAKER_USERNAME": "kaput-not",
            "NETMAKER_PASSWORD": PASSWORD,
            "KUBECONFIG": str(config),
            "POD_NAME": "operator-view",
        }
        _show(env, "plan", head=4, tail=3)
        _show(env, "plan", "--apply", head=0, tail=2)
        for i in (7, 70, 700):
            kube.state.delete_node(f"big-{i}")
        rules = {r["name"]: r for r in nm.state.egresses()}
        nm.state.update_egress_raw(str(rules["big-12 pods (1/1)"]["id"]), nat=True)
        nm.state.delete_egress_raw(str(rules["big-13 pods (1/1)"]["id"]))
        for i in (nodes + 1, nodes + 2):
            kube.state.create_node(f"big-{i}", pod_cidrs=(f"10.250.{i - nodes}.0/24",))
        _show(env, "plan")
        _show(env, "status")
        _show(env, "status", "-o", "wide", "big-12", "big-7")


if __name__ == "__main__":
    main()
