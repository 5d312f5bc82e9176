"""End-to-end speed of `kaput-not run` against a real Netmaker, kube-apiserver and etcd.

What it measures: one `kaput-not run` process (a child, configured only by environment
variables, leader election off) starting against a freshly seeded real Netmaker v1.5.1 (CE,
sqlite, no broker) and a real kube-apiserver backed by etcd, all on loopback, until every
network holds exactly the desired rules. Everything is observed from outside the controller:

- wall time from the controller's start to convergence, found by polling
  ``GET /api/v1/egress?network=<net>`` directly on Netmaker every 0.5 s until each network
  holds exactly 2 x N rules named ``bn-<i> pods (1/2)`` and ``(2/2)``, with the node's pod
  CIDRs as ranges and the right Netmaker node in ``nodes``;
- the controller's CPU seconds (utime + stime of /proc/<pid>/stat at convergence) and its peak
  RSS (VmHWM of /proc/<pid>/status);
- when the proxy passed on the first and the last egress write (seconds after the start, so
  ``writes_per_second`` is the write rate, finer than the 0.5 s convergence polls);
- the time spent seeding, reported apart, and this process's own CPU while the controller ran
  (the proxy and the polling share the machine with the controller and the servers).

How requests are counted: the controller talks to a small reverse proxy on loopback (the
project's streaming HTTP/1.1 server, ``kaput_not_standins.http``, with keep-alive), which
forwards each request to Netmaker over one pooled httpx2 client and counts it per
``METHOD path`` (query string dropped). ``reads`` are all GETs, ``writes`` all POST, PUT and
DELETE on ``/api/v1/egress``, ``logins`` the ``POST /api/users/adm/authenticate`` calls. The
benchmark's own polling goes around the proxy and is not counted.

Seeding goes through the real HTTP APIs only, 8 calls in flight per server (Netmaker and the
API server are seeded at the same time): the super-admin, K networks with a /16 each
(100.<64+k>.0.0/16), N hosts ``bn-<i>`` (unique MAC addresses) each joined to every network,
and N dual-stack Kubernetes Nodes with pod CIDRs ``10.<i//256>.<i%256>.0/24`` and
``fd00:<i:x>::/64``.

The server's own ceiling, in the same run (issue 19): before the controller starts, as many
raw ``POST /api/v1/egress`` as the sync will write (foreign rules, up to 2,000), at the
controller's concurrency, straight to Netmaker and through the proxy, then ``DELETE`` d again;
``write_fraction`` is our write rate over the ceiling on the path our writes took (through the
proxy, or straight with ``--direct``). Netmaker's own CPU seconds (its
/proc/<pid>/stat) are reported for the ceiling and for the sync. ``--curve 1,2,4,8,16`` runs the
ceiling and a full initial sync at each concurrency on one seeded stack (our rules wiped
between runs), for choosing NETMAKER_CONCURRENCY. ``--direct``: the controller talks to
Netmaker without the proxy (which costs its own CPU on a small machine), and its writes are
timed from its own JSON log (one INFO line per write, millisecond times); compare with
``write_fraction_direct`` then.

Faults (issue 19): ``--fault kill-netmaker --at 0.3,0.7 --down 4`` kills Netmaker (SIGKILL) once
the proxy has passed that fraction of the writes the sync needs, starts it again ``--down``
seconds later on the same database and port, and goes on; ``--fault kill-apiserver`` does the
same to the kube-apiserver (etcd stays; the writes go on from the informer's store meanwhile,
and once it is back one Node is deleted: its rules going shows the watch resumed and deletes
work, ``deletes_before_node_delete`` that none was sent before; DELETE_GRACE is 1 s in these
runs). Three foreign rules are seeded first. Reported per
outage: when it came back, the writes between its return and the next outage (or convergence),
``recovery_seconds`` over that span and its budget (2 s plus those writes at the ceiling
measured through the proxy, the path our writes take), and
the controller's log lines and WARNING lines from the kill to the next outage or the end; then
converged, duplicates, foreign rules touched, deletes sent, log lines per 1,000 writes.

Usage: .venv/bin/python bench/real_netmaker.py --nodes N [--networks K] [--concurrency C]
       [--controller ours|go|both] [--timeout SECONDS] [--keep] [--json]
       [--curve 1,2,4,8,16] [--fault kill-netmaker|kill-apiserver --at 0.3,0.7 --down 4]
``--concurrency`` sets NETMAKER_CONCURRENCY (unset: the controller's default). ``--controller
go`` runs the Go original instead (``scripts/build-peers kaput-not-go``, or KAPUT_NOT_GO),
configured with its own variables only, as ``bench/compare.py`` runs it; ``both`` runs the Go
original, then ours, each on a freshly started and seeded stack, and adds the ratios Go / ours.
``--json`` prints one JSON object; exit code 0 when (ours) converged, 1 otherwise or when
something could not start.

Needs the real peers: the binaries named by KAPUT_NOT_KUBE_APISERVER, KAPUT_NOT_ETCD and
KAPUT_NOT_NETMAKER, or, for any that is unset, what ``scripts/build-peers`` provides (it reuses
the binaries cached under ~/.cache/kaput-not/peers). Processes, data and logs live in one
temporary directory, removed at the end unless ``--keep``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime
import ipaddress
import json
import math
import os
import shutil
import sys
import tempfile
import time
import urllib.parse
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import httpx2
import msgspec

from kaput_not import config
from kaput_not.core.model import EgressSpec
from kaput_not.netmaker import wire
from kaput_not_standins.http.messages import Request, Response
from kaput_not_standins.http.server import HttpServer

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from compare import GO_NAME, go_binary, go_env, ratio  # noqa: E402
from scale import (  # noqa: E402
    EGRESS,
    LOGIN,
    WRITE_METHODS,
    BenchError,
    cpu_seconds,
    finish,
    peak_rss_mb,
)
from tests.contract.seeding import Seeder, enrollment_token, poll, register_body  # noqa: E402
from tests.e2e.controlplane import (  # noqa: E402
    ControlPlane,
    Kube,
    NetmakerServer,
    Process,
    StartError,
    _wait_for_apiserver,
    free_port,
)

import peers  # noqa: E402 - bench/peers.py, beside this script

PEERS = {
    "kube-apiserver": "KAPUT_NOT_KUBE_APISERVER",
    "etcd": "KAPUT_NOT_ETCD",
    "netmaker": "KAPUT_NOT_NETMAKER",
}
USERNAME = "kaput-not-bench"
#: The most raw writes the ceiling takes (each is deleted again before the controller starts).
CEILING_WRITES = 2000
FOREIGN_RULES = 3
OURS = "Managed by kaput-not"
SEED_IN_FLIGHT = 8
POLL_INTERVAL = 0.5
# Not forwarded: hop-by-hop headers, and what the proxy's own client sets.
NOT_FORWARDED = frozenset(
    {
        "host",
        "content-length",
        "connection",
        "keep-alive",
        "transfer-encoding",
        "te",
        "upgrade",
        "proxy-connection",
        "accept-encoding",
    }
)


# ------------------------------------------------------------------ peers


def find_peers() -> dict[str, str]:
    try:
        return peers.find_peers(PEERS)
    except peers.PeerMissing as exc:
        raise BenchError(str(exc)) from exc


# ------------------------------------------------------------------ the counting proxy


@dataclass
class Endpoint:
    """What the proxy saw of one ``METHOD path``: calls and Netmaker's time to answer."""

    count: int = 0
    seconds: float = 0.0
    slowest: float = 0.0


