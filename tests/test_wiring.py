"""Issue 21 item 1, "one wiring": the write pipeline (cache, planner settings, guard, executor,
reconciler) is built in one function, `kaput_not.app.pipeline.write_pipeline`, which `run`,
`plan --apply` and the demo all use; the guard is no longer optional.

Written to run against the code before the change too (entry points reached through the CLI
and the long-standing `Reconciler` and `Executor`), so each fails there for its own reason.
"""

from __future__ import annotations

import asyncio
import gc
import inspect
import sys
from pathlib import Path
from typing import Any

import grimp
import pytest

from kaput_not import cli
from kaput_not.controller.executor import Executor
from kaput_not.controller.reconciler import Reconciler
from kaput_not_standins.kube import KubeApiServer, kubeconfig_text
from kaput_not_standins.netmaker import NetmakerEmulator
from tests.waiting import eventually

#: Where the one pipeline is built: the only place an Executor may come from.
PIPELINE = "kaput_not.app.pipeline.write_pipeline"


@pytest.fixture
def executors_built(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The function (module.name) that built each Executor while the test ran."""
    built: list[str] = []
    original = Executor.__init__

    def spy(self: Executor, *args: Any, **kwargs: Any) -> None:
        caller = sys._getframe(1)
        built.append(f"{caller.f_globals['__name__']}.{caller.f_code.co_name}")
        original(self, *args, **kwargs)

    monkeypatch.setattr(Executor, "__init__", spy)
    return built


def test_only_the_pipeline_imports_the_executor():
    """The import-linter contract's promise, with TYPE_CHECKING imports counted: only the
    wiring can build an Executor, and within it only pipeline.py."""
    graph = grimp.build_graph("kaput_not")
    importers = graph.find_modules_that_directly_import("kaput_not.controller.executor")
    assert importers == {"kaput_not.app.pipeline"}


def test_the_reconciler_has_no_guardless_mode():
    guard = inspect.signature(Reconciler.__init__).parameters["guard"]
    assert guard.default is inspect.Parameter.empty
    assert "None" not in str(guard.annotation)


def test_the_demo_writes_through_the_one_pipeline(
    executors_built: list[str], capsys: pytest.CaptureFixture[str]
):
    assert cli.main(["demo", "--nodes", "3", "--json"]) == 0
    assert '"converged": true' in capsys.readouterr().out
    assert executors_built == [PIPELINE]


def test_plan_apply_writes_through_the_one_pipeline(
    executors_built: list[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
):
    with (
        KubeApiServer().run_in_thread() as kube,
        NetmakerEmulator(username="kaput-not", password="pw").run_in_thread() as nm,
    ):
        nm.state.add_network("mesh", "100.64.0.0/16")
        nm.state.add_host("w1", ("mesh",))
        kube.state.create_node("w1", pod_cidrs=("10.244.1.0/24",))
        kubeconfig = tmp_path / "kubeconfig"
        kubeconfig.write_text(kubeconfig_text(kube.base_url))
        for name, value in {
            "NETMAKER_API_URL": nm.base_url,
            "NETMAKER_USERNAME": "kaput-not",
            "NETMAKER_PASSWORD": "pw",
            "KUBECONFIG": str(kubeconfig),
            "POD_NAME": "laptop",
            "LOG_FORMAT": "text",
        }.items():
            monkeypatch.setenv(name, value)
        assert cli.main(["plan", "--apply"]) == 0
        assert [e["range"] for e in nm.state.egresses()] == ["10.244.1.0/24"]
    assert executors_built == [PIPELINE]


async def test_run_writes_through_the_one_pipeline(executors_built: list[str], tmp_path: Path):
    from kaput_not import config
    from kaput_not.app import run

    async with (
        KubeApiServer() as kube,
        NetmakerEmulator(username="kaput-not", password="pw") as nm,
    ):
        nm.state.add_network("mesh", "100.64.0.0/16")
        nm.state.add_host("w1", ("mesh",))
        kube.state.create_node("w1", pod_cidrs=("10.244.1.0/24",))
        kubeconfig = tmp_path / "kubeconfig"
        kubeconfig.write_text(kubeconfig_text(kube.base_url))
        settings = config.load(
            {
                "NETMAKER_API_URL": nm.base_url,
                "NETMAKER_USERNAME": "kaput-not",
                "NETMAKER_PASSWORD": "pw",
                "KUBECONFIG": str(kubeconfig),
                "METRICS_ADDRESS": "127.0.0.1:0",
                "LEADER_ELECTION_ENABLED": "false",
                "POD_NAME": "laptop",
            },
            namespace_file=tmp_path / "no-service-account",
        )
        stop = asyncio.Event()
        running = asyncio.create_task(run.run(settings, stop))
        await eventually(lambda: len(nm.state.egresses()) == 1, what="the rule of w1")
        stop.set()
        assert await running == 0
    gc.unfreeze()  # `run` freezes the heap after its first sync; the test process keeps its own
    assert executors_built == [PIPELINE]
