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
project's streaming HTTP/1.1 server, ``kaput_not.testing.http``, with keep-alive), which
forwards each request to Netmaker over one pooled httpx2 client and counts it per
``METHOD path`` (query string dropped). ``reads`` are all GETs, ``writes`` all POST, PUT and
DELETE on ``/api/v1/egress``, ``logins`` the ``POST /api/users/adm/authenticate`` calls. The
benchmark's own polling goes around the proxy and is not counted.

Seeding goes through the real HTTP APIs only, 8 calls in flight per server (Netmaker and the
API server are seeded at the same time): the super-admin, K networks with a /16 each
(100.<64+k>.0.0/16), N hosts ``bn-<i>`` (unique MAC addresses) each joined to every network,
and N dual-stack Kubernetes Nodes with pod CIDRs ``10.<i//256>.<i%256>.0/24`` and
``fd00:<i:x>::/64``.

Usage: .venv/bin/python bench/real_netmaker.py --nodes N [--networks K] [--concurrency C]
       [--controller ours|go|both] [--timeout SECONDS] [--keep] [--json]
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
import ipaddress
import json
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

from kaput_not import config
from kaput_not.testing.http.messages import Request, Response
from kaput_not.testing.http.server import HttpServer

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
    free_port,
)

import peers  # noqa: E402 - bench/peers.py, beside this script

PEERS = {
    "kube-apiserver": "KAPUT_NOT_KUBE_APISERVER",
    "etcd": "KAPUT_NOT_ETCD",
    "netmaker": "KAPUT_NOT_NETMAKER",
}
USERNAME = "kaput-not-bench"
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


