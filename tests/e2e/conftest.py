"""Fixtures of the end-to-end suite: the real control plane, Netmaker, and `kaput-not run`.

The peers come from environment variables that `scripts/e2e` (and `scripts/check`) set from
`scripts/build-peers` (see tests/peers.py): KAPUT_NOT_KUBE_APISERVER, KAPUT_NOT_ETCD,
KAPUT_NOT_NETMAKER and KAPUT_NOT_HELM. Without them the tests skip with one line, so a plain
`pytest` stays fast; with CI set, a missing peer fails instead, naming the peer and why.

One etcd and kube-apiserver serve the whole session; every test starts from a cluster without
nodes, gets a fresh real Netmaker server (its own sqlite database; it starts in well under a
second) and its own controller processes, and each Lease name is unique to its test. When a
test fails, the tail of every process it started is added to its report.
"""

from __future__ import annotations

import os
import sys
import uuid
from collections.abc import AsyncIterator, Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx2
import pytest
from prometheus_client.parser import text_string_to_metric_families

from kaput_not import config
from tests.contract.seeding import SeededHost, Seeder, poll
from tests.peers import peer

from .controlplane import (
    STOP_GRACE,
    ControlPlane,
    Kube,
    NetmakerServer,
    Process,
    StartError,
    free_port,
)

NETMAKER_USER = "kaput-not"
PROCESSES = pytest.StashKey[list[Process]]()
MARKER = "Managed by kaput-not (DO NOT EDIT): "


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    report = yield
    if report.failed:
        for process in item.stash.get(PROCESSES, []):
            report.sections.append((f"{process.name}: {process.log}", process.tail(40)))
    return report


def track(request: pytest.FixtureRequest, process: Process) -> Process:
    """Show this process's log tail if the test fails."""
    request.node.stash.setdefault(PROCESSES, []).append(process)
    return process


# ------------------------------------------------------------------ the cluster


@pytest.fixture(scope="session")
def control_plane(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ControlPlane]:
    apiserver, etcd = peer("kube-apiserver"), peer("etcd")
    directory = tmp_path_factory.mktemp("control-plane")
    try:
        plane = ControlPlane.start(
            etcd_binary=etcd, apiserver_binary=apiserver, directory=directory
        )
    except StartError as exc:
        failure = str(exc)
    else:
        failure = ""
    if failure:
        pytest.fail(f"e2e: {failure}", pytrace=False)
    yield plane
    plane.stop()


@pytest.fixture
async def kube(control_plane: ControlPlane) -> AsyncIterator[Kube]:
    """The admin client; the test starts and ends with no nodes in the cluster."""
    client = control_plane.kube()
    await client.delete_all_nodes()
    yield client
    await client.delete_all_nodes()
    await client.aclose()


@pytest.fixture
def lease_name() -> str:
    """A Lease name no other test uses (the API server lives for the whole session)."""
    return f"kaput-not-{uuid.uuid4().hex[:8]}"


# ------------------------------------------------------------------ Netmaker


@dataclass
class Mesh:
    """A real Netmaker server of this test's own, seeded only through its HTTP API."""

    server: NetmakerServer
    http: httpx2.AsyncClient
    seeder: Seeder
    username: str
    password: str

    async def network(self) -> str:
        return await self.seeder.network()

    async def host(self, name: str, *networks: str) -> SeededHost:
        return await self.seeder.host(networks, name=name)

    async def egresses(self, network: str) -> list[dict[str, Any]]:
        return await self.seeder.egresses(network)

    async def ours(self, network: str) -> list[dict[str, Any]]:
        """Rules whose description carries the kaput-not marker (any cluster scope)."""
        return [e for e in await self.egresses(network) if e["description"].startswith(MARKER)]

    async def call(self, method: str, path: str, **kwargs: Any) -> dict[str, Any]:
        answer = await self.http.request(method, path, headers=self.seeder.headers, **kwargs)
        assert answer.is_success, f"{method} {path}: {answer.status_code} {answer.text[:300]}"
        body: dict[str, Any] = answer.json()
        return body


@pytest.fixture(scope="session")
def netmaker_binary() -> str:
    return peer("netmaker")


@pytest.fixture
async def mesh(
    netmaker_binary: str, tmp_path: Path, request: pytest.FixtureRequest
) -> AsyncIterator[Mesh]:
    """A fresh real Netmaker (its own sqlite database) with its super-admin, for one test."""
    password = uuid.uuid4().hex
    try:
        server = NetmakerServer.start(
            netmaker_binary, tmp_path / "netmaker", master_key=uuid.uuid4().hex
        )
    except StartError as exc:
        failure = str(exc)
    else:
        failure = ""
    if failure:
        pytest.fail(f"e2e: {failure}", pytrace=False)
    track(request, server.process)
    try:
        async with httpx2.AsyncClient(base_url=server.url, timeout=30, trust_env=False) as http:
            seeder = Seeder(http, username=NETMAKER_USER, password=password)
            await seeder.ensure_admin()
            yield Mesh(server, http, seeder, NETMAKER_USER, password)
    finally:
        server.process.stop()