@dataclass
class CountingProxy:
    """A reverse proxy to Netmaker that counts every request passing through it."""

    upstream: str
    endpoints: dict[str, Endpoint] = field(default_factory=dict)
    failures: Counter[str] = field(default_factory=Counter)  # "METHOD path -> status"
    origin: float = 0.0  # monotonic time the write timestamps are relative to
    first_write: float | None = None
    last_write: float | None = None
    ok_writes: int = 0
    write_times: list[float] = field(default_factory=list)
    #: (writes, event): each event is set once the proxy has passed that many writes.
    thresholds: list[tuple[int, asyncio.Event]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._client = httpx2.AsyncClient(
            base_url=self.upstream,
            timeout=httpx2.Timeout(120.0),
            limits=httpx2.Limits(max_connections=64, max_keepalive_connections=64),
            trust_env=False,
        )
        self._server = HttpServer(self._handle, host="127.0.0.1", port=0)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.port}"

    @property
    def connections(self) -> int:
        """Connections the controller opened to the proxy (few means keep-alive works)."""
        return self._server.connections_accepted

    async def start(self) -> None:
        await self._server.start()

    async def stop(self) -> None:
        await self._server.stop()
        await self._client.aclose()

    def totals(self) -> dict[str, Any]:
        counts = {key: e.count for key, e in sorted(self.endpoints.items())}
        return {
            "reads": sum(n for key, n in counts.items() if key.startswith("GET ")),
            "writes": sum(
                n
                for key, n in counts.items()
                if key.split(" ", 1)[0] in WRITE_METHODS and key.split(" ", 1)[1] == EGRESS
            ),
            "logins": counts.get(LOGIN, 0),
            "requests": counts,
        }

    def latency_ms(self) -> dict[str, dict[str, float]]:
        return {
            key: {
                "mean": round(1000 * e.seconds / e.count, 1),
                "max": round(1000 * e.slowest, 1),
            }
            for key, e in sorted(self.endpoints.items())
            if e.count
        }

    async def _handle(self, request: Request) -> Response:
        key = f"{request.method} {request.path}"
        target = urllib.parse.quote(request.path, safe="/:@!$&'()*+,;=-._~")
        if request.query:
            pairs = [(name, v) for name, values in request.query.items() for v in values]
            target += "?" + urllib.parse.urlencode(pairs)
        headers = {k: v for k, v in request.headers.items() if k not in NOT_FORWARDED}
        started = time.monotonic()
        try:
            answer = await self._client.request(
                request.method, target, content=request.body or None, headers=headers
            )
        except httpx2.HTTPError as exc:
            self._record(key, started)
            self.failures[f"{key} -> {type(exc).__name__}"] += 1
            return Response(502, f"proxy: {type(exc).__name__}".encode(), "text/plain")
        self._record(key, started)
        if not answer.is_success:
            self.failures[f"{key} -> {answer.status_code}"] += 1
        elif request.method in WRITE_METHODS and request.path == EGRESS:
            self.ok_writes += 1
            self.write_times.append(time.monotonic() - self.origin)
            for count, reached in self.thresholds:
                if self.ok_writes >= count:
                    reached.set()
            now = time.monotonic() - self.origin
            self.first_write = now if self.first_write is None else self.first_write
            self.last_write = now
        return Response(answer.status_code, answer.content, answer.headers.get("content-type"))

    def _record(self, key: str, started: float) -> None:
        took = time.monotonic() - started
        endpoint = self.endpoints.setdefault(key, Endpoint())
        endpoint.count += 1
        endpoint.seconds += took
        endpoint.slowest = max(endpoint.slowest, took)


# ------------------------------------------------------------------ seeding


def node_name(i: int) -> str:
    return f"bn-{i}"


def pod_cidrs(i: int) -> tuple[str, str]:
    """Node i's pod CIDRs, IPv4 then IPv6, in canonical form."""
    return f"10.{i // 256}.{i % 256}.0/24", str(ipaddress.ip_network(f"fd00:{i:x}::/64"))


async def bounded(count: int, work: Callable[[int], Awaitable[None]]) -> None:
    """``work(i)`` for i in range(count), SEED_IN_FLIGHT at a time; the first failure stops all."""
    items = iter(range(count))

    async def worker() -> None:
        for i in items:
            await work(i)

    async with asyncio.TaskGroup() as group:
        for _ in range(min(SEED_IN_FLIGHT, count)):
            group.create_task(worker())


def _check(answer: httpx2.Response, call: str) -> None:
    if not answer.is_success:
        raise BenchError(f"seeding: {call} answered {answer.status_code}: {answer.text[:200]}")