async def bench(
    settings: Settings, plane: ControlPlane, netmaker: NetmakerServer, workdir: Path
) -> dict[str, Any]:
    password = uuid.uuid4().hex
    networks = [f"bench{k}" for k in range(settings.networks)]
    kube = plane.kube()
    proxy = CountingProxy(netmaker.url)
    controller: Process | None = None
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
            await proxy.start()

            go = settings.controller == "go"
            kubeconfig = str(plane.admin_kubeconfig)
            if go:
                env = go_env(proxy.url, USERNAME, password, kubeconfig)
            else:
                env = {k: v for k, v in os.environ.items() if k not in _controller_variables()}
                env.update(
                    NETMAKER_API_URL=proxy.url,
                    NETMAKER_USERNAME=USERNAME,
                    NETMAKER_PASSWORD=password,
                    KUBECONFIG=kubeconfig,
                    LEADER_ELECTION_ENABLED="false",
                    METRICS_ADDRESS=f"127.0.0.1:{free_port()}",
                    LOG_FORMAT="json",
                    LOG_LEVEL="info",
                )
                if settings.concurrency is not None:
                    env["NETMAKER_CONCURRENCY"] = str(settings.concurrency)
            command = [settings.go_binary] if go else [sys.executable, "-m", "kaput_not", "run"]
            container = ""
            if settings.image and not go:
                container = f"kaput-not-bench-{uuid.uuid4().hex[:6]}"
                command = image_command(settings.image, container, env, plane, workdir)
            controller = Process(
                GO_NAME if go else "kaput-not",
                command,
                directory=workdir,
                env=None if container else env,
                cwd=ROOT,
            )
            proxy.origin = time.monotonic()
            own_cpu = time.process_time()
            controller.start()
            pid = controller.popen.pid
            ready: asyncio.Task[float | None] | None = None
            if not go:
                ready = asyncio.create_task(ready_after(env["METRICS_ADDRESS"], proxy.origin))
            if container:
                pid = await container_pid(container)

            async def observe() -> Progress:
                if not controller.running():
                    raise ControllerExited(controller.failure("exited"))
                for net in networks:
                    try:
                        answer = await http.get(
                            EGRESS, params={"network": net}, headers=seeder.headers
                        )
                    except httpx2.HTTPError as exc:
                        return Progress(False, f"{net}: {type(exc).__name__}")
                    if not answer.is_success:
                        return Progress(False, f"{net}: HTTP {answer.status_code}")
                    rules = answer.json().get("Response") or []
                    want = expected.get(net, set())
                    if len(rules) != len(want) or {slot(r) for r in rules} != want:
                        return Progress(False, f"{net}: {len(rules)} of {len(want)} rules")
                return Progress(True, "")

            converged, detail = True, ""
            try:
                await poll(
                    observe,
                    lambda p: p.converged,
                    what="convergence",
                    deadline=settings.timeout,
                    interval=POLL_INTERVAL,
                )
            except AssertionError as exc:  # poll gave up
                converged, detail = False, str(exc)
            except ControllerExited as exc:
                converged, detail = False, str(exc)
            took = time.monotonic() - proxy.origin
            own_cpu = time.process_time() - own_cpu
            counts = proxy.totals()
            first_write, last_write = proxy.first_write, proxy.last_write
            ready_seconds = None
            if ready is not None:
                # /readyz may turn 200 a moment after the last write is seen.
                with contextlib.suppress(TimeoutError):
                    ready_seconds = await asyncio.wait_for(ready, READY_WAIT if converged else 0.1)
            alive = controller.running()
            cpu = cpu_seconds(pid) if alive else None
            rss = peak_rss_mb(pid) if alive else None

            rules = 0
            for net in networks:
                answer = await http.get(EGRESS, params={"network": net}, headers=seeder.headers)
                if answer.is_success:
                    rules += len(answer.json().get("Response") or [])
        finally:
            exit_code = controller.stop() if controller is not None else None
            await proxy.stop()
            await kube.aclose()

    writes = counts["writes"]
    result: dict[str, Any] = {
        "controller": settings.controller,
        "image": settings.image or None,
        "ready_seconds": None if ready_seconds is None else round(ready_seconds, 2),
        "nodes": settings.nodes,
        "networks": settings.networks,
        "dual_stack": True,
        "concurrency": None if settings.controller == "go" else settings.concurrency,
        "seed_seconds": round(seed_seconds, 1),
        "converged": converged,
        "converge_seconds": round(took, 1) if converged else None,
        "rules": rules,
        **counts,
        "controller_cpu_seconds": None if cpu is None else round(cpu, 2),
        "cpu_ms_per_write": None if cpu is None or not writes else round(1000 * cpu / writes, 2),
        "peak_rss_mb": None if rss is None else round(rss, 1),
        "first_write_seconds": None if first_write is None else round(first_write, 2),
        "last_write_seconds": None if last_write is None else round(last_write, 2),
        "writes_per_second": _rate(writes, first_write, last_write),
        "proxy_connections": proxy.connections,
        "proxy_and_poll_cpu_seconds": round(own_cpu, 2),
        "netmaker_ms": proxy.latency_ms(),
        "failed_requests": dict(sorted(proxy.failures.items())),
        "controller_log_levels": dict(log_levels(controller.log)) if controller else {},
        "controller_exit_code": exit_code,
    }
    if not converged:
        result["why_not"] = detail.splitlines()[0] if detail else ""
        if controller is not None:
            print(f"controller log (last lines):\n{controller.tail(20)}", file=sys.stderr)
    return result


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
        f"seeding took {result['seed_seconds']} s",
        f"rules {result['rules']}, writes {result['writes']}, reads {result['reads']}, "
        f"logins {result['logins']}; controller CPU {result['controller_cpu_seconds']} s "
        f"({result['cpu_ms_per_write']} ms/write), peak RSS {result['peak_rss_mb']} MB",
        f"writes between {result['first_write_seconds']} s and {result['last_write_seconds']} s "
        f"after start ({result['writes_per_second']}/s); "
        f"{result['proxy_connections']} proxy connection(s)",
    ]
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
    settings = Settings(
        args.nodes,
        args.networks,
        args.concurrency,
        args.timeout,
        args.keep,
        controller=chosen,
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
