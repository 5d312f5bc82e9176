"""The stack `kaput-not run` is tested against: the Kubernetes API stand-in and the Netmaker
emulator, both over real HTTP on loopback, and `app.run` started on them with settings from
variables only."""

from __future__ import annotations

import asyncio
import gc
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from kaput_not import config
from kaput_not.app import run as app
from kaput_not.core.egress import owned_by, parse_description
from kaput_not_standins.kube import KubeApiServer, kubeconfig_text
from kaput_not_standins.netmaker import NetmakerEmulator

USER, PASSWORD = "kaput-not", "run-test-password"
NO_SA = Path("/nonexistent/serviceaccount/namespace")


@dataclass
class Stack:
    kube: KubeApiServer
    nm: NetmakerEmulator
    kubeconfig: Path
    running: list[tuple[asyncio.Event, asyncio.Task[int]]] = field(default_factory=list)

    def settings(self, **env: str) -> config.Settings:
        base = {
            "NETMAKER_API_URL": self.nm.base_url,
            "NETMAKER_USERNAME": USER,
            "NETMAKER_PASSWORD": PASSWORD,
            "KUBECONFIG": str(self.kubeconfig),
            "CACHE_TTL": "0.5s",
            "RESYNC_PERIOD": "60s",
            "DELETE_GRACE": "0.2s",
            "METRICS_ADDRESS": "127.0.0.1:0",
            "LEADER_ELECTION_ENABLED": "false",
            "POD_NAME": "replica-a",
            "LOG_FORMAT": "text",
        }
        return config.load({**base, **env}, namespace_file=NO_SA)

    def start(self, settings: config.Settings) -> tuple[asyncio.Event, asyncio.Task[int]]:
        stop = asyncio.Event()
        task = asyncio.create_task(app.run(settings, stop))
        self.running.append((stop, task))
        return stop, task

    def rules(self) -> list[dict[str, object]]:
        return [
            e
            for e in self.nm.state.egresses()
            if owned_by(parse_description(str(e["description"])), None)
        ]

    def node(self, name: str, *cidrs: str, networks: tuple[str, ...] = ("mesh",)) -> None:
        self.nm.state.add_host(name, networks)
        self.kube.state.create_node(name, pod_cidrs=cidrs)


@pytest.fixture
async def stack(tmp_path: Path) -> AsyncIterator[Stack]:
    async with (
        KubeApiServer(bookmark_interval=0.2) as kube,
        NetmakerEmulator(username=USER, password=PASSWORD) as nm,
    ):
        nm.state.add_network("mesh", "100.64.0.0/16")
        kubeconfig = tmp_path / "kubeconfig"
        kubeconfig.write_text(kubeconfig_text(kube.base_url))
        s = Stack(kube, nm, kubeconfig)
        yield s
        for stop, _task in s.running:
            stop.set()
        await asyncio.gather(*(t for _, t in s.running), return_exceptions=True)
    gc.unfreeze()  # `run` freezes the heap after its first sync; the test process keeps its own


def ranges(stack: Stack) -> dict[object, object]:
    return {r["name"]: r["range"] for r in stack.rules()}