async def seed_netmaker(
    http: httpx2.AsyncClient, seeder: Seeder, nodes: int, networks: list[str]
) -> dict[str, str]:
    """Networks, then hosts joined to every network; returns host id per host name."""
    for k, net in enumerate(networks):
        answer = await http.post(
            "/api/networks",
            json={"netid": net, "addressrange": f"100.{64 + k}.0.0/16"},
            headers=seeder.headers,
        )
        _check(answer, "POST /api/networks")
    token = enrollment_token(str((await seeder.key([]))["value"]))
    host_ids: dict[str, str] = {}

    async def host(i: int) -> None:
        body = register_body(node_name(i))
        _check(await seeder.register(token, body), "POST /api/v1/host/register")
        host_id = str(body["id"])
        for net in networks:
            joined = await http.post(f"/api/hosts/{host_id}/networks/{net}", headers=seeder.headers)
            _check(joined, "POST /api/hosts/{id}/networks/{net}")
        host_ids[node_name(i)] = host_id

    await bounded(nodes, host)
    return host_ids


async def seed_kube(kube: Kube, nodes: int) -> None:
    async def node(i: int) -> None:
        await kube.create_node(node_name(i), *pod_cidrs(i))

    await bounded(nodes, node)


Slot = tuple[str, ipaddress.IPv4Network | ipaddress.IPv6Network, tuple[str, ...]]


async def expected_rules(
    http: httpx2.AsyncClient,
    seeder: Seeder,
    networks: list[str],
    host_ids: dict[str, str],
    nodes: int,
) -> dict[str, set[Slot]]:
    """Per network, the (name, range, node ids) of every rule the controller must make."""
    listing = await http.get("/api/nodes", headers=seeder.headers)
    _check(listing, "GET /api/nodes")
    node_ids = {(n["hostid"], n["network"]): str(n["id"]) for n in listing.json() or []}
    expected: dict[str, set[Slot]] = {net: set() for net in networks}
    for i in range(nodes):
        host_id = host_ids[node_name(i)]
        for network, slots in expected.items():
            node_id = node_ids[(host_id, network)]
            for j, cidr in enumerate(pod_cidrs(i)):
                name = f"{node_name(i)} pods ({j + 1}/2)"
                slots.add((name, ipaddress.ip_network(cidr), (node_id,)))
    return expected


def slot(rule: dict[str, Any]) -> Slot | None:
    try:
        network = ipaddress.ip_network(str(rule.get("range")), strict=False)
    except ValueError:
        return None
    return str(rule.get("name")), network, tuple(sorted(rule.get("nodes") or {}))


# ------------------------------------------------------------------ watching the controller


@dataclass(frozen=True)
class Progress:
    converged: bool
    detail: str


class ControllerExited(Exception):
    pass


def log_levels(log: Path) -> Counter[str]:
    levels: Counter[str] = Counter()
    with contextlib.suppress(FileNotFoundError):
        for line in log.read_text(errors="replace").splitlines():
            try:
                levels[str(json.loads(line).get("level", "?"))] += 1
            except (ValueError, AttributeError):
                levels["unparsed"] += 1
    return levels


# ------------------------------------------------------------------ the run


@dataclass
class Settings:
    nodes: int
    networks: int
    concurrency: int | None
    timeout: float
    keep: bool
    controller: str = "ours"  # or "go": the Go original
    go_binary: str = ""  # the Go original's binary, found before any seeding
    image: str = ""  # ours from this container image (podman) instead of a host process
    curve: tuple[int, ...] = ()  # concurrencies to run one after the other on one stack
    fault: str | None = None  # kill-netmaker, kill-apiserver
    at: tuple[float, ...] = (0.3, 0.7)
    down: float = 4.0
    #: The controller talks to Netmaker directly; its writes are timed from its own log.
    direct: bool = False


# ------------------------------------------------------------------ the server's ceiling


def _ceiling_spec(network: str, node_id: str, i: int, description: str) -> dict[str, Any]:
    spec = EgressSpec(
        network=network,
        name=f"ceiling {i}",
        description=description,
        range=f"172.{16 + i // 65536}.{(i // 256) % 256}.{i % 256}/32",
        nat=False,
        status=True,
        nodes={node_id: 500},
    )
    built = msgspec.to_builtins(wire.egress_request(spec))
    assert isinstance(built, dict)
    return built


async def raw_writes(
    url: str,
    headers: dict[str, str],
    network: str,
    node_id: str,
    count: int,
    concurrency: int,
    description: str = "ceiling probe (not kaput-not's)",
    keep: bool = False,
) -> dict[str, Any]:
    """`count` raw creates at `concurrency`, then (unless `keep`) as many deletes; rates."""
    async with httpx2.AsyncClient(
        base_url=url,
        timeout=120,
        trust_env=False,
        limits=httpx2.Limits(max_connections=concurrency, max_keepalive_connections=concurrency),
    ) as client:
        made: list[dict[str, Any]] = []
        bodies = iter(range(count))

        async def create() -> None:
            for i in bodies:
                answer = await client.post(
                    EGRESS, json=_ceiling_spec(network, node_id, i, description), headers=headers
                )
                _check(answer, "ceiling POST /api/v1/egress")
                made.append(answer.json()["Response"])

        started = time.monotonic()
        await asyncio.gather(*(create() for _ in range(concurrency)))
        created = time.monotonic() - started
        result: dict[str, Any] = {"writes": count, "post_per_second": round(count / created, 1)}
        if keep:
            result["made"] = made
            return result
        ids = iter([str(r["id"]) for r in made])

        async def delete() -> None:
            for egress_id in ids:
                answer = await client.delete(EGRESS, params={"id": egress_id}, headers=headers)
                _check(answer, "ceiling DELETE /api/v1/egress")

        started = time.monotonic()
        await asyncio.gather(*(delete() for _ in range(concurrency)))
        result["delete_per_second"] = round(count / (time.monotonic() - started), 1)
        return result


def default_concurrency() -> int:
    default = config.Netmaker.__dataclass_fields__["concurrency"].default
    assert isinstance(default, int)
    return default


def netmaker_cpu(netmaker: NetmakerServer) -> float:
    return cpu_seconds(netmaker.process.popen.pid)