# ------------------------------------------------------------------ the controller


@dataclass
class Controller:
    """One `kaput-not run` process and its health port."""

    name: str
    process: Process
    port: int

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def get(self, path: str) -> httpx2.Response | None:
        """A GET on the health port; None while nothing listens."""
        async with httpx2.AsyncClient(timeout=5, trust_env=False) as http:
            try:
                return await http.get(f"{self.url}{path}")
            except httpx2.TransportError:
                return None

    async def fetch(self, path: str) -> httpx2.Response:
        """A GET on the health port, which must be listening."""
        answer = await self.get(path)
        assert answer is not None, f"{self.name} does not listen on {self.url}"
        return answer

    async def ready(self, within: float = 30.0) -> None:
        """Wait for /readyz to answer 200; fail with the log tail if the process exits."""

        async def probe() -> httpx2.Response | None:
            if not self.process.running():
                raise AssertionError(self.process.failure("exited before it was ready"))
            return await self.get("/readyz")

        await poll(
            probe,
            lambda r: r is not None and r.status_code == 200,
            what=f"{self.name} /readyz",
            deadline=within,
        )

    async def metrics(self) -> dict[str, float]:
        """Every sample as ``name{label="value",...}`` (labels sorted) -> value."""
        answer = await self.fetch("/metrics")
        assert answer.status_code == 200, f"{self.name} /metrics: {answer.status_code}"
        samples: dict[str, float] = {}
        for family in text_string_to_metric_families(answer.text):
            for sample in family.samples:
                labels = ",".join(f'{k}="{v}"' for k, v in sorted(sample.labels.items()))
                samples[f"{sample.name}{{{labels}}}" if labels else sample.name] = sample.value
        return samples


StartController = Callable[..., Controller]


def leader_flag(samples: Mapping[str, float]) -> float:
    """`leader_election_master_status` of a replica (one series, labelled with its Lease)."""
    [value] = [v for k, v in samples.items() if k.startswith("leader_election_master_status{")]
    return value


@pytest.fixture
def controllers(
    control_plane: ControlPlane,
    kube: Kube,
    mesh: Mesh,
    tmp_path: Path,
    request: pytest.FixtureRequest,
) -> Iterator[StartController]:
    """`start(name, **env)` runs `kaput-not run` configured only by environment variables.

    Defaults: the admin kubeconfig, this test's Netmaker, CACHE_TTL=1s, DELETE_GRACE=0.5s,
    leader election off, JSON logs, health on a free loopback port. Keyword arguments override
    or add variables; None removes one.

    Every process still running at the end gets SIGTERM (SIGKILL after 10 s) and must exit
    with 0, before the cluster's nodes are deleted (this fixture depends on `kube` for that).
    """
    del kube
    started: list[Controller] = []

    def start(name: str = "replica-a", **env: str | None) -> Controller:
        port = free_port()
        chosen: dict[str, str | None] = {
            "NETMAKER_API_URL": mesh.server.url,
            "NETMAKER_USERNAME": mesh.username,
            "NETMAKER_PASSWORD": mesh.password,
            "KUBECONFIG": str(control_plane.admin_kubeconfig),
            "CACHE_TTL": "1s",
            "DELETE_GRACE": "0.5s",
            "METRICS_ADDRESS": f"127.0.0.1:{port}",
            "LOG_FORMAT": "json",
            "LEADER_ELECTION_ENABLED": "false",
            "POD_NAME": name,
            **env,
        }
        settings = {k: v for k, v in chosen.items() if v is not None}
        run = sum(1 for c in started if c.name == name)
        process = Process(
            f"kaput-not-{name}" + (f"-{run + 1}" if run else ""),
            [sys.executable, "-m", "kaput_not", "run"],
            directory=tmp_path,
            env=controller_environment(settings),
        )
        controller = Controller(name, track(request, process).start(), port)
        started.append(controller)
        return controller

    yield start
    running = {c.process.name for c in started if c.process.running()}
    codes = {c.process.name: c.process.stop(STOP_GRACE) for c in started}  # reaps every one
    unclean = {name: code for name, code in codes.items() if name in running and code != 0}
    assert not unclean, f"controllers did not stop cleanly on SIGTERM: {unclean}"


def controller_environment(settings: Mapping[str, str]) -> dict[str, str]:
    """This environment without any variable `kaput-not run` reads, plus `settings`."""
    names = {name for name, _, _ in config.VARIABLES}
    inherited = {k: v for k, v in os.environ.items() if k not in names}
    return {**inherited, **settings}