async def bench(
    settings: Settings, plane: ControlPlane, netmaker: NetmakerServer, workdir: Path
) -> dict[str, Any]:
    """Seed once; then one controller run per concurrency (one, or the `--curve`)."""
    password = uuid.uuid4().hex
    networks = [f"bench{k}" for k in range(settings.networks)]
    kube = plane.kube()
    async with httpx2.AsyncClient(
        base_url=netmaker.url,
        timeout=120,
        trust_env=False,
        limits=httpx2.Limits(max_connections=32),
    ) as http:
        try:
            seeder = Seeder(http, username=USERNAME, password=password)
            seeded = time.monotonic()
            await seeder.ensure_admin()
            async with asyncio.TaskGroup() as group:
                hosts = group.create_task(seed_netmaker(http, seeder, settings.nodes, networks))
                group.create_task(seed_kube(kube, settings.nodes))
            expected = await expected_rules(http, seeder, networks, hosts.result(), settings.nodes)
            seed_seconds = time.monotonic() - seeded
            # Any Netmaker node of the first network: the raw rules route through it.
            node_id = next(iter(expected[networks[0]]))[2][0]
            foreign = await raw_writes(
                netmaker.url,
                seeder.headers,
                networks[0],
                node_id,
                FOREIGN_RULES,
                1,
                description="hand-made (foreign)",
                keep=True,
            )
            stage = _Stage(settings, plane, netmaker, workdir, http, seeder, password)
            stage.expected, stage.node_id, stage.foreign = expected, node_id, foreign["made"]
            runs = []
            for concurrency in settings.curve or (settings.concurrency,):
                runs.append(await stage.one_run(concurrency))
                if len(runs) < len(settings.curve):
                    await stage.wipe()
        finally:
            await kube.aclose()
    result = runs[-1]
    result["seed_seconds"] = round(seed_seconds, 1)
    if settings.curve:
        result["curve"] = [{key: run.get(key) for key in CURVE_KEYS} for run in runs]
    return result


#: What `--curve` reports per concurrency.
CURVE_KEYS = (
    "concurrency",
    "converge_seconds",
    "first_write_seconds",
    "writes_per_second",
    "ceiling_direct_per_second",
    "ceiling_proxied_per_second",
    "write_fraction",
    "netmaker_cpu_seconds",
    "netmaker_cpu_per_1000_writes",
    "controller_cpu_seconds",
)


@dataclass
class _Outage:
    """One fault: when (seconds after the controller's start) and what the proxy had passed."""

    killed: float
    writes_at_kill: int
    log_at_kill: int
    back: float = 0.0
    writes_at_back: int = 0


@dataclass
class _Stage:
    settings: Settings
    plane: ControlPlane
    netmaker: NetmakerServer
    workdir: Path
    http: httpx2.AsyncClient
    seeder: Seeder
    password: str
    expected: dict[str, set[Slot]] = field(default_factory=dict)
    node_id: str = ""
    foreign: list[dict[str, Any]] = field(default_factory=list)
    #: The run's container (with --image) and our /readyz address, set with its process.
    container: str = ""
    metrics_address: str = ""

    async def rules(self) -> dict[str, list[dict[str, Any]]]:
        found: dict[str, list[dict[str, Any]]] = {}
        for net in self.expected:
            answer = await self.http.get(
                EGRESS, params={"network": net}, headers=self.seeder.headers
            )
            _check(answer, "GET /api/v1/egress")
            found[net] = answer.json().get("Response") or []
        return found

    async def wipe(self) -> None:
        """Delete our rules, so the next run starts from none (foreign rules stay)."""
        ids = [
            str(r["id"])
            for rules in (await self.rules()).values()
            for r in rules
            if str(r.get("description", "")).startswith(OURS)
        ]
        pending = iter(ids)

        async def delete() -> None:
            for egress_id in pending:
                answer = await self.http.delete(
                    EGRESS, params={"id": egress_id}, headers=self.seeder.headers
                )
                _check(answer, "DELETE /api/v1/egress")

        await asyncio.gather(*(delete() for _ in range(8)))

    async def ceiling(self, concurrency: int, proxy: CountingProxy) -> dict[str, Any]:
        """The server's own write rate at `concurrency`: straight, then through the proxy."""
        count = min(CEILING_WRITES, sum(len(s) for s in self.expected.values()))
        net = next(iter(self.expected))
        # A warm-up first (connections, the database's pages), not counted.
        await raw_writes(
            self.netmaker.url, self.seeder.headers, net, self.node_id, min(count, 100), concurrency
        )
        cpu = netmaker_cpu(self.netmaker)
        direct = await raw_writes(
            self.netmaker.url, self.seeder.headers, net, self.node_id, count, concurrency
        )
        cpu = netmaker_cpu(self.netmaker) - cpu
        proxied = await raw_writes(
            proxy.url, self.seeder.headers, net, self.node_id, count, concurrency
        )
        proxy.endpoints.clear()  # the controller's requests only, from here on
        proxy.failures.clear()
        proxy.ok_writes = 0
        proxy.write_times.clear()
        proxy.first_write = proxy.last_write = None
        return {
            "ceiling_writes": count,
            "ceiling_direct_per_second": direct["post_per_second"],
            "ceiling_direct_delete_per_second": direct["delete_per_second"],
            "ceiling_proxied_per_second": proxied["post_per_second"],
            "ceiling_netmaker_cpu_seconds": round(cpu, 2),
        }

    def controller_process(self, proxy: CountingProxy, concurrency: int | None) -> Process:
        go = self.settings.controller == "go"
        kubeconfig = str(self.plane.admin_kubeconfig)
        if go:
            env = go_env(proxy.url, USERNAME, self.password, kubeconfig)
        else:
            env = {k: v for k, v in os.environ.items() if k not in _controller_variables()}
            env.update(
                NETMAKER_API_URL=self.netmaker.url if self.settings.direct else proxy.url,
                NETMAKER_USERNAME=USERNAME,
                NETMAKER_PASSWORD=self.password,
                KUBECONFIG=kubeconfig,
                LEADER_ELECTION_ENABLED="false",
                METRICS_ADDRESS=f"127.0.0.1:{free_port()}",
                LOG_FORMAT="json",
                LOG_LEVEL="info",
                # A Lease of its own per run: the guard's memory of the last run (whose rules
                # `--curve` wiped) would hold this run's creates as re-creates, rightly.
                LEADER_ELECTION_ID=f"kaput-not-bench-{uuid.uuid4().hex[:8]}",
            )
            if self.settings.fault == "kill-apiserver":  # a node is deleted after its return
                env["DELETE_GRACE"] = "1s"
            if concurrency is not None:
                env["NETMAKER_CONCURRENCY"] = str(concurrency)
        name = GO_NAME if go else f"kaput-not-c{concurrency or 'default'}"
        command = [self.settings.go_binary] if go else [sys.executable, "-m", "kaput_not", "run"]
        self.container = ""
        self.metrics_address = "" if go else env["METRICS_ADDRESS"]
        if self.settings.image and not go:
            self.container = f"kaput-not-bench-{uuid.uuid4().hex[:6]}"
            command = image_command(
                self.settings.image, self.container, env, self.plane, self.workdir
            )
        return Process(
            name,
            command,
            directory=self.workdir,
            env=None if self.container else env,
            cwd=ROOT,
        )

    async def observe(self, controller: Process) -> Progress:
        if not controller.running():
            raise ControllerExited(controller.failure("exited"))
        for net, want in self.expected.items():
            try:
                answer = await self.http.get(
                    EGRESS, params={"network": net}, headers=self.seeder.headers
                )
            except httpx2.HTTPError as exc:
                return Progress(False, f"{net}: {type(exc).__name__}")
            if not answer.is_success:
                return Progress(False, f"{net}: HTTP {answer.status_code}")
            rules = [
                r
                for r in answer.json().get("Response") or []
                if str(r.get("description", "")).startswith(OURS)
            ]
            if len(rules) != len(want) or {slot(r) for r in rules} != want:
                return Progress(False, f"{net}: {len(rules)} of {len(want)} rules")
        return Progress(True, "")

    async def faults(
        self, proxy: CountingProxy, controller: Process, outages: list[_Outage]
    ) -> None:
        """Kill the chosen server at each `--at` fraction of the writes, start it again."""
        total = sum(len(s) for s in self.expected.values())
        for fraction in self.settings.at:
            reached = asyncio.Event()
            proxy.thresholds.append((math.ceil(fraction * total), reached))
            await reached.wait()
            outage = _Outage(
                time.monotonic() - proxy.origin, proxy.ok_writes, _size(controller.log)
            )
            outages.append(outage)
            if self.settings.fault == "kill-netmaker":
                self.netmaker.process.kill()
                await asyncio.sleep(self.settings.down)
                await asyncio.to_thread(self.netmaker.restart)
            else:
                self.plane.apiserver.kill()
                await asyncio.sleep(self.settings.down)
                self.plane.apiserver.start()
                await asyncio.to_thread(
                    _wait_for_apiserver, self.plane.apiserver, self.plane.url, self.plane.pki
                )
            outage.back = time.monotonic() - proxy.origin
            outage.writes_at_back = proxy.ok_writes

    async def after_apiserver(
        self, fault_task: asyncio.Task[None], proxy: CountingProxy, controller: Process
    ) -> dict[str, Any]:
        """The writes went on while the API server was away (from the informer's store); once
        it is back, one node is deleted: its rules going shows the watch resumed (or relisted)
        and deletes work again; none was sent before."""
        await asyncio.wait_for(fault_task, 120)
        deletes_before = proxy.endpoints.get(f"DELETE {EGRESS}", Endpoint()).count
        kube = self.plane.kube()
        try:
            started = time.monotonic()
            await kube.delete_node(node_name(0))
            gone = f"{node_name(0)} pods ("

            async def check() -> Progress:
                if not controller.running():
                    raise ControllerExited(controller.failure("exited"))
                left = [r for rules in (await self.rules()).values() for r in rules]
                return Progress(not any(str(r.get("name")).startswith(gone) for r in left), "")

            await poll(check, lambda p: p.converged, what="the node's rules deleted", deadline=60)
            took = time.monotonic() - started
        finally:
            await kube.aclose()
        return {
            "deletes_before_node_delete": deletes_before,
            "node_delete_after_return_seconds": round(took, 2),
            "deletes_after_node_delete": proxy.endpoints.get(f"DELETE {EGRESS}", Endpoint()).count
            - deletes_before,
        }

    async def one_run(self, concurrency: int | None) -> dict[str, Any]:
        settings = self.settings
        proxy = CountingProxy(self.netmaker.url)
        await proxy.start()
        controller: Process | None = None
        outages: list[_Outage] = []
        fault_task: asyncio.Task[None] | None = None
        try:
            used = concurrency if concurrency is not None else default_concurrency()
            ceiling = await self.ceiling(used, proxy)
            controller = self.controller_process(proxy, concurrency)
            proxy.origin = time.monotonic()
            origin_wall = time.time()
            own_cpu = time.process_time()
            nm_cpu = netmaker_cpu(self.netmaker)
            controller.start()
            pid = controller.popen.pid
            ready: asyncio.Task[float | None] | None = None
            if self.metrics_address:
                ready = asyncio.create_task(ready_after(self.metrics_address, proxy.origin))
            if self.container:
                pid = await container_pid(self.container)
            if settings.fault:
                fault_task = asyncio.create_task(self.faults(proxy, controller, outages))
            running = controller

            async def observe() -> Progress:
                return await self.observe(running)

            converged, detail = True, ""
            try:
                await poll(
                    observe,
                    lambda p: p.converged,
                    what="convergence",
                    deadline=settings.timeout,
                    interval=POLL_INTERVAL if not settings.fault else 0.05,
                )
            except AssertionError as exc:  # poll gave up
                converged, detail = False, str(exc)
            except ControllerExited as exc:
                converged, detail = False, str(exc)
            took = time.monotonic() - proxy.origin
            own_cpu = time.process_time() - own_cpu
            # After a restart the server is a new process: its CPU says nothing of the sync.
            restarted = bool(outages) and settings.fault == "kill-netmaker"
            nm_used = None if restarted else netmaker_cpu(self.netmaker) - nm_cpu
            counts = proxy.totals()
            first_write, last_write = proxy.first_write, proxy.last_write
            ok_writes = proxy.ok_writes
            after_api: dict[str, Any] = {}
            if settings.fault == "kill-apiserver" and converged and fault_task is not None:
                after_api = await self.after_apiserver(fault_task, proxy, controller)
            if fault_task is not None and not fault_task.done():
                fault_task.cancel()  # converged before the last fault fired
            if settings.direct:  # no write passed the proxy: the controller's log times them
                ok_writes, first_write, last_write = _logged_writes(controller.log, origin_wall)
                counts["writes"] = ok_writes
            ready_seconds = None
            if ready is not None:
                # /readyz may turn 200 a moment after the last write is seen.
                with contextlib.suppress(TimeoutError):
                    ready_seconds = await asyncio.wait_for(ready, READY_WAIT if converged else 0.1)
            alive = controller.running()
            cpu = cpu_seconds(pid) if alive else None
            rss = peak_rss_mb(pid) if alive else None
            found = await self.rules()
            log_end = _size(controller.log)
        finally:
            if fault_task is not None:
                fault_task.cancel()
                await asyncio.gather(fault_task, return_exceptions=True)
            exit_code = controller.stop() if controller is not None else None
            await proxy.stop()
        writes = counts["writes"]
        ours = [
            r
            for rules in found.values()
            for r in rules
            if str(r.get("description", "")).startswith(OURS)
        ]
        names = Counter((str(r.get("network")), str(r.get("name"))) for r in ours)
        rate = _rate(ok_writes, first_write, last_write)
        path = "direct" if settings.direct else "proxied"
        result: dict[str, Any] = {
            "controller": settings.controller,
            "image": settings.image or None,
            "ready_seconds": None if ready_seconds is None else round(ready_seconds, 2),
            "nodes": settings.nodes,
            "networks": settings.networks,
            "dual_stack": True,
            "concurrency": None if settings.controller == "go" else used,
            "converged": converged,
            "converge_seconds": round(took, 1) if converged else None,
            "rules": len(ours),
            "duplicates": sum(n - 1 for n in names.values()),
            "foreign_touched": _foreign_touched(self.foreign, found),
            **counts,
            "controller_cpu_seconds": None if cpu is None else round(cpu, 2),
            "cpu_ms_per_write": None
            if cpu is None or not writes
            else round(1000 * cpu / writes, 2),
            "peak_rss_mb": None if rss is None else round(rss, 1),
            "first_write_seconds": None if first_write is None else round(first_write, 2),
            "last_write_seconds": None if last_write is None else round(last_write, 2),
            "writes_per_second": rate,
            **ceiling,
            # Against the ceiling on the path our writes took.
            "write_fraction": None
            if rate is None
            else round(rate / ceiling[f"ceiling_{path}_per_second"], 2),
            "write_fraction_direct": None
            if rate is None
            else round(rate / ceiling["ceiling_direct_per_second"], 2),
            "netmaker_cpu_seconds": None if nm_used is None else round(nm_used, 2),
            "netmaker_cpu_per_1000_writes": None
            if nm_used is None
            else round(1000 * nm_used / max(ok_writes, 1), 2),
            "proxy_connections": proxy.connections,
            "proxy_and_poll_cpu_seconds": round(own_cpu, 2),
            "netmaker_ms": proxy.latency_ms(),
            "failed_requests": dict(sorted(proxy.failures.items())),
            "controller_log_levels": dict(log_levels(controller.log)) if controller else {},
            "log_lines_per_1000_writes": round(
                1000 * sum(log_levels(controller.log).values()) / max(ok_writes, 1), 1
            )
            if controller
            else None,
            "controller_exit_code": exit_code,
        }
        if settings.fault:
            result.update(after_api)
            result["fault"] = settings.fault
            result["down_seconds"] = settings.down
            result["outages"] = _outages(
                proxy.write_times,
                outages,
                took if converged else None,
                ok_writes,
                controller.log,
                log_end,
                ceiling["ceiling_proxied_per_second"],
            )
        if not converged:
            result["why_not"] = detail.splitlines()[0] if detail else ""
            if controller is not None:
                print(f"controller log (last lines):\n{controller.tail(20)}", file=sys.stderr)
        return result


def _logged_writes(log: Path, origin_wall: float) -> tuple[int, float | None, float | None]:
    """Writes the controller logged (one INFO line each, with its millisecond time): how many,
    and the first's and last's seconds after `origin_wall`."""
    times = []
    with contextlib.suppress(FileNotFoundError):
        for line in log.read_text(errors="replace").splitlines():
            with contextlib.suppress(ValueError, AttributeError):
                entry = json.loads(line)
                if entry.get("logger") == "kaput_not.executor" and entry.get("level") == "info":
                    times.append(datetime.datetime.fromisoformat(entry["time"]).timestamp())
    if not times:
        return 0, None, None
    return len(times), min(times) - origin_wall, max(times) - origin_wall


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except FileNotFoundError:
        return 0


def _levels_between(log: Path, start: int, end: int) -> Counter[str]:
    with log.open("rb") as f:
        f.seek(start)
        chunk = f.read(max(end - start, 0))
    levels: Counter[str] = Counter()
    for line in chunk.splitlines():
        try:
            levels[str(json.loads(line).get("level", "?")).upper()] += 1
        except (ValueError, AttributeError):
            levels["UNPARSED"] += 1
    return levels


def _outages(
    write_times: list[float],
    outages: list[_Outage],
    converged_at: float | None,
    writes_end: int,
    log: Path,
    log_end: int,
    ceiling: float,
) -> list[dict[str, Any]]:
    """Per outage: the span from its return to the next kill (or convergence), the writes in
    it and the time they need at the ceiling, and the log lines from its kill on."""
    rows = []
    for k, outage in enumerate(outages):
        following = outages[k + 1] if k + 1 < len(outages) else None
        until = following.killed if following is not None else converged_at
        writes = (
            following.writes_at_kill if following is not None else writes_end
        ) - outage.writes_at_back
        levels = _levels_between(
            log, outage.log_at_kill, following.log_at_kill if following is not None else log_end
        )
        budget = 2.0 + writes / ceiling
        if until is not None and until < outage.back:
            until = None  # converged before the server was back (the API server's case)
        rows.append(
            {
                "killed_seconds": round(outage.killed, 2),
                "writes_before_kill": outage.writes_at_kill,
                "back_seconds": round(outage.back, 2),
                "writes_after_back": writes,
                "first_write_after_back_seconds": next(
                    (round(t - outage.back, 2) for t in write_times if t >= outage.back), None
                ),
                "recovery_seconds": None if until is None else round(until - outage.back, 2),
                "budget_seconds": round(budget, 2),
                "within_budget": until is not None and until - outage.back <= budget,
                "log_lines": sum(levels.values()),
                "warning_lines": levels.get("WARNING", 0),
                "error_lines": levels.get("ERROR", 0),
            }
        )
    return rows


def _foreign_touched(foreign: list[dict[str, Any]], found: dict[str, list[dict[str, Any]]]) -> int:
    """Foreign rules seeded before the run that are gone or changed now."""
    now = {str(r["id"]): r for rules in found.values() for r in rules}
    fields = ("name", "description", "range", "nodes", "nat", "network")
    return sum(
        1
        for seeded in foreign
        if (after := now.get(str(seeded["id"]))) is None
        or any(after.get(f) != seeded.get(f) for f in fields)
    )


READY_WAIT = 30.0  # seconds to wait for /readyz after convergence


async def ready_after(address: str, origin: float) -> float | None:
    """Seconds from `origin` until /readyz answers 200 (polled every 50 ms)."""
    async with httpx2.AsyncClient(timeout=2, trust_env=False) as http:
        while True:
            with contextlib.suppress(httpx2.HTTPError):
                if (await http.get(f"http://{address}/readyz")).status_code == 200:
                    return time.monotonic() - origin
            await asyncio.sleep(0.05)


def image_command(
    image: str, name: str, env: dict[str, str], plane: ControlPlane, workdir: Path
) -> list[str]:
    """`podman run` of the image as the chart runs it (user 65532, read-only root, no
    capabilities), on the host network; the admin kubeconfig and its files copied readable."""
    from tests.e2e.pods import podman_command, ulimits

    kube = workdir / "image-kube"
    kube.mkdir(mode=0o755)
    for name_ in ("admin.crt", "admin.key", "ca.crt"):
        shutil.copy(plane.pki.ca_cert.parent / name_, kube / name_)
        (kube / name_).chmod(0o444)
    kubeconfig = plane.write_kubeconfig(
        kube / "kubeconfig",
        user={"client-certificate": str(kube / "admin.crt"), "client-key": str(kube / "admin.key")},
    )
    text = kubeconfig.read_text().replace(str(plane.pki.ca_cert), str(kube / "ca.crt"))
    kubeconfig.write_text(text)
    kubeconfig.chmod(0o444)
    names = {name for name, _, _ in config.VARIABLES}
    settings = {k: v for k, v in env.items() if k in names}
    settings["KUBECONFIG"] = str(kubeconfig)
    env_file = workdir / "image.env"
    env_file.write_text("".join(f"{k}={v}\n" for k, v in sorted(settings.items())))
    return [
        *podman_command(),
        "run",
        "--rm",
        f"--name={name}",
        "--network=host",
        "--pull=never",
        "--user=65532:65532",
        "--read-only",
        "--read-only-tmpfs=false",
        "--cap-drop=ALL",
        "--security-opt=no-new-privileges",
        *ulimits(),
        f"--volume={kube}:{kube}:ro",
        f"--env-file={env_file}",
        image,
        "run",
    ]


async def container_pid(name: str) -> int:
    """The host PID of the container's process (for its CPU and RSS), once it runs."""
    from tests.e2e.pods import podman_command

    for _ in range(600):
        answer = await asyncio.create_subprocess_exec(
            *podman_command(),
            "inspect",
            "--format={{.State.Pid}}",
            name,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.DEVNULL,
        )
        out, _ = await answer.communicate()
        if answer.returncode == 0 and out.strip() not in (b"", b"0"):
            return int(out)
        await asyncio.sleep(0.05)
    raise ControllerExited(f"container {name} did not start")


def _rate(writes: int, first: float | None, last: float | None) -> float | None:
    """Writes per second between the first and the last write the proxy passed on."""
    if first is None or last is None or last <= first:
        return None
    return round((writes - 1) / (last - first), 1)


def _controller_variables() -> set[str]:
    return {name for name, _, _ in config.VARIABLES}


def run(settings: Settings) -> dict[str, Any]:
    peers = find_peers()
    workdir = Path(tempfile.mkdtemp(prefix="kaput-not-bench-"))
    plane: ControlPlane | None = None
    netmaker: NetmakerServer | None = None
    try:
        plane = ControlPlane.start(
            etcd_binary=peers["etcd"],
            apiserver_binary=peers["kube-apiserver"],
            directory=workdir / "control-plane",
        )
        netmaker = NetmakerServer.start(
            peers["netmaker"], workdir / "netmaker", master_key=uuid.uuid4().hex
        )
        return asyncio.run(bench(settings, plane, netmaker, workdir))
    finally:
        if netmaker is not None:
            netmaker.process.stop()
        if plane is not None:
            plane.stop()
        if settings.keep:
            print(f"kept: {workdir}", file=sys.stderr)
        else:
            shutil.rmtree(workdir, ignore_errors=True)


#: What `both` compares, Go / ours.
COMPARED = ("converge_seconds", "reads", "writes", "controller_cpu_seconds", "peak_rss_mb")


def both(settings: Settings) -> dict[str, Any]:
    """The Go original, then ours, each on a stack of its own, seeded alike."""
    go = run(replace(settings, controller="go"))
    ours = run(replace(settings, controller="ours"))
    ratios = {key: ratio(go.get(key), ours.get(key)) for key in COMPARED}
    ratios["requests"] = ratio(sum(go["requests"].values()), sum(ours["requests"].values()))
    return {"go": go, "ours": ours, "ratio_go_over_ours": ratios}


def summary_both(result: dict[str, Any]) -> str:
    ratios = ", ".join(f"{k} {v}" for k, v in result["ratio_go_over_ours"].items())
    return "\n\n".join(
        [f"Go original:\n{summary(result['go'])}", f"ours:\n{summary(result['ours'])}", ratios]
    )


def summary(result: dict[str, Any]) -> str:
    state = (
        f"converged in {result['converge_seconds']} s"
        if result["converged"]
        else f"did NOT converge ({result.get('why_not', '')})"
    )
    lines = [
        f"{result['controller']}: {result['nodes']} dual-stack nodes x {result['networks']} "
        "network(s), "
        f"concurrency {result['concurrency'] or 'default'}: {state}; "
        f"seeding took {result.get('seed_seconds')} s",
        f"rules {result['rules']}, writes {result['writes']}, reads {result['reads']}, "
        f"logins {result['logins']}; controller CPU {result['controller_cpu_seconds']} s "
        f"({result['cpu_ms_per_write']} ms/write), peak RSS {result['peak_rss_mb']} MB",
        f"writes between {result['first_write_seconds']} s and {result['last_write_seconds']} s "
        f"after start ({result['writes_per_second']}/s); "
        f"{result['proxy_connections']} proxy connection(s)",
    ]
    if result.get("ceiling_direct_per_second") is not None:
        lines.append(
            f"ceiling at concurrency {result['concurrency']}: "
            f"{result['ceiling_direct_per_second']}/s straight to Netmaker, "
            f"{result['ceiling_proxied_per_second']}/s through the proxy "
            f"({result['ceiling_writes']} raw POSTs); our writes at "
            f"{result['write_fraction']} of the proxied ceiling "
            f"({result['write_fraction_direct']} of the direct one); Netmaker CPU "
            f"{result['netmaker_cpu_seconds']} s in the sync "
            f"({result['netmaker_cpu_per_1000_writes']} s per 1,000 writes)"
        )
    lines.append(
        f"duplicates {result['duplicates']}, foreign rules touched {result['foreign_touched']}, "
        f"log lines per 1,000 writes {result['log_lines_per_1000_writes']}, "
        f"levels {result['controller_log_levels']}"
    )
    for row in result.get("outages", []):
        lines.append(
            f"  {result['fault']} at {row['killed_seconds']} s (after {row['writes_before_kill']} "
            f"writes), back at {row['back_seconds']} s, first write "
            f"{row['first_write_after_back_seconds']} s later: {row['writes_after_back']} "
            f"writes in {row['recovery_seconds']} s (budget {row['budget_seconds']} s); "
            f"{row['log_lines']} log lines, {row['warning_lines']} WARNING"
        )
    if "node_delete_after_return_seconds" in result:
        lines.append(
            f"  after the API server's return: a Node's rules deleted in "
            f"{result['node_delete_after_return_seconds']} s "
            f"({result['deletes_after_node_delete']} DELETEs); "
            f"DELETEs before: {result['deletes_before_node_delete']}"
        )
    for row in result.get("curve", []):
        lines.append(
            "  concurrency {concurrency}: converged in {converge_seconds} s, writes "
            "{writes_per_second}/s, ceiling {ceiling_direct_per_second}/s direct, "
            "{ceiling_proxied_per_second}/s proxied, fraction {write_fraction}; Netmaker CPU "
            "{netmaker_cpu_seconds} s ({netmaker_cpu_per_1000_writes} s/1,000 writes), "
            "controller CPU {controller_cpu_seconds} s".format(**row)
        )
    latency = result["netmaker_ms"]
    for key, count in result["requests"].items():
        ms = latency.get(key, {})
        lines.append(
            f"  {count:6d}  {key}  (Netmaker mean {ms.get('mean')} ms, max {ms.get('max')})"
        )
    for key, count in result["failed_requests"].items():
        lines.append(f"  failed {count}x: {key}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--nodes", type=int, required=True, help="Kubernetes nodes = hosts")
    parser.add_argument("--networks", type=int, default=1, help="Netmaker networks (1)")
    parser.add_argument("--concurrency", type=int, help="NETMAKER_CONCURRENCY (controller's)")
    parser.add_argument("--timeout", type=float, default=900.0, help="seconds to converge (900)")
    parser.add_argument("--keep", action="store_true", help="keep the temp directory and logs")
    parser.add_argument(
        "--controller",
        choices=("ours", "go", "both"),
        default="ours",
        help="which controller to run (ours); both: the Go original, then ours",
    )
    parser.add_argument(
        "--curve", help="concurrencies to run one after the other on one stack, e.g. 1,2,4,8,16"
    )
    parser.add_argument("--fault", choices=("kill-netmaker", "kill-apiserver"))
    parser.add_argument(
        "--at", default="0.3,0.7", help="fractions of the writes at which to kill (0.3,0.7)"
    )
    parser.add_argument("--down", type=float, default=4.0, help="seconds each kill lasts (4)")
    parser.add_argument(
        "--direct",
        action="store_true",
        help="the controller talks to Netmaker directly (no proxy); its log times the writes",
    )
    parser.add_argument(
        "--image",
        default="",
        help="run ours from this image with podman (scripts/build-image), e.g. "
        "localhost/kaput-not:0.1.0; adds ready_seconds (start to /readyz 200)",
    )
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args(argv)
    if not 1 <= args.nodes <= 65536:
        parser.error("--nodes must be 1..65536")
    if not 1 <= args.networks <= 150:
        parser.error("--networks must be 1..150")
    if args.concurrency is not None and args.concurrency < 1:
        parser.error("--concurrency must be at least 1")
    chosen = "ours" if args.controller == "both" else args.controller
    try:
        curve = tuple(int(c) for c in args.curve.split(",")) if args.curve else ()
        at = tuple(sorted(float(a) for a in args.at.split(",")))
    except ValueError:
        parser.error("--curve takes integers and --at fractions, each list comma-separated")
    if any(c < 1 for c in curve) or not all(0 < a < 1 for a in at) or args.down < 0:
        parser.error("--curve needs concurrencies >= 1, --at fractions in (0, 1), --down >= 0")
    if args.direct and (args.fault or args.controller != "ours"):
        parser.error("--direct times our writes from our log: not with --fault or the Go one")
    if (curve or args.fault) and args.controller == "both":
        parser.error("--curve and --fault run one controller: ours or go")
    settings = Settings(
        args.nodes,
        args.networks,
        args.concurrency,
        args.timeout,
        args.keep,
        controller=chosen,
        curve=curve,
        fault=args.fault,
        at=at,
        down=args.down,
        direct=args.direct,
        image=args.image,
    )
    if args.controller != "ours":
        # Found now: a missing binary should fail before minutes of seeding, not after.
        try:
            settings = replace(settings, go_binary=go_binary())
        except BenchError as exc:
            print(f"real_netmaker: {exc}", file=sys.stderr)
            return 1
    if args.controller == "both":
        return finish(
            "real_netmaker",
            lambda: both(settings),
            None if args.json else summary_both,
            lambda r: r["ours"]["converged"],
            errors=(BenchError, StartError),
        )
    return finish(
        "real_netmaker",
        lambda: run(settings),
        None if args.json else summary,
        lambda r: r["converged"],
        errors=(BenchError, StartError),
    )


if __name__ == "__main__":
    sys.exit(main())
